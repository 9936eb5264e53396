// The risk engine's signals, scores and responses, driven by a fake clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CallObservation, RiskEngine, type RiskResponse } from '../../src/risk/engine.js';
import { DEFAULT_RISK_SETTINGS, type RiskSettings } from '../../src/risk/settings.js';
import { SlidingCount } from '../../src/risk/window.js';

function fixture(overrides: Partial<RiskSettings> = {}) {
  const clock = {
    t: 1_000_000_000,
    now() {
      return this.t;
    },
  };
  const engine = new RiskEngine({ ...DEFAULT_RISK_SETTINGS, ...overrides }, clock);
  const responses: RiskResponse[] = [];
  engine.onResponse((r) => responses.push(r));
  return { clock, engine, responses };
}

const path = { mandateId: 'm1', rootId: 'm1', agentId: 'agent-a' };
const call = (o: Partial<CallObservation> = {}): CallObservation => ({
  ...path,
  tool: 'crm.read',
  outcome: 'allow',
  action: 'read',
  sensitivity: 'internal',
  sendsOut: false,
  ...o,
});
const fired = (rs: RiskResponse[], action: string) => rs.filter((r) => r.kind === 'fired' && r.action === action);

test('a sliding count forgets what is older than its window, bucket by bucket', () => {
  const w = new SlidingCount(60_000, 12);
  w.add(0, 3);
  w.add(30_000, 2);
  assert.equal(w.sum(30_000), 5);
  assert.equal(w.sum(59_999), 5);
  assert.equal(w.sum(65_000), 2, 'the first bucket (0–5 s) left the window');
  assert.equal(w.sum(95_000), 0);
  assert.throws(() => new SlidingCount(0, 1), RangeError);
});

test('legitimate work scores 0 and triggers nothing', () => {
  const { clock, engine, responses } = fixture();
  for (let i = 0; i < 30; i++) {
    engine.observeCall(call({ tool: `crm.tool${i % 3}` }));
    engine.observeResult(path, 2_000);
    clock.t += 1_000;
  }
  assert.deepEqual(engine.context(path), { mandate: 0, tree: 0, agent: 0 });
  assert.equal(responses.length, 0);
});

test('probing 20 tools outside the mandate: approval first, then the tree is revoked, naming the signals', () => {
  const { clock, engine, responses } = fixture();
  let callsUntilApproval = 0;
  let callsUntilRevoke = 0;
  for (let i = 1; i <= 20; i++) {
    engine.observeCall(call({ tool: `secret.tool${i}`, outcome: 'deny', refusal: 'scope' }));
    clock.t += 200;
    if (callsUntilApproval === 0 && fired(responses, 'require_approval').length > 0) callsUntilApproval = i;
    if (callsUntilRevoke === 0 && fired(responses, 'revoke').length > 0) callsUntilRevoke = i;
  }
  assert.equal(callsUntilApproval, 6);
  assert.equal(callsUntilRevoke, 10);
  const revoke = fired(responses, 'revoke')[0] as RiskResponse;
  assert.equal(revoke.subject, 'tree');
  assert.equal(revoke.id, 'm1');
  assert.deepEqual(
    revoke.signals.map((s) => s.signal),
    ['scope_probe', 'deny_rate'],
  );
  assert.equal(fired(responses, 'revoke').length, 1, 'a latched response does not fire again');
  assert.ok(engine.approvalRequired(path));
});

test('a child mandate’s probing counts against its root', () => {
  const { engine } = fixture();
  const child = { mandateId: 'c1', rootId: 'm1', agentId: 'agent-b' };
  engine.observeDelegation({ ...child, parentId: 'm1', parentAgentId: 'agent-a', depth: 1 });
  for (let i = 0; i < 6; i++) engine.observeCall({ ...call({ tool: `x${i}`, outcome: 'deny', refusal: 'scope' }), ...child });
  const root = engine.score('tree', 'm1');
  assert.ok(root.score >= 40, `tree score ${root.score}`);
  assert.equal(engine.score('mandate', 'm1').score, 0, 'the parent mandate itself did nothing');
  assert.ok(engine.approvalRequired({ mandateId: 'm1', rootId: 'm1', agentId: 'agent-a' }), 'the whole tree needs approval');
});

test('hysteresis: a response clears only below its clear level and after its hold time, and does not flap', () => {
  const { clock, engine, responses } = fixture({
    responses: [{ action: 'require_approval', subject: 'mandate', at: 40, clearBelow: 25, holdMs: 60_000 }],
  });
  for (let i = 0; i < 6; i++) engine.observeCall(call({ tool: `t${i}`, outcome: 'deny', refusal: 'scope' }));
  assert.equal(fired(responses, 'require_approval').length, 1);
  // Scores drift around the trigger: nothing new fires, nothing clears.
  clock.t += 30_000;
  engine.observeCall(call());
  engine.observeCall(call({ tool: 'again', outcome: 'deny', refusal: 'scope' }));
  assert.equal(responses.length, 1);
  // The window has passed: the score is 0, and the hold time too.
  clock.t += 61_000;
  engine.observeCall(call());
  assert.equal(responses.length, 2);
  assert.equal(responses[1]?.kind, 'cleared');
  assert.equal(engine.approvalRequired(path), undefined);
});

