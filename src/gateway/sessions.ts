// Agent-facing MCP sessions over streamable HTTP (official SDK server side). Each session is bound
// to the mandate that opened it: a request carrying a session id opened under another mandate is
// answered like an unknown session (404), so no agent can drive another's session. The caller is
// verified on every HTTP request and handed to the handlers through the SDK's `authInfo`.
//
// Sessions move between replicas: a session id is `<mandateId>.<random>`, and a session carries no
// authority (every request is verified by its mandate token). A replica that did not open a
// session serves a request naming it with a per-request (stateless) server when the id's mandate
// is the caller's, so a load balancer needs no session affinity.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolRequestSchema,
  isInitializeRequest,
  type JSONRPCMessage,
  ListToolsRequestSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@modelcontextprotocol/sdk/types.js';
import { MandateError } from '../errors/index.js';
import type { ErrorCode } from '../errors/registry.js';
import { toJsonRpcError } from '../errors/serialize.js';
import type { Clock } from '../lib/clock.js';
import { version } from '../version.js';
import { EnvelopeError, type JsonRpcId, parseEnvelope } from './envelope.js';
import type { Gateway } from './gateway.js';
import type { VerifiedCaller } from './types.js';

export interface McpSessionsOptions {
  readonly gateway: Gateway;
  readonly clock: Clock;
  readonly maxSessions: number;
  readonly idleMs: number;
}

interface Session {
  readonly mandateId: string;
  readonly transport: StreamableHTTPServerTransport;
  lastUsed: number;
}

type AuthedRequest = IncomingMessage & { auth?: AuthInfo };

/** Per HTTP request: its id (for `data.request_id` and the log) and where internal failures are logged. */
export interface McpRequestContext {
  readonly requestId: string;
  readonly onInternalError: (err: unknown) => void;
  /** Every refusal the client sees (its registry code and reason), so each one can be logged. */
  readonly onRefusal?: (err: MandateError) => void;
}

const INSTRUCTIONS =
  'Tools are governed by Mandate: every call is authorized against your mandate and org policy and audited. ' +
  'A result with isError and an approval id means a human must approve; retry the exact same call once approved.';

export class McpSessions {
  readonly #o: McpSessionsOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #timer: NodeJS.Timeout;

  constructor(options: McpSessionsOptions) {
    this.#o = options;
    this.#timer = setInterval(() => this.#sweep(), Math.max(1000, Math.min(options.idleMs, 60_000)));
    this.#timer.unref();
  }

  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Serves one HTTP request of the MCP endpoint for an already verified caller. `raw` is the
   * unparsed POST body: it is checked here (envelope.ts) so the SDK transport only ever sees
   * well-formed MCP messages, and every refusal goes through the registry and the one serializer.
   */
  async handle(
    req: AuthedRequest,
    res: ServerResponse,
    raw: string | undefined,
    caller: VerifiedCaller,
    ctx: McpRequestContext,
  ): Promise<void> {
    let body: unknown;
    let messages: readonly Record<string, unknown>[] = [];
    try {
      checkHeaders(req);
      if (req.method === 'POST') ({ body, messages } = parseEnvelope(raw ?? ''));
    } catch (err) {
      return writeRpcError(res, err, ctx);
    }
    req.auth = { token: caller.tokenId, clientId: caller.agent.id, scopes: [], extra: { caller, ctx } };
    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      if (messages.some((m) => m.method === 'initialize')) {
        return writeRpcError(
          res,
          new MandateError('RPC_INVALID_REQUEST', 'this session is already initialized; send initialize without Mcp-Session-Id'),
          ctx,
        );
      }
      const session = this.#sessions.get(sid);
      if (session !== undefined && session.mandateId === caller.mandate.id) {
        session.lastUsed = this.#o.clock.now();
        remember(session.transport, messages, ctx);
        try {
          return await session.transport.handleRequest(req, res, body);
        } finally {
          releaseAnswered(session.transport);
        }
      }
      if (session === undefined && mandateOfSessionId(sid) === caller.mandate.id) return this.#serveMoved(req, res, body, messages, ctx);
      return writeRpcError(
        res,
        new MandateError('RPC_SESSION_NOT_FOUND', 'no such MCP session for this mandate; initialize a new one'),
        ctx,
      );
    }
    if (req.method !== 'POST' || messages.length !== 1 || !isInitializeRequest(body)) {
      return writeRpcError(
        res,
        new MandateError('RPC_INVALID_REQUEST', 'send initialize first (alone), then the Mcp-Session-Id header on every request'),
        ctx,
      );
    }
    if (this.#sessions.size >= this.#o.maxSessions) this.#evictOldest();
    const mandateId = caller.mandate.id;
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => `${mandateId}.${randomUUID()}`,
      // One JSON answer per request: the gateway never streams upstream notifications to agents.
      enableJsonResponse: true,
      onsessioninitialized: (id) => {
        this.#sessions.set(id, { mandateId, transport, lastUsed: this.#o.clock.now() });
      },
      onsessionclosed: (id) => {
        this.#sessions.delete(id);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) this.#sessions.delete(transport.sessionId);
    };
    await this.#server().connect(transport);
    guardErrors(transport);
    remember(transport, messages, ctx);
    try {
      await transport.handleRequest(req, res, body);
    } finally {
      releaseAnswered(transport);
    }
  }

