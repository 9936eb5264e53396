// The agent-facing MCP endpoint over Streamable HTTP, both eras on one path, raw JSON-RPC:
//   - 2026-07-28 (modern, stateless): one message per POST; version, capabilities and client
//     identity in `_meta` on every request, mirrored in headers that must match the body;
//     `server/discover`; `resultType` on every result; the Tasks extension.
//   - 2025-11-25 and earlier (legacy): `initialize` opens a session (`Mcp-Session-Id`), bound to
//     the mandate, not the token (src/gateway/legacy-sessions.ts).
// No per-request SDK object: the body is parsed once (envelope.ts), the caller is already
// verified by the route, and each method is dispatched to the gateway. Every refusal leaves
// through the registry and the one serializer (toJsonRpcError).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MandateError } from '../errors/index.js';
import { toJsonRpcError } from '../errors/serialize.js';
import type { VerifiedCaller } from '../oauth/caller.js';
import { SPANS, SpanKind, type Tracing } from '../observability/tracing.js';
import { EnvelopeError, type JsonRpcId, parseEnvelope } from './envelope.js';
import type { Gateway } from './gateway.js';
import type { LegacySession, LegacySessions } from './legacy-sessions.js';
import {
  checkModernRequest,
  checkParamHeaders,
  INSTRUCTIONS,
  isObject,
  LEGACY_REVISIONS,
  META,
  type MirroredParam,
  MODERN_REVISION,
  mirroredParams,
  SERVER_INFO,
  SUPPORTED_REVISIONS,
  TASKS_EXTENSION,
} from './protocol.js';

export interface McpEndpointOptions {
  readonly gateway: Gateway;
  readonly sessions: LegacySessions;
  /** Freshness hint (ms) on tools/list and server/discover results (CacheableResult). */
  readonly listTtlMs: number;
  /** When tracing is on, each tools/call is a server span, the child of the agent's trace context. */
  readonly tracing?: Tracing;
}

/** Per HTTP request: its id (for `data.request_id` and the log) and where internal failures are logged. */
export interface McpRequestContext {
  readonly requestId: string;
  readonly onInternalError: (err: unknown) => void;
  /** Every refusal the client sees (its registry code and reason), so each one can be logged. */
  readonly onRefusal?: (err: MandateError) => void;
}

type Header = (name: string) => string | undefined;

/** How one request is being served. */
interface Served {
  readonly modern: boolean;
  readonly caller: VerifiedCaller;
  readonly header: Header;
  readonly tasks: boolean;
  readonly signal: AbortSignal;
  readonly session?: LegacySession;
}

type Answer =
  | { readonly id: JsonRpcId; readonly result: Record<string, unknown> }
  | { readonly id: JsonRpcId | null; readonly error: MandateError };

export class McpEndpoint {
  readonly #o: McpEndpointOptions;
  /** `x-mcp-header` annotations per catalog input schema, computed once per schema object. */
  readonly #mirrored = new WeakMap<object, readonly MirroredParam[]>();

  constructor(options: McpEndpointOptions) {
    this.#o = options;
  }

