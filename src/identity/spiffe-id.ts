// SPIFFE ID parsing exactly per the SPIFFE-ID specification (§2): `spiffe://<trust domain><path>`.
// Hand-written because there is no maintained JavaScript SPIFFE library; the rules are short and
// each one has a test (test/identity/spiffe-id.test.ts mirrors the spec's rejection list).

export interface SpiffeId {
  readonly trustDomain: string;
  /** Empty for the trust domain's own ID, otherwise starts with `/`. */
  readonly path: string;
  readonly uri: string;
}

export type SpiffeIdResult = { ok: true; id: SpiffeId } | { ok: false; reason: string };

const PREFIX = 'spiffe://';
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_CHAR = /^[a-zA-Z0-9._-]$/;
/** §2.3: URIs longer than 2048 bytes must be rejected. */
const MAX_URI_BYTES = 2048;
const MAX_TRUST_DOMAIN = 255;

/** Parses and validates a SPIFFE ID; never throws. */
export function parseSpiffeId(value: unknown): SpiffeIdResult {
  if (typeof value !== 'string' || value === '') return { ok: false, reason: 'SPIFFE ID is empty' };
  if (Buffer.byteLength(value, 'utf8') > MAX_URI_BYTES) return { ok: false, reason: 'SPIFFE ID is longer than 2048 bytes' };
  // §2: the scheme is `spiffe` and must be lowercase; anything else (SPIFFE://, http://) is rejected.
  if (!value.startsWith(PREFIX)) return { ok: false, reason: 'SPIFFE ID must start with "spiffe://"' };
  const rest = value.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  const td = checkTrustDomain(trustDomain);
  if (td !== undefined) return { ok: false, reason: td };
  const p = checkPath(path);
  if (p !== undefined) return { ok: false, reason: p };
  return { ok: true, id: { trustDomain, path, uri: value } };
}

/** Validates a bare trust domain name (§2.1). Returns the reason it is invalid, or undefined. */
export function checkTrustDomain(trustDomain: string): string | undefined {
  if (trustDomain === '') return 'trust domain is missing';
  if (trustDomain.length > MAX_TRUST_DOMAIN) return 'trust domain is longer than 255 characters';
  for (const ch of trustDomain) {
    // Catches uppercase, ports (`:`), userinfo (`@`), query (`?`), fragment (`#`), percent-encoding.
    if (!TRUST_DOMAIN_CHAR.test(ch)) return `trust domain contains an invalid character "${printable(ch)}"`;
  }
  return undefined;
}

function checkPath(path: string): string | undefined {
  if (path === '') return undefined;
  if (path.endsWith('/')) return 'path must not end with "/"';
  const segments = path.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '') return 'path must not contain empty segments';
    if (segment === '.' || segment === '..') return 'path must not contain "." or ".." segments';
    for (const ch of segment) {
      if (!PATH_CHAR.test(ch)) return `path contains an invalid character "${printable(ch)}"`;
    }
  }
  return undefined;
}

function printable(ch: string): string {
  return /^[\x21-\x7e]$/.test(ch) ? ch : `U+${(ch.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`;
}
