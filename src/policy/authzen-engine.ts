// An organisation's existing OpenID AuthZEN 1.0 PDP (OPA, Topaz, Cerbos, a vendor PDP, another
// Mandate) as the policy engine: the org-policy part of a decision is asked over HTTP
// (POST to its access evaluation endpoint). Every failure is a deny with a registry code: fail closed.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Config } from '../config/load.js';
import { ConfigError, type ErrorCode } from '../errors/index.js';
import { wasmEngine } from './cedar/engine.js';
import type {
  CedarValueJson,
  EngineAnswer,
  EngineRequest,
  EntityJson,
  EntityUidJson,
  LoadResult,
  PolicyEngine,
  PolicyFile,
} from './engine.js';
import type { AsyncPolicySet } from './engine-async.js';

/** A PDP answer larger than this is refused (a decision is a few hundred bytes). */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface ExternalPdpOptions {
  /** The PDP's access evaluation endpoint (its metadata's `access_evaluation_endpoint`). */
  readonly url: string;
  /** Whole exchange (connect, send, answer) must finish within this; otherwise deny. */
  readonly timeoutMs: number;
  /** Reuse an answer for an identical request this long; 0 (default) asks every time. */
  readonly cacheTtlMs?: number;
  /** Most answers kept; the oldest goes first. */
  readonly cacheMaxEntries?: number;
  /** Cedar namespace stripped from entity types and actions (`Mandate::Agent` → `Agent`). */
  readonly namespace?: string;
  /** Cedar entity type (without namespace) → AuthZEN type; unlisted types are sent as they are. */
  readonly types?: Readonly<Record<string, string>>;
  /** Bearer token for the PDP (a secret: from the environment or a file, never the config file). */
  readonly token?: string;
  /** TLS: extra trusted CA (PEM) and a client certificate and key (PEM) for mTLS. */
  readonly tls?: { readonly ca?: string | Buffer; readonly cert?: string | Buffer; readonly key?: string | Buffer };
  /** Milliseconds since the epoch (for the cache; tests pass a fake clock). */
  readonly now?: () => number;
}

/** An AuthZEN 1.0 access evaluation request. */
export interface AuthzenEvaluation {
  subject: { type: string; id: string; properties?: Record<string, CedarValueJson> };
  action: { name: string };
  resource: { type: string; id: string; properties?: Record<string, CedarValueJson> };
  context: Record<string, CedarValueJson>;
}

/** An answer of the external engine: an EngineAnswer, with the registry code when it failed. */
export interface ExternalAnswer extends EngineAnswer {
  readonly code?: ErrorCode;
}

/** A loaded set whose decisions come from the PDP; `authorizeAsync` is the way to ask. */
export interface ExternalPolicySet extends AsyncPolicySet {
  authorizeAsync(request: EngineRequest): Promise<ExternalAnswer>;
}

export { authorizeAny } from './engine-async.js';

export interface ExternalPdpEngine extends PolicyEngine {
  load(schema: PolicyFile, files: readonly PolicyFile[]): LoadResult;
  /** The AuthZEN request a Cedar request becomes (what is sent, for explain and docs). */
  toAuthzen(request: EngineRequest): AuthzenEvaluation;
  /** Asks the PDP; never throws. */
  ask(request: EngineRequest): Promise<ExternalAnswer>;
  /** Closes kept-alive connections. */
  close(): void;
}