  /** A session opened on another replica: serve this one request without session state. */
  async #serveMoved(
    req: AuthedRequest,
    res: ServerResponse,
    body: unknown,
    messages: readonly Record<string, unknown>[],
    ctx: McpRequestContext,
  ): Promise<void> {
    // Closing a session this replica never held has nothing to release.
    if (req.method === 'DELETE') {
      res.writeHead(200).end();
      return;
    }
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    const server = this.#server();
    res.on('close', () => void server.close().catch(() => {}));
    await server.connect(transport);
    guardErrors(transport);
    remember(transport, messages, ctx);
    await transport.handleRequest(req, res, body);
  }

  /**
   * JSON-answered requests the SDK transports of open sessions hold (see `releaseAnswered`): the
   * requests in flight, not every request ever served. Throws when the SDK's internals changed shape, so the
   * test that bounds it cannot pass vacuously.
   */
  get heldStreams(): number {
    let n = 0;
    for (const s of this.#sessions.values()) {
      const inner = streamsOf(s.transport);
      if (inner === undefined) throw new Error('the MCP SDK transport no longer has the stream maps releaseAnswered expects');
      for (const entry of inner.streams.values()) if (entry.resolveJson !== undefined) n++;
    }
    return n;
  }

  /** Closes every session of a mandate (it ended); its token no longer verifies either. */
  closeMandate(mandateId: string): void {
    for (const [id, s] of this.#sessions) {
      if (s.mandateId === mandateId) {
        this.#sessions.delete(id);
        void s.transport.close().catch(() => {});
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    const all = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(all.map((s) => s.transport.close().catch(() => {})));
  }

  /** The per-session MCP server: tools only. Resources, prompts and completions are not offered, so the SDK answers -32601. */
  #server(): Server {
    const server = new Server(
      { name: 'mandate-gateway', version },
      { capabilities: { tools: { listChanged: false } }, instructions: INSTRUCTIONS },
    );
    const { gateway } = this.#o;
    server.setRequestHandler(ListToolsRequestSchema, async (_req, extra) =>
      wire(extra.authInfo, async () => ({ tools: await gateway.listTools(callerOf(extra.authInfo)) })),
    );
    server.setRequestHandler(CallToolRequestSchema, async (req, extra) =>
      wire(extra.authInfo, () => gateway.callTool(callerOf(extra.authInfo), req.params.name, req.params.arguments, extra.signal)),
    );
    return server;
  }

  #evictOldest(): void {
    let oldest: [string, Session] | undefined;
    for (const entry of this.#sessions) if (oldest === undefined || entry[1].lastUsed < oldest[1].lastUsed) oldest = entry;
    if (oldest === undefined) return;
    this.#sessions.delete(oldest[0]);
    void oldest[1].transport.close().catch(() => {});
  }

  #sweep(): void {
    const cutoff = this.#o.clock.now() - this.#o.idleMs;
    for (const [id, s] of this.#sessions) {
      if (s.lastUsed < cutoff) {
        this.#sessions.delete(id);
        void s.transport.close().catch(() => {});
      }
    }
  }
}

