// The JSON-RPC envelope of a /mcp POST: the body is parsed here (after the caller is
// authenticated), and anything that is not a well-formed JSON-RPC message is refused with a
// registry code and a short reason before any method is dispatched (src/gateway/endpoint.ts).
import { MandateError } from '../errors/index.js';
import type { ErrorCode } from '../errors/registry.js';
import { isWellFormed } from '../lib/unicode.js';
import { isObject } from './protocol.js';

/** Deepest nesting of objects and arrays a message may have (the envelope itself takes three). */
export const MAX_MESSAGE_DEPTH = 64;
/** Most messages in one JSON-RPC batch (the SDK's own limit). */
export const MAX_BATCH_MESSAGES = 100;
/** Longest `method` name accepted (MCP method names are short). */
const MAX_METHOD_LENGTH = 128;

export type JsonRpcId = string | number;

/** A refusal of the envelope, carrying the id of the request it answers when that is known. */
export class EnvelopeError extends MandateError {
  readonly rpcId: JsonRpcId | null;

  constructor(code: ErrorCode, message: string, rpcId: JsonRpcId | null = null, details?: Record<string, unknown>) {
    super(code, message, details === undefined ? {} : { details });
    this.rpcId = rpcId;
  }
}

export interface Envelope {
  /** The body was a JSON-RPC batch (legacy revisions only). */
  readonly batch: boolean;
  readonly messages: readonly Record<string, unknown>[];
}

/**
 * Parses and checks a /mcp POST body: JSON (-32700), an object or a non-empty batch of objects,
 * `jsonrpc: "2.0"`, a string `method` or a response shape, a string or integer `id`, object
 * `params` (-32600), bounded nesting, finite numbers, and for `tools/call` a string `name` and
 * object `arguments` (-32602). Non-finite numbers inside `tools/call` arguments are left for the
 * gateway, which refuses and audits them as a call refusal.
 */
export function parseEnvelope(raw: string): Envelope {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw new EnvelopeError('RPC_PARSE_ERROR', 'the body is not valid JSON');
  }
  const batch = Array.isArray(body);
  const items: unknown[] = batch ? (body as unknown[]) : [body];
  if (batch && items.length === 0) throw new EnvelopeError('RPC_INVALID_REQUEST', 'an empty batch is not a valid request');
  if (items.length > MAX_BATCH_MESSAGES) {
    throw new EnvelopeError('RPC_INVALID_REQUEST', `a batch may hold at most ${MAX_BATCH_MESSAGES} messages`);
  }
  const messages: Record<string, unknown>[] = [];
  for (const [i, item] of items.entries()) {
    try {
      messages.push(checkMessage(item, batch ? 1 : 0));
    } catch (err) {
      // One answer for a batch with a bad member, naming which one.
      if (batch && err instanceof EnvelopeError) throw new EnvelopeError(err.code, `batch message ${i}: ${err.message}`, null);
      throw err;
    }
  }
  // A request cancelled in its own batch would never be answered, so the HTTP answer would wait forever.
  if (batch) {
    const ids = new Set(messages.filter((m) => typeof m.method === 'string' && m.id !== undefined).map((m) => m.id));
    const cancelsOwn = messages.some(
      (m) => m.method === 'notifications/cancelled' && ids.has((m.params as Record<string, unknown> | undefined)?.requestId),
    );
    if (cancelsOwn) throw new EnvelopeError('RPC_INVALID_REQUEST', 'a batch may not cancel a request it carries');
  }
  return { batch, messages };
}

