// What a transport to an upstream MCP server offers the client: one JSON-RPC exchange per request
// id (with a wall-clock deadline and caller cancellation), fire-and-forget notifications, close.
// Era-specific encoding lives in era.ts and client.ts; a channel only moves messages.
import { bounded, UpstreamCallError } from './errors.js';

export interface RequestOptions {
  /** Wall-clock bound on the exchange; progress notifications do not extend it. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** W3C trace context (`traceparent`, `tracestate`) sent as HTTP headers with this request (HTTP transport only). */
  readonly traceContext?: Readonly<Record<string, string>>;
}

export interface Channel {
  /**
   * Sends one serialized request and resolves with its response's `result` (unchecked), or
   * throws UpstreamCallError. `name` is the tools/call, prompts/get or resources/read target (HTTP
   * mirrors it into `Mcp-Name`).
   */
  exchange(id: number, method: string, name: string | undefined, body: string, opts: RequestOptions): Promise<unknown>;
  notify(body: string): Promise<void>;
  close(): Promise<void>;
  /** Called once when the transport dies or is closed. */
  onclose: (() => void) | undefined;
}

/** Default bound on one message from an upstream (a response line or event). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Reasons an exchange is abandoned; also the AbortSignal reasons of HTTP exchanges. */
export const TIMED_OUT = Symbol('timed out');
export const CALLER_ABORTED = Symbol('caller aborted');

export function timeoutError(timeoutMs: number): UpstreamCallError {
  return new UpstreamCallError('timeout', `no answer within ${timeoutMs} ms; the request was cancelled`);
}
export function abortedError(): UpstreamCallError {
  return new UpstreamCallError('unavailable', 'the request was cancelled by the caller before the upstream answered');
}

/** The upstream's JSON-RPC error object as an UpstreamCallError (kind 'rpc'). */
export function rpcErrorOf(error: unknown, httpStatus?: number): UpstreamCallError {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown; data?: unknown };
  const code = typeof e.code === 'number' && Number.isInteger(e.code) ? e.code : undefined;
  const err = new UpstreamCallError('rpc', `${code ?? 'error'}: ${typeof e.message === 'string' ? e.message : 'no message'}`, {
    ...(code === undefined ? {} : { rpcCode: code }),
  });
  err.errorData = e.data;
  if (httpStatus !== undefined) err.httpStatus = httpStatus;
  return err;
}

/** A response message (has an id and a result or an error); undefined for anything else. */
export function asResponse(msg: unknown): { id: unknown; result?: unknown; error?: unknown } | undefined {
  if (typeof msg !== 'object' || msg === null) return undefined;
  const m = msg as { id?: unknown; result?: unknown; error?: unknown; method?: unknown };
  if (m.method !== undefined || m.id === undefined) return undefined;
  if (!('result' in m) && !('error' in m)) return undefined;
  return m as { id: unknown; result?: unknown; error?: unknown };
}

/** A request the server sent us (legacy servers may: ping, sampling, roots...). */
export function asServerRequest(msg: unknown): { id: string | number; method: string } | undefined {
  const m = msg as { id?: unknown; method?: unknown } | null;
  if (typeof m !== 'object' || m === null || typeof m.method !== 'string') return undefined;
  if (typeof m.id !== 'string' && typeof m.id !== 'number') return undefined;
  return { id: m.id, method: m.method };
}

/** Our answer to a server request: `ping` is answered, everything else is not offered by the gateway. */
export function answerServerRequest(req: { id: string | number; method: string }): string {
  const id = JSON.stringify(req.id);
  return req.method === 'ping'
    ? `{"jsonrpc":"2.0","id":${id},"result":{}}`
    : `{"jsonrpc":"2.0","id":${id},"error":{"code":-32601,"message":${JSON.stringify(bounded(`the gateway does not offer ${req.method}`))}}}`;
}
