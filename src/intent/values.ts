// How one argument value reads as entities: the keys it could match (src/intent/entities.ts),
// whether it is itself a target-kind value (an address, a URL, an IBAN, an account, a path), and
// whether it is a plain word or phrase (compared with the request text as words).
import {
  type EntityKind,
  entityKey,
  fileName,
  nfkc,
  normalizeAccount,
  normalizeDate,
  normalizeEmail,
  normalizeHandle,
  normalizeHost,
  normalizeIban,
  normalizeNumber,
  normalizePathText,
  normalizeUrl,
} from './entities.js';

/** What a value reads as. */
export interface ValueKeys {
  /** Entity keys the value matches when any of them was named. */
  readonly keys: readonly string[];
  /** The value is an address, URL, domain, IBAN, account number or path: a target whatever the argument's name. */
  readonly targetKind: boolean;
  /** A plain word or phrase (no entity of a target kind): compared with the text as words, lower-cased. */
  readonly phrase?: string;
}

const TARGET_KINDS: ReadonlySet<EntityKind> = new Set(['email', 'iban', 'account', 'url', 'domain', 'path']);
/** Longest string value compared at all (longer ones are message bodies, not names). */
const MAX_VALUE_CHARS = 4096;
/** Longest plain phrase compared with the request text as words. */
const MAX_PHRASE_CHARS = 200;

/** The keys of a string or number value (other types have none). */
export function valueKeys(value: unknown): ValueKeys {
  if (typeof value === 'number') {
    const n = Number.isFinite(value) ? String(value) : undefined;
    return { keys: n === undefined ? [] : [entityKey('amount', n), entityKey('number', n)], targetKind: false };
  }
  if (typeof value !== 'string' || value.length > MAX_VALUE_CHARS) return { keys: [], targetKind: false };
  const v = nfkc(value).trim();
  if (v === '') return { keys: [], targetKind: false };
  const keys: string[] = [];
  const kinds = new Set<EntityKind>();
  const add = (kind: EntityKind, normalized: string | undefined) => {
    if (normalized === undefined) return;
    keys.push(entityKey(kind, normalized));
    kinds.add(kind);
  };
  // Cheap guards first: each normalizer runs only on values that could be of its kind.
  const at = v.includes('@');
  const dot = v.includes('.');
  const slash = v.includes('/') || v.includes('\\');
  const digit = /\d/u.test(v);
  const email = at ? normalizeEmail(v.replace(/^mailto:/iu, '')) : undefined;
  if (email !== undefined) add('email', email);
  else {
    const url = dot && /^(?:https?:|www\.)/iu.test(v) ? normalizeUrl(v) : undefined;
    if (url !== undefined) {
      add('url', url.url);
      // A site the human named by its host (`example.com`, or any URL on it) names its URLs.
      add('domain', url.host);
    } else if (dot && !at && !slash && /^[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+$/u.test(v) && !/^[\d.]+$/u.test(v)) {
      add('domain', normalizeHost(v));
      add('file', v.toLowerCase());
    }
  }
  if (digit && /^[A-Za-z]{2}\d{2}/u.test(v)) add('iban', normalizeIban(v));
  // A date (`2022-04-01`) is not an account number, whatever its digits.
  if (digit && !kinds.has('iban') && /^\d[\d -]*$/u.test(v) && normalizeDate(v) === undefined) add('account', normalizeAccount(v));
  if (slash && !kinds.has('url')) {
    const p = normalizePathText(v);
    add('path', p);
    if (p !== undefined) add('file', fileName(p));
  }
  if (digit && /^-?\d/u.test(v)) {
    const n = normalizeNumber(v);
    if (n !== undefined) {
      add('amount', n);
      add('number', n);
    }
  }
  if (digit && v.length <= 40) add('date', normalizeDate(v));
  // A handle, by its sigil or as a bare name (`general`, `alice`), matches `#general` / `@alice`.
  const handle = !dot && !slash && v.length <= 81 ? normalizeHandle(v) : undefined;
  if (handle !== undefined) {
    keys.push(entityKey('channel', handle), entityKey('user', handle));
  }
  keys.push(entityKey('quote', v));
  const targetKind = [...kinds].some((k) => TARGET_KINDS.has(k));
  const plain = !targetKind && v.length <= MAX_PHRASE_CHARS ? v.replace(/^[#@]/u, '').toLowerCase() : undefined;
  return { keys, targetKind, ...(plain === undefined || plain === '' ? {} : { phrase: plain }) };
}

/** Whether `phrase` occurs in `text` (both lower-cased) as whole words. */
export function containsWords(text: string, phrase: string): boolean {
  if (phrase.length < 2) return false;
  let from = 0;
  for (;;) {
    const i = text.indexOf(phrase, from);
    if (i < 0) return false;
    const before = i === 0 ? '' : text[i - 1];
    const after = text[i + phrase.length] ?? '';
    if (!isWordChar(before) && !isWordChar(after)) return true;
    from = i + 1;
  }
}

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && c !== '' && /[\p{L}\p{N}_]/u.test(c);
}
