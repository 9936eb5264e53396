// Approvals (src/approvals/service.ts) and the call hash (src/approvals/call-hash.ts), rule by
// rule: who may decide (identified human, not the chain, required role actually held), which
// approvals are usable, expiry on the injected clock, audit events and notifications with their
// exact contents. Real SQLite store, audit log and change feed; the notifier records in memory.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { ApprovalContext } from '../../src/approvals/approval.js';
import { callHash } from '../../src/approvals/call-hash.js';
import type { ApprovalNotification } from '../../src/approvals/notifier.js';
import { APPROVAL_TOPIC, type ApprovalRequest, ApprovalService, type Approver } from '../../src/approvals/service.js';
import type { AuditService } from '../../src/audit/log.js';
import { ChangeFeed } from '../../src/store/changes.js';
import type { Store } from '../../src/store/types.js';
import { openAudit, testSecrets } from '../audit/helpers.js';
import { sqliteFactory } from '../helpers/stores.js';
import { movableClock, rejectsWith, throwsWith } from './helpers.js';

const TTL = 60_000;
const BASE_URL = 'https://mandate.example/console/approvals/';
const human = (id: string, roles: string[], via: Approver['via'] = 'oidc'): Approver => ({ id, name: id, roles, via });

const factory = sqliteFactory();
const clock = movableClock();
let store: Store;
let changes: ChangeFeed;
let audit: AuditService;
let service: ApprovalService;
const notes: ApprovalNotification[] = [];
const published: string[] = [];
const inactive = new Set<string>();
let n = 0;

function request(over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  const mandateId = over.mandateId ?? `m-${++n}`;
  const args = { customerId: 'C-1009', amountCents: 4900 + n };
  return {
    callHash: callHash({ mandateId, tool: 'helpdesk.execute_refund', args }),
    mandateId,
    tool: 'helpdesk.execute_refund',
    agentId: 'triage',
    onBehalfOf: 'dana',
    requiredRoles: ['support-lead', 'finance'],
    forbiddenApprovers: ['triage', 'dana'],
    decisionId: `d-${n}`,
    reasons: ['needs-approval'],
    context: { purpose: `refund ${n}`, args } as unknown as ApprovalContext,
    environment: 'production',
    actors: [{ type: 'agent', id: 'triage' }],
    ...over,
  };
}

function newService(over: { isMandateActive?: ((id: string) => Promise<boolean>) | null } = {}) {
  return new ApprovalService({
    store,
    clock,
    audit,
    changes,
    notifier: { notify: async (note) => void notes.push(note) },
    ttlMs: TTL,
    consoleBaseUrl: BASE_URL,
    actorTypeOf: async (id) => (id === 'triage' ? 'agent' : id === 'svc' ? 'service' : id === 'ghost' ? undefined : 'human'),
    ...(over.isMandateActive === null ? {} : { isMandateActive: over.isMandateActive ?? (async (id) => !inactive.has(id)) }),
  });
}

const types = async (approvalId: string) => (await audit.entriesBy('approval_id', approvalId)).map((e) => e.event.type);
const notAllowed = (p: Promise<unknown>, message: RegExp) => rejectsWith(p, 'ERR_APPROVER_NOT_ALLOWED', message);

before(async () => {
  store = await factory.open();
  changes = new ChangeFeed(store, { clock, pollIntervalMs: 60_000 });
  await changes.start();
  // The topic by its literal name: replicas subscribe to 'approval', whatever the constant says.
  changes.subscribe('approval', (c) => void published.push(c.key));
  audit = await openAudit(store, testSecrets(), clock);
  service = newService();
});
after(async () => {
  await audit.close();
  await changes.stop();
  await factory.cleanup();
});

