// The gateway's client to an HTTP API upstream: a tools/call becomes the operation's HTTP request
// (arguments checked against the tool's schema first), with the upstream's credential added as
// headers, and the HTTP response becomes an MCP tool result. The server URL, method and path
// template come from registration; an argument only ever fills a value into a declared slot.
import type { ValidateFunction } from 'ajv/dist/2020.js';
import type { UpstreamCredential } from '../../secrets/upstream-credentials.js';
import type { RequestOptions, UpstreamClient } from '../mcp-client/index.js';
import { UpstreamCallError } from '../mcp-client/index.js';
import { type HttpApi, type HttpOperation, isForbiddenHeader } from './compile.js';
import { validatorFor } from './validator.js';

export interface HttpApiClientOptions {
  readonly api: HttpApi;
  /** Headers added to every request (the credential, or a lease from the injection seam). */
  readonly credential: UpstreamCredential | undefined;
  /** Largest response body read; a larger one fails the call. */
  readonly maxResponseBytes: number;
}

/** Shown to the agent (and audited) when the API answered with an error: bounded. */
const MAX_ERROR_BODY = 2048;

export class HttpApiClient implements UpstreamClient {
  /** No MCP session: each call is one stateless HTTP request, as in the modern MCP era. */
  readonly era = 'modern' as const;
  readonly protocolVersion = 'openapi';
  readonly #o: HttpApiClientOptions;
  readonly #validators = new Map<string, ValidateFunction>();
  onclose: (() => void) | undefined;

  constructor(options: HttpApiClientOptions) {
    this.#o = options;
  }

  /** tools/call only: anything else an MCP server would answer has no HTTP API equivalent. */
  async request(method: string, params: Record<string, unknown>, opts: RequestOptions): Promise<Record<string, unknown>> {
    if (method !== 'tools/call') throw new UpstreamCallError('rpc', `an HTTP API upstream does not answer ${method.slice(0, 64)}`);
    const name = typeof params.name === 'string' ? params.name : '';
    const op = Object.hasOwn(this.#o.api.operations, name) ? this.#o.api.operations[name] : undefined;
    if (op === undefined) throw new UpstreamCallError('rpc', `the HTTP API has no operation ${name.slice(0, 128)}`);
    const args = params.arguments ?? {};
    if (typeof args !== 'object' || args === null || Array.isArray(args))
      throw new UpstreamCallError('rpc', 'the arguments are not an object');
    this.#check(name, op, args as Record<string, unknown>);
    const request = buildRequest(this.#o.api.serverUrl, op, args as Record<string, unknown>, this.#o.credential);
    return this.#send(request, opts);
  }

  async close(): Promise<void> {
    const cb = this.onclose;
    this.onclose = undefined;
    cb?.();
  }

  #check(name: string, op: HttpOperation, args: Record<string, unknown>): void {
    let validate = this.#validators.get(name);
    if (validate === undefined) {
      try {
        validate = validatorFor(op.inputSchema);
      } catch (err) {
        throw new UpstreamCallError('rpc', `the schema of ${name} cannot be compiled: ${(err as Error).message}`);
      }
      this.#validators.set(name, validate);
    }
    if (!validate(args)) {
      const first = validate.errors?.[0];
      const at =
        first?.instancePath === '' || first === undefined ? 'arguments' : `argument ${first.instancePath.slice(1).replace(/\//g, '.')}`;
      const extra = first?.params.additionalProperty;
      const why =
        typeof extra === 'string'
          ? `${at}: "${extra.slice(0, 64)}" is not an argument of this tool`
          : `${at} ${first?.message ?? 'is invalid'}`;
      throw new UpstreamCallError('rpc', `the arguments do not match the schema of ${name}: ${why}; nothing was sent`);
    }
  }

  async #send(req: BuiltRequest, opts: RequestOptions): Promise<Record<string, unknown>> {
    const timeout = AbortSignal.timeout(opts.timeoutMs);
    const signal = opts.signal === undefined ? timeout : AbortSignal.any([timeout, opts.signal]);
    let res: Response;
    let body: Buffer;
    try {
      // Redirects are answered to the agent, never followed: a Location could name any origin.
      res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body, redirect: 'manual', signal });
      body = await readCapped(res, this.#o.maxResponseBytes);
    } catch (err) {
      if (err instanceof UpstreamCallError) throw err;
      if (timeout.aborted) throw new UpstreamCallError('timeout', `no answer within ${opts.timeoutMs} ms; the request was cancelled`);
      if (opts.signal?.aborted === true)
        throw new UpstreamCallError('unavailable', 'the request was cancelled by the caller before the API answered');
      throw new UpstreamCallError('unavailable', 'the HTTP API cannot be reached', { cause: err });
    }
    return toResult(res, body);
  }
}

interface BuiltRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Headers;
  readonly body: string | undefined;
}

const refuse = (message: string): UpstreamCallError => new UpstreamCallError('rpc', `${message}; nothing was sent`);

/** A scalar argument as the text that goes on the wire. */
/** A deepObject property name: plain, so `name[prop]` reads back as exactly one property. */
const DEEP_OBJECT_KEY = /^[A-Za-z0-9_.-]{1,128}$/;

function scalar(name: string, v: unknown): string {
  if (typeof v === 'string') {
    // A lone surrogate cannot be encoded: URL encoding would throw or silently send U+FFFD, a
    // value other than the one the decision saw.
    if (/[\uD800-\uDFFF]/u.test(v)) throw refuse(`argument ${name.slice(0, 64)} is not well-formed Unicode`);
    return v;
  }
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return String(v);
  throw refuse(`argument ${name.slice(0, 64)} must be a string, number or boolean here`);
}

