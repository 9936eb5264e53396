// A running demo broker with the official MCP SDK client pointed at its /mcp endpoint: mandates
// are opened through the real token exchange (test/identity/helpers.ts), tools are reached
// through real upstreams (the demo helpdesk and the MCP reference server over stdio).
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { ConfigInput } from '../../src/config/load.js';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import type { Clock } from '../../src/lib/clock.js';
import { MODERN_REVISION } from '../../src/lib/mcp-revisions.js';
import type { Logger } from '../../src/observability/log.js';
import type { Store } from '../../src/store/types.js';
import { type Running, startBroker } from '../identity/helpers.js';

export const MISBEHAVING_SERVER_PATH = fileURLToPath(new URL('./fixtures/misbehaving-server.ts', import.meta.url));

/** A test agent allowed to hold any of the tools the tests use. */
export const TESTER = { id: 'gateway-tester', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/gateway-tester` };
export const HELPER = { id: 'gateway-helper', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/gateway-helper` };

const ALL_TOOLS = [
  'helpdesk.search_tickets',
  'helpdesk.get_customer',
  'helpdesk.propose_refund',
  'helpdesk.execute_refund',
  'helpdesk.delete_customer',
  'everything.echo',
  'everything.get-sum',
  'misbehaving.hang',
  'misbehaving.huge',
  'flaky.huge',
  'forging.task',
  'forging.input',
  'forging.identity',
].map((tool) => ({ tool }));

export interface GatewayHarness extends Running {
  readonly mcpUrl: URL;
  /** Opens a root mandate for TESTER granting `tools`; returns its access token. */
  mandate(tools: Record<string, unknown>[], over?: Record<string, unknown>): Promise<{ token: string; mandateId: string }>;
  /** Registers a TypeScript MCP server file as a shared stdio upstream (needs process.execPath in allowedCommands). */
  registerStdio(id: string, path: string): Promise<void>;
  /** An SDK client connected to /mcp with this token. */
  connect(token: string): Promise<Client>;
  close(): Promise<void>;
}

export async function startGateway(
  options: { store?: Store; config?: ConfigInput; clock?: Clock; logger?: Logger; env?: Record<string, string> } = {},
): Promise<GatewayHarness> {
  const b = await startBroker({
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.store === undefined ? {} : { store: options.store }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    config: {
      ...options.config,
      gateway: { upstreamTimeoutMs: 1500, maxResultBytes: 64 * 1024, maxArgumentsBytes: 4096, ...options.config?.gateway },
    },
  });
  for (const a of [TESTER, HELPER]) {
    await b.broker.agents.register({
      id: a.id,
      displayName: a.id,
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: a.spiffeId },
      ceiling: { tools: ALL_TOOLS, delegable: true },
      mayReceiveDelegation: true,
    });
  }
  const clients: Client[] = [];
  const mcpUrl = new URL('/mcp', b.base);
  return {
    ...b,
    mcpUrl,
    async mandate(tools, over = {}) {
      const res = await b.open(TESTER.spiffeId, {
        type: 'mandate',
        purpose: 'gateway test',
        taskType: 'support.refund',
        environment: 'production',
        ttlSeconds: 600,
        tools,
        delegable: true,
        ...over,
      });
      return { token: res.access_token, mandateId: mandateIdOf(res.access_token) };
    },
    async registerStdio(id, path) {
      const res = await fetch(`${b.base}/admin/v1/upstreams`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await b.operatorToken('alice')}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          id,
          transport: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', path] },
          isolation: 'shared',
        }),
      });
      if (res.status !== 201) throw new Error(`registering upstream ${id}: HTTP ${res.status} ${await res.text()}`);
    },
    async connect(token) {
      const client = new Client({ name: 'gateway-test-agent', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      clients.push(client);
      return client;
    },
    async close() {
      for (const c of clients) await c.close().catch(() => {});
      await b.close();
    },
  };
}

/**
 * One 2026-07-28 (stateless) request to /mcp with a bearer token: the `_meta` the revision requires
 * (`capabilities` as the client's) and the headers that must match the body (`Mcp-Name` from
 * `params.name`, or `params.taskId` for tasks/*).
 */
export function modernRequest(
  mcpUrl: URL,
  token: string,
  method: string,
  params: Record<string, unknown>,
  capabilities: Record<string, unknown> = {},
  id = 1,
): Promise<Response> {
  const name = params.name ?? params.taskId;
  return fetch(mcpUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': MODERN_REVISION,
      'mcp-method': method,
      ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method,
      params: {
        ...params,
        _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN_REVISION, 'io.modelcontextprotocol/clientCapabilities': capabilities },
      },
    }),
  });
}

/** The mandate id claim of an access token (read without verifying: tests only). */
export function mandateIdOf(token: string): string {
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
  const id = claims.mandate;
  if (typeof id !== 'string') throw new Error(`no mandate id claim in ${Object.keys(claims).join(',')}`);
  return id;
}

export const text = (r: unknown): string => ((r as CallToolResult).content?.[0] as { text?: string } | undefined)?.text ?? '';

/** Mandate's structured error on a tool error result. */
export const meta = (r: unknown): Record<string, unknown> =>
  ((r as CallToolResult)._meta?.['mandate/error'] ?? {}) as Record<string, unknown>;