  /** Serves one HTTP request of the MCP endpoint for an already verified caller; `raw` is the unparsed POST body. */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    raw: string | undefined,
    caller: VerifiedCaller,
    ctx: McpRequestContext,
  ): Promise<void> {
    const header: Header = (name) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    };
    const sid = header('mcp-session-id');
    if (req.method === 'DELETE') return this.#delete(res, sid, caller, ctx);
    if (req.method !== 'POST') {
      // 2026-07-28 has no GET stream; 2025-11-25 lets a server without one answer 405.
      res.setHeader('allow', 'POST, DELETE');
      return writeRpcError(
        res,
        new MandateError('RPC_METHOD_NOT_ALLOWED', 'send MCP messages with POST; no standalone SSE stream is offered'),
        ctx,
      );
    }
    let batch: boolean;
    let messages: readonly Record<string, unknown>[];
    try {
      checkContentHeaders(header);
      ({ batch, messages } = parseEnvelope(raw ?? ''));
    } catch (err) {
      return writeRpcError(res, err, ctx);
    }
    const first = messages[0] as Record<string, unknown>;
    const ac = new AbortController();
    // Closing the HTTP request before its answer is the client's cancellation (2026-07-28 §Cancellation).
    res.once('close', () => {
      if (!res.writableFinished) ac.abort();
    });

    if (sid !== undefined) return this.#legacy(res, messages, batch, sid, caller, header, ac, ctx);
    const meta = isObject(first.params) && isObject(first.params._meta) ? first.params._meta : undefined;
    // A request that declares itself modern is served as 2026-07-28, where `initialize` does not
    // exist (404, -32601); only a legacy-looking `initialize` opens a session.
    const declaresModern = meta?.[META.protocolVersion] !== undefined || header('mcp-protocol-version') === MODERN_REVISION;
    if (!batch && first.method === 'initialize' && !declaresModern) return this.#initialize(res, first, caller, ctx);
    if (batch) {
      return writeRpcError(
        res,
        new MandateError(
          'RPC_INVALID_REQUEST',
          'a JSON-RPC batch needs an MCP session (initialize first); MCP 2026-07-28 sends one message per POST',
        ),
        ctx,
      );
    }
    if (meta?.[META.protocolVersion] === undefined && header('mcp-protocol-version') === undefined) {
      return writeRpcError(
        res,
        new EnvelopeError(
          'RPC_HEADER_MISMATCH',
          `send MCP-Protocol-Version: ${MODERN_REVISION} with the 2026-07-28 _meta on every request, or initialize a ${LEGACY_REVISIONS[0]} session first`,
          rpcIdOf(first),
        ),
        ctx,
      );
    }
    return this.#modern(res, first, caller, header, ac.signal, ctx);
  }

  /** A 2026-07-28 request: checked against its headers and `_meta`, then dispatched; no state survives it. */
  async #modern(
    res: ServerResponse,
    message: Record<string, unknown>,
    caller: VerifiedCaller,
    header: Header,
    signal: AbortSignal,
    ctx: McpRequestContext,
  ): Promise<void> {
    const id = rpcIdOf(message);
    if (message.method === undefined) {
      return writeRpcError(res, new EnvelopeError('RPC_INVALID_REQUEST', 'a client must not send JSON-RPC responses', id), ctx);
    }
    if (id === null) {
      // This revision defines no client notifications over HTTP; accepted and ignored.
      res.writeHead(202).end();
      return;
    }
    let tasks: boolean;
    try {
      ({ tasks } = checkModernRequest(message, header));
    } catch (err) {
      return writeRpcError(res, withId(err, id), ctx);
    }
    const answer = await this.#answer(message, { modern: true, caller, header, tasks, signal }, ctx);
    if (signal.aborted) return;
    if ('error' in answer) {
      // A modern server answers an unknown method with 404 (so it is not mistaken for a legacy endpoint).
      const status = answer.error.code === 'RPC_METHOD_NOT_FOUND' ? 404 : undefined;
      return writeRpcError(res, withId(answer.error, answer.id), ctx, status);
    }
    writeJson(res, 200, { jsonrpc: '2.0', id: answer.id, result: modernResult(answer.result) });
  }

  /** `initialize` of a legacy client: negotiates the revision and opens a session for the mandate. */
  #initialize(res: ServerResponse, message: Record<string, unknown>, caller: VerifiedCaller, ctx: McpRequestContext): void {
    const id = rpcIdOf(message);
    const params = isObject(message.params) ? message.params : {};
    if (id === null || typeof params.protocolVersion !== 'string' || !isObject(params.capabilities)) {
      writeRpcError(
        res,
        new EnvelopeError('RPC_INVALID_PARAMS', 'initialize needs an id, params.protocolVersion and params.capabilities', id),
        ctx,
      );
      return;
    }
    const requested = params.protocolVersion;
    const negotiated = (LEGACY_REVISIONS as readonly string[]).includes(requested) ? requested : LEGACY_REVISIONS[0];
    const session = this.#o.sessions.open(caller.mandate.id);
    res.setHeader('mcp-session-id', session.id);
    writeJson(res, 200, {
      jsonrpc: '2.0',
      id,
      result: {
        protocolVersion: negotiated,
        capabilities: { tools: { listChanged: false } },
        serverInfo: SERVER_INFO,
        instructions: INSTRUCTIONS,
      },
    });
  }

  /** Requests of a legacy session: one message or a batch; notifications, cancellations and responses accepted. */
  async #legacy(
    res: ServerResponse,
    messages: readonly Record<string, unknown>[],
    batch: boolean,
    sid: string,
    caller: VerifiedCaller,
    header: Header,
    ac: AbortController,
    ctx: McpRequestContext,
  ): Promise<void> {
    const session = this.#o.sessions.resolve(sid, caller.mandate.id);
    if (session === undefined) {
      return writeRpcError(
        res,
        new MandateError('RPC_SESSION_NOT_FOUND', 'no such MCP session for this mandate; initialize a new one'),
        ctx,
      );
    }
    const version = header('mcp-protocol-version');
    if (version !== undefined && !(LEGACY_REVISIONS as readonly string[]).includes(version)) {
      return writeRpcError(
        res,
        new MandateError('RPC_UNSUPPORTED_PROTOCOL_VERSION', `protocol version "${version.slice(0, 64)}" is not served on a session`, {
          details: { supported: [...SUPPORTED_REVISIONS], requested: version.slice(0, 64) },
        }),
        ctx,
      );
    }
    const requests: Record<string, unknown>[] = [];
    for (const m of messages) {
      if (m.method === 'initialize') {
        return writeRpcError(
          res,
          new EnvelopeError(
            'RPC_INVALID_REQUEST',
            'this session is already initialized; send initialize without Mcp-Session-Id',
            rpcIdOf(m),
          ),
          ctx,
        );
      }
      if (m.method === 'notifications/cancelled') {
        const requestId = isObject(m.params) ? m.params.requestId : undefined;
        if (typeof requestId === 'string' || typeof requestId === 'number') session.inFlight.get(requestId)?.abort();
      } else if (typeof m.method === 'string' && rpcIdOf(m) !== null) {
        requests.push(m);
      }
      // Other notifications and responses (the gateway sends no requests) need no answer.
    }
    if (requests.length === 0) {
      res.writeHead(202).end();
      return;
    }
    const answers = await Promise.all(
      requests.map(async (m) => {
        const id = rpcIdOf(m) as JsonRpcId;
        // Each request has its own controller: cancelling one of a batch leaves the others running.
        const own = new AbortController();
        const onClose = () => own.abort();
        ac.signal.addEventListener('abort', onClose, { once: true });
        session.inFlight.set(id, own);
        try {
          const answer = await this.#answer(m, { modern: false, caller, header, tasks: false, signal: own.signal, session }, ctx);
          return own.signal.aborted ? { id, error: new MandateError('RPC_REQUEST_CANCELLED') } : answer;
        } finally {
          ac.signal.removeEventListener('abort', onClose);
          if (session.inFlight.get(id) === own) session.inFlight.delete(id);
        }
      }),
    );
    if (ac.signal.aborted) return;
    const bodies = answers.map((a) =>
      'error' in a ? { jsonrpc: '2.0', id: a.id, error: this.#serialize(a.error, ctx) } : { jsonrpc: '2.0', id: a.id, result: a.result },
    );
    const single = answers[0];
    // A lone request's protocol error keeps its registry status (a batch is always 200).
    const status = !batch && single !== undefined && 'error' in single ? single.error.spec.status : 200;
    writeJson(res, status, batch ? bodies : bodies[0]);
  }

  /** DELETE ends a legacy session; the stateless revision has nothing to end. */
  #delete(res: ServerResponse, sid: string | undefined, caller: VerifiedCaller, ctx: McpRequestContext): void {
    if (sid === undefined) {
      res.setHeader('allow', 'POST');
      writeRpcError(res, new MandateError('RPC_METHOD_NOT_ALLOWED', 'MCP 2026-07-28 has no session to delete'), ctx);
      return;
    }
    const session = this.#o.sessions.resolve(sid, caller.mandate.id);
    if (session === undefined) {
      writeRpcError(res, new MandateError('RPC_SESSION_NOT_FOUND'), ctx);
      return;
    }
    this.#o.sessions.end(session);
    res.writeHead(200).end();
  }

  /** Runs one request; every failure becomes an answer (a non-Mandate error is logged and internal). */
  async #answer(message: Record<string, unknown>, served: Served, ctx: McpRequestContext): Promise<Answer> {
    const id = rpcIdOf(message) as JsonRpcId;
    try {
      return { id, result: await this.#dispatch(message.method as string, isObject(message.params) ? message.params : {}, served) };
    } catch (err) {
      if (err instanceof MandateError) return { id, error: err };
      ctx.onInternalError(err);
      return { id, error: new MandateError('ERR_INTERNAL', undefined, { cause: err }) };
    }
  }

  async #dispatch(method: string, params: Record<string, unknown>, served: Served): Promise<Record<string, unknown>> {
    const { gateway } = this.#o;
    switch (method) {
      case 'tools/call': {
        const name = params.name as string;
        const args = params.arguments as Record<string, unknown> | undefined;
        if (served.modern) {
          const entry = gateway.catalogEntry(name);
          if (entry !== undefined && args !== undefined) checkParamHeaders(this.#mirroredOf(entry.inputSchema), args, served.header);
        }
        const tracing = this.#o.tracing;
        if (tracing === undefined) return gateway.callTool(served.caller, name, args, { signal: served.signal, tasks: served.tasks });
        // The agent's trace context: `_meta` (MCP 2026-07-28 reserves `traceparent` there), else the HTTP header.
        const parent = tracing.parentOf(isObject(params._meta) ? params._meta : undefined, {
          traceparent: served.header('traceparent'),
          tracestate: served.header('tracestate'),
        });
        const attributes = {
          'mcp.method.name': 'tools/call',
          'gen_ai.tool.name': String(name).slice(0, 256),
          'mandate.mandate_id': served.caller.mandate.id,
        };
        return tracing.inSpan(SPANS.toolsCall, { kind: SpanKind.SERVER, parent, attributes }, () =>
          gateway.callTool(served.caller, name, args, { signal: served.signal, tasks: served.tasks }),
        );
      }
      case 'tools/list':
        if (params.cursor !== undefined && typeof params.cursor !== 'string')
          throw new MandateError('RPC_INVALID_PARAMS', 'params.cursor must be a string');
        return {
          tools: await gateway.listTools(served.caller),
          ...(served.modern ? { ttlMs: this.#o.listTtlMs, cacheScope: 'private' } : {}),
        };
      case 'server/discover':
        return {
          supportedVersions: [...SUPPORTED_REVISIONS],
          capabilities: { tools: {}, extensions: { [TASKS_EXTENSION]: {} } },
          instructions: INSTRUCTIONS,
          ttlMs: this.#o.listTtlMs,
          cacheScope: 'private',
        };
      case 'ping':
        // Removed in 2026-07-28; legacy clients keep it.
        if (served.modern) break;
        return {};
      case 'tasks/get':
      case 'tasks/cancel':
      case 'tasks/update': {
        if (!served.tasks) {
          throw new MandateError('RPC_MISSING_CLIENT_CAPABILITY', 'Missing required client capability', {
            details: { requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } },
          });
        }
        const taskId = params.taskId;
        if (typeof taskId !== 'string' || taskId.length === 0 || taskId.length > 200) throw new MandateError('RPC_TASK_NOT_FOUND');
        if (method === 'tasks/get') return gateway.getTask(served.caller, taskId);
        if (method === 'tasks/cancel') return gateway.cancelTask(served.caller, taskId);
        return gateway.updateTask(served.caller, taskId);
      }
    }
    throw new MandateError('RPC_METHOD_NOT_FOUND', `method not found: ${method.slice(0, 128)}`);
  }

  #mirroredOf(schema: unknown): readonly MirroredParam[] {
    if (!isObject(schema)) return [];
    let found = this.#mirrored.get(schema);
    if (found === undefined) {
      found = mirroredParams(schema);
      this.#mirrored.set(schema, found);
    }
    return found;
  }

  #serialize(err: MandateError, ctx: McpRequestContext) {
    report(err, ctx);
    return toJsonRpcError(err, ctx.requestId);
  }
}

