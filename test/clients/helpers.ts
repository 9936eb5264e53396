// Shared setup for the real-client tests: a demo broker (test/gateway/harness.ts) with the demo
// helpdesk and the MCP reference "everything" server behind /mcp, plus what a human and a raw
// 2026-07-28 client do around the clients under test: approve or deny through the admin API,
// refresh a mandate's access token, and send one framed JSON-RPC request with the headers the
// revision requires (for checks no SDK exposes, and as the ext-tasks raw dispatch).
import assert from 'node:assert/strict';
import type { ConfigInput } from '../../src/config/load.js';
import { TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import type { Store } from '../../src/store/types.js';
import { type GatewayHarness, startGateway } from '../gateway/harness.js';

export const MODERN = '2026-07-28';
export const LEGACY = '2025-11-25';
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
export const META = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
} as const;

/** A refund the demo org policy sends to a human (production refund), inside the grant below. */
export const REFUND = { customerId: 'C-1009', amountCents: 4900 } as const;
/** Grants used by the client tests: a read tool, an echo, an argument-bounded read, a refund that needs approval. */
export const GRANTS = [
  { tool: 'helpdesk.search_tickets' },
  { tool: 'everything.echo' },
  { tool: 'helpdesk.get_customer', args: { customerId: { eq: 'C-1009' } } },
  { tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } },
];

export interface ClientsHarness extends GatewayHarness {
  /** A fresh mandate with GRANTS (or `tools`). */
  grant(tools?: Record<string, unknown>[]): Promise<{ token: string; mandateId: string }>;
  /** A new access token for the same mandate (RFC 8693 refresh through the token endpoint). */
  refresh(token: string): Promise<string>;
  /** Waits for the mandate's pending approval to appear and returns its id. */
  pendingApproval(mandateId: string): Promise<string>;
  /** Bob (support-lead) approves or denies through the admin API, as the console does. */
  decide(approvalId: string, approve: boolean): Promise<void>;
  /** One 2026-07-28 request through /mcp, framed like a conforming client frames it. */
  modern(token: string, method: string, params?: Record<string, unknown>, options?: ModernOptions): Promise<RpcReply>;
}

export interface ModernOptions {
  /** Declare the Tasks extension in the request's client capabilities. */
  readonly tasks?: boolean;
  /** Headers to add or override (a value of `null` removes a header). */
  readonly headers?: Readonly<Record<string, string | null>>;
  /** `_meta` to use instead of the framed one (`null`: no `_meta` at all). */
  readonly meta?: Record<string, unknown> | null;
  readonly id?: number | string;
}

export interface RpcReply {
  readonly status: number;
  readonly headers: Headers;
  /** The JSON-RPC response (from a JSON body, or the last message of an SSE stream). */
  readonly body: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: unknown } };
}

