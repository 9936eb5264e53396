// The console's pure pieces, outside the browser: money from catalog hints, chart scales and
// bucket titles, the Cedar tokenizer, and who may decide an approval.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { staleReason } from '../../console/src/lib/approval-state.js';
import { tokenizeCedar } from '../../console/src/lib/cedar-highlight.js';
import { type Me, whyNotDecide } from '../../console/src/lib/me.js';
import { formatAmount } from '../../console/src/lib/money.js';
import { humanDuration, niceScale } from '../../console/src/lib/scale.js';

describe('formatAmount', () => {
  const usd = { currency: 'USD', minorUnits: 2 };
  test('minor units in their currency, exactly', () => {
    assert.equal(formatAmount(24_900, usd), '$249.00');
    assert.equal(formatAmount(5, usd), '$0.05');
    assert.equal(formatAmount(-1999, usd), '-$19.99');
    assert.equal(formatAmount(123_456_789, usd), '$1,234,567.89');
    assert.equal(formatAmount(1500, { currency: 'JPY', minorUnits: 0 }), '¥1,500');
    assert.equal(formatAmount(1234, { currency: 'KWD', minorUnits: 3 }), 'KWD\u00a01.234');
    // No floating-point rounding at the edge of safe integers.
    assert.equal(formatAmount(9_007_199_254_740_991, usd), '$90,071,992,547,409.91');
  });
  test('anything but a safe integer is not an amount (shown raw by the caller)', () => {
    for (const v of [12.5, '24900', null, undefined, Number.NaN, 2 ** 60, { amount: 1 }]) assert.equal(formatAmount(v, usd), undefined);
  });
  test('an unknown currency code still shows the digits, never throws', () => {
    assert.equal(formatAmount(100, { currency: 'ZZ', minorUnits: 2 }), '1.00 ZZ');
  });
});

describe('chart scales', () => {
  test('the top tick is at or above every value; counts get whole-number ticks', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.boolean(), (max, integer) => {
        const { top, ticks } = niceScale(max, { integer });
        assert.ok(top >= max, `${top} < ${max}`);
        assert.equal(ticks[0], 0);
        assert.equal(ticks[ticks.length - 1], top);
        assert.ok(ticks.length >= 2 && ticks.length <= 12, `${ticks.length} ticks`);
        if (integer) for (const t of ticks) assert.ok(Number.isInteger(t), `tick ${t}`);
      }),
    );
  });
  test('the defects seen: 2 approvals get ticks 0,1,2 (not 0.5 steps); a 55 s latency sits under a 60 s top tick', () => {
    assert.deepEqual(niceScale(2, { integer: true }).ticks, [0, 1, 2]);
    assert.deepEqual(niceScale(1, { integer: true }).ticks, [0, 1]);
    assert.equal(niceScale(55.2).top, 60);
    assert.deepEqual(niceScale(0, { integer: true }).ticks, [0, 1]);
  });
  test('bucket widths in human units', () => {
    assert.equal(humanDuration(300), '5 min');
    assert.equal(humanDuration(3600), '1 h');
    assert.equal(humanDuration(21_600), '6 h');
    assert.equal(humanDuration((7 * 86_400) / 28), '6 h');
    assert.equal(humanDuration(86_400), '1 day');
    assert.equal(humanDuration(172_800), '2 days');
    assert.equal(humanDuration(5400), '1.5 h');
    assert.equal(humanDuration(45), '45 s');
  });
});

describe('tokenizeCedar', () => {
  test('classifies keywords, strings, comments, annotations, entities', () => {
    const src = '@id("p1")\nforbid (principal, action == Mandate::Action::"call", resource)\nwhen { context.amount > 10000 }; // note';
    const kinds = tokenizeCedar(src)
      .filter((t) => t.type !== 'text')
      .map((t) => `${t.type}:${t.text}`);
    assert.deepEqual(kinds, [
      'annotation:@id',
      'string:"p1"',
      'effect:forbid',
      'keyword:principal',
      'keyword:action',
      'operator:==',
      'entity:Mandate::Action::',
      'string:"call"',
      'keyword:resource',
      'keyword:when',
      'keyword:context',
      'operator:>',
      'number:10000',
      'comment:// note',
    ]);
  });
  test('markup is just characters in a comment or string, and keywords inside strings stay strings', () => {
    const tokens = tokenizeCedar(
      '// <script>alert(1)</script>\npermit (principal, action, resource) when { resource.name == "<img src=x onerror=alert(1)> permit" };',
    );
    assert.equal(tokens[0]?.type, 'comment');
    assert.equal(tokens[0]?.text, '// <script>alert(1)</script>');
    assert.ok(tokens.some((t) => t.type === 'string' && t.text === '"<img src=x onerror=alert(1)> permit"'));
  });
  test('the tokens always join back to the exact source (nothing lost, nothing added)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        assert.equal(
          tokenizeCedar(s)
            .map((t) => t.text)
            .join(''),
          s,
        );
      }),
    );
    assert.equal(tokenizeCedar('"unterminated\npermit').length, 3);
  });
});

describe('whyNotDecide mirrors the approval service', () => {
  const approval = {
    status: 'pending',
    expiresAt: Date.now() + 60_000,
    requiredRoles: ['finance'],
    forbiddenApprovers: ['support-triage', 'bob'],
    onBehalfOf: 'bob',
  };
  const me = (id: string, roles: string[], via: Me['via'] = 'oidc'): Me => ({ id, name: id, roles, via, permissions: [] });
  test('the finance approver may; an admin, the on-behalf-of human and the bootstrap token may not', () => {
    assert.equal(whyNotDecide(me('carol', ['approver', 'finance']), approval), undefined);
    assert.match(whyNotDecide(me('alice', ['admin']), approval) ?? '', /needs one of the roles finance; you have admin/);
    assert.match(whyNotDecide(me('bob', ['approver', 'finance']), approval) ?? '', /human this agent acts for/);
    assert.match(whyNotDecide(me('support-triage', ['finance']), approval) ?? '', /delegation chain/);
    assert.match(whyNotDecide(me('bootstrap', ['admin', 'finance'], 'bootstrap'), approval) ?? '', /bootstrap/);
    assert.match(whyNotDecide(undefined, approval) ?? '', /checking/);
  });
});

describe('staleReason: live vs closed approvals', () => {
  const now = 1_000_000;
  const a = (status: string, expiresAt = now + 60_000, decided = true) => ({
    status,
    expiresAt,
    ...(decided ? { decidedBy: 'carol', decidedRole: 'finance' } : {}),
  });
  test('only a pending approval before its expiry is live', () => {
    assert.equal(staleReason(a('pending', now + 1, false), now), undefined);
    assert.match(staleReason(a('pending', now, false), now) ?? '', /^Expired while waiting/);
    assert.equal(staleReason(a('approved'), now), "Approved by carol as finance; waiting for the agent's retry to use it.");
    assert.equal(staleReason(a('approved', now - 1), now), 'Approved by carol as finance, then expired unused.');
    assert.equal(staleReason(a('consumed'), now), 'Approved by carol as finance and used: the call ran.');
    assert.equal(staleReason(a('denied'), now), 'Denied by carol as finance.');
    assert.match(staleReason(a('expired', now - 1, false), now) ?? '', /^Expired/);
    assert.match(staleReason(a('withdrawn', now + 1, false), now) ?? '', /^Withdrawn/);
    assert.equal(staleReason(a('something-new', now + 1, false), now), 'No longer pending (something-new).');
  });
});
