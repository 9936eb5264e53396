// The official MCP TypeScript SDK 2.x client (@modelcontextprotocol/client), unmodified, through
// the gateway on both revisions: pinned to 2026-07-28 (server/discover, stateless, per-request
// _meta) and on the 2025-11-25 legacy handshake; bearer token from an AuthProvider. Approvals as
// tasks are driven by the official Tasks client (@modelcontextprotocol/ext-tasks) on top of the
// SDK client: the SDK's own codecs do not accept task results, so ext-tasks takes a raw dispatch
// for tools/call and tasks/*, which here is one framed POST per request (postRpc in helpers.ts).
// Runs on both stores (tasks and approvals are durable in the store).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AuthProvider, Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createTaskSessionFromClient, type TaskView } from '@modelcontextprotocol/ext-tasks/client';
import { storeFactories } from '../helpers/stores.js';
import {
  assertRefusal,
  type ClientsHarness,
  LEGACY,
  META,
  MODERN,
  postRpc,
  REFUND,
  refusalOf,
  startClientsGateway,
  TASKS_EXTENSION,
  textOf,
} from './helpers.js';

const CLIENT_INFO = { name: 'mandate-sdk2-test', version: '1' };
const GRANTED = ['everything.echo', 'helpdesk.execute_refund', 'helpdesk.get_customer', 'helpdesk.search_tickets'];

