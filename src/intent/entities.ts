// Entity extraction for intent binding: the values a text names (e-mail addresses, IBANs and
// account numbers, URLs and domains, file names and paths, amounts, dates, quoted strings, channel
// and user handles), deterministically and without a model, each as a normalized key
// (`kind:value`) so a tool argument can be compared with what the human asked for.
//
// Hand-written on purpose: no maintained library extracts this mix of entity kinds from free text
// with bounded, predictable cost. URLs and hosts are parsed by WHATWG URL (Node's `URL`: IDNA to
// punycode, lowercase hosts), IBANs are checked with the ISO 13616 mod-97 checksum, everything else
// is a linear-time regular expression over a capped input.

/** The kinds of entity a text can name. */
export const entityKinds = [
  'email',
  'iban',
  'account',
  'url',
  'domain',
  'path',
  'file',
  'amount',
  'number',
  'date',
  'quote',
  'channel',
  'user',
] as const;
export type EntityKind = (typeof entityKinds)[number];

/** One entity found in a text: its kind, its normalized value, and the text it was found as. */
export interface Entity {
  readonly kind: EntityKind;
  /** Normalized for comparison (see `entityKey`). */
  readonly value: string;
  /** As written (capped at 256 characters), for explain. */
  readonly text: string;
  /** ISO 4217 code for an `amount` when the text says it. */
  readonly currency?: string;
}

/** Longest text scanned; anything beyond is ignored (hostile inputs cost a bounded amount of work). */
export const MAX_SCAN_CHARS = 64 * 1024;
/** Most entities kept from one text. */
export const MAX_ENTITIES = 2000;

/** The comparison key of an entity: `kind:value`. */
export function entityKey(kind: EntityKind, value: string): string {
  return `${kind}:${value}`;
}

// ── normalization ──

/**
 * NFKC folds compatibility forms (fullwidth `＠`, ligatures) into what they stand for; it does NOT
 * fold look-alikes across scripts (Cyrillic `а` stays distinct from Latin `a`), so a look-alike
 * value never equals the value the human named.
 */
export function nfkc(s: string): string {
  return s.normalize('NFKC');
}

/** Lower-cased e-mail address (the local part too: providers treat it case-insensitively in practice), or undefined. */
export function normalizeEmail(s: string): string | undefined {
  const v = nfkc(s).trim();
  const m = /^([A-Za-z0-9._%+-]{1,64})@([A-Za-z0-9.-]{1,253}|[^\s@]{1,253})$/u.exec(v);
  if (m === null) return undefined;
  const host = normalizeHost(m[2] as string);
  if (host === undefined || !host.includes('.')) return undefined;
  return `${(m[1] as string).toLowerCase()}@${host}`;
}

