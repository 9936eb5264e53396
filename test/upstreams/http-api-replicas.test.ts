// HTTP API upstreams across two replicas (two brokers in this process on one PostgreSQL schema,
// each on its own port, one public URL): an upstream registered on A is called through B with the
// bindings A compiled; an approval decided on A lets the DELETE run once, whichever replica the
// agent retries on; a refreshed description reaches B's pooled forwarder, not just its catalog.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { parse as parseYaml } from 'yaml';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { generateMasterKeySpec } from '../../src/secrets/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { freePort } from '../helpers/ports.js';
import { dropSchema, freshSchema, POSTGRES_URL, postgresFactory } from '../helpers/stores.js';

const pgf = await postgresFactory();
const EXAMPLE = fileURLToPath(new URL('../../examples/openapi/billing.yaml', import.meta.url));
const SECRET = 'test-fixture-replica-api-key-0b6e2d4c';
const AGENT = { id: 'replica-billing-agent', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/replica-billing-agent` };
const TOOLS = ['billing.getCustomer', 'billing.deleteCustomer', 'billing.extra'];

const text = (r: unknown): string => ((r as CallToolResult).content?.[0] as { text?: string } | undefined)?.text ?? '';
const meta = (r: unknown): Record<string, unknown> => ((r as CallToolResult)._meta?.['mandate/error'] ?? {}) as Record<string, unknown>;

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('HTTP API upstreams across two replicas (PostgreSQL)', { skip: pgf.skip }, () => {
  const schema = freshSchema();
  let a: TestApp;
  let b: TestApp;
  let api: Server;
  let apiBase = '';
  let publicUrl = '';
  const urls: string[] = [];
  const clients: Client[] = [];
  const requests: string[] = [];
  const doc = parseYaml(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;
  let served: Record<string, unknown> = { ...doc, servers: [{ url: '/v1' }] };

  before(async () => {
    api = createServer((req, res) => {
      if (req.url === '/spec.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(served));
        return;
      }
      requests.push(`${req.method} ${req.url}`);
      const json = (status: number, v: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (req.headers.authorization !== `Bearer ${SECRET}`) return json(401, { error: 'no key' });
      const m = /^\/v1\/customers\/([^/]+)$/.exec(req.url ?? '');
      if (m !== null && req.method === 'GET') return json(200, { id: m[1] });
      if (m !== null && req.method === 'DELETE') return json(200, { deleted: m[1] });
      if (req.url === '/v1/extra') return json(200, { extra: true });
      json(404, { error: 'no route' });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    apiBase = `http://127.0.0.1:${(api.address() as { port: number }).port}`;

    const ports = [await freePort(), await freePort()];
    publicUrl = `http://127.0.0.1:${ports[0]}`;
    const env = { MANDATE_MASTER_KEY: generateMasterKeySpec('httpapi') };
    const replica = async (port: number) => {
      const t = await buildTestApp({
        env,
        store: openPostgresStore({ url: POSTGRES_URL, schema, poolMax: 4 }),
        config: {
          server: { port, publicUrl },
          changes: { pollIntervalMs: 200, maxStalenessMs: 3000 },
          gateway: { allowedHosts: ports.map((p) => `127.0.0.1:${p}`) },
        },
      });
      await t.app.listen({ host: '127.0.0.1', port });
      urls.push(`http://127.0.0.1:${port}`);
      return t;
    };
    // Sequentially: A migrates and seeds, B finds the schema ready.
    a = await replica(ports[0] as number);
    b = await replica(ports[1] as number);
    await a.broker.agents.register({
      id: AGENT.id,
      displayName: AGENT.id,
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: AGENT.spiffeId },
      ceiling: { tools: TOOLS.map((tool) => ({ tool })), delegable: false },
    });
    await a.broker.upstreams.registry.create({
      id: 'billing',
      transport: { type: 'openapi', description: { url: `${apiBase}/spec.json` } },
      credential: { headers: { authorization: `Bearer ${SECRET}` } },
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await a?.close().catch(() => {});
    await b?.close().catch(() => {});
    api?.close();
    await dropSchema(schema).catch(() => {});
  });

  async function open(tools: string[]): Promise<string> {
    const dev = a.broker.identity.devSpiffe;
    if (dev === undefined) throw new Error('demo mode expected');
    const res = await fetch(`${urls[0]}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: GRANT_TOKEN_EXCHANGE,
        subject_token: await dev.mint({ spiffeId: AGENT.spiffeId, audience: publicUrl }),
        subject_token_type: TOKEN_TYPE.jwt,
        authorization_details: JSON.stringify([
          {
            type: 'mandate',
            purpose: 'billing on two replicas',
            taskType: 'support.refund',
            environment: 'production',
            ttlSeconds: 600,
            tools: tools.map((tool) => ({ tool })),
            delegable: false,
          },
        ]),
      }),
    });
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 200, JSON.stringify(body));
    return String(body.access_token);
  }

  async function connect(replica: number, token: string): Promise<Client> {
    const client = new Client({ name: AGENT.id, version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', urls[replica]), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
    );
    clients.push(client);
    return client;
  }

  it('calls through B an HTTP API registered on A, with the credential injected', async () => {
    await until("B's catalog", () => b.broker.upstreams.catalog.get('billing.getCustomer') !== undefined);
    assert.equal(b.broker.upstreams.catalog.get('billing.deleteCustomer')?.actionClass, 'destructive');
    const onB = await connect(1, await open(['billing.getCustomer']));
    const r = await onB.callTool({ name: 'billing.getCustomer', arguments: { customerId: 'C-7' } });
    assert.equal(r.isError, undefined, text(r));
    assert.deepEqual(r.structuredContent, { id: 'C-7' });
    assert.ok(!JSON.stringify(r).includes(SECRET));
  });

  it('runs a DELETE approved on A exactly once, whichever replica the agent retries on', async () => {
    const token = await open(['billing.deleteCustomer']);
    const onA = await connect(0, token);
    const onB = await connect(1, token);
    const call = { name: 'billing.deleteCustomer', arguments: { customerId: 'C-9' } };
    const pending = await onB.callTool(call);
    const approvalId = meta(pending).approvalId as string;
    assert.match(approvalId, /^apr_/);
    const ok = await fetch(`${urls[0]}/admin/v1/approvals/${approvalId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await a.operatorToken('alice')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'erasure request' }),
    });
    assert.equal(ok.status, 200, await ok.text());
    const results = await Promise.all([onA.callTool(call), onB.callTool(call)]);
    assert.equal(results.filter((r) => r.isError !== true).length, 1, JSON.stringify(results));
    assert.equal(requests.filter((r) => r === 'DELETE /v1/customers/C-9').length, 1);
  });

  it("a description refreshed on A reaches B's pooled forwarder, not only its catalog", async () => {
    const onB = await connect(1, await open(['billing.getCustomer', 'billing.extra']));
    // B now holds a pooled forwarder with the bindings of the first description.
    assert.equal((await onB.callTool({ name: 'billing.getCustomer', arguments: { customerId: 'C-1' } })).isError, undefined);
    served = {
      ...served,
      paths: { ...(doc.paths as object), '/extra': { get: { operationId: 'extra', responses: {} } } },
    };
    await a.broker.upstreams.registry.refresh('billing');
    await until("B's catalog", () => b.broker.upstreams.catalog.get('billing.extra') !== undefined);
    const r = await onB.callTool({ name: 'billing.extra', arguments: {} });
    assert.equal(r.isError, undefined, text(r));
    assert.deepEqual(r.structuredContent, { extra: true });
  });
});