export function authzenEngine(options: ExternalPdpOptions): ExternalPdpEngine {
  const url = new URL(options.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`the PDP URL must be http(s), got ${url.protocol}`);
  // Secrets never live in the configuration file: no user:password@ in the URL.
  if (url.username !== '' || url.password !== '') throw new TypeError('the PDP URL must not carry credentials; use the bearer token');
  const secure = url.protocol === 'https:';
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: 64, ...(options.tls ?? {}) })
    : new http.Agent({ keepAlive: true, maxSockets: 64 });
  const ns = options.namespace ?? 'Mandate';
  const types = options.types ?? { Agent: 'agent', Human: 'human', Tool: 'tool', Mandate: 'mandate' };
  const ttl = options.cacheTtlMs ?? 0;
  const maxEntries = options.cacheMaxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { answer: ExternalAnswer; expires: number }>();

  const authzenType = (cedarType: string): string => {
    const local = cedarType.startsWith(`${ns}::`) ? cedarType.slice(ns.length + 2) : cedarType;
    return Object.hasOwn(types, local) ? (types[local] as string) : local;
  };

  const toAuthzen = (request: EngineRequest): AuthzenEvaluation => {
    const byKey = new Map<string, EntityJson>();
    for (const e of request.entities) {
      const u = uidOf(e.uid);
      byKey.set(`${u.type}\u0000${u.id}`, e);
    }
    const entity = (ref: EntityUidJson) => {
      const u = uidOf(ref);
      const attrs = byKey.get(`${u.type}\u0000${u.id}`)?.attrs ?? {};
      return { type: authzenType(u.type), id: u.id, ...(Object.keys(attrs).length > 0 ? { properties: attrs } : {}) };
    };
    return {
      subject: entity(request.principal),
      action: { name: uidOf(request.action).id },
      resource: entity(request.resource),
      context: request.context,
    };
  };

  const ask = async (request: EngineRequest): Promise<ExternalAnswer> => {
    let body: string;
    try {
      body = JSON.stringify(toAuthzen(request));
    } catch (err) {
      return failed('ERR_PDP_BAD_RESPONSE', `the request cannot be sent to the PDP: ${(err as Error).message}`);
    }
    const key = ttl > 0 ? createHash('sha256').update(body).digest('base64url') : '';
    if (ttl > 0) {
      const hit = cache.get(key);
      // A copy: callers own the arrays of the answer they get.
      if (hit !== undefined && hit.expires > now()) return { ...hit.answer, policies: [], erroring: [], errors: [] };
      if (hit !== undefined) cache.delete(key);
    }
    const answer = await post(body);
    // Only decisions are cached, never failures: a PDP that recovers is asked again at once.
    if (ttl > 0 && answer.code === undefined) {
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
      cache.set(key, { answer, expires: now() + ttl });
    }
    return answer;
  };

  const post = (body: string): Promise<ExternalAnswer> =>
    new Promise((resolvePromise) => {
      let settled = false;
      let req: http.ClientRequest | undefined;
      const timer = setTimeout(() => {
        settle(failed('ERR_PDP_TIMEOUT', `the PDP did not answer within ${options.timeoutMs} ms`));
        req?.destroy();
      }, options.timeoutMs);
      const settle = (a: ExternalAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolvePromise(a);
      };
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        accept: 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'x-request-id': randomUUID(),
      };
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
      // Redirects are never followed (node:http does not): a 3xx is an unusable answer.
      try {
        req = (secure ? https : http).request(url, { method: 'POST', headers, agent }, (res) => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) {
            res.resume();
            const where =
              status >= 300 && status < 400 ? ` (redirect to ${res.headers.location ?? 'nowhere'}; redirects are not followed)` : '';
            settle(failed('ERR_PDP_BAD_RESPONSE', `the PDP answered HTTP ${status}${where}`));
            return;
          }
          const declared = Number(res.headers['content-length'] ?? 0);
          if (declared > MAX_RESPONSE_BYTES) {
            res.destroy();
            settle(failed('ERR_PDP_BAD_RESPONSE', `the PDP answer is larger than ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy();
              settle(failed('ERR_PDP_BAD_RESPONSE', `the PDP answer is larger than ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', (err) => settle(failed('ERR_PDP_UNAVAILABLE', `the PDP connection failed: ${err.message}`)));
          res.on('end', () => settle(interpret(Buffer.concat(chunks).toString('utf8'))));
          // A connection closed mid-answer ends no body: settle now rather than at the timeout.
          res.on('close', () => settle(failed('ERR_PDP_UNAVAILABLE', 'the PDP closed the connection before the answer was complete')));
        });
      } catch (err) {
        settle(failed('ERR_PDP_UNAVAILABLE', `the PDP request cannot be made: ${(err as Error).message}`));
        return;
      }
      req.on('error', (err) => settle(failed('ERR_PDP_UNAVAILABLE', `the PDP cannot be reached: ${err.message}`)));
      req.end(body);
    });

  const engine: ExternalPdpEngine = {
    name: 'authzen',
    load(schema, files) {
      // The schema (and any local files) are validated as by every engine: requests are projected
      // onto the schema before they are sent. Decisions come from the PDP alone.
      const local = wasmEngine.load(schema, files);
      if (!local.ok) return local;
      const set: ExternalPolicySet = {
        engine: 'authzen',
        version: local.set.version,
        policies: local.set.policies,
        shapes: local.set.shapes,
        // No `approval` analysis: the PDP's policies are not ours to read, so a deny from it is
        // never turned into approval_required (src/policy/decisions.ts; docs/policies.md).
        authorize: () =>
          failed('ERR_PDP_UNAVAILABLE', 'the external PDP answers asynchronously; this caller asked synchronously (use authorizeAsync)'),
        authorizeAsync: ask,
      };
      return { ok: true, set, notices: [`decisions come from the AuthZEN PDP at ${url.origin}${url.pathname}`] };
    },
    toAuthzen,
    ask,
    close: () => agent.destroy(),
  };
  return engine;
}

