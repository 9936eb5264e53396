// MCP over Streamable HTTP with the global fetch (undici keeps connections alive): one POST per
// message, the answer either `application/json` or a `text/event-stream` whose event with our id
// is the response. Redirects are refused (a credential must not follow one). Modern exchanges
// carry the 2026-07-28 headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`); legacy ones
// the session id, and a 404 for the session renews it once.

import {
  abortedError,
  answerServerRequest,
  asResponse,
  asServerRequest,
  CALLER_ABORTED,
  type Channel,
  type RequestOptions,
  rpcErrorOf,
  TIMED_OUT,
  timeoutError,
} from './channel.js';
import { type Era, encodeNotification, MODERN_VERSION } from './era.js';
import { bounded, UpstreamCallError } from './errors.js';
import { sseEvents } from './sse.js';

/** Headers we set ourselves; a credential header of the same name is dropped, not merged. */
const RESERVED = new Set([
  'accept',
  'content-type',
  'content-length',
  'host',
  'connection',
  'transfer-encoding',
  'mcp-session-id',
  'last-event-id',
]);

/** Bound on an error body we read to find a JSON-RPC error in it. */
const MAX_ERROR_BODY = 64 * 1024;

export class HttpChannel implements Channel {
  onclose: (() => void) | undefined;
  era: Era = 'modern';
  /** `MCP-Protocol-Version` header value; unset during the legacy handshake. */
  protocolVersion: string | undefined = MODERN_VERSION;
  /** Legacy session (from the `initialize` response), if the server keeps one. */
  sessionId: string | undefined;
  /** Opens a new legacy session after the server forgot `stale` (set by the client). */
  renewSession: ((stale: string) => Promise<void>) | undefined;
  readonly #url: string;
  readonly #base: Record<string, string>;
  readonly #max: number;
  #closed = false;

  constructor(url: string, credentialHeaders: Record<string, string> | undefined, maxMessageBytes: number) {
    this.#url = url;
    this.#max = maxMessageBytes;
    const base: Record<string, string> = {};
    for (const [k, v] of Object.entries(credentialHeaders ?? {})) {
      const name = k.toLowerCase();
      if (!RESERVED.has(name) && !name.startsWith('mcp-')) base[name] = v;
    }
    base['content-type'] = 'application/json';
    base.accept = 'application/json, text/event-stream';
    this.#base = base;
  }

  #headers(method: string | undefined, name: string | undefined): Record<string, string> {
    const h: Record<string, string> = { ...this.#base };
    if (this.protocolVersion !== undefined) h['mcp-protocol-version'] = this.protocolVersion;
    if (this.era === 'modern') {
      if (method !== undefined) h['mcp-method'] = method;
      if (name !== undefined) h['mcp-name'] = headerValue(name);
    } else if (this.sessionId !== undefined) {
      h['mcp-session-id'] = this.sessionId;
    }
    return h;
  }