for (const factory of await storeFactories()) {
  // The skip is only the PostgreSQL half on a machine where PostgreSQL is unreachable, and it carries that
  // reason ("PostgreSQL unreachable at …", test/helpers/stores.ts); under CI (CI set) it never skips: it fails.
  describe(`SDK 2.x client through the gateway (${factory.name})`, { skip: factory.skip }, () => {
    let h: ClientsHarness;
    const closers: (() => Promise<void>)[] = [];
    before(async () => {
      h = await startClientsGateway({}, await factory.open());
    });
    after(async () => {
      for (const c of closers) await c().catch(() => {});
      await h?.close();
      await factory.cleanup();
    });

    async function connect(token: string, era: 'modern' | 'legacy', o: { tasks?: boolean } = {}) {
      const auth: AuthProvider & { current: string } = {
        current: token,
        async token() {
          return this.current;
        },
      };
      const client = new Client(CLIENT_INFO, {
        ...(era === 'modern' ? { versionNegotiation: { mode: { pin: MODERN } } } : {}),
        ...(o.tasks ? { capabilities: { extensions: { [TASKS_EXTENSION]: {} } } } : {}),
      });
      const transport = new StreamableHTTPClientTransport(h.mcpUrl, { authProvider: auth });
      await client.connect(transport);
      closers.push(() => client.close());
      return { client, transport, auth };
    }

    describe('2026-07-28 (pinned: server/discover, stateless)', () => {
      it('discovers both revisions and the Tasks extension, holds no session, lists and calls', async () => {
        const { token } = await h.grant();
        const { client, transport } = await connect(token, 'modern');
        assert.equal(client.getProtocolEra(), 'modern');
        assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
        const discover = client.getDiscoverResult() as unknown as Record<string, unknown>;
        assert.deepEqual(discover.supportedVersions, [MODERN, LEGACY]);
        const caps = discover.capabilities as { tools?: unknown; extensions?: Record<string, unknown> };
        assert.deepEqual(caps.tools, {});
        assert.deepEqual(caps.extensions?.[TASKS_EXTENSION], {});
        assert.equal(typeof (discover._meta as Record<string, { name?: string }>)[META.serverInfo]?.name, 'string');
        assert.equal(discover.resultType, 'complete');
        assert.equal(transport.sessionId, undefined, 'stateless: no Mcp-Session-Id');

        const { tools } = await client.listTools();
        assert.deepEqual(tools.map((t) => t.name).sort(), GRANTED);
        const r = await client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'charged twice' } });
        assert.equal(r.isError, undefined, textOf(r));
        assert.match(textOf(r), /T-4821/);
        // The SDK's result type drops resultType; on the wire every 2026-07-28 result carries it.
        const raw = await h.modern(token, 'tools/call', { name: 'helpdesk.search_tickets', arguments: { query: 'charged twice' } });
        assert.equal(raw.body.result?.resultType, 'complete');
      });

      it("negotiation mode 'auto' probes with server/discover and picks 2026-07-28", async () => {
        const { token } = await h.grant();
        const client = new Client(CLIENT_INFO, { versionNegotiation: { mode: 'auto' } });
        await client.connect(new StreamableHTTPClientTransport(h.mcpUrl, { authProvider: { token: async () => token } }));
        closers.push(() => client.close());
        assert.equal(client.getProtocolEra(), 'modern');
        assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
        const r = await client.callTool({ name: 'everything.echo', arguments: { message: 'auto' } });
        assert.match(textOf(r), /auto/);
      });

      it('gets scope and argument refusals as isError results with the registry code', async () => {
        const { token } = await h.grant();
        const { client } = await connect(token, 'modern');
        assertRefusal(
          await client.callTool({ name: 'helpdesk.get_customer', arguments: { customerId: 'C-1010' } }),
          'RPC_CALL_DENIED',
          /get_customer[\s\S]*customerId[\s\S]*C-1009/,
        );
        assertRefusal(
          await client.callTool({ name: 'helpdesk.delete_customer', arguments: { customerId: 'C-1009' } }),
          'RPC_CALL_DENIED',
          /delete_customer/,
        );
      });

      it('keeps working when the AuthProvider hands out a new token for the same mandate', async () => {
        const { token } = await h.grant();
        const { client, auth } = await connect(token, 'modern');
        auth.current = await h.refresh(token);
        const r = await client.callTool({ name: 'everything.echo', arguments: { message: 'rotated' } });
        assert.match(textOf(r), /rotated/);
      });

      it('without the Tasks extension: an approval-required call is an isError "approval pending" result; the retry runs once approved', async () => {
        const { token, mandateId } = await h.grant();
        const { client } = await connect(token, 'modern');
        const r = await client.callTool({ name: 'helpdesk.execute_refund', arguments: { ...REFUND } });
        assert.notEqual((r as Record<string, unknown>).resultType, 'task', 'no task for a client that did not declare the extension');
        const m = assertRefusal(r, 'RPC_APPROVAL_REQUIRED', /approv/i);
        const approvalId = await h.pendingApproval(mandateId);
        assert.equal(m.approvalId, approvalId);
        await h.decide(approvalId, true);
        // The same call again, once approved: it runs.
        const done = await client.callTool({ name: 'helpdesk.execute_refund', arguments: { ...REFUND } });
        assert.equal(done.isError, undefined, textOf(done));
        assert.match(textOf(done), /"amountCents":4900/);
      });
    });

    describe('approvals as tasks (ext-tasks client on the 2.x SDK, 2026-07-28)', () => {
      async function taskSession(token: string) {
        const { client } = await connect(token, 'modern', { tasks: true });
        let id = 0;
        const session = createTaskSessionFromClient(client, {
          endpointId: 'mandate-gateway-test',
          v2RequestFraming: {
            protocolVersion: MODERN,
            clientInfo: CLIENT_INFO,
            clientCapabilities: { extensions: { [TASKS_EXTENSION]: {} } },
          },
          rawDispatch: async (request, options) => {
            const r = request as { method: string; params?: Record<string, unknown> };
            const body = { jsonrpc: '2.0' as const, id: `raw-${++id}`, method: r.method, ...(r.params ? { params: r.params } : {}) };
            const reply = await postRpc(h.mcpUrl, token, body, options?.context?.headers ?? {}, options?.signal);
            if (reply.body.error) return { kind: 'error', error: reply.body.error as never };
            if (reply.body.result === undefined) throw new Error(`no JSON-RPC response (HTTP ${reply.status})`);
            return { kind: 'result', result: reply.body.result as never };
          },
        });
        closers.push(() => session.close());
        return session;
      }

      it('returns a working task with the approval link; after approval it completes with the upstream result, forwarded once', async () => {
        const { token, mandateId } = await h.grant();
        const session = await taskSession(token);
        const execution = await session.callTool('helpdesk.execute_refund', { ...REFUND });
        assert.equal(execution.kind, 'task', 'the gateway answered with resultType "task"');
        const seen: TaskView[] = [];
        const settled = execution.settle({
          onEvent: (e) => {
            if (e.type === 'task') seen.push(e.task);
          },
        });
        const approvalId = await h.pendingApproval(mandateId);
        // Poll once ourselves (Mcp-Name = taskId) while it waits: working, link in the status message.
        const taskId = execution.kind === 'task' ? execution.handle.taskId : '';
        const waiting = await h.modern(token, 'tasks/get', { taskId }, { tasks: true });
        assert.equal(waiting.status, 200);
        assert.equal(waiting.body.result?.resultType, 'complete');
        assert.equal(waiting.body.result?.status, 'working');
        assert.match(String(waiting.body.result?.statusMessage), new RegExp(`/console/approvals/${approvalId}`));

        await h.decide(approvalId, true);
        const { outcome } = await settled;
        assert.equal(
          outcome.status,
          'completed',
          outcome.status === 'failed' ? `${outcome.error.message} ${JSON.stringify(outcome.error.data)} ${outcome.error.cause}` : '',
        );
        const result = outcome.status === 'completed' ? outcome.result : {};
        assert.equal((result as { isError?: boolean }).isError, undefined, textOf(result));
        assert.match(textOf(result), /"amountCents":4900/);
        assert.ok(seen.some((t) => t.status === 'working'));

        // Polling again returns the same result and does not forward the call again.
        const again = await h.modern(token, 'tasks/get', { taskId }, { tasks: true });
        assert.equal(again.body.result?.status, 'completed');
        assert.deepEqual(
          (again.body.result?.result as Record<string, unknown> | undefined)?.content,
          (result as Record<string, unknown>).content,
        );
        const trail = (await h.broker.audit.entriesBy('approval_id', approvalId)).map((e) => e.event.type);
        assert.equal(trail.filter((t) => t === 'approval.consumed').length, 1, trail.join(','));
        assert.equal((await h.broker.approvals.require(approvalId)).status, 'consumed');
      });

      it('a denied approval completes the task with an isError result', async () => {
        const { token, mandateId } = await h.grant();
        const session = await taskSession(token);
        const execution = await session.callTool('helpdesk.execute_refund', { ...REFUND });
        assert.equal(execution.kind, 'task');
        const settled = execution.settle();
        await h.decide(await h.pendingApproval(mandateId), false);
        const { outcome } = await settled;
        assert.equal(
          outcome.status,
          'completed',
          `a refusal is a completed task with an isError result, not a failed one${outcome.status === 'failed' ? `: ${outcome.error.message} ${outcome.error.cause}` : ''}`,
        );
        const result = outcome.status === 'completed' ? outcome.result : {};
        assert.equal((result as { isError?: boolean }).isError, true);
        assert.match(textOf(result), /denied/i);
        assert.equal(typeof refusalOf(result).code, 'string');
      });

      it('tasks/cancel withdraws the approval request; the call is never forwarded', async () => {
        const { token, mandateId } = await h.grant();
        const session = await taskSession(token);
        const execution = await session.callTool('helpdesk.execute_refund', { ...REFUND });
        assert.equal(execution.kind, 'task');
        const taskId = execution.kind === 'task' ? execution.handle.taskId : '';
        const approvalId = await h.pendingApproval(mandateId);
        await execution.cancel();
        const got = await h.modern(token, 'tasks/get', { taskId }, { tasks: true });
        assert.equal(got.body.result?.status, 'cancelled');
        assert.notEqual((await h.broker.approvals.require(approvalId)).status, 'pending');
        const late = await fetch(`${h.base}/admin/v1/approvals/${approvalId}/approve`, {
          method: 'POST',
          headers: { authorization: `Bearer ${await h.operatorToken('bob')}`, 'content-type': 'application/json' },
          body: '{}',
        });
        assert.equal(late.status, 409, 'a withdrawn approval cannot be approved');
        const trail = (await h.broker.audit.entriesBy('approval_id', approvalId)).map((e) => e.event.type);
        assert.ok(!trail.includes('approval.consumed'), trail.join(','));
      });

      it('a refreshed token of the same mandate polls the task, and polling writes no audit events', async () => {
        const { token, mandateId } = await h.grant();
        const created = await h.modern(token, 'tools/call', { name: 'helpdesk.execute_refund', arguments: { ...REFUND } }, { tasks: true });
        assert.equal(created.body.result?.resultType, 'task', JSON.stringify(created.body));
        const taskId = String(created.body.result?.taskId);
        const approvalId = await h.pendingApproval(mandateId);
        assert.match(String(created.body.result?.statusMessage), new RegExp(approvalId));
        const settle = () => new Promise((r) => setTimeout(r, 300));
        // The refresh itself is audited (a token issued for the mandate): before the baseline.
        const rotated = await h.refresh(token);
        await settle();
        const audited = async () => (await h.broker.audit.entriesBy('mandate_id', mandateId)).map((e) => e.event.type);
        const before = await audited();
        for (let i = 0; i < 10; i++) {
          const got = await h.modern(rotated, 'tasks/get', { taskId }, { tasks: true });
          assert.equal(got.body.result?.status, 'working', JSON.stringify(got.body));
        }
        await settle();
        assert.deepEqual(await audited(), before, 'ten polls, no new audit entries');
        const cancelled = await h.modern(rotated, 'tasks/cancel', { taskId }, { tasks: true });
        assert.equal(cancelled.body.result?.resultType, 'complete', JSON.stringify(cancelled.body));
      });

      it('another mandate cannot read or cancel the task; tasks/get checks Mcp-Name against the taskId', async () => {
        const { token, mandateId } = await h.grant();
        const session = await taskSession(token);
        const execution = await session.callTool('helpdesk.execute_refund', { ...REFUND });
        assert.equal(execution.kind, 'task');
        const taskId = execution.kind === 'task' ? execution.handle.taskId : '';
        await h.pendingApproval(mandateId);
        const other = await h.grant();
        const foreign = await h.modern(other.token, 'tasks/get', { taskId }, { tasks: true });
        assert.equal(foreign.body.error?.code, -32602, JSON.stringify(foreign.body));
        const cancel = await h.modern(other.token, 'tasks/cancel', { taskId }, { tasks: true });
        assert.ok(cancel.body.error, JSON.stringify(cancel.body));
        const mismatch = await h.modern(token, 'tasks/get', { taskId }, { tasks: true, headers: { 'mcp-name': 'another-task' } });
        assert.equal(mismatch.status, 400);
        assert.equal(mismatch.body.error?.code, -32020);
        // Still waiting for its own mandate.
        const own = await h.modern(token, 'tasks/get', { taskId }, { tasks: true });
        assert.equal(own.body.result?.status, 'working');
        await execution.cancel();
      });
    });

    describe('2025-11-25 (legacy handshake)', () => {
      it('initializes a session, lists, calls and reads refusals as isError results', async () => {
        const { token } = await h.grant();
        const { client, transport } = await connect(token, 'legacy');
        assert.equal(client.getProtocolEra(), 'legacy');
        assert.equal(client.getNegotiatedProtocolVersion(), LEGACY);
        assert.ok(transport.sessionId);
        assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), GRANTED);
        const r = await client.callTool({ name: 'everything.echo', arguments: { message: 'legacy two' } });
        assert.match(textOf(r), /legacy two/);
        assertRefusal(
          await client.callTool({ name: 'helpdesk.get_customer', arguments: { customerId: 'C-1010' } }),
          'RPC_CALL_DENIED',
          /get_customer[\s\S]*customerId[\s\S]*C-1009/,
        );
      });

      it('continues the same session after the AuthProvider switches to a refreshed token', async () => {
        const { token } = await h.grant();
        const { client, transport, auth } = await connect(token, 'legacy');
        const sessionId = transport.sessionId;
        auth.current = await h.refresh(token);
        const r = await client.callTool({ name: 'everything.echo', arguments: { message: 'still here' } });
        assert.match(textOf(r), /still here/);
        assert.equal(transport.sessionId, sessionId);
      });
    });
  });
}
