// The governed call path across replicas: an approval consumed on one replica cannot be consumed
// on another, budgets hold under concurrent calls spread over replicas, and when a replica is
// killed under load the others keep serving and the shared audit log still verifies without gaps.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { DEV_ISSUER_PATH, DevIssuer } from '../../src/identity/dev-issuer.js';
import { type Cluster, openDemoMandate, startCluster } from '../helpers/replicas.js';
import { postgresFactory } from '../helpers/stores.js';

const BIN = new URL('../helpers/mandate-source.js', import.meta.url).pathname;
const pgf = await postgresFactory();

describe('gateway across replicas', { skip: pgf.skip }, () => {
  let cluster: Cluster;
  let operators: DevIssuer;
  const clients: Client[] = [];
  before(async () => {
    cluster = await startCluster({ replicas: 2, config: { mode: 'demo' } });
    operators = await DevIssuer.open(cluster.dataDir, `${cluster.publicUrl}${DEV_ISSUER_PATH}`);
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await cluster.close();
  });

  const url = (i: number) => cluster.replicas[i]?.url ?? '';

  async function mandate(tools: unknown[]): Promise<{ token: string; mandateId: string }> {
    const opened = await openDemoMandate(cluster, { tools });
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    return opened;
  }

  async function connect(replica: number, token: string): Promise<Client> {
    const client = new Client({ name: 'replica-test-agent', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', url(replica)), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
    );
    clients.push(client);
    return client;
  }

  /** A call's outcome: refusals arrive as tool errors or, when a race is lost at commit, as JSON-RPC errors. */
  const attempt = async (c: Client, name: string, args: Record<string, unknown>) => {
    try {
      const r = await c.callTool({ name, arguments: args });
      return { ran: r.isError !== true, result: r };
    } catch (err) {
      return { ran: false, result: err };
    }
  };

  const approvalIdOf = (r: unknown) => ((r as CallToolResult)._meta?.['mandate/error'] as { approvalId?: string } | undefined)?.approvalId;

  test('an approval consumed through one replica is never consumed again through another', async () => {
    const call = { customerId: 'C-1009', amountCents: 4900 };
    const { token } = await mandate([
      { tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } },
    ]);
    const [onA, onB] = [await connect(0, token), await connect(1, token)];
    const pending = await onA.callTool({ name: 'helpdesk.execute_refund', arguments: call });
    const approvalId = approvalIdOf(pending);
    assert.ok(approvalId, JSON.stringify(pending));
    const bob = await operators.mint({ sub: 'bob', roles: ['approver', 'support-lead'] });
    const approved = await fetch(`${url(1)}/admin/v1/approvals/${approvalId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(approved.status, 200, await approved.clone().text());
    // The same exact call races through both replicas: exactly one runs.
    const results = await Promise.all([onA, onB, onA, onB].map((c) => attempt(c, 'helpdesk.execute_refund', call)));
    assert.equal(results.filter((r) => r.ran).length, 1);
    // The others are told the approval was already used, or are sent to a new approval: never run.
    for (const r of results.filter((x) => !x.ran)) {
      const error = ((r.result as CallToolResult)._meta?.['mandate/error'] ?? {}) as { code?: string; approvalId?: string };
      const used = error.code === 'RPC_CALL_DENIED' && /already used/.test(JSON.stringify(r.result));
      assert.ok(used || approvalIdOf(r.result) !== approvalId, JSON.stringify(r.result));
    }
  });

  test('an approval task created on one replica completes on the other, forwarded once', async () => {
    const { token } = await mandate([
      { tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } },
    ]);
    let n = 0;
    const rpc = async (replica: number, method: string, params: Record<string, unknown>) => {
      const name = params.name ?? params.taskId;
      const res = await fetch(new URL('/mcp', url(replica)), {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': method,
          'mcp-name': String(name),
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: ++n,
          method,
          params: {
            ...params,
            _meta: {
              'io.modelcontextprotocol/protocolVersion': '2026-07-28',
              'io.modelcontextprotocol/clientCapabilities': { extensions: { 'io.modelcontextprotocol/tasks': {} } },
            },
          },
        }),
      });
      const body = (await res.json()) as { result?: Record<string, unknown> };
      assert.ok(body.result, JSON.stringify(body));
      return body.result;
    };
    const created = await rpc(0, 'tools/call', { name: 'helpdesk.execute_refund', arguments: { customerId: 'C-1009', amountCents: 6100 } });
    assert.equal(created.resultType, 'task');
    const taskId = created.taskId as string;
    // Durable before the answer: the other replica serves it at once.
    assert.equal((await rpc(1, 'tasks/get', { taskId })).status, 'working');
    const approvalId = /approvals\/(apr_[\w-]+)/.exec(String(created.statusMessage))?.[1];
    assert.ok(approvalId);
    const bob = await operators.mint({ sub: 'bob', roles: ['approver', 'support-lead'] });
    const approved = await fetch(`${url(0)}/admin/v1/approvals/${approvalId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(approved.status, 200);
    // Both replicas poll at once: one claims and forwards, the call runs once.
    const polls = await Promise.all([rpc(0, 'tasks/get', { taskId }), rpc(1, 'tasks/get', { taskId }), rpc(1, 'tasks/get', { taskId })]);
    let done = polls.find((t) => t.status === 'completed');
    for (let i = 0; done === undefined && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const t = await rpc(1, 'tasks/get', { taskId });
      if (t.status === 'completed') done = t;
    }
    assert.ok(done, 'the task completed');
    assert.match(JSON.stringify(done.result), /6100/);
    const approval = await fetch(`${url(1)}/admin/v1/approvals/${approvalId}`, {
      headers: { authorization: `Bearer ${cluster.bootstrapToken}` },
    });
    assert.equal(((await approval.json()) as { status?: string }).status, 'consumed', 'the single-use approval was spent once');
  });

  test('a maxCalls budget holds across replicas under concurrent calls', async () => {
    const { token } = await mandate([{ tool: 'helpdesk.search_tickets', maxCalls: 5 }]);
    const [onA, onB] = [await connect(0, token), await connect(1, token)];
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => attempt(i % 2 === 0 ? onA : onB, 'helpdesk.search_tickets', { query: 'refund' })),
    );
    assert.equal(results.filter((r) => r.ran).length, 5);
  });

  test('an MCP session opened on A keeps working when the load balancer sends its requests to B', async () => {
    const { token } = await mandate([{ tool: 'helpdesk.search_tickets' }]);
    let initialized = false;
    const seen: string[] = [];
    // A load balancer without affinity: initialize lands on A, everything after it on B.
    const balancer: typeof fetch = async (input, init) => {
      const target = new URL(String(input instanceof Request ? input.url : input));
      const dest = new URL(initialized ? url(1) : url(0));
      target.host = dest.host;
      seen.push(target.host);
      const res = await fetch(target, init);
      initialized = true;
      return res;
    };
    const client = new Client({ name: 'moving-agent', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', url(0)), {
        fetch: balancer,
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    clients.push(client);
    assert.deepEqual(
      (await client.listTools()).tools.map((t) => t.name),
      ['helpdesk.search_tickets'],
    );
    const r = await client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'refund' } });
    assert.notEqual(r.isError, true, JSON.stringify(r));
    assert.ok(seen.includes(new URL(url(1)).host), 'requests reached B');
    // Another mandate cannot ride on this session id, on either replica.
    const other = await mandate([{ tool: 'helpdesk.search_tickets' }]);
    const sid = (client.transport as StreamableHTTPClientTransport).sessionId ?? '';
    for (const base of [url(0), url(1)]) {
      const res = await fetch(`${base}/mcp`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${other.token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': sid,
          'mcp-protocol-version': '2025-06-18',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      assert.equal(res.status, 404);
    }
  });

  test('a replica killed under load: the other keeps serving and the audit log verifies with no gaps', async () => {
    const extra = await cluster.add();
    const { token } = await mandate([{ tool: 'helpdesk.search_tickets' }]);
    const survivor = await connect(0, token);
    const doomed = await connect(cluster.replicas.indexOf(extra), token);
    // Warm both replicas' upstream sessions (a stdio upstream starts on first use).
    await survivor.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'warm' } });
    await doomed.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'warm' } });
    let stop = false;
    const load = async (c: Client) => {
      let ok = 0;
      while (!stop) {
        try {
          const r = await c.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'x' } });
          if (r.isError !== true) ok++;
        } catch {
          if (c === doomed) return ok;
        }
      }
      return ok;
    };
    const runs = [load(survivor), load(survivor), load(doomed), load(doomed)];
    await new Promise((r) => setTimeout(r, 700));
    await extra.kill();
    const before = await Promise.all([survivor.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'after-kill' } })]);
    assert.notEqual(before[0]?.isError, true, 'the surviving replica keeps serving');
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    const counts = await Promise.all(runs);
    assert.ok((counts[0] ?? 0) + (counts[1] ?? 0) > 0);
    const verify = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--config', join(cluster.dataDir, 'mandate.json'), '--json'], {
      env: {
        PATH: process.env.PATH ?? '',
        MANDATE_DATABASE_URL: process.env.MANDATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
        MANDATE_MASTER_KEY: cluster.masterKey,
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(verify.status, 0, verify.stderr + verify.stdout.slice(0, 3000));
    const report = JSON.parse(verify.stdout) as { ok: boolean; entries: number };
    assert.equal(report.ok, true, verify.stdout.slice(0, 3000));
    assert.ok(report.entries > 10, verify.stdout.slice(0, 2000));
  });
});