  async exchange(id: number, method: string, name: string | undefined, body: string, opts: RequestOptions): Promise<unknown> {
    if (this.#closed) throw new UpstreamCallError('unavailable', 'the upstream connection was closed');
    const signal = opts.signal;
    if (signal?.aborted) throw abortedError();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(TIMED_OUT), opts.timeoutMs);
    const onAbort = (): void => ac.abort(CALLER_ABORTED);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (let attempt = 0; ; attempt++) {
        const session = this.sessionId;
        const res = await fetch(this.#url, {
          method: 'POST',
          headers: this.#headers(method, name),
          body,
          signal: ac.signal,
          redirect: 'error',
        });
        if (method === 'initialize' && this.era === 'legacy') {
          const sid = res.headers.get('mcp-session-id');
          if (sid !== null) this.sessionId = sid;
        }
        // 2025-11-25: a 404 for a request carrying a session id means the session is gone and the
        // request was not processed, so a new session may carry it once. Anything else is never retried.
        if (res.status === 404 && this.era === 'legacy' && session !== undefined && this.renewSession !== undefined) {
          const err = await errorBody(res);
          if (err?.id !== null && err?.id !== undefined) throw rpcErrorOf(err.error, 404);
          if (attempt > 0) {
            // The new session was forgotten too: this client is of no further use.
            void this.close();
            throw new UpstreamCallError('unavailable', 'the upstream lost the session again right after it was renewed');
          }
          await this.renewSession(session);
          continue;
        }
        return await this.#read(res, id);
      }
    } catch (err) {
      if (ac.signal.aborted) {
        const why = ac.signal.reason;
        if (why === TIMED_OUT || why === CALLER_ABORTED) {
          // Modern: closing the request's stream is the cancellation. Legacy: also say so.
          if (this.era === 'legacy' && method !== 'initialize')
            this.#cancelled(id, why === TIMED_OUT ? `no answer within ${opts.timeoutMs} ms` : 'cancelled by the caller');
          throw why === TIMED_OUT ? timeoutError(opts.timeoutMs) : abortedError();
        }
      }
      if (err instanceof UpstreamCallError) throw err;
      throw new UpstreamCallError('unavailable', describeFetchFailure(err), { cause: err });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async #read(res: Response, id: number): Promise<unknown> {
    const type = res.headers.get('content-type') ?? '';
    if (!res.ok) {
      const err = await errorBody(res);
      if (err?.error !== undefined) throw rpcErrorOf(err.error, res.status);
      const e = new UpstreamCallError('unavailable', `the upstream answered HTTP ${res.status}`);
      e.httpStatus = res.status;
      throw e;
    }
    if (type.startsWith('text/event-stream') && res.body !== null) {
      for await (const data of sseEvents(res.body, this.#max)) {
        let msg: unknown;
        try {
          msg = JSON.parse(data);
        } catch {
          continue;
        }
        const r = asResponse(msg);
        if (r !== undefined) {
          if (r.id !== id) continue;
          if ('error' in r) throw rpcErrorOf(r.error, res.status);
          return r.result;
        }
        // A legacy server may ask us something on the request's stream; the answer is a POST.
        const req = asServerRequest(msg);
        if (req !== undefined) void this.#post(answerServerRequest(req));
      }
      throw new UpstreamCallError('unavailable', 'the upstream closed the event stream without answering');
    }
    if (type.startsWith('application/json')) {
      const text = await boundedText(res, this.#max);
      let msg: unknown;
      try {
        msg = JSON.parse(text);
      } catch {
        throw new UpstreamCallError('rpc', 'the upstream answered with a body that is not JSON');
      }
      const r = asResponse(msg);
      if (r === undefined || r.id !== id)
        throw new UpstreamCallError('rpc', 'the upstream answered with something that is not the response to the request');
      if ('error' in r) throw rpcErrorOf(r.error, res.status);
      return r.result;
    }
    await res.body?.cancel().catch(() => {});
    throw new UpstreamCallError(
      'rpc',
      `the upstream answered HTTP ${res.status} with content type ${bounded(type.slice(0, 80)) || 'none'}`,
    );
  }

  async notify(body: string): Promise<void> {
    await this.#post(body);
  }

  /** Fire-and-forget POST (notifications, answers to server requests), bounded in time. */
  async #post(body: string, method?: string): Promise<void> {
    if (this.#closed) return;
    try {
      const res = await fetch(this.#url, {
        method: 'POST',
        headers: this.#headers(method, undefined),
        body,
        signal: AbortSignal.timeout(5000),
        redirect: 'error',
      });
      await res.body?.cancel().catch(() => {});
    } catch {
      // Best effort: the server learns nothing it needs from these.
    }
  }

  #cancelled(id: number, reason: string): void {
    void this.#post(encodeNotification('notifications/cancelled', { requestId: id, reason }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Whoever pools this client learns at once; the DELETE below is only a courtesy.
    const cb = this.onclose;
    this.onclose = undefined;
    cb?.();
    const session = this.era === 'legacy' ? this.sessionId : undefined;
    if (session !== undefined) {
      // 2025-11-25: a client SHOULD end its session with DELETE; 405 means the server does not allow it.
      await fetch(this.#url, {
        method: 'DELETE',
        headers: this.#headers(undefined, undefined),
        signal: AbortSignal.timeout(2000),
        redirect: 'error',
      })
        .then((r) => r.body?.cancel())
        .catch(() => {});
    }
  }
}

/** A header value as the 2026-07-28 binding wants it: plain safe ASCII, else the Base64 sentinel form. */
export function headerValue(v: string): string {
  const plain = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(v) && !(v.startsWith('=?base64?') && v.endsWith('?='));
  return plain ? v : `=?base64?${Buffer.from(v, 'utf8').toString('base64')}?=`;
}

/** A JSON-RPC error message in an error response's body, if there is one. */
async function errorBody(res: Response): Promise<{ id?: unknown; error?: unknown } | undefined> {
  try {
    const msg = JSON.parse(await boundedText(res, MAX_ERROR_BODY)) as unknown;
    if (typeof msg === 'object' && msg !== null && 'error' in msg) return msg as { id?: unknown; error?: unknown };
  } catch {
    // not JSON, too long, or the stream failed: no JSON-RPC error
  }
  return undefined;
}

/** The body as text, refusing (kind 'rpc') one over `max` bytes without reading it all. */
async function boundedText(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (declared <= max) return res.text();
  if (res.body === null) return '';
  const tooLarge = (): UpstreamCallError => new UpstreamCallError('rpc', `the upstream answered with more than the ${max}-byte limit`);
  if (declared > max) {
    await res.body.cancel().catch(() => {});
    throw tooLarge();
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    bytes += value.byteLength;
    if (bytes > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    text += decoder.decode(value, { stream: true });
  }
}

/** Why fetch failed, without the URL's query or anything else that may hold a secret. */
function describeFetchFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  const message = String((err as { message?: unknown }).message ?? '');
  if (/redirect/i.test(message) || /redirect/i.test(String(cause?.message ?? '')))
    return 'the upstream answered with a redirect; redirects are refused';
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  return `the upstream could not be reached${code === undefined ? '' : ` (${code})`}`;
}