function checkMessage(item: unknown, baseDepth: number): Record<string, unknown> {
  if (!isObject(item)) throw new EnvelopeError('RPC_INVALID_REQUEST', 'a JSON-RPC message must be an object');
  const id = validId(item.id);
  if (item.jsonrpc !== '2.0') throw new EnvelopeError('RPC_INVALID_REQUEST', 'jsonrpc must be "2.0"', id);
  if (Object.hasOwn(item, 'id') && id === null) throw new EnvelopeError('RPC_INVALID_REQUEST', 'id must be a string or an integer');
  if (!Object.hasOwn(item, 'method')) {
    // A response to a server request (sampling, elicitation): exactly one of result and error.
    if (id === null || Object.hasOwn(item, 'result') === Object.hasOwn(item, 'error')) {
      throw new EnvelopeError('RPC_INVALID_REQUEST', 'method is missing', id);
    }
  } else {
    const { method } = item;
    if (typeof method !== 'string' || method.length === 0 || method.length > MAX_METHOD_LENGTH) {
      throw new EnvelopeError('RPC_INVALID_REQUEST', 'method must be a non-empty string', id);
    }
    if (Object.hasOwn(item, 'params') && !isObject(item.params)) {
      throw new EnvelopeError('RPC_INVALID_PARAMS', 'params must be an object', id);
    }
  }
  const found = scan(item, baseDepth);
  if (found.illFormed !== undefined) throw new EnvelopeError('RPC_INVALID_REQUEST', `${found.illFormed} is not well-formed Unicode`, id);
  if (found.tooDeep) {
    throw new EnvelopeError('RPC_REQUEST_TOO_DEEP', `the message is nested deeper than ${MAX_MESSAGE_DEPTH} levels`, id);
  }
  if (item.method === 'tools/call') checkToolCall(item.params as Record<string, unknown> | undefined, id);
  // Non-finite numbers in tool arguments reach the gateway, which audits the refusal; elsewhere
  // there is no call to audit.
  const elsewhere = found.nonFinite.find((path) => !(item.method === 'tools/call' && path.startsWith('params.arguments')));
  if (elsewhere !== undefined) throw new EnvelopeError('RPC_NON_FINITE_NUMBER', `${elsewhere} is not a finite number`, id);
  return item;
}

function checkToolCall(params: Record<string, unknown> | undefined, id: JsonRpcId | null): void {
  if (params === undefined) throw new EnvelopeError('RPC_INVALID_PARAMS', 'tools/call needs params with a tool name', id);
  if (typeof params.name !== 'string' || params.name.length === 0) {
    throw new EnvelopeError('RPC_INVALID_PARAMS', 'params.name must be a non-empty string', id);
  }
  if (params.arguments !== undefined && !isObject(params.arguments)) {
    throw new EnvelopeError('RPC_INVALID_PARAMS', 'params.arguments must be an object', id);
  }
  if (params._meta !== undefined && !isObject(params._meta)) {
    throw new EnvelopeError('RPC_INVALID_PARAMS', 'params._meta must be an object', id);
  }
}

/** The id when it is one JSON-RPC allows here (string or integer; MCP forbids null), else null. */
function validId(id: unknown): JsonRpcId | null {
  if (typeof id === 'string') return id;
  if (typeof id === 'number' && Number.isSafeInteger(id)) return id;
  return null;
}

/** Depth and non-finite numbers of a parsed value, iteratively (no recursion on hostile input). */
/** One walk over a message: depth, non-finite numbers, and lone surrogates in strings and keys. */
function scan(root: unknown, baseDepth: number): { tooDeep: boolean; nonFinite: string[]; illFormed?: string } {
  const nonFinite: string[] = [];
  const stack: [unknown, number, string][] = [[root, baseDepth + 1, '']];
  while (stack.length > 0) {
    const [value, depth, path] = stack.pop() as [unknown, number, string];
    if (typeof value === 'number') {
      if (!Number.isFinite(value) && nonFinite.length < 16) nonFinite.push(path);
      continue;
    }
    if (typeof value === 'string') {
      if (!isWellFormed(value)) return { tooDeep: false, nonFinite, illFormed: path || '(value)' };
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_MESSAGE_DEPTH) return { tooDeep: true, nonFinite };
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
    for (const [k, v] of entries) {
      const at = path === '' ? k.slice(0, 64) : `${path}.${k.slice(0, 64)}`;
      if (!isWellFormed(k)) return { tooDeep: false, nonFinite, illFormed: at };
      stack.push([v, depth + 1, at]);
    }
  }
  return { tooDeep: false, nonFinite };
}
