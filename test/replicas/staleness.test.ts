// A replica that cannot confirm it has applied every change (revocations) fails closed: /readyz
// says stale and token verification refuses with ERR_REPLICA_STALE until it catches up.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MandateError } from '../../src/errors/index.js';
import { type Running, startBroker, TRIAGE } from '../identity/helpers.js';

describe('a stale replica fails closed', () => {
  let b: Running;
  let offset = 0;
  before(async () => {
    // No background catch-up during the test: only explicit catch-ups confirm currency.
    b = await startBroker({
      config: { changes: { pollIntervalMs: 60_000, maxStalenessMs: 5000 } },
      clock: { now: () => Date.now() + offset },
    });
  });
  after(() => b.close());

  test('verification refuses once the replica is stale, and recovers after a catch-up', async () => {
    const { access_token: token } = await b.open(TRIAGE);
    await b.broker.changes.catchUp();
    const claims = await b.broker.verifier.verifyToken(token);
    assert.equal((await b.broker.verifier.resolve(claims)).agent.id, 'support-triage');
    offset = 6000;
    await assert.rejects(b.broker.verifier.resolve(claims), (e: unknown) => e instanceof MandateError && e.code === 'ERR_REPLICA_STALE');
    const ready = await b.app.inject('/readyz');
    assert.equal(ready.statusCode, 503);
    assert.equal(ready.json().status, 'stale');
    await b.broker.changes.catchUp();
    assert.equal((await b.broker.verifier.resolve(claims)).mandate.status, 'active');
    assert.equal((await b.app.inject('/readyz')).statusCode, 200);
  });
});