describe('call hash', () => {
  test('is the hex SHA-256 of the RFC 8785 form of { mandateId, tool, args }', () => {
    const canonical = '{"args":{"a":1,"b":[true,"x"]},"mandateId":"m1","tool":"t.x"}';
    const expected = createHash('sha256').update(canonical).digest('hex');
    assert.equal(callHash({ mandateId: 'm1', tool: 't.x', args: { b: [true, 'x'], a: 1 } }), expected);
  });

  test('the change topic is named approval', () => {
    assert.equal(APPROVAL_TOPIC, 'approval');
  });

  test('arguments JSON cannot represent (NaN, Infinity, BigInt) are refused as invalid params, not a crash', () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 10n]) {
      throwsWith(
        () => callHash({ mandateId: 'm', tool: 't', args: { value } }),
        'RPC_INVALID_PARAMS',
        /^the tool arguments are not representable as canonical JSON$/,
      );
    }
  });

  test('attack: any difference in mandate, tool or an argument gives another hash', () => {
    const h = callHash({ mandateId: 'm1', tool: 't', args: { a: 1 } });
    assert.notEqual(callHash({ mandateId: 'm2', tool: 't', args: { a: 1 } }), h);
    assert.notEqual(callHash({ mandateId: 'm1', tool: 'u', args: { a: 1 } }), h);
    assert.notEqual(callHash({ mandateId: 'm1', tool: 't', args: { a: '1' } }), h);
  });
});

