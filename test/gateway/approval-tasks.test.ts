// Approvals as MCP tasks (Tasks extension, SEP-2663) through /mcp on both stores, over raw
// 2026-07-28 requests: an approval-required call becomes a durable task; tasks/get reports it;
// once approved the call is forwarded exactly once and the task completes with the upstream
// result; denied or expired completes with isError; tasks/cancel withdraws the request; a task is only
// visible to its mandate. And the retry flow of clients without the extension: a retry of a
// pending call writes nothing to the audit log, a retry after a denial says it was denied.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fakeClock } from '../audit/helpers.js';
import { storeFactories } from '../helpers/stores.js';
import { type GatewayHarness, modernRequest, startGateway } from './harness.js';

const TASKS = { extensions: { 'io.modelcontextprotocol/tasks': {} } };
const REFUND = 'helpdesk.execute_refund';

type Result = Record<string, unknown> & {
  isError?: boolean;
  content?: { text?: string }[];
  _meta?: Record<string, Record<string, unknown>>;
};

for (const factory of await storeFactories()) {
  // The skip is only the PostgreSQL half on a machine where PostgreSQL is unreachable, and it carries that
  // reason ("PostgreSQL unreachable at …", test/helpers/stores.ts); under CI (CI set) it never skips: it fails.
  describe(`approvals as MCP tasks (${factory.name})`, { skip: factory.skip }, () => {
    let h: GatewayHarness;
    let bob: string;
    let id = 0;

    /** One 2026-07-28 request; returns the JSON-RPC result, or throws with the error. */
    const rpc = async (
      token: string,
      method: string,
      params: Record<string, unknown>,
      capabilities: Record<string, unknown> = TASKS,
      gateway: GatewayHarness = h,
    ) => {
      const res = await modernRequest(gateway.mcpUrl, token, method, params, capabilities, ++id);
      const body = (await res.json()) as { result?: Result; error?: { code: number; data?: { code?: string } } };
      if (body.error !== undefined) throw Object.assign(new Error(JSON.stringify(body.error)), { rpc: body.error });
      return body.result as Result;
    };

    const decision = (approvalId: string, verdict: 'approve' | 'deny', note = 'checked', gateway = h, operator = bob) =>
      fetch(`${gateway.base}/admin/v1/approvals/${approvalId}/${verdict}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
        body: JSON.stringify({ note }),
      });
    const decide = async (approvalId: string, verdict: 'approve' | 'deny', note = 'checked') => {
      const res = await decision(approvalId, verdict, note);
      assert.equal(res.status, 200, await res.text());
    };

    const refundMandate = () => h.mandate([{ tool: REFUND, args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } }]);

    before(async () => {
      h = await startGateway({ store: await factory.open() });
      bob = await h.operatorToken('bob');
    });
    after(async () => {
      await h.close();
      await factory.cleanup();
    });

    it('turns an approval-required call into a task that completes with the upstream result once approved, forwarded once', async () => {
      const { token, mandateId } = await refundMandate();
      const args = { customerId: 'C-1009', amountCents: 4900 };
      const created = await rpc(token, 'tools/call', { name: REFUND, arguments: args });
      assert.equal(created.resultType, 'task', JSON.stringify(created));
      assert.equal(created.status, 'working');
      assert.match(String(created.taskId), /^task_[\w-]{40,}$/);
      assert.match(String(created.statusMessage), /\/console\/approvals\/apr_/);
      assert.equal(typeof created.pollIntervalMs, 'number');
      const taskId = created.taskId as string;
      const approvalId = /approvals\/(apr_[\w-]+)/.exec(String(created.statusMessage))?.[1] as string;

      // Polling while nobody decided: still working, nothing forwarded.
      const waiting = await rpc(token, 'tasks/get', { taskId });
      assert.equal(waiting.resultType, 'complete');
      assert.equal(waiting.status, 'working');
      // The same call again (a Tasks client retrying) gets the same task, not a second approval.
      const again = await rpc(token, 'tools/call', { name: REFUND, arguments: args });
      assert.equal(again.taskId, taskId);

      await decide(approvalId, 'approve', 'duplicate charge confirmed');
      // Two polls at once: one forwards, the other sees working or the outcome; the call runs once.
      // (Several at once: a poll that read the approval after another consumed it must not record a refusal.)
      const polls = await Promise.all([1, 2, 3, 4, 5].map(() => rpc(token, 'tasks/get', { taskId })));
      let done = polls.find((t) => t.status === 'completed') ?? (await rpc(token, 'tasks/get', { taskId }));
      for (let i = 0; done.status === 'working' && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 20));
        done = await rpc(token, 'tasks/get', { taskId });
      }
      assert.equal(done.status, 'completed', JSON.stringify(done));
      const result = done.result as Result;
      assert.equal(result.isError, undefined, JSON.stringify(result));
      assert.match(result.content?.[0]?.text ?? '', /"amountCents":4900/);
      const final = await rpc(token, 'tasks/get', { taskId });
      assert.deepEqual(final.result, done.result, 'a finished task keeps its result');
      const results = await h.broker.audit.entriesBy('mandate_id', mandateId, { types: ['tool.result'] });
      assert.equal(results.filter((e) => e.event.data.tool === REFUND).length, 1, 'forwarded exactly once');
      assert.equal((await h.broker.approvals.require(approvalId)).status, 'consumed');
    });

    it('completes a denied task with an isError result naming the denial, and never forwards it', async () => {
      const { token, mandateId } = await refundMandate();
      const created = await rpc(token, 'tools/call', { name: REFUND, arguments: { customerId: 'C-1009', amountCents: 5000 } });
      const approvalId = /approvals\/(apr_[\w-]+)/.exec(String(created.statusMessage))?.[1] as string;
      await decide(approvalId, 'deny', 'not a duplicate');
      const done = await rpc(token, 'tasks/get', { taskId: created.taskId as string });
      assert.equal(done.status, 'completed');
      const result = done.result as Result;
      assert.equal(result.isError, true);
      assert.match(result.content?.[0]?.text ?? '', /denied.*not a duplicate/);
      assert.equal(result._meta?.['mandate/error']?.code, 'RPC_APPROVAL_DENIED');
      const results = await h.broker.audit.entriesBy('mandate_id', mandateId, { types: ['tool.result'] });
      assert.equal(results.length, 0);
    });

    it('completes a task whose approval expired unanswered with an isError result (RPC_APPROVAL_EXPIRED), never forwarded', async () => {
      // A broker of its own on a clock the test moves, with approvals that live 10 s (and a change
      // feed that may look 60 s stale: the moved clock is not a replica falling behind).
      const clock = fakeClock(Date.now());
      const gw = await startGateway({
        store: await factory.open(),
        clock,
        config: { gateway: { approvals: { ttlSeconds: 10 } }, changes: { maxStalenessMs: 60_000 } },
      });
      try {
        const { token, mandateId } = await gw.mandate([
          { tool: REFUND, args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } },
        ]);
        const created = await rpc(token, 'tools/call', { name: REFUND, arguments: { customerId: 'C-1009', amountCents: 5200 } }, TASKS, gw);
        assert.equal(created.status, 'working', JSON.stringify(created));
        const taskId = created.taskId as string;
        const approvalId = /approvals\/(apr_[\w-]+)/.exec(String(created.statusMessage))?.[1] as string;
        clock.advance(9_000);
        assert.equal((await rpc(token, 'tasks/get', { taskId }, TASKS, gw)).status, 'working', 'still waiting within the approval TTL');
        clock.advance(2_000);
        const done = await rpc(token, 'tasks/get', { taskId }, TASKS, gw);
        assert.equal(done.status, 'completed', JSON.stringify(done));
        const result = done.result as Result;
        assert.equal(result.isError, true);
        assert.equal(result._meta?.['mandate/error']?.code, 'RPC_APPROVAL_EXPIRED');
        assert.match(result.content?.[0]?.text ?? '', /was not run: its approval is expired/);
        // Too late for a human: the expired approval allows nothing, and nothing was forwarded.
        const late = await decision(approvalId, 'approve', 'sorry, late', gw, await gw.operatorToken('bob'));
        assert.equal(late.status, 409, await late.text());
        assert.equal((await rpc(token, 'tasks/get', { taskId }, TASKS, gw)).status, 'completed');
        assert.equal((await gw.broker.audit.entriesBy('mandate_id', mandateId, { types: ['tool.result'] })).length, 0);
      } finally {
        await gw.close();
      }
    });

    it('cancels a waiting task, withdraws its approval, and refuses to run it after a late approval', async () => {
      const { token, mandateId } = await refundMandate();
      const created = await rpc(token, 'tools/call', { name: REFUND, arguments: { customerId: 'C-1009', amountCents: 5100 } });
      const taskId = created.taskId as string;
      const approvalId = /approvals\/(apr_[\w-]+)/.exec(String(created.statusMessage))?.[1] as string;
      const ack = await rpc(token, 'tasks/cancel', { taskId });
      assert.equal(ack.resultType, 'complete');
      assert.deepEqual(Object.keys(ack).sort(), ['_meta', 'resultType'], 'an empty acknowledgement');
      // Cancelling again is acknowledged too, and changes nothing.
      assert.equal((await rpc(token, 'tasks/cancel', { taskId })).resultType, 'complete');
      assert.equal((await rpc(token, 'tasks/get', { taskId })).status, 'cancelled');
      assert.equal((await h.broker.approvals.require(approvalId)).status, 'withdrawn');
      const late = await fetch(`${h.base}/admin/v1/approvals/${approvalId}/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(late.status, 409);
      assert.equal((await rpc(token, 'tasks/get', { taskId })).status, 'cancelled');
      assert.equal((await h.broker.audit.entriesBy('mandate_id', mandateId, { types: ['tool.result'] })).length, 0);
    });

    it('shows a task only to its mandate, and refuses tasks/* to a client without the extension', async () => {
      const { token } = await refundMandate();
      const created = await rpc(token, 'tools/call', { name: REFUND, arguments: { customerId: 'C-1009', amountCents: 5200 } });
      const taskId = created.taskId as string;
      const other = await refundMandate();
      await assert.rejects(rpc(other.token, 'tasks/get', { taskId }), (err: { rpc?: { code: number; data?: { code?: string } } }) => {
        assert.equal(err.rpc?.code, -32602);
        assert.equal(err.rpc?.data?.code, 'RPC_TASK_NOT_FOUND');
        return true;
      });
      await assert.rejects(rpc(other.token, 'tasks/cancel', { taskId }), /RPC_TASK_NOT_FOUND/);
      assert.equal((await rpc(token, 'tasks/get', { taskId })).status, 'working', 'a foreign cancel changed nothing');
      await assert.rejects(rpc(token, 'tasks/get', { taskId }, {}), /RPC_MISSING_CLIENT_CAPABILITY/);
      // Without the extension, the same kind of call gets the retry-the-same-call result, never a task.
      const plain = await rpc(token, 'tools/call', { name: REFUND, arguments: { customerId: 'C-1009', amountCents: 5300 } }, {});
      assert.equal(plain.resultType, 'complete');
      assert.equal(plain.isError, true);
      assert.equal(plain._meta?.['mandate/error']?.code, 'RPC_APPROVAL_REQUIRED');
    });

    it('withdraws the open approvals of a mandate that ends, so nobody approves a call that can no longer run', async () => {
      const { token, mandateId } = await refundMandate();
      const first = await rpc(token, 'tools/call', { name: REFUND, arguments: { customerId: 'C-1009', amountCents: 5500 } }, {});
      const approvalId = first._meta?.['mandate/error']?.approvalId as string;
      await h.broker.mandates.end(mandateId, 'completed', { type: 'agent', id: 'gateway-tester' });
      // Withdrawn (the status), then audited (the event is appended right after the update).
      const withdrawals = () => h.broker.audit.entriesBy('approval_id', approvalId, { types: ['approval.withdrawn'] });
      const end = Date.now() + 5000;
      while ((await h.broker.approvals.require(approvalId)).status !== 'withdrawn' || (await withdrawals()).length === 0) {
        assert.ok(Date.now() < end, 'the approval was not withdrawn');
        await new Promise((r) => setTimeout(r, 25));
      }
      const late = await fetch(`${h.base}/admin/v1/approvals/${approvalId}/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(late.status, 409);
      const trail = await withdrawals();
      assert.equal(trail.length, 1, 'withdrawn once');
      assert.equal(trail[0]?.event.data.reason, 'mandate completed');
    });

    it('writes nothing to the audit log for a retry of a pending call, and says so when a human denied it', async () => {
      const { token, mandateId } = await refundMandate();
      const args = { customerId: 'C-1009', amountCents: 5400 };
      const first = await rpc(token, 'tools/call', { name: REFUND, arguments: args }, {});
      const approvalId = first._meta?.['mandate/error']?.approvalId as string;
      const count = async () => (await h.broker.audit.entriesBy('mandate_id', mandateId)).length;
      const before = await count();
      for (let i = 0; i < 5; i++) {
        const retry = await rpc(token, 'tools/call', { name: REFUND, arguments: args }, {});
        assert.equal(retry._meta?.['mandate/error']?.approvalId, approvalId);
      }
      assert.equal(await count(), before, 'five retries of a pending call, no new audit event');
      await decide(approvalId, 'deny', 'wrong customer');
      const denied = await rpc(token, 'tools/call', { name: REFUND, arguments: args }, {});
      assert.equal(denied.isError, true);
      assert.equal(denied._meta?.['mandate/error']?.code, 'RPC_APPROVAL_DENIED');
      assert.match(denied.content?.[0]?.text ?? '', /^Refused: approval apr_\S+ of this exact call was denied by bob.*wrong customer/);
      const open = await h.broker.approvals.list({ status: 'pending' });
      assert.equal(open.filter((a) => a.mandateId === mandateId).length, 0, 'no new approval request after a denial');
    });
  });
}