test('read-then-send: a confidential read followed by an outbound call in the same tree', () => {
  const { engine } = fixture();
  engine.observeCall(call({ tool: 'hr.salaries', sensitivity: 'confidential' }));
  engine.observeCall(call({ tool: 'mail.send', action: 'execute', sendsOut: true }));
  const s = engine.score('tree', 'm1');
  assert.equal(s.signals[0]?.signal, 'read_then_send');
  assert.equal(s.score, 10);
  // Without the sensitive read first, a send is nothing unusual.
  const other = fixture();
  other.engine.observeCall(call({ tool: 'mail.send', action: 'execute', sendsOut: true }));
  assert.equal(other.engine.score('tree', 'm1').score, 0);
});

test('draining results: volume raises the score until approval is required', () => {
  const { clock, engine, responses } = fixture();
  let calls = 0;
  while (fired(responses, 'require_approval').length === 0 && calls < 1000) {
    engine.observeCall(call({ tool: 'db.export' }));
    engine.observeResult(path, 512 * 1024);
    clock.t += 50;
    calls++;
  }
  assert.equal(fired(responses, 'require_approval')[0]?.signals[0]?.signal, 'result_volume');
  assert.ok(calls < 40, `${calls} calls`);
});

test('a token used from a second client key counts as new_client', () => {
  const { engine } = fixture();
  engine.observeCall(call({ client: 'jkt-1' }));
  engine.observeCall(call({ client: 'jkt-1' }));
  assert.equal(engine.score('mandate', 'm1').score, 0);
  engine.observeCall(call({ client: 'jkt-2' }));
  assert.equal(engine.score('mandate', 'm1').signals[0]?.signal, 'new_client');
});

test('call rate is measured against the agent’s own baseline', () => {
  const { clock, engine } = fixture({ baselineFloor: 10 });
  // An hour at ~10 calls a minute …
  for (let minute = 0; minute < 60; minute++) {
    for (let i = 0; i < 10; i++) engine.observeCall(call());
    clock.t += 60_000;
  }
  assert.equal(engine.score('agent', 'agent-a').score, 0);
  // … then 100 in one minute: 10× its own rate.
  for (let i = 0; i < 100; i++) engine.observeCall(call());
  const s = engine.score('agent', 'agent-a');
  assert.equal(s.signals[0]?.signal, 'call_rate');
  // The baseline includes the burst itself: (600 + 100) calls an hour is 11.7 a minute, so 100 is 8.6×.
  assert.ok((s.signals[0]?.value ?? 0) > 8, `ratio ${s.signals[0]?.value}`);
});

test('a disabled signal contributes nothing; a disabled engine observes nothing', () => {
  const off = { ...DEFAULT_RISK_SETTINGS.signals.scope_probe, enabled: false };
  const { engine } = fixture({ signals: { ...DEFAULT_RISK_SETTINGS.signals, scope_probe: off } });
  for (let i = 0; i < 10; i++) engine.observeCall(call({ tool: `t${i}`, outcome: 'deny', refusal: 'scope' }));
  assert.deepEqual(
    engine.score('mandate', 'm1').signals.map((s) => s.signal),
    ['deny_rate'],
  );
  const disabled = fixture({ enabled: false });
  for (let i = 0; i < 10; i++) disabled.engine.observeCall(call({ tool: `t${i}`, outcome: 'deny', refusal: 'scope' }));
  assert.equal(disabled.engine.score('mandate', 'm1').score, 0);
  assert.equal(disabled.responses.length, 0);
});

test('an approval a human denied, and deep or wide delegation, raise the score', () => {
  const { engine } = fixture();
  engine.observeApproval(path, false);
  assert.equal(engine.score('mandate', 'm1').score, 15);
  engine.observeApproval(path, true);
  assert.equal(engine.score('mandate', 'm1').score, 15, 'an approval granted is not a signal');
  for (let i = 0; i < 20; i++)
    engine.observeDelegation({ mandateId: `c${i}`, rootId: 'm1', agentId: 'b', parentId: 'm1', parentAgentId: 'agent-a', depth: 1 });
  const tree = engine.score('tree', 'm1');
  assert.ok(tree.signals.some((s) => s.signal === 'delegation_fanout' && s.points === 20));
});

test('two replicas: shared counts add up, and a response latched on one is in force on the other without firing twice', () => {
  const a = fixture();
  const b = fixture();
  a.engine.shareWithReplicas();
  b.engine.shareWithReplicas();
  const exchange = () => {
    const fromA = a.engine.takeShared();
    const fromB = b.engine.takeShared();
    if (fromA !== undefined) b.engine.merge(JSON.parse(JSON.stringify(fromA)));
    if (fromB !== undefined) a.engine.merge(JSON.parse(JSON.stringify(fromB)));
  };
  for (let i = 0; i < 3; i++) a.engine.observeCall(call({ tool: `a${i}`, outcome: 'deny', refusal: 'scope' }));
  for (let i = 0; i < 3; i++) b.engine.observeCall(call({ tool: `b${i}`, outcome: 'deny', refusal: 'scope' }));
  assert.equal(a.responses.length + b.responses.length, 0, 'neither replica alone saw enough');
  exchange();
  assert.ok(a.engine.score('tree', 'm1').score >= 40, 'six probes in all');
  a.engine.observeCall(call({ tool: 'a9', outcome: 'deny', refusal: 'scope' }));
  assert.equal(fired(a.responses, 'require_approval').length, 1);
  exchange();
  assert.ok(b.engine.approvalRequired(path), 'in force on the other replica');
  b.engine.observeCall(call({ tool: 'b9', outcome: 'deny', refusal: 'scope' }));
  assert.equal(fired(b.responses, 'require_approval').length, 0, 'taken over, not fired again');
  assert.equal(a.engine.takeShared(), undefined, 'nothing new to share');
});