/** A host as WHATWG URL reads it (lowercase, IDNA to punycode, no trailing dot), or undefined. */
export function normalizeHost(s: string): string | undefined {
  if (s.length === 0 || s.length > 253 || /[\s/?#@\\]/u.test(s)) return undefined;
  // ASCII labels: what WHATWG URL would give (lower case, no trailing dot), without parsing a URL.
  if (/^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?$/u.test(s)) return s.toLowerCase().replace(/\.$/u, '');
  try {
    const host = new URL(`http://${s}/`).hostname.replace(/\.$/, '');
    return host === '' ? undefined : host;
  } catch {
    return undefined;
  }
}

/** A URL as WHATWG URL serializes it (scheme and host lowercased, default port dropped, no fragment), or undefined. */
export function normalizeUrl(s: string): { url: string; host: string } | undefined {
  let text = nfkc(s).trim();
  if (/^www\./iu.test(text)) text = `https://${text}`;
  if (!/^https?:\/\//iu.test(text)) return undefined;
  try {
    const u = new URL(text);
    if (u.hostname === '') return undefined;
    u.hash = '';
    const host = u.hostname.replace(/\.$/, '');
    return { url: u.href, host };
  } catch {
    return undefined;
  }
}

/** An IBAN without spaces, upper-cased, when its ISO 13616 mod-97 checksum holds; else undefined. */
export function normalizeIban(s: string): string | undefined {
  const v = nfkc(s).replace(/[\s-]/gu, '').toUpperCase();
  if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/u.test(v)) return undefined;
  return ibanChecksumOk(v) ? v : undefined;
}

/** ISO 13616: move the first four characters to the end, letters to 10..35, the number mod 97 must be 1. */
export function ibanChecksumOk(iban: string): boolean {
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const ch of moved) {
    const code = ch.charCodeAt(0);
    const digits = code >= 65 && code <= 90 ? String(code - 55) : ch;
    for (const d of digits) rest = (rest * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rest === 1;
}

/** An account number: 6 to 34 digits once spaces and dashes are removed. */
export function normalizeAccount(s: string): string | undefined {
  const v = nfkc(s).replace(/[\s-]/gu, '');
  return /^[0-9]{6,34}$/u.test(v) ? v : undefined;
}

/** A path with `//` collapsed and `.` segments dropped; `..` is kept (it is what a path says). */
export function normalizePathText(s: string): string | undefined {
  const v = nfkc(s).trim().replace(/\\/gu, '/');
  if (v.length === 0 || v.length > 1024) return undefined;
  const absolute = v.startsWith('/');
  const home = v.startsWith('~/');
  const parts = v.split('/').filter((p, i) => p !== '' && p !== '.' && !(home && i === 0));
  const body = parts.join('/');
  return `${absolute ? '/' : home ? '~/' : ''}${body}`;
}

/** The last segment of a path, lower-cased (file names compare case-insensitively). */
export function fileName(path: string): string {
  const i = path.lastIndexOf('/');
  return (i < 0 ? path : path.slice(i + 1)).toLowerCase();
}

const MONTHS: Readonly<Record<string, number>> = {
  jan: 1,
  january: 1,
  feb: 2,
  february: 2,
  mar: 3,
  march: 3,
  apr: 4,
  april: 4,
  may: 5,
  jun: 6,
  june: 6,
  jul: 7,
  july: 7,
  aug: 8,
  august: 8,
  sep: 9,
  sept: 9,
  september: 9,
  oct: 10,
  october: 10,
  nov: 11,
  november: 11,
  dec: 12,
  december: 12,
};

const pad = (n: number) => String(n).padStart(2, '0');

function dateKey(year: number | undefined, month: number, day: number): string | undefined {
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  return year === undefined ? `--${pad(month)}-${pad(day)}` : `${year}-${pad(month)}-${pad(day)}`;
}

/**
 * A date as `YYYY-MM-DD`, or `--MM-DD` when the text names no year (ISO 8601's year-less form).
 * Reads ISO dates (a time after them is ignored), `Month D[, YYYY]` and `D Month [YYYY]`.
 */
export function normalizeDate(s: string): string | undefined {
  const v = nfkc(s).trim().toLowerCase();
  let m = /^(\d{4})-(\d{2})-(\d{2})(?:[t ].*)?$/u.exec(v);
  if (m !== null) return dateKey(Number(m[1]), Number(m[2]), Number(m[3]));
  m = /^([a-z]+)\.? (\d{1,2})(?:st|nd|rd|th)?(?:,? (\d{4}))?$/u.exec(v);
  if (m !== null && MONTHS[m[1] as string] !== undefined) {
    return dateKey(m[3] === undefined ? undefined : Number(m[3]), MONTHS[m[1] as string] as number, Number(m[2]));
  }
  m = /^(\d{1,2})(?:st|nd|rd|th)? (?:of )?([a-z]+)\.?,?(?: (\d{4}))?$/u.exec(v);
  if (m !== null && MONTHS[m[2] as string] !== undefined) {
    return dateKey(m[3] === undefined ? undefined : Number(m[3]), MONTHS[m[2] as string] as number, Number(m[1]));
  }
  return undefined;
}

/** A number as JavaScript prints it (`1,234.50` → `1234.5`), or undefined. */
export function normalizeNumber(s: string): string | undefined {
  const v = nfkc(s)
    .trim()
    .replace(/(?<=\d)[,'](?=\d{3}\b)/gu, '');
  if (!/^-?\d+(?:\.\d+)?$/u.test(v)) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? String(n) : undefined;
}

/** A channel or user handle without its sigil, lower-cased. */
export function normalizeHandle(s: string): string | undefined {
  const v = nfkc(s).trim().replace(/^[#@]/u, '');
  return /^[\p{L}\p{N}][\p{L}\p{N}._-]{0,79}$/u.test(v) ? v.toLowerCase() : undefined;
}

// ── extraction ──

const CURRENCY_SYMBOLS: Readonly<Record<string, string>> = { $: 'USD', '€': 'EUR', '£': 'GBP', '¥': 'JPY', '₹': 'INR', CHF: 'CHF' };
const CURRENCY_WORDS: Readonly<Record<string, string>> = {
  dollar: 'USD',
  dollars: 'USD',
  usd: 'USD',
  euro: 'EUR',
  euros: 'EUR',
  eur: 'EUR',
  pound: 'GBP',
  pounds: 'GBP',
  gbp: 'GBP',
  chf: 'CHF',
  francs: 'CHF',
  yen: 'JPY',
  jpy: 'JPY',
  inr: 'INR',
  rupees: 'INR',
};

// Each pattern is linear: no nested quantifiers over overlapping classes.
const RE = {
  email: /[A-Za-z0-9._%+-]{1,64}@[\p{L}\p{N}-]{1,63}(?:\.[\p{L}\p{N}-]{1,63}){1,8}/gu,
  url: /\b(?:https?:\/\/|www\.)[^\s<>"'`()[\]{}]{1,2048}/giu,
  iban: /\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{1,4}){3,8}\b/gu,
  // A bare domain: labels and a known-looking TLD (letters only, 2..24), not part of an e-mail or a path.
  domain: /(?<![@/\p{L}\p{N}.-])(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.){1,8}[\p{L}]{2,24}(?![\p{L}\p{N}@/-])/gu,
  path: /(?<![\p{L}\p{N}:/])(?:~\/|\/|\.{1,2}\/|[A-Za-z]:\\)[\p{L}\p{N}._~\-/\\]{1,1024}/gu,
  file: /(?<![\p{L}\p{N}/@.-])[\p{L}\p{N}_-][\p{L}\p{N}._-]{0,200}\.[A-Za-z0-9]{1,6}(?![\p{L}\p{N}@/-])/gu,
  number:
    /(?<![\p{L}\p{N}.,])-?\d{1,3}(?:[,']\d{3})+(?:\.\d+)?(?![\p{L}\p{N}])|(?<![\p{L}\p{N}.,])-?\d{1,15}(?:\.\d{1,10})?(?![\p{L}\p{N}])/gu,
  account: /(?<![\p{L}\p{N}])\d{2,8}(?:[ -]\d{2,8}){1,6}(?![\p{L}\p{N}])|(?<![\p{L}\p{N}])\d{6,34}(?![\p{L}\p{N}])/gu,
  dateIso: /\b\d{4}-\d{2}-\d{2}\b/gu,
  // A day of the month (`3`, `3rd`): a date when a month name is next to it.
  day: /(?<![\p{L}\p{N}.,:])(\d{1,2})(?:st|nd|rd|th)?(?![\p{L}\p{N}])/gu,
  quote: /"([^"\n]{1,500})"|“([^”\n]{1,500})”|‘([^’\n]{1,500})’|`([^`\n]{1,500})`|(?<![\p{L}\p{N}])'([^'\n]{1,500})'(?![\p{L}\p{N}])/gu,
  channel: /(?<![\p{L}\p{N}&#])#([\p{L}\p{N}][\p{L}\p{N}._-]{0,79})/gu,
  user: /(?<![\p{L}\p{N}._%+-])@([\p{L}\p{N}][\p{L}\p{N}._-]{0,79})(?![\p{L}\p{N}]*\.[\p{L}])/gu,
};

/** URL punctuation a sentence puts after a link: not part of it. */
const TRAILING = /[.,;:!?]+$/u;

/**
 * Every entity `text` names, in order of kind, deduplicated by key. Reads at most `MAX_SCAN_CHARS`
 * characters (after NFKC) and keeps at most `MAX_ENTITIES`.
 *
 * @example
 * extractEntities('Pay €120.50 to DE89 3704 0044 0532 0130 00 by May 3 and mail bob@Example.com')
 * // [{ kind: 'email', value: 'bob@example.com', … }, { kind: 'iban', value: 'DE89370400440532013000', … },
 * //  { kind: 'amount', value: '120.5', currency: 'EUR', … }, { kind: 'date', value: '--05-03', … }, …]
 */
export function extractEntities(input: string, maxChars = MAX_SCAN_CHARS): Entity[] {
  const text = nfkc(input.length > maxChars * 2 ? input.slice(0, maxChars * 2) : input).slice(0, maxChars);
  const out: Entity[] = [];
  const seen = new Set<string>();
  const add = (kind: EntityKind, value: string | undefined, raw: string, currency?: string) => {
    if (value === undefined || out.length >= MAX_ENTITIES) return;
    const key = entityKey(kind, value);
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ kind, value, text: raw.slice(0, 256), ...(currency === undefined ? {} : { currency }) });
  };
  const each = (re: RegExp, within: string, f: (m: RegExpExecArray) => void) => {
    re.lastIndex = 0;
    for (let m = re.exec(within); m !== null && out.length < MAX_ENTITIES; m = re.exec(within)) f(m);
  };

  // Kinds that never span whitespace (addresses, URLs, hosts, paths, files, handles) are looked for
  // only in the words that carry their anchor character: in prose that is a small part of the text,
  // and the patterns match exactly as they would on the whole text (words stay whitespace-separated).
  const words = text.split(/\s+/u).filter((w) => ANCHORED.test(w));
  const anchored = words.join('\n');

  const emailDomains = new Set<string>();
  each(RE.email, anchored, (m) => {
    const email = normalizeEmail(m[0].replace(TRAILING, ''));
    add('email', email, m[0]);
    if (email !== undefined) emailDomains.add(email.slice(email.indexOf('@') + 1));
  });
  each(RE.url, anchored, (m) => {
    const raw = m[0].replace(TRAILING, '');
    const u = normalizeUrl(raw);
    if (u === undefined) return;
    add('url', u.url, raw);
    add('domain', u.host, raw);
  });
  each(RE.domain, anchored, (m) => {
    const host = normalizeHost(m[0]);
    // The domain of an address is not a site the human named; a file name (`report.pdf`) is not a host.
    if (host === undefined || emailDomains.has(host) || looksLikeFile(m[0])) return;
    add('domain', host, m[0]);
  });
  const ibanSpans: [number, number][] = [];
  each(RE.iban, text, (m) => {
    const iban = normalizeIban(m[0]);
    if (iban !== undefined) ibanSpans.push([m.index, m.index + m[0].length]);
    add('iban', iban, m[0]);
  });
  each(RE.account, text, (m) => {
    // Not the digits of an IBAN found above, nor a date written with dashes.
    if (ibanSpans.some(([s, e]) => m.index < e && m.index + m[0].length > s) || normalizeDate(m[0]) !== undefined) return;
    add('account', normalizeAccount(m[0]), m[0]);
  });
  each(RE.path, anchored, (m) => {
    const raw = m[0].replace(TRAILING, '');
    if (raw === '/' || raw.startsWith('//')) return;
    const p = normalizePathText(raw);
    add('path', p, raw);
    if (p !== undefined && /\.[A-Za-z0-9]{1,6}$/u.test(p)) add('file', fileName(p), raw);
  });
  each(RE.file, anchored, (m) => {
    const raw = m[0].replace(TRAILING, '');
    if (looksLikeFile(raw)) add('file', raw.toLowerCase(), raw);
  });
  // Amounts and dates around the numbers: a currency before or after, a month name before or after.
  const amounts: Entity[] = [];
  const numbers: Entity[] = [];
  const dates: [string | undefined, string][] = [];
  each(RE.number, text, (m) => {
    const value = normalizeNumber(m[0]);
    if (value === undefined) return;
    numbers.push({ kind: 'number', value, text: m[0] });
    const start = m.index;
    const end = m.index + m[0].length;
    const before = BEFORE_NUMBER.exec(text.slice(Math.max(0, start - 5), start));
    if (before !== null) {
      const sym = (before[1] as string).toUpperCase();
      amounts.push({
        kind: 'amount',
        value,
        text: `${before[0]}${m[0]}`,
        currency: CURRENCY_SYMBOLS[sym] ?? CURRENCY_SYMBOLS[before[1] as string] ?? sym,
      });
    }
    const after = AFTER_NUMBER.exec(text.slice(end, end + 10));
    if (after !== null) {
      const unit = (after[1] as string).toLowerCase();
      amounts.push({
        kind: 'amount',
        value,
        text: `${m[0]}${after[0]}`,
        currency: CURRENCY_SYMBOLS[unit] ?? CURRENCY_WORDS[unit],
      } as Entity);
    }
  });
  each(RE.day, text, (m) => {
    const start = m.index;
    const end = m.index + m[0].length;
    const day = m[1] as string;
    const dayFirst = DAY_FIRST.exec(text.slice(end, end + 22));
    if (dayFirst !== null) dates.push([normalizeDate(`${day}${dayFirst[0]}`), `${m[0]}${dayFirst[0]}`]);
    const monthFirst = MONTH_FIRST.exec(text.slice(Math.max(0, start - 11), start));
    if (monthFirst !== null) {
      const year = YEAR_AFTER.exec(text.slice(end, end + 8));
      dates.push([
        normalizeDate(`${monthFirst[1]} ${day}${year === null ? '' : `, ${year[1]}`}`),
        `${monthFirst[0]}${m[0]}${year?.[0] ?? ''}`,
      ]);
    }
  });
  for (const a of amounts) add('amount', a.value, a.text, a.currency);
  for (const n of numbers) add('number', n.value, n.text);
  each(RE.dateIso, text, (m) => add('date', normalizeDate(m[0]), m[0]));
  for (const [value, raw] of dates) add('date', value, raw);
  each(RE.quote, text, (m) => {
    const inner = (m[1] ?? m[2] ?? m[3] ?? m[4] ?? m[5] ?? '').trim();
    if (inner !== '') add('quote', inner, m[0]);
  });
  each(RE.channel, anchored, (m) => add('channel', normalizeHandle(m[1] as string), m[0]));
  each(RE.user, anchored, (m) => add('user', normalizeHandle(m[1] as string), m[0]));
  return out;
}

/** A word that may hold an address, URL, host, path, file name or handle. */
const ANCHORED = /[@#/\\~]|\.[\p{L}\p{N}]/u;
const MONTH =
  'jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?';
const BEFORE_NUMBER = /(\$|€|£|¥|₹|\bCHF|\bUSD|\bEUR|\bGBP) ?$/iu;
const AFTER_NUMBER = /^ ?(€|\$|£|dollars?|usd|euros?|eur|pounds?|gbp|chf|francs|yen|jpy|inr|rupees)(?![\p{L}\p{N}])/iu;
const DAY_FIRST = new RegExp(`^ (?:of )?(?:${MONTH})\\b\\.?(?:,? \\d{4}\\b)?`, 'iu');
const MONTH_FIRST = new RegExp(`\\b(${MONTH})\\.? $`, 'iu');
const YEAR_AFTER = /^,? (\d{4})\b/u;

/** A name with a file extension that is not a top-level domain people write as such. */
function looksLikeFile(s: string): boolean {
  const m = /\.([A-Za-z0-9]{1,6})$/u.exec(s);
  if (m === null) return false;
  return FILE_EXTENSIONS.has((m[1] as string).toLowerCase());
}

// Extensions that make `name.ext` a file, not a host. (`.md`, `.py`, `.sh` … are also TLDs; in a
// request a name ending with them is far more often a file, and a URL with a scheme stays a URL.)
const FILE_EXTENSIONS = new Set([
  'txt',
  'md',
  'pdf',
  'doc',
  'docx',
  'xls',
  'xlsx',
  'csv',
  'ppt',
  'pptx',
  'json',
  'yaml',
  'yml',
  'xml',
  'html',
  'htm',
  'png',
  'jpg',
  'jpeg',
  'gif',
  'svg',
  'zip',
  'tar',
  'gz',
  'tgz',
  'py',
  'js',
  'ts',
  'sh',
  'log',
  'ini',
  'cfg',
  'conf',
  'toml',
  'sql',
  'db',
  'eml',
  'ics',
  'mp3',
  'mp4',
  'wav',
  'mov',
  'key',
  'pem',
  'rtf',
  'odt',
  'ods',
]);
