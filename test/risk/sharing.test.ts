// The risk messages between replicas (src/risk/sharing.ts) on the change feed: published only when
// there is something to share, and pruned once older than ten minutes — by a bounded range of the
// feed's primary key, leaving other topics alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RiskEngine } from '../../src/risk/engine.js';
import { DEFAULT_RISK_SETTINGS } from '../../src/risk/settings.js';
import { RISK_TOPIC, RiskSharing } from '../../src/risk/sharing.js';
import { ChangeFeed } from '../../src/store/changes.js';
import { sqliteFactory } from '../helpers/stores.js';

test('risk messages are published when there is news and pruned after ten minutes, other topics kept', async (t) => {
  const factory = sqliteFactory();
  t.after(() => factory.cleanup());
  const store = await factory.open();
  const clock = {
    t: 1_000_000_000,
    now() {
      return this.t;
    },
  };
  const changes = new ChangeFeed(store, { clock, pollIntervalMs: 60_000 });
  await changes.start();
  t.after(() => changes.stop());
  const engine = new RiskEngine(DEFAULT_RISK_SETTINGS, clock);
  const sharing = new RiskSharing({
    engine,
    store,
    changes,
    replicaId: 'r1',
    intervalMs: 3_600_000,
    now: () => clock.now(),
    onError: (err) => {
      throw err;
    },
  });
  t.after(() => sharing.close());
  const count = async (topic: string) =>
    Number((await store.query<{ n: number }>('SELECT COUNT(*) AS n FROM changes WHERE topic = ?', [topic]))[0]?.n);

  await sharing.flush();
  assert.equal(await count(RISK_TOPIC), 0, 'nothing observed: nothing published');
  await store.transaction((tx) => changes.publish(tx, 'policy', 'kept', {}));
  // 240 flushes a second apart with one call each (4 minutes), then 240 more ten minutes later.
  const observeAndFlush = async () => {
    engine.observeCall({
      mandateId: 'm',
      rootId: 'm',
      agentId: 'a',
      tool: 't',
      outcome: 'allow',
      action: 'read',
      sensitivity: 'internal',
      sendsOut: false,
    });
    await sharing.flush();
    await changes.catchUp();
    clock.t += 1000;
  };
  for (let i = 0; i < 240; i++) await observeAndFlush();
  assert.equal(await count(RISK_TOPIC), 240);
  clock.t += 11 * 60_000;
  for (let i = 0; i < 240; i++) await observeAndFlush();
  const left = await count(RISK_TOPIC);
  assert.ok(left < 480 && left >= 240, `the first four minutes' messages were pruned (${left} left)`);
  assert.equal(await count('policy'), 1, 'another topic is never pruned');
});
