// Intent binding as the AgentDojo replay found it wanting: an ISO date (`2022-04-01`) is a date,
// not an account number, so a `date` or `start_day` argument is not a target the human must name.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bindIntent, intentIndex } from '../../src/intent/index.js';
import { valueKeys } from '../../src/intent/values.js';

describe('intent values', () => {
  it('an ISO date is not an account number (and so not a target kind)', () => {
    const v = valueKeys('2022-04-01');
    assert.equal(v.targetKind, false);
    assert.ok(v.keys.includes('date:2022-04-01'));
    assert.ok(!v.keys.some((k) => k.startsWith('account:')));
  });

  it('a run of digits still is', () => {
    assert.equal(valueKeys('0789765432').targetKind, true);
    assert.equal(valueKeys('0789-765-432').targetKind, true);
  });

  it('a payment to the IBAN the human named, dated, has no unnamed target', () => {
    const intent = bindIntent(
      { recipient: 'DE89370400440532013000', amount: 10, subject: 'Refund', date: '2022-04-01' },
      intentIndex('Please refund DE89370400440532013000 for what they sent me.'),
    );
    assert.deepEqual(intent.unnamedTargets, []);
  });
});