/** The mandate a session id was opened under (`<mandateId>.<random>`), or undefined. */
function mandateOfSessionId(sid: string): string | undefined {
  const dot = sid.indexOf('.');
  return dot > 0 ? sid.slice(0, dot) : undefined;
}

function contextOf(auth: AuthInfo | undefined): McpRequestContext | undefined {
  return auth?.extra?.ctx as McpRequestContext | undefined;
}

/** The error the SDK's Protocol sends as is: a numeric `code`, `message` and `data` (no "MCP error" prefix, no stack). */
class WireError extends Error {
  readonly code: number;
  readonly data: Record<string, unknown>;

  constructor(code: number, message: string, data: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

/** Runs a handler; whatever it throws leaves through the one serializer (non-Mandate errors become a logged internal error). */
async function wire<T>(auth: AuthInfo | undefined, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const ctx = contextOf(auth);
    const e = serializable(err, ctx);
    const o = toJsonRpcError(e, ctx?.requestId ?? 'unknown');
    throw new WireError(o.code, o.message, o.data ?? {});
  }
}

/**
 * Mandate errors reach the serializer as themselves (one not meant for clients becomes its generic
 * internal error there); anything else — an SDK or schema error, a bug — is logged and internal.
 */
function serializable(err: unknown, ctx: McpRequestContext | undefined): MandateError {
  if (err instanceof MandateError) {
    if (!err.spec.expose) ctx?.onInternalError(err);
    else ctx?.onRefusal?.(err);
    return err;
  }
  ctx?.onInternalError(err);
  return new MandateError('ERR_INTERNAL', undefined, { cause: err });
}

/** Remembers which HTTP request each JSON-RPC request id came in, for errors the SDK itself answers. */
const pending = new WeakMap<object, Map<JsonRpcId, McpRequestContext>>();

function remember(transport: object, messages: readonly Record<string, unknown>[], ctx: McpRequestContext): void {
  const byId = pending.get(transport) ?? new Map<JsonRpcId, McpRequestContext>();
  pending.set(transport, byId);
  // Cancelled requests are never answered; bound what they leave behind.
  if (byId.size > 1000) byId.clear();
  for (const m of messages) if ((typeof m.id === 'string' || typeof m.id === 'number') && typeof m.method === 'string') byId.set(m.id, ctx);
}

/** The SDK transport's private per-stream state (v1.x `WebStandardStreamableHTTPServerTransport`). */
interface StreamMaps {
  readonly streams: Map<string, { resolveJson?: unknown }>;
  readonly requestToStream: Map<unknown, string>;
}

function streamsOf(transport: StreamableHTTPServerTransport): StreamMaps | undefined {
  const inner = (transport as unknown as { _webStandardTransport?: Record<string, unknown> })._webStandardTransport;
  const streams = inner?._streamMapping;
  const requestToStream = inner?._requestToStreamMapping;
  if (!(streams instanceof Map) || !(requestToStream instanceof Map)) return undefined;
  return { streams, requestToStream } as StreamMaps;
}

/**
 * Works around an MCP SDK v1.x bug (modelcontextprotocol/typescript-sdk#2559, still in 1.32): in
 * JSON response mode the transport never deletes a request's stream entry once it has answered,
 * and that entry's resolver keeps the whole HTTP request alive (IncomingMessage, fetch Request,
 * auth info, the per-request logger): ~22 KB per call for as long as the session lives. A JSON
 * entry that no JSON-RPC request id points to any more has been answered, so it is dropped. (The
 * GET notification stream has no `resolveJson` and is left alone.) Without the SDK's internals it
 * does nothing; `McpSessions.heldStreams` and its test notice.
 */
function releaseAnswered(transport: StreamableHTTPServerTransport): void {
  const maps = streamsOf(transport);
  if (maps === undefined) return;
  const waiting = new Set(maps.requestToStream.values());
  for (const [id, entry] of maps.streams) if (entry.resolveJson !== undefined && !waiting.has(id)) maps.streams.delete(id);
}

/** SDK error codes an unmapped error may carry, and the registry code it becomes. */
const SDK_ERRORS = new Map<number, ErrorCode>([
  [-32700, 'RPC_PARSE_ERROR'],
  [-32600, 'RPC_INVALID_REQUEST'],
  [-32601, 'RPC_METHOD_NOT_FOUND'],
  [-32602, 'RPC_INVALID_PARAMS'],
]);

/**
 * Errors the SDK answers by itself (method not found, its own schema checks) carry no registry
 * code: map them onto one on the way out, with the registry's message instead of the SDK's
 * (which may be a schema dump); anything else becomes a logged internal error.
 */
function guardErrors(transport: Transport): void {
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const m = message as Record<string, unknown>;
    const id = m.id as JsonRpcId | undefined;
    const ctx = id === undefined ? undefined : pending.get(transport)?.get(id);
    if (id !== undefined && ('result' in m || 'error' in m)) pending.get(transport)?.delete(id);
    const error = m.error as { code?: unknown; message?: unknown; data?: { code?: unknown } } | undefined;
    if (error === undefined || typeof error.data?.code === 'string') return send(message, options);
    const code = SDK_ERRORS.get(error.code as number);
    const e = code === undefined ? serializable(new Error(String(error.message).slice(0, 500)), ctx) : new MandateError(code);
    const o = toJsonRpcError(e, ctx?.requestId ?? 'unknown');
    return send({ jsonrpc: '2.0', id: id ?? null, error: { code: o.code, message: o.message, data: o.data } } as JSONRPCMessage, options);
  };
}

