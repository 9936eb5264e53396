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
import { CallToolRequestSchema, isInitializeRequest, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { type ErrorCode, errorRegistry } from '../errors/registry.js';
import type { Clock } from '../lib/clock.js';
import { version } from '../version.js';
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

  /** Serves one HTTP request of the MCP endpoint for an already verified caller. */
  async handle(req: AuthedRequest, res: ServerResponse, body: unknown, caller: VerifiedCaller): Promise<void> {
    req.auth = { token: caller.tokenId, clientId: caller.agent.id, scopes: [], extra: { caller } };
    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const session = this.#sessions.get(sid);
      if (session !== undefined && session.mandateId === caller.mandate.id) {
        session.lastUsed = this.#o.clock.now();
        return session.transport.handleRequest(req, res, body);
      }
      if (session === undefined && mandateOfSessionId(sid) === caller.mandate.id) return this.#serveMoved(req, res, body);
      return writeRpcError(res, 'RPC_SESSION_NOT_FOUND', 'no such MCP session for this mandate; initialize a new one');
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      return writeRpcError(res, 'RPC_INVALID_REQUEST', 'send initialize first, then the Mcp-Session-Id header on every request', 400);
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
    await transport.handleRequest(req, res, body);
  }

  /** A session opened on another replica: serve this one request without session state. */
  async #serveMoved(req: AuthedRequest, res: ServerResponse, body: unknown): Promise<void> {
    // Closing a session this replica never held has nothing to release.
    if (req.method === 'DELETE') {
      res.writeHead(200).end();
      return;
    }
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    const server = this.#server();
    res.on('close', () => void server.close().catch(() => {}));
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
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
    server.setRequestHandler(ListToolsRequestSchema, async (_req, extra) => ({ tools: await gateway.listTools(callerOf(extra.authInfo)) }));
    server.setRequestHandler(CallToolRequestSchema, async (req, extra) =>
      gateway.callTool(callerOf(extra.authInfo), req.params.name, req.params.arguments, extra.signal),
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

function callerOf(auth: AuthInfo | undefined): VerifiedCaller {
  const caller = auth?.extra?.caller as VerifiedCaller | undefined;
  // Unreachable through the route (it verifies first); fail closed anyway.
  if (caller === undefined) throw new Error('unauthenticated MCP request reached a handler');
  return caller;
}

/** Writes a JSON-RPC error response without a session. */
export function writeRpcError(res: ServerResponse, code: ErrorCode, message: string, status?: number): void {
  const spec = errorRegistry[code];
  res.writeHead(status ?? spec.status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: spec.rpcCode ?? -32600, message, data: { code } } }));
}