describe('requesting', () => {
  test('creates a pending approval with every field, audits it, publishes it and notifies with a summary', async () => {
    const req = request();
    notes.length = 0;
    published.length = 0;
    const { approval, created } = await service.request(req);
    assert.equal(created, true);
    assert.match(approval.id, /^apr_[0-9a-f-]{36}$/);
    assert.deepEqual(
      { ...approval, id: 'x' },
      {
        id: 'x',
        callHash: req.callHash,
        mandateId: req.mandateId,
        tool: req.tool,
        agentId: 'triage',
        onBehalfOf: 'dana',
        status: 'pending',
        requiredRoles: ['support-lead', 'finance'],
        forbiddenApprovers: ['triage', 'dana'],
        decisionId: req.decisionId,
        reasons: ['needs-approval'],
        context: req.context,
        decidedBy: undefined,
        decidedRole: undefined,
        decidedNote: undefined,
        createdAt: clock.now(),
        expiresAt: clock.now() + TTL,
        decidedAt: undefined,
        consumedAt: undefined,
      },
    );
    const [entry] = await audit.entriesBy('approval_id', approval.id);
    assert.equal(entry?.event.type, 'approval.requested');
    assert.equal(entry?.event.mandateId, req.mandateId);
    assert.deepEqual(entry?.event.actors, req.actors);
    assert.deepEqual(entry?.event.data, {
      approvalId: approval.id,
      decisionId: req.decisionId,
      tool: req.tool,
      callHash: req.callHash,
      requiredRoles: req.requiredRoles,
      expiresAt: clock.now() + TTL,
    });
    assert.deepEqual(published, [approval.id]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(notes, [
      {
        type: 'approval.requested',
        sentAt: clock.now(),
        approval: {
          id: approval.id,
          status: 'pending',
          tool: req.tool,
          mandateId: req.mandateId,
          agentId: 'triage',
          onBehalfOf: 'dana',
          purpose: req.context.purpose,
          reasons: ['needs-approval'],
          requiredRoles: ['support-lead', 'finance'],
          decidedBy: null,
          expiresAt: clock.now() + TTL,
          url: `${BASE_URL}${approval.id}`,
        },
      },
    ]);
  });

  test('a repeated call returns the pending approval; once it expired, a new one is created', async () => {
    const req = request({ onBehalfOf: undefined });
    const a = await service.request(req);
    assert.equal(a.approval.onBehalfOf, undefined);
    const b = await service.request(req);
    assert.deepEqual([b.created, b.approval.id], [false, a.approval.id]);
    const other = await service.request({ ...request({ mandateId: req.mandateId }), callHash: 'another-call' });
    assert.notEqual(other.approval.id, a.approval.id);
    clock.advance(TTL);
    const c = await service.request(req);
    assert.equal(c.created, true);
    assert.notEqual(c.approval.id, a.approval.id);
    assert.equal((await service.require(a.approval.id)).status, 'expired');
  });

  test('the console URL percent-encodes the id', () => {
    assert.equal(service.consoleUrl('a/b c'), `${BASE_URL}a%2Fb%20c`);
  });

  test('get and require: unknown ids', async () => {
    assert.equal(await service.get('apr_nope'), undefined);
    await rejectsWith(service.require('apr_nope'), 'ERR_NOT_FOUND', /^no approval "apr_nope"$/);
  });
});

describe('who may decide', () => {
  test('attack: the bootstrap token or an mTLS service cannot approve', async () => {
    const { approval } = await service.request(request());
    for (const via of ['bootstrap', 'mtls'] as Approver['via'][]) {
      await notAllowed(service.decide(approval.id, human('bob', ['support-lead'], via), { approve: true }), /not the bootstrap token/);
    }
  });

  test('attack: a principal registered as an agent or a service cannot approve; an unknown id is judged by role', async () => {
    const { approval } = await service.request(request({ forbiddenApprovers: [] }));
    await notAllowed(
      service.decide(approval.id, human('svc', ['support-lead']), { approve: true }),
      /^approvals are decided by humans; svc is a service$/,
    );
    await notAllowed(service.decide(approval.id, human('triage', ['support-lead']), { approve: true }), /triage is a agent$/);
    const decided = await service.decide(approval.id, human('ghost', ['support-lead']), { approve: true });
    assert.equal(decided.decidedBy, 'ghost');
  });

  test('attack: the on-behalf-of human and an agent of the chain may not approve their own request', async () => {
    const { approval } = await service.request(request({ forbiddenApprovers: ['dana', 'alice'] }));
    await notAllowed(
      service.decide(approval.id, human('dana', ['support-lead']), { approve: true }),
      /^the human on whose behalf the agent acts may not approve its request$/,
    );
    await notAllowed(
      service.decide(approval.id, human('alice', ['support-lead']), { approve: true }),
      /^an agent of the delegation chain may not approve its own request$/,
    );
  });

  test('attack: an approver without any required role is refused (the role check)', async () => {
    const { approval } = await service.request(request());
    const message = /^this approval needs one of the roles: support-lead, finance$/;
    await notAllowed(service.decide(approval.id, human('bob', ['approver', 'admin']), { approve: true }), message);
    await notAllowed(service.decide(approval.id, human('bob', []), { approve: false }), message);
    // Naming a required role one does not hold, or a held role that is not required, is refused too.
    await notAllowed(service.decide(approval.id, human('bob', ['approver']), { approve: true, role: 'finance' }), message);
    await notAllowed(service.decide(approval.id, human('bob', ['admin', 'finance']), { approve: true, role: 'admin' }), message);
    assert.equal((await service.require(approval.id)).status, 'pending');
    assert.deepEqual(await types(approval.id), ['approval.requested']);
  });

  test('the deciding role defaults to the first held role that is required; an explicit one is kept', async () => {
    const a = await service.request(request());
    const d = await service.decide(a.approval.id, human('bob', ['approver', 'finance', 'support-lead']), { approve: true });
    assert.equal(d.decidedRole, 'finance');
    const b = await service.request(request());
    const e = await service.decide(b.approval.id, human('bob', ['finance', 'support-lead']), { approve: true, role: 'support-lead' });
    assert.equal(e.decidedRole, 'support-lead');
  });
});

describe('deciding', () => {
  test('approving records who, in which role, with which note and when; audits and notifies', async () => {
    const req = request();
    const { approval } = await service.request(req);
    clock.advance(1000);
    notes.length = 0;
    published.length = 0;
    const d = await service.decide(approval.id, human('bob', ['support-lead']), { approve: true, note: 'ok' });
    assert.deepEqual(
      [d.status, d.decidedBy, d.decidedRole, d.decidedNote, d.decidedAt],
      ['approved', 'bob', 'support-lead', 'ok', clock.now()],
    );
    const entries = await audit.entriesBy('approval_id', approval.id);
    assert.deepEqual(
      entries.map((e) => e.event.type),
      ['approval.requested', 'approval.decided'],
    );
    const decided = entries[1]?.event;
    assert.deepEqual(decided?.actors, [{ type: 'human', id: 'bob' }]);
    assert.equal(decided?.mandateId, req.mandateId);
    assert.deepEqual(decided?.data, {
      approvalId: approval.id,
      decisionId: req.decisionId,
      outcome: 'approved',
      role: 'support-lead',
      tool: req.tool,
      callHash: req.callHash,
      // The approver's comment is part of the audit record (docs/approvals.md).
      note: 'ok',
    });
    assert.deepEqual(published, [approval.id]);
    await new Promise((r) => setImmediate(r));
    assert.equal(notes.length, 1);
    assert.equal(notes[0]?.type, 'approval.decided');
    assert.equal(notes[0]?.sentAt, clock.now());
    const summary = notes[0]?.approval as { decidedBy: string; status: string } | undefined;
    assert.equal(summary?.decidedBy, 'bob');
    assert.equal(summary?.status, 'approved');
    const usable = await service.findUsable(req.mandateId, req.callHash);
    assert.deepEqual(usable, { id: approval.id, approverId: 'bob', approverRole: 'support-lead' });
  });

  test('denying records denied without a note; a denied approval is never usable', async () => {
    const req = request();
    const { approval } = await service.request(req);
    const d = await service.decide(approval.id, human('carol', ['finance']), { approve: false });
    assert.deepEqual([d.status, d.decidedNote], ['denied', undefined]);
    assert.equal(await service.findUsable(req.mandateId, req.callHash), undefined);
    assert.equal(await service.consume(approval.id, { actors: [], mandateId: req.mandateId, decisionId: 'd' }), false);
  });

  test('attack: a decided approval cannot be decided again', async () => {
    const { approval } = await service.request(request());
    await service.decide(approval.id, human('carol', ['finance']), { approve: false });
    await rejectsWith(
      service.decide(approval.id, human('bob', ['finance']), { approve: true }),
      'ERR_APPROVAL_NOT_PENDING',
      new RegExp(`^approval ${approval.id} is denied$`),
    );
  });

  test('attack: two approvers racing: exactly one decision takes effect', async () => {
    const { approval } = await service.request(request());
    const results = await Promise.allSettled([
      service.decide(approval.id, human('bob', ['finance']), { approve: true }),
      service.decide(approval.id, human('carol', ['finance']), { approve: false }),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal(rejected.reason.code, 'ERR_APPROVAL_NOT_PENDING');
  });

  test('attack: an expired approval cannot be approved', async () => {
    const { approval } = await service.request(request());
    clock.advance(TTL);
    await rejectsWith(service.decide(approval.id, human('bob', ['finance']), { approve: true }), 'ERR_APPROVAL_NOT_PENDING', /is expired$/);
  });

  test('attack: approving for a mandate that ended is refused; denying it is still possible', async () => {
    const req = request();
    inactive.add(req.mandateId);
    const { approval } = await service.request(req);
    await rejectsWith(
      service.decide(approval.id, human('bob', ['finance']), { approve: true }),
      'ERR_APPROVAL_NOT_PENDING',
      /^the mandate of approval .* is no longer active$/,
    );
    assert.equal((await service.decide(approval.id, human('bob', ['finance']), { approve: false })).status, 'denied');
    // Without a mandate check configured, approval proceeds.
    const plain = newService({ isMandateActive: null });
    const other = await plain.request(request());
    assert.equal((await plain.decide(other.approval.id, human('bob', ['finance']), { approve: true })).status, 'approved');
  });
});

describe('using', () => {
  test('an approval is usable only for its own mandate and call, consumed once, audited', async () => {
    const req = request();
    const { approval } = await service.request(req);
    await service.decide(approval.id, human('bob', ['finance']), { approve: true });
    assert.equal(await service.findUsable('other-mandate', req.callHash), undefined);
    assert.equal(await service.findUsable(req.mandateId, 'other-call'), undefined);
    clock.advance(500);
    const audited = { actors: req.actors, mandateId: req.mandateId, decisionId: 'd-use' };
    assert.equal(await service.consume(approval.id, audited), true);
    assert.equal(await service.consume(approval.id, audited), false);
    assert.equal(await service.findUsable(req.mandateId, req.callHash), undefined);
    const a = await service.require(approval.id);
    assert.deepEqual([a.status, a.consumedAt], ['consumed', clock.now()]);
    const entries = await audit.entriesBy('approval_id', approval.id);
    assert.deepEqual(
      entries.map((e) => e.event.type),
      ['approval.requested', 'approval.decided', 'approval.consumed'],
    );
    assert.deepEqual(entries[2]?.event.data, { approvalId: approval.id, decisionId: 'd-use' });
    assert.deepEqual(entries[2]?.event.actors, req.actors);
    assert.equal(entries[2]?.event.mandateId, req.mandateId);
  });

  test('attack: an approved approval past its expiry is neither usable nor consumable', async () => {
    const req = request();
    const { approval } = await service.request(req);
    await service.decide(approval.id, human('bob', ['finance']), { approve: true });
    clock.advance(TTL - 1);
    assert.equal((await service.findUsable(req.mandateId, req.callHash))?.id, approval.id);
    clock.advance(1);
    assert.equal(await service.findUsable(req.mandateId, req.callHash), undefined);
    assert.equal(await service.consume(approval.id, { actors: [], mandateId: req.mandateId, decisionId: 'd' }), false);
    assert.equal((await service.require(approval.id)).status, 'expired');
  });

  test('attack: a pending approval is not usable', async () => {
    const req = request();
    const { approval } = await service.request(req);
    assert.equal(await service.findUsable(req.mandateId, req.callHash), undefined);
    assert.equal(await service.consume(approval.id, { actors: [], mandateId: req.mandateId, decisionId: 'd' }), false);
  });
});

describe('sweeping and listing', () => {
  test('sweep expires pending and approved approvals past their deadline, once, audited', async () => {
    // Let every approval of earlier tests expire and sweep them first.
    clock.advance(TTL);
    await service.sweep();
    const p = await service.request(request());
    const a = await service.request(request());
    await service.decide(a.approval.id, human('bob', ['finance']), { approve: true });
    const fresh = await service.request(request());
    clock.advance(TTL / 2);
    const young = await service.request(request());
    clock.advance(TTL / 2);
    assert.equal(await service.sweep(), 3);
    assert.equal(await service.sweep(), 0);
    for (const id of [p.approval.id, a.approval.id, fresh.approval.id]) {
      assert.equal((await types(id)).at(-1), 'approval.expired');
      const rows = await store.query<{ status: string }>('SELECT status FROM approvals WHERE id = ?', [id]);
      assert.equal(rows[0]?.status, 'expired');
    }
    assert.equal((await service.require(young.approval.id)).status, 'pending');
    // Two sweeps racing (two replicas): each approval is expired and audited once in total.
    const racing = [await service.request(request()), await service.request(request())];
    clock.advance(TTL);
    const counts = await Promise.all([service.sweep(), service.sweep()]);
    assert.equal(counts[0] + counts[1], 3);
    for (const r of racing) assert.equal((await types(r.approval.id)).filter((t) => t === 'approval.expired').length, 1);
    const [expiredEntry] = await audit.entriesBy('approval_id', p.approval.id, { types: ['approval.expired'] });
    assert.deepEqual(expiredEntry?.event.actors, [{ type: 'system', id: 'mandate' }]);
    assert.deepEqual(expiredEntry?.event.data, { approvalId: p.approval.id, decisionId: p.approval.decisionId });
  });

  test('list filters by effective status and mandate, newest first, with a limit', async () => {
    const mandateId = `m-list-${++n}`;
    const pend = await service.request(request({ mandateId }));
    clock.advance(1);
    const appr = await service.request({ ...request({ mandateId }), callHash: 'h2' });
    await service.decide(appr.approval.id, human('bob', ['finance']), { approve: true });
    clock.advance(1);
    const den = await service.request({ ...request({ mandateId }), callHash: 'h3' });
    await service.decide(den.approval.id, human('bob', ['finance']), { approve: false });
    const ids = async (o: Parameters<ApprovalService['list']>[0]) => (await service.list({ mandateId, ...o })).map((a) => a.id);
    assert.deepEqual(await ids({}), [den.approval.id, appr.approval.id, pend.approval.id]);
    assert.deepEqual(await ids({ limit: 2 }), [den.approval.id, appr.approval.id]);
    assert.deepEqual(await ids({ status: 'pending' }), [pend.approval.id]);
    assert.deepEqual(await ids({ status: 'approved' }), [appr.approval.id]);
    assert.deepEqual(await ids({ status: 'denied' }), [den.approval.id]);
    assert.deepEqual(await ids({ status: 'expired' }), []);
    assert.ok((await service.list({})).length > 3);
    assert.ok((await service.list({ status: 'denied' })).every((a) => a.status === 'denied'));
    clock.advance(TTL);
    assert.deepEqual(await ids({ status: 'pending' }), []);
    assert.deepEqual(await ids({ status: 'approved' }), []);
    assert.deepEqual(await ids({ status: 'expired' }), [appr.approval.id, pend.approval.id]);
    assert.deepEqual(await ids({ status: 'denied' }), [den.approval.id]);
  });
});
