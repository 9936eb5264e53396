// Durable MCP tasks on both stores and across two replicas on one database: ownership (another
// mandate's or a guessed id reads as missing), the at-most-once claim, cancellation, expiry,
// crashed forwards, mandates ending, sealed arguments and results, and the wire shape.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CreateTaskInput } from '../../src/tasks/index.js';
import { taskError } from '../../src/tasks/index.js';
import { fakeClock, testSecrets } from '../audit/helpers.js';
import { closeReplica, databases, openReplica, type Replica } from './helpers.js';

const SECRET_ARG = 'IBAN-DE89-3704-0044-0532-0130-00-secret';
const SECRET_RESULT = 'refund-confirmation-7731-secret';

for (const db of await databases()) {
  describe(`tasks (${db.name})`, { skip: db.skip }, () => {
    const clock = fakeClock();
    const secrets = testSecrets();
    let a: Replica;
    let b: Replica;
    let n = 0;

    const input = (over: Partial<CreateTaskInput> = {}): CreateTaskInput => ({
      mandateId: `m-${++n}`,
      approvalId: `apr-${n}`,
      callHash: `h-${n}`,
      tool: 'helpdesk.execute_refund',
      args: { customerId: 'C-1009', amountCents: 4900, iban: SECRET_ARG },
      statusMessage: 'Waiting for approval apr: https://mandate.example/console/approvals/apr',
      ...over,
    });

    before(async () => {
      a = await openReplica(db, clock, secrets, { replicaId: 'replica-a' });
      b = await openReplica(db, clock, secrets, { replicaId: 'replica-b' });
    });
    after(async () => {
      await closeReplica(a);
      await closeReplica(b);
      await db.cleanup();
    });

    it('creates a working task that the other replica reads at once, in the extension wire shape', async () => {
      const req = input();
      const task = await a.tasks.create(req);
      assert.match(task.id, /^task_[A-Za-z0-9_-]{43}$/, '256 random bits, base64url');
      assert.equal(task.status, 'working');
      const seen = await b.tasks.get(task.id, req.mandateId);
      assert.ok(seen, 'committed before create() resolved: any replica resolves tasks/get');
      assert.deepEqual(b.tasks.toWire(seen, 'task'), {
        resultType: 'task',
        taskId: task.id,
        status: 'working',
        statusMessage: req.statusMessage,
        createdAt: new Date(clock.now()).toISOString(),
        lastUpdatedAt: new Date(clock.now()).toISOString(),
        ttlMs: 60_000,
        pollIntervalMs: 2000,
      });
      assert.equal(b.tasks.toWire(seen, 'complete').resultType, 'complete');
      assert.equal('resultType' in b.tasks.toWire(seen), false, 'notification params carry no resultType');
    });

    it("answers undefined for another mandate's task, a guessed id and hostile ids, exactly as for a missing one", async () => {
      const req = input();
      const task = await a.tasks.create(req);
      assert.equal(await b.tasks.get(task.id, 'm-other'), undefined);
      assert.equal(await b.tasks.claim(task.id, 'm-other'), undefined);
      assert.equal(await b.tasks.cancel(task.id, 'm-other'), undefined);
      const flipped = `${task.id.slice(0, -1)}${task.id.endsWith('A') ? 'B' : 'A'}`;
      for (const guess of [flipped, 'task_', '', 'task_%', `${task.id}'--`, `${task.id} OR 1=1`, 'x'.repeat(100_000)]) {
        assert.equal(await b.tasks.get(guess, req.mandateId), undefined, guess.slice(0, 40));
        assert.equal(await b.tasks.claim(guess, req.mandateId), undefined);
      }
      // Still intact for its owner: the refusals changed nothing.
      assert.equal((await a.tasks.get(task.id, req.mandateId))?.status, 'working');
      const ids = new Set(await Promise.all(Array.from({ length: 20 }, () => a.tasks.create(input()).then((t) => t.id))));
      assert.equal(ids.size, 20);
    });

    it('is claimed by exactly one of many concurrent requests spread over two replicas, and only that one gets the arguments', async () => {
      const req = input();
      const task = await a.tasks.create(req);
      const claims = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).tasks.claim(task.id, req.mandateId)));
      const winners = claims.filter((c) => c !== undefined);
      assert.equal(winners.length, 1);
      assert.deepEqual(winners[0]?.args, req.args);
      const forwarding = await a.tasks.get(task.id, req.mandateId);
      assert.equal(forwarding?.status, 'forwarding');
      assert.ok(forwarding?.claimedBy === 'replica-a' || forwarding?.claimedBy === 'replica-b');
      assert.equal(a.tasks.toWire(forwarding ?? task).status, 'working', 'the claim is internal; clients see working');
      // A cancel arriving while the call is forwarded does not stop it (cooperative cancellation).
      const cancel = await b.tasks.cancel(task.id, req.mandateId);
      assert.equal(cancel?.cancelledNow, false);
      assert.equal(cancel?.status, 'forwarding');

      const result = { content: [{ type: 'text', text: SECRET_RESULT }], isError: false };
      assert.equal(await b.tasks.complete(task.id, result), true);
      assert.equal(await a.tasks.complete(task.id, { content: [], isError: true }), false, 'a result is recorded once');
      const done = await a.tasks.get(task.id, req.mandateId);
      assert.equal(done?.status, 'completed');
      const wire = a.tasks.toWire(done ?? task, 'complete');
      assert.deepEqual(wire.result, result);
      assert.equal(wire.status, 'completed');
      assert.equal(await a.tasks.claim(task.id, req.mandateId), undefined, 'an ended task is never claimed again');
    });

    it('cancels only a waiting task, once; a cancelled task cannot be claimed or completed', async () => {
      const req = input();
      const task = await a.tasks.create(req);
      const [first, second] = await Promise.all([a.tasks.cancel(task.id, req.mandateId), b.tasks.cancel(task.id, req.mandateId)]);
      assert.equal([first?.cancelledNow, second?.cancelledNow].filter(Boolean).length, 1, 'two replicas, one cancellation');
      assert.equal(first?.status, 'cancelled');
      assert.equal(second?.status, 'cancelled');
      assert.equal(await b.tasks.claim(task.id, req.mandateId), undefined);
      assert.equal(await a.tasks.complete(task.id, { content: [], isError: false }), false);
      assert.equal(await a.tasks.fail(task.id, taskError('RPC_INTERNAL_ERROR', 'x'), 'x'), false);
      const wire = a.tasks.toWire((await a.tasks.get(task.id, req.mandateId)) ?? task, 'complete');
      assert.equal(wire.status, 'cancelled');
      assert.equal('result' in wire || 'error' in wire, false);
    });

    it('races cancel against claim on two replicas: exactly one wins', async () => {
      for (let i = 0; i < 5; i++) {
        const req = input();
        const task = await a.tasks.create(req);
        const [claim, cancel] = await Promise.all([a.tasks.claim(task.id, req.mandateId), b.tasks.cancel(task.id, req.mandateId)]);
        assert.equal(Number(claim !== undefined) + Number(cancel?.cancelledNow === true), 1);
      }
    });

    it('completes a waiting task without forwarding (a denial) and fails one with a JSON-RPC error', async () => {
      const denied = input();
      const t1 = await a.tasks.create(denied);
      const refusal = { content: [{ type: 'text', text: 'Denied by carol' }], isError: true };
      assert.equal(await b.tasks.complete(t1.id, refusal, 'Denied by a human.'), true);
      const d = await a.tasks.get(t1.id, denied.mandateId);
      assert.equal(d?.status, 'completed');
      assert.equal(d?.statusMessage, 'Denied by a human.');
      assert.deepEqual(d?.result, refusal);

      const broken = input();
      const t2 = await a.tasks.create(broken);
      assert.ok(await a.tasks.claim(t2.id, broken.mandateId));
      const error = taskError('RPC_INTERNAL_ERROR', 'upstream broke the protocol');
      assert.equal(await b.tasks.fail(t2.id, error, 'Upstream failed.'), true);
      const wire = a.tasks.toWire((await a.tasks.get(t2.id, broken.mandateId)) ?? t2, 'complete');
      assert.equal(wire.status, 'failed');
      assert.deepEqual(wire.error, { code: -32603, message: 'upstream broke the protocol', data: { code: 'RPC_INTERNAL_ERROR' } });
      assert.equal('result' in wire, false);
    });

    it('never stores the arguments or the result in clear', async () => {
      const req = input();
      const task = await a.tasks.create(req);
      await a.tasks.claim(task.id, req.mandateId);
      await a.tasks.complete(task.id, { content: [{ type: 'text', text: SECRET_RESULT }], isError: false });
      const rows = await a.store.query<Record<string, unknown>>('SELECT * FROM tasks WHERE id = ?', [task.id]);
      const dump = JSON.stringify(rows);
      assert.ok(dump.includes(task.id));
      assert.equal(dump.includes(SECRET_ARG), false);
      assert.equal(dump.includes(SECRET_RESULT), false);
      assert.equal(dump.includes('C-1009'), false);
      if (db.file !== undefined) {
        // The bytes on disk: the database file and its write-ahead log.
        const dir = dirname(db.file);
        for (const f of readdirSync(dir)) {
          const bytes = readFileSync(join(dir, f));
          assert.equal(bytes.includes(SECRET_ARG), false, f);
          assert.equal(bytes.includes(SECRET_RESULT), false, f);
        }
      }
      // Sealed values are bound to their task: moved onto another row, they do not open.
      const other = await a.tasks.create(input());
      const [row] = await a.store.query<{ args_sealed: string; mandate_id: string }>(
        'SELECT args_sealed, mandate_id FROM tasks WHERE id = ?',
        [task.id],
      );
      await a.store.run('UPDATE tasks SET args_sealed = ? WHERE id = ?', [row?.args_sealed ?? '', other.id]);
      await assert.rejects(a.tasks.claim(other.id, other.mandateId), { code: 'ERR_SECRET_UNDECRYPTABLE' });
      const refused = await a.tasks.get(other.id, other.mandateId);
      assert.equal(refused?.status, 'failed', 'ended at once, not left claimed');
      assert.equal(refused?.error?.data?.code, 'RPC_INTERNAL_ERROR');
    });

    it('reads a waiting task past its TTL as failed (RPC_TASK_EXPIRED), never claims it, and the sweep records it once', async () => {
      const req = input({ ttlMs: 60_000 });
      const task = await a.tasks.create(req);
      clock.advance(60_001);
      const seen = await b.tasks.get(task.id, req.mandateId);
      assert.equal(seen?.status, 'failed');
      assert.equal(seen?.error?.code, -32014);
      assert.equal(seen?.error?.data?.code, 'RPC_TASK_EXPIRED');
      assert.equal(await a.tasks.claim(task.id, req.mandateId), undefined);
      assert.equal((await a.tasks.cancel(task.id, req.mandateId))?.cancelledNow, false);
      assert.equal(await a.tasks.complete(task.id, { content: [], isError: false }), false);
      const [ra, rb] = await Promise.all([a.tasks.sweep(), b.tasks.sweep()]);
      assert.ok(ra.expired + rb.expired >= 1);
      const again = await a.tasks.sweep();
      assert.equal(again.expired, 0);
      const events = await a.audit.entriesBy('mandate_id', req.mandateId);
      assert.deepEqual(
        events.map((e) => [e.event.type, e.event.data.reason]),
        [['task.ended', 'expired']],
        'one event across two replicas sweeping at once',
      );
      const [raw] = await a.store.query<{ status: string }>('SELECT status FROM tasks WHERE id = ?', [task.id]);
      assert.equal(raw?.status, 'failed');
    });

    it('stretches the TTL to cover a claim taken near its end', async () => {
      const req = input({ ttlMs: 60_000 });
      const task = await a.tasks.create(req);
      clock.advance(59_000);
      const claimed = await a.tasks.claim(task.id, req.mandateId, { forwardTimeoutMs: 10_000 });
      assert.ok(claimed);
      assert.equal(claimed.task.ttlMs, 59_000 + 20_000);
      clock.advance(5_000);
      assert.equal((await a.tasks.get(task.id, req.mandateId))?.status, 'forwarding', 'past the original TTL, still forwarding');
      assert.equal(await a.tasks.complete(task.id, { content: [], isError: false }), true);
    });

    it('never forwards twice: a claim that outlives its bound ends the task failed (outcome unknown)', async () => {
      const req = input();
      const task = await a.tasks.create(req);
      assert.ok(await a.tasks.claim(task.id, req.mandateId, { forwardTimeoutMs: 1000 }));
      // Replica A "crashes" here. B sees the task as working until the bound, then as failed.
      clock.advance(1999);
      assert.equal((await b.tasks.get(task.id, req.mandateId))?.status, 'forwarding');
      assert.equal(await b.tasks.claim(task.id, req.mandateId), undefined);
      clock.advance(2);
      const seen = await b.tasks.get(task.id, req.mandateId);
      assert.equal(seen?.status, 'failed');
      assert.equal(seen?.error?.data?.code, 'RPC_TASK_OUTCOME_UNKNOWN');
      assert.equal(seen?.error?.data?.replica, 'replica-a');
      assert.equal(await b.tasks.claim(task.id, req.mandateId), undefined, 'a stale claim is never re-taken');
      assert.ok((await b.tasks.sweep()).abandoned >= 1);
      const [raw] = await a.store.query<{ status: string }>('SELECT status FROM tasks WHERE id = ?', [task.id]);
      assert.equal(raw?.status, 'failed', 'recorded by the sweep');
      assert.equal(await a.tasks.complete(task.id, { content: [], isError: false }), false, 'a late result after the bound is refused');
      assert.equal((await a.tasks.get(task.id, req.mandateId))?.status, 'failed');
    });

    it('cancels the waiting tasks of a mandate that ends, on the change or by the sweep', async () => {
      const req = input();
      const waiting = await a.tasks.create(req);
      const forwarding = await a.tasks.create({ ...input(), mandateId: req.mandateId });
      assert.ok(await a.tasks.claim(forwarding.id, req.mandateId));
      const other = await a.tasks.create(input());
      // The mandate service publishes this when a mandate is revoked (with its descendants in ids).
      await a.store.transaction((tx) => a.changes.publish(tx, 'mandate', req.mandateId, { status: 'revoked', ids: [req.mandateId] }));
      await Promise.all([a.changes.catchUp(), b.changes.catchUp()]);
      const ended = await a.tasks.get(waiting.id, req.mandateId);
      assert.equal(ended?.status, 'cancelled');
      assert.match(ended?.statusMessage ?? '', /revoked/);
      assert.equal((await a.tasks.get(forwarding.id, req.mandateId))?.status, 'forwarding', 'a call in flight finishes');
      assert.equal((await a.tasks.get(other.id, other.mandateId))?.status, 'working');
      const events = await a.audit.entriesBy('mandate_id', req.mandateId);
      assert.equal(events.filter((e) => e.event.type === 'task.ended').length, 1, 'both replicas saw the change; one event');

      // A replica that missed the change (down at the time): the sweep finds it in the store.
      const missed = input();
      const t = await a.tasks.create(missed);
      await a.store.run(
        `INSERT INTO mandates (id, agent_id, parent_id, root_id, path, depth, on_behalf_of, purpose, task_type, environment, scope, status, expires_at, created_at)
         VALUES (?, 'agent', NULL, ?, ?, 0, NULL, 'p', 't', 'production', '{}', 'completed', ?, ?)`,
        [missed.mandateId, missed.mandateId, `/${missed.mandateId}/`, clock.now() + 60_000, clock.now()],
      );
      assert.equal((await b.tasks.sweep()).mandateEnded, 1);
      assert.equal((await a.tasks.get(t.id, missed.mandateId))?.status, 'cancelled');
    });

    it('deletes ended tasks after TTL + retention, and only those', async () => {
      const ended = input({ ttlMs: 60_000 });
      const t1 = await a.tasks.create(ended);
      await a.tasks.cancel(t1.id, ended.mandateId);
      const waiting = input({ ttlMs: 10 * 3_600_000 });
      const t2 = await a.tasks.create(waiting);
      clock.advance(60_000 + 3_600_000 - 1);
      await a.tasks.sweep();
      assert.equal((await a.tasks.get(t1.id, ended.mandateId))?.status, 'cancelled', 'kept through retention');
      clock.advance(2);
      assert.ok((await a.tasks.sweep()).deleted >= 1);
      assert.equal(await a.tasks.get(t1.id, ended.mandateId), undefined);
      assert.equal((await a.tasks.get(t2.id, waiting.mandateId))?.status, 'working');
    });

    it('finds the waiting task of an approval for its mandate only', async () => {
      const req = input();
      const task = await a.tasks.create(req);
      assert.equal((await b.tasks.findByApproval(req.approvalId, req.mandateId))?.id, task.id);
      assert.equal(await b.tasks.findByApproval(req.approvalId, 'm-other'), undefined);
      await a.tasks.cancel(task.id, req.mandateId);
      assert.equal(await b.tasks.findByApproval(req.approvalId, req.mandateId), undefined);
    });

    it('gives a task at least the configured TTL, longer when asked', async () => {
      assert.equal((await a.tasks.create(input({ ttlMs: 1000 }))).ttlMs, 60_000);
      assert.equal((await a.tasks.create(input({ ttlMs: 0 }))).ttlMs, 60_000);
      assert.equal((await a.tasks.create(input({ ttlMs: 3_600_000 }))).ttlMs, 3_600_000);
    });

    it('gives a task at least the approval lifetime plus twice the forward timeout', () => {
      assert.equal(a.tasks.ttlFor(clock.now() + 1000, 1000), 60_000, 'the configured TTL when it is longer');
      assert.equal(a.tasks.ttlFor(clock.now() + 7 * 86_400_000, 30_000), 7 * 86_400_000 + 60_000);
    });
  });
}