/**
 * The operation's request from validated arguments. Path values are percent-encoded one segment
 * each (`../admin` stays a single segment named `..%2Fadmin`); `.`, `..` and empty values, which a
 * URL parser would fold into another path, are refused; the finished URL must still be under the
 * server URL, at exactly the path that was built.
 */
export function buildRequest(
  serverUrl: string,
  op: HttpOperation,
  args: Record<string, unknown>,
  credential: UpstreamCredential | undefined,
): BuiltRequest {
  const base = new URL(serverUrl);
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = scalar(name, args[name]);
    if (value === '' || value === '.' || value === '..') throw refuse(`path argument ${name.slice(0, 64)} cannot be "${value}"`);
    return encodeURIComponent(value);
  });
  const basePath = base.pathname.replace(/\/+$/, '');
  const url = new URL(`${base.origin}${basePath}${path}`);
  if (url.origin !== base.origin || url.pathname !== `${basePath}${path}`) throw refuse('the request path would leave the API base path');
  const headers = new Headers();
  for (const p of op.params) {
    const v = args[p.name];
    if (v === undefined || v === null || p.in === 'path') continue;
    if (p.in === 'query') {
      if (p.style === 'deepObject') {
        // `name[prop]=value` per property; one level (nested objects are refused by scalar).
        if (typeof v !== 'object' || Array.isArray(v)) throw refuse(`argument ${p.name.slice(0, 64)} must be an object here`);
        for (const [k, x] of Object.entries(v)) {
          if (!DEEP_OBJECT_KEY.test(k)) throw refuse(`argument ${p.name.slice(0, 64)} has a property name a query cannot carry`);
          url.searchParams.append(`${p.name}[${k}]`, scalar(`${p.name}.${k}`, x));
        }
      } else if (Array.isArray(v)) {
        const items = v.map((x) => scalar(p.name, x));
        if (p.style === 'spaceDelimited') url.searchParams.append(p.name, items.join(' '));
        else if (p.style === 'pipeDelimited') url.searchParams.append(p.name, items.join('|'));
        else if (p.explode) for (const x of items) url.searchParams.append(p.name, x);
        else url.searchParams.append(p.name, items.join(','));
      } else {
        url.searchParams.append(p.name, scalar(p.name, v));
      }
      continue;
    }
    // Header: declared at registration (never a hop-by-hop, Host or credential header), one line.
    const value = Array.isArray(v) ? v.map((x) => scalar(p.name, x)).join(',') : scalar(p.name, v);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    if (isForbiddenHeader(p.name) || /[\u0000-\u001f\u007f]|[^\u0000-\u00ff]/.test(value)) {
      throw refuse(`header argument ${p.name.slice(0, 64)} has characters a header cannot carry`);
    }
    headers.set(p.name, value);
  }
  let body: string | undefined;
  if (op.body !== undefined && args.body !== undefined) {
    body = JSON.stringify(args.body);
    headers.set('content-type', op.body.contentType);
  }
  headers.set('accept', 'application/json, */*;q=0.5');
  // The credential last: no argument can replace or precede it.
  for (const [k, v] of Object.entries(credential?.headers ?? {})) headers.set(k, v);
  return { url: url.href, method: op.method, headers, body };
}

async function readCapped(res: Response, max: number): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (declared > max) {
    await res.body?.cancel().catch(() => {});
    throw new UpstreamCallError('rpc', `the API answered ${declared} bytes, over the ${max}-byte limit; the response was not read`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body?.getReader();
  if (reader === undefined) return Buffer.alloc(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw new UpstreamCallError('rpc', `the API answered more than ${max} bytes; the response was cut off and withheld`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

const JSON_TYPE = /^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i;
const TEXT_TYPE = /^(text\/|application\/(xml|[a-z0-9.+-]+\+xml|x-www-form-urlencoded)\s*(;|$))/i;

/** The HTTP response as a tool result: JSON as text plus structuredContent, non-2xx as isError. */
function toResult(res: Response, body: Buffer): Record<string, unknown> {
  const type = res.headers.get('content-type') ?? '';
  const ok = res.status >= 200 && res.status < 300;
  let parsed: unknown;
  let text: string;
  if (body.length === 0) {
    // 204, HEAD, or an empty error: nothing to parse, whatever the declared type.
    text = '';
  } else if (JSON_TYPE.test(type)) {
    try {
      parsed = JSON.parse(body.toString('utf8'));
      text = JSON.stringify(parsed);
    } catch {
      // An error page mislabelled as JSON is still the API's error; a success must be what it says.
      if (!ok) text = body.toString('utf8');
      else throw new UpstreamCallError('rpc', `the API answered HTTP ${res.status} as ${type.slice(0, 64)} with a body that is not JSON`);
    }
  } else if (TEXT_TYPE.test(type)) {
    text = body.toString('utf8');
  } else {
    text = `(${body.length} bytes of ${type.slice(0, 64) || 'an undeclared type'}, not shown)`;
  }
  if (!ok) {
    const shown = text.length > MAX_ERROR_BODY ? `${text.slice(0, MAX_ERROR_BODY)}…` : text;
    return {
      isError: true,
      content: [
        { type: 'text', text: `HTTP ${res.status}${res.statusText === '' ? '' : ` ${res.statusText}`}${shown === '' ? '' : `: ${shown}`}` },
      ],
      structuredContent: { status: res.status, ...(parsed === undefined ? {} : { body: parsed }) },
    };
  }
  const structured = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? { structuredContent: parsed } : {};
  return { content: [{ type: 'text', text }], ...structured };
}
