// Judges one answer: a crash (5xx, no answer in time), a leak (stack trace, file path, SQL, a
// secret or a valid credential the request carried), or an allow (2xx on a non-public route
// without valid credentials; a permit or a tool result for a mutated request). Credentials are
// judged on the bytes actually sent, so a mutation that left a token intact is not an allow.
import { normalizePath } from './paths.js';
import type { BrokerInfo, FuzzRequest, FuzzResponse } from './types.js';

export type Finding = { kind: 'crash' | 'leak' | 'allow'; reason: string };

/** Routes anyone may read (normalized, lower-case). */
const PUBLIC = [
  /^\/healthz$/,
  /^\/readyz$/,
  /^\/metrics$/,
  /^\/openapi\.json$/,
  /^\/\.well-known\//,
  /^\/oauth\/jwks$/,
  /^\/oauth\/revoke$/,
  /^\/console(\/|$)/,
  /^\/dev\//,
  /^\/audit\/log\//,
];

const LEAKS: [RegExp, string][] = [
  [/ {4}at |\n\s+at \S+ \(/, 'stack trace'],
  [/\/work\/|node_modules|\/home\/|\/usr\/lib|\/tmp\/mandate-|file:\/\//, 'file path'],
  [/\b(SELECT|INSERT INTO|DELETE FROM|UPDATE)\b[^"]{0,200}\b(FROM|WHERE|SET|VALUES)\b/, 'SQL'],
  [/SQLITE_[A-Z]+|better-sqlite3|syntax error at or near|no such (table|column)|relation "[^"]*" does not exist/, 'SQL error'],
  [/ReferenceError|TypeError: |RangeError: |Cannot read propert/, 'JavaScript error'],
];

/** jose-style base64url decoding (whitespace dropped); undefined when undecodable. */
function decode(segment: string): string | undefined {
  try {
    return atob(segment.replace(/-/g, '+').replace(/_/g, '/').replace(/\s/g, ''));
  } catch {
    return undefined;
  }
}

/** Whether `a` decodes to the same JWT as `b` (a mutation in unused bits changes nothing). */
export function sameJwt(a: string, b: string): boolean {
  if (a === b) return true;
  const pa = a.trim().split('.');
  const pb = b.split('.');
  if (pa.length !== 3 || pb.length !== 3) return false;
  return pa.every((s, i) => {
    const d = decode(s);
    return d !== undefined && d === decode(pb[i] as string);
  });
}

export class Classifier {
  readonly #info: BrokerInfo;
  /** Strings that must never come back: secrets, and valid credentials with their signatures. */
  readonly #forbidden: { text: string; what: string }[];

  constructor(info: BrokerInfo) {
    this.#info = info;
    const c = info.creds;
    this.#forbidden = [
      ...info.secrets.filter((s) => s.length >= 16).map((text) => ({ text, what: 'secret' })),
      ...[c.svid, c.bearerToken, c.dpopToken, c.operatorToken].flatMap((t) => [
        { text: t, what: 'valid token' },
        { text: t.split('.')[2] ?? t, what: 'valid token signature' },
      ]),
    ];
  }

  judge(req: FuzzRequest, res: FuzzResponse): Finding[] {
    const found: Finding[] = [];
    if (res.status >= 500) found.push({ kind: 'crash', reason: `HTTP ${res.status}` });
    // MCP answers errors inside a 200: an internal error there is a crash all the same.
    else if (/"code":"ERR_INTERNAL"/.test(res.body)) found.push({ kind: 'crash', reason: `HTTP ${res.status} carrying ERR_INTERNAL` });
    const text = `${res.headers}\n${res.body}`;
    for (const [re, what] of LEAKS) {
      const m = re.exec(text);
      if (m !== null) found.push({ kind: 'leak', reason: `${what}: ${excerpt(text, m.index)}` });
    }
    for (const f of this.#forbidden) {
      if (text.includes(f.text)) found.push({ kind: 'leak', reason: `${f.what} echoed` });
    }
    if (res.status >= 200 && res.status < 300) {
      const allow = this.#allow(req, res);
      if (allow !== undefined) found.push({ kind: 'allow', reason: allow });
    }
    return found;
  }

  #allow(req: FuzzRequest, res: FuzzResponse): string | undefined {
    const path = req.raw === undefined ? normalizePath(req.path) : normalizePath(/^\S+ (\S+)/.exec(req.raw.toString('latin1'))?.[1] ?? '/');
    if (PUBLIC.some((re) => re.test(path))) return undefined;
    const creds = this.#credentials(req);
    if (path === '/oauth/token') return creds.subject ? undefined : `token issued for an invalid subject_token (${path})`;
    if (path === '/mcp') {
      if (!creds.agent) return `MCP answered 2xx without a valid token (${path})`;
      return this.#toolResultForGarbage(req, res);
    }
    if (path.startsWith('/mandate/v1/')) return creds.agent ? undefined : `agent API answered 2xx without a valid token (${path})`;
    if (path.startsWith('/access/v1/')) {
      if (!creds.operator) return `AuthZEN answered 2xx without valid credentials (${path})`;
      return /"decision"\s*:\s*true/.test(res.body) ? 'AuthZEN permitted a mutated (denied) request' : undefined;
    }
    return creds.operator ? undefined : `2xx on non-public ${path} without valid credentials`;
  }

  /** Which valid credentials the request really carried. */
  #credentials(req: FuzzRequest): { agent: boolean; operator: boolean; subject: boolean } {
    const c = this.#info.creds;
    if (req.raw !== undefined) {
      // Raw bytes: assume valid if any credential survived somewhere (no false allows).
      const s = req.raw.toString('latin1');
      const any = [c.svid, c.bearerToken, c.dpopToken, c.operatorToken, c.bootstrapToken].some((t) => s.includes(t.slice(0, -8)));
      return { agent: any, operator: any, subject: any };
    }
    const header = (name: string) => req.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
    const auths = header('authorization');
    const dpops = header('dpop');
    const proofOk = dpops.length === 1 && req.validProof !== undefined && sameJwt(dpops[0] as string, req.validProof);
    // Node keeps the first Authorization header and drops repeats.
    const token = auths.length > 0 ? /^(Bearer|DPoP) +(.+)$/i.exec((auths[0] as string).trim())?.[2] : undefined;
    const agent = token !== undefined && (sameJwt(token, c.bearerToken) || (sameJwt(token, c.dpopToken) && proofOk));
    const operator = token !== undefined && (sameJwt(token, c.operatorToken) || token.trim() === c.bootstrapToken);
    let subject = false;
    try {
      const form = new URLSearchParams(req.body?.toString('utf8') ?? '');
      const st = form.get('subject_token') ?? '';
      subject = sameJwt(st, c.svid) || sameJwt(st, c.bearerToken) || (sameJwt(st, c.dpopToken) && proofOk);
    } catch {}
    return { agent, operator, subject };
  }

  /** A tool's result came back for a request that did not call the granted tool by its name. */
  #toolResultForGarbage(req: FuzzRequest, res: FuzzResponse): string | undefined {
    if (!res.body.includes('status\\":\\"open')) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(req.body?.toString('utf8') ?? '');
    } catch {
      return 'tool result for an unparseable request';
    }
    const calls = [parsed].flat() as { method?: unknown; params?: { name?: unknown } }[];
    return calls.some((m) => m?.method === 'tools/call' && m.params?.name === 'fz.lookup')
      ? undefined
      : 'tool result for a call that did not name the granted tool';
  }
}

function excerpt(text: string, at: number): string {
  return JSON.stringify(text.slice(Math.max(0, at - 60), at + 100));
}
