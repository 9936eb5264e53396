// Lexical path normalization for path constraints (`within`, and `prefix` on path arguments).
// Fails closed: any form an upstream could read differently from us (`..`, `.`, backslashes,
// percent-encoding, control characters, Unicode compatibility forms of `/` `.` `\` `%`) is refused.
// The only rewrites are ones every POSIX resolver agrees on: `//` → `/` and no trailing `/`, so the
// value the upstream receives names the same file as the normalized form we compared.

/** A path that passed every check: its canonical text and its segments. */
export interface NormalPath {
  /** `/a/b` or `a/b` (no empty, `.` or `..` segments, no trailing slash; `/` alone for the root). */
  readonly text: string;
  readonly absolute: boolean;
  readonly segments: readonly string[];
}

export type PathResult = { ok: true; path: NormalPath } | { ok: false; reason: string };

/** Longer than Linux PATH_MAX: no upstream would accept it anyway. */
export const MAX_PATH_LENGTH = 4096;

// C0 controls (NUL among them) and DEL.
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;
const PERCENT_ESCAPE = /%[0-9a-f]{2}/i;
/** Characters whose count must not change under NFKC (U+FF0F fullwidth solidus → `/`, U+2024 → `.`, …). */
const SIGNIFICANT = ['/', '\\', '.', '%'] as const;

const count = (s: string, ch: string): number => s.split(ch).length - 1;

/**
 * Normalizes `value` as a POSIX path, or says why it is refused.
 *
 * @example
 * normalizePath('/srv//public/a.txt') // { ok: true, path: { text: '/srv/public/a.txt', absolute: true, segments: [...] } }
 * normalizePath('/srv/public/../private') // { ok: false, reason: "contains a '..' segment" }
 */
export function normalizePath(value: string): PathResult {
  if (value.length === 0) return { ok: false, reason: 'is empty' };
  if (value.length > MAX_PATH_LENGTH) return { ok: false, reason: `is longer than ${MAX_PATH_LENGTH} characters` };
  if (CONTROL.test(value)) return { ok: false, reason: 'contains a control character (NUL or another C0/DEL)' };
  if (value.includes('\\')) return { ok: false, reason: 'contains a backslash' };
  if (PERCENT_ESCAPE.test(value)) return { ok: false, reason: 'contains a percent-encoded sequence' };
  const nfkc = value.normalize('NFKC');
  if (nfkc !== value && SIGNIFICANT.some((ch) => count(nfkc, ch) !== count(value, ch))) {
    return { ok: false, reason: 'contains a character that Unicode normalization turns into a separator, dot or percent sign' };
  }
  const absolute = value.startsWith('/');
  const segments: string[] = [];
  for (const seg of value.split('/')) {
    if (seg === '') continue;
    if (seg === '..') return { ok: false, reason: "contains a '..' segment" };
    if (seg === '.') return { ok: false, reason: "contains a '.' segment" };
    segments.push(seg);
  }
  const text = absolute ? `/${segments.join('/')}` : segments.join('/');
  return { ok: true, path: { text, absolute, segments } };
}

/**
 * Whether `path` is `root` or below it, by whole segments (`/a/pub` does not contain `/a/public`).
 * A relative path is never within an absolute root, nor the other way round.
 */
export function isWithin(path: NormalPath, root: NormalPath): boolean {
  if (path.absolute !== root.absolute) return false;
  if (path.segments.length < root.segments.length) return false;
  return root.segments.every((seg, i) => path.segments[i] === seg);
}

/**
 * Why `value` is not a path within `root`, or undefined when it is.
 * `root` must already be normalized (see `normalizePath`).
 */
export function withinViolation(root: NormalPath, value: string): string | undefined {
  const p = normalizePath(value);
  if (!p.ok) return `is not an acceptable path: it ${p.reason}`;
  if (p.path.absolute !== root.absolute) {
    return `is ${p.path.absolute ? 'an absolute' : 'a relative'} path, the constraint ${JSON.stringify(root.text)} a${root.absolute ? 'n absolute' : ' relative'} one`;
  }
  if (!isWithin(p.path, root)) return `must be within ${JSON.stringify(root.text)}`;
  return undefined;
}