/**
 * The engine `policy.externalPdp` describes. The token comes from MANDATE_PDP_TOKEN or the token file
 * (never the configuration file itself); TLS files are read once, here.
 */
export function authzenEngineFromConfig(config: Pick<Config, 'policy' | 'secrets'>, now?: () => number): ExternalPdpEngine {
  const pdp = config.policy.externalPdp;
  if (pdp.url === undefined) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'policy.engine is authzen but policy.externalPdp.url is not set', {
      details: { path: 'policy.externalPdp.url' },
    });
  }
  const read = (path: string | undefined, key: string) => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError('ERR_CONFIG_INVALID', `policy.externalPdp.${key} cannot be read: ${(err as Error).message}`, {
        details: { path: `policy.externalPdp.${key}` },
      });
    }
  };
  const token = config.secrets.pdpToken ?? read(pdp.tokenFile, 'tokenFile')?.toString('utf8').trim();
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'the PDP bearer token must be printable ASCII without spaces', {
      details: { path: 'policy.externalPdp.tokenFile' },
    });
  }
  if ((pdp.tls?.certFile === undefined) !== (pdp.tls?.keyFile === undefined)) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'policy.externalPdp.tls needs both certFile and keyFile, or neither', {
      details: { path: 'policy.externalPdp.tls' },
    });
  }
  const ca = read(pdp.tls?.caFile, 'tls.caFile');
  const cert = read(pdp.tls?.certFile, 'tls.certFile');
  const key = read(pdp.tls?.keyFile, 'tls.keyFile');
  return authzenEngine({
    url: pdp.url,
    timeoutMs: pdp.timeoutMs,
    cacheTtlMs: pdp.cacheTtlMs,
    cacheMaxEntries: pdp.cacheMaxEntries,
    namespace: pdp.namespace,
    types: pdp.types,
    ...(token === undefined || token === '' ? {} : { token }),
    ...(ca || cert || key ? { tls: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } } : {}),
    ...(now ? { now } : {}),
  });
}

/** The PDP's body: a JSON object whose `decision` is exactly `true` or `false`. Anything else denies. */
function interpret(text: string): ExternalAnswer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return failed('ERR_PDP_BAD_RESPONSE', 'the PDP answer is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return failed('ERR_PDP_BAD_RESPONSE', 'the PDP answer is not a JSON object');
  }
  const decision = (parsed as { decision?: unknown }).decision;
  // Type confusion ("true", 1, {}) is refused, never coerced.
  if (typeof decision !== 'boolean')
    return failed('ERR_PDP_BAD_RESPONSE', `the PDP answer's decision is ${describe(decision)}, not a boolean`);
  return { decision: decision ? 'allow' : 'deny', policies: [], erroring: [], errors: [] };
}

function failed(code: ErrorCode, message: string): ExternalAnswer {
  return { decision: 'deny', policies: [], erroring: [], errors: [`${code}: ${message}`], code };
}

function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `the string ${JSON.stringify(v.slice(0, 32))}` : `a ${typeof v}`;
}

function uidOf(uid: EntityUidJson): { type: string; id: string } {
  return '__entity' in uid ? uid.__entity : uid;
}