/** Refusals of the HTTP request itself, before any message is read (what the SDK would answer with -32000). */
function checkHeaders(req: IncomingMessage): void {
  const accept = req.headers.accept ?? '';
  const wants = req.method === 'GET' ? ['text/event-stream'] : req.method === 'POST' ? ['application/json', 'text/event-stream'] : [];
  if (!wants.every((t) => accept.includes(t))) {
    throw new MandateError('RPC_NOT_ACCEPTABLE', `the Accept header must list ${wants.join(' and ')}`);
  }
  if (req.method === 'POST') {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') throw new MandateError('ERR_UNSUPPORTED_MEDIA_TYPE', 'the content type must be application/json');
  }
  const version = req.headers['mcp-protocol-version'];
  if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(String(version))) {
    throw new MandateError(
      'RPC_INVALID_REQUEST',
      `unsupported MCP-Protocol-Version; this gateway speaks ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`,
    );
  }
}

function callerOf(auth: AuthInfo | undefined): VerifiedCaller {
  const caller = auth?.extra?.caller as VerifiedCaller | undefined;
  // Unreachable through the route (it verifies first); fail closed anyway.
  if (caller === undefined) throw new Error('unauthenticated MCP request reached a handler');
  return caller;
}

/**
 * Writes a JSON-RPC error response outside any session, through the one serializer: the HTTP
 * status is the registry's, the id is the refused request's when it is known (else null).
 */
export function writeRpcError(res: ServerResponse, err: unknown, ctx: McpRequestContext, status?: number): void {
  const e = serializable(err, ctx);
  const id = err instanceof EnvelopeError ? err.rpcId : null;
  res.writeHead(status ?? e.spec.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ jsonrpc: '2.0', id, error: toJsonRpcError(e, ctx.requestId) }));
}