export async function startClientsGateway(config: ConfigInput = {}, store?: Store): Promise<ClientsHarness> {
  const h = await startGateway({
    ...(store === undefined ? {} : { store }),
    config: {
      ...config,
      // Spawned clients and polling tasks make many requests in a burst; limits are tested elsewhere.
      server: { rateLimit: { enabled: false }, ...config.server },
      upstreams: { stdio: { allowedCommands: [process.execPath] }, ...config.upstreams },
    } as ConfigInput,
  });
  const bob = await h.operatorToken('bob');
  let nextId = 1;

  const modern: ClientsHarness['modern'] = async (token, method, params = {}, o = {}) => {
    const meta =
      o.meta === null
        ? undefined
        : (o.meta ?? {
            [META.protocolVersion]: MODERN,
            [META.clientInfo]: { name: 'mandate-raw-test-client', version: '1' },
            [META.clientCapabilities]: o.tasks ? { extensions: { [TASKS_EXTENSION]: {} } } : {},
          });
    const body = {
      jsonrpc: '2.0' as const,
      id: o.id ?? nextId++,
      method,
      params: meta === undefined ? params : { ...params, _meta: meta },
    };
    return postRpc(h.mcpUrl, token, body, o.headers ?? {});
  };

  return {
    ...h,
    grant: (tools = GRANTS) => h.mandate(tools),
    async refresh(token) {
      const res = await h.exchange({ subject_token: token, subject_token_type: TOKEN_TYPE.accessToken });
      assert.notEqual(res.access_token, token);
      return res.access_token;
    },
    async pendingApproval(mandateId) {
      for (let i = 0; i < 200; i++) {
        const res = await fetch(`${h.base}/admin/v1/approvals?status=pending&mandateId=${encodeURIComponent(mandateId)}`, {
          headers: { authorization: `Bearer ${bob}` },
        });
        assert.equal(res.status, 200);
        const { items } = (await res.json()) as { items: { id: string }[] };
        if (items.length === 1 && items[0] !== undefined) return items[0].id;
        assert.ok(items.length === 0, `one pending approval expected for ${mandateId}, got ${items.length}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no pending approval appeared for mandate ${mandateId}`);
    },
    async decide(approvalId, approve) {
      const res = await fetch(`${h.base}/admin/v1/approvals/${approvalId}/${approve ? 'approve' : 'deny'}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
        body: JSON.stringify({ note: approve ? 'duplicate charge confirmed' : 'not this one' }),
      });
      assert.equal(res.status, 200, await res.text());
    },
    modern,
  };
}

/** The header value a 2026-07-28 client sends for `Mcp-Name`: plain ASCII, else the base64 sentinel. */
export function headerValue(value: string): string {
  const plain = /^[!-~](?:[ -~]*[!-~])?$/.test(value) && !(value.startsWith('=?base64?') && value.endsWith('?='));
  return plain ? value : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The routing headers of streamable HTTP 2026-07-28 and the Tasks extension for one request body. */
export function routingHeaders(body: { method: string; params?: Record<string, unknown> }): Record<string, string> {
  const params = body.params ?? {};
  const meta = (params._meta ?? {}) as Record<string, unknown>;
  const headers: Record<string, string> = { 'mcp-method': body.method };
  const version = meta[META.protocolVersion];
  if (typeof version === 'string') headers['mcp-protocol-version'] = version;
  const name = body.method.startsWith('tasks/') ? params.taskId : body.method === 'tools/call' ? params.name : undefined;
  if (typeof name === 'string') headers['mcp-name'] = headerValue(name);
  return headers;
}

/** POSTs one JSON-RPC request with bearer token and routing headers; `extra` overrides (null removes). */
export async function postRpc(
  url: URL,
  token: string,
  body: { jsonrpc: '2.0'; id: number | string; method: string; params?: Record<string, unknown> },
  extra: Readonly<Record<string, string | null>> = {},
  signal?: AbortSignal,
): Promise<RpcReply> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...routingHeaders(body),
  };
  for (const [k, v] of Object.entries(extra)) {
    if (v === null) delete headers[k.toLowerCase()];
    else headers[k.toLowerCase()] = v;
  }
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
  const text = await res.text();
  let parsed: RpcReply['body'] = {};
  if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    // A stream may carry notifications first; the response is the message with our id.
    for (const line of text.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const msg = JSON.parse(line.slice(5)) as RpcReply['body'];
      if (msg.id === body.id) parsed = msg;
    }
  } else if (text.length > 0) {
    try {
      parsed = JSON.parse(text) as RpcReply['body'];
    } catch {
      parsed = { error: { code: Number.NaN, message: `non-JSON body (${res.status}): ${text.slice(0, 200)}` } };
    }
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Mandate's structured refusal on a tool result (`_meta['mandate/error']`). */
export const refusalOf = (result: unknown): Record<string, unknown> =>
  ((result as { _meta?: Record<string, unknown> } | undefined)?._meta?.['mandate/error'] ?? {}) as Record<string, unknown>;

/** The first text block of a tool result. */
export const textOf = (result: unknown): string =>
  ((result as { content?: { type: string; text?: string }[] } | undefined)?.content?.find((c) => c.type === 'text')?.text ?? '') as string;

/** Asserts a refusal an LLM can act on: an isError result, one clean text, the registry code in _meta. */
export function assertRefusal(result: unknown, code: string, mentions: RegExp): Record<string, unknown> {
  const r = result as { isError?: boolean };
  assert.equal(r.isError, true, `expected an isError result, got ${JSON.stringify(result).slice(0, 400)}`);
  const text = textOf(result);
  assert.match(text, mentions);
  assert.doesNotMatch(text, /MCP error/, 'no JSON-RPC error prefix inside a tool result');
  const m = refusalOf(result);
  assert.equal(m.code, code, JSON.stringify(m));
  assert.equal(typeof m.decisionId, 'string');
  return m;
}