/** A 2026-07-28 result: `resultType` (task results already carry theirs) and the server's identity in `_meta`. */
function modernResult(result: Record<string, unknown>): Record<string, unknown> {
  const meta = isObject(result._meta) ? result._meta : {};
  return { resultType: 'complete', ...result, _meta: { ...meta, [META.serverInfo]: SERVER_INFO } };
}

/** Refusals of the HTTP request itself, before any message is read. */
function checkContentHeaders(header: Header): void {
  const accept = header('accept') ?? '';
  if (!(accept.includes('application/json') && accept.includes('text/event-stream')) && !accept.includes('*/*')) {
    throw new MandateError('RPC_NOT_ACCEPTABLE', 'the Accept header must list application/json and text/event-stream');
  }
  const type = (header('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new MandateError('ERR_UNSUPPORTED_MEDIA_TYPE', 'the content type must be application/json');
}

function rpcIdOf(m: Record<string, unknown>): JsonRpcId | null {
  const id = m.id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)) ? id : null;
}

/** The same refusal, answering the request it refuses. */
function withId(err: unknown, id: JsonRpcId | null): unknown {
  if (err instanceof MandateError && !(err instanceof EnvelopeError)) {
    return new EnvelopeError(err.code, err.message, id, err.details);
  }
  return err;
}

function report(err: MandateError, ctx: McpRequestContext): void {
  if (!err.spec.expose) ctx.onInternalError(err);
  else ctx.onRefusal?.(err);
}

function writeJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Writes a JSON-RPC error response through the one serializer: the HTTP status is the registry's
 * (or `status`), the id is the refused request's when it is known (else null).
 */
export function writeRpcError(res: ServerResponse, err: unknown, ctx: McpRequestContext, status?: number): void {
  let e: MandateError;
  if (err instanceof MandateError) {
    e = err;
    report(e, ctx);
  } else {
    ctx.onInternalError(err);
    e = new MandateError('ERR_INTERNAL', undefined, { cause: err });
  }
  const id = err instanceof EnvelopeError ? err.rpcId : null;
  writeJson(res, status ?? e.spec.status, { jsonrpc: '2.0', id, error: toJsonRpcError(e, ctx.requestId) });
}
