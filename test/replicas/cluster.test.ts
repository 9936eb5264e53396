// Several broker processes on one PostgreSQL database: shared state, crash of one replica, drain.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Cluster, startCluster } from '../helpers/replicas.js';
import { postgresFactory } from '../helpers/stores.js';

const pg = await postgresFactory();

describe('replicas on one PostgreSQL', { skip: pg.skip }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ replicas: 3, config: { server: { drainMs: 1500 } } });
  });
  after(() => cluster.close());

  const admin = (url: string, path: string, init: RequestInit = {}) =>
    fetch(`${url}/admin/v1/${path}`, {
      ...init,
      headers: { authorization: `Bearer ${cluster.bootstrapToken}`, 'content-type': 'application/json', ...init.headers },
    });

  test('every replica is ready and reports the same change sequence', async () => {
    const ready = await Promise.all(cluster.replicas.map(async (r) => (await fetch(`${r.url}/readyz`)).json()));
    for (const r of ready) assert.equal(r.status, 'ready');
    assert.equal(new Set(ready.map((r) => r.store)).size, 1);
  });

  test('a principal created on one replica is served by the others', async () => {
    const [a, b, c] = cluster.replicas;
    assert.ok(a && b && c);
    const created = await admin(a.url, 'principals', {
      method: 'POST',
      body: JSON.stringify({ id: 'agent-r', actorType: 'agent', displayName: 'R', owner: 'alice' }),
    });
    assert.equal(created.status, 201);
    assert.equal((await (await admin(b.url, 'principals/agent-r')).json()).owner, 'alice');
    const dup = await admin(c.url, 'principals', {
      method: 'POST',
      body: JSON.stringify({ id: 'agent-r', actorType: 'agent', displayName: 'R', owner: 'alice' }),
    });
    assert.equal(dup.status, 409, 'uniqueness holds across replicas');
  });

  test('a killed replica does not stop the others', async () => {
    const extra = await cluster.add();
    await extra.kill();
    for (const r of cluster.replicas.filter((x) => x !== extra)) assert.equal((await fetch(`${r.url}/readyz`)).status, 200);
  });

  test('on SIGTERM a replica drains: /readyz 503 while it still serves, then exit 0', async () => {
    const leaving = await cluster.add();
    const exit = leaving.stop();
    await new Promise((r) => setTimeout(r, 200));
    const ready = await fetch(`${leaving.url}/readyz`).catch((err: unknown) => {
      throw new Error(
        `draining replica unreachable (exit ${leaving.child.exitCode}, signal ${leaving.child.signalCode}): ${leaving.stderr()}`,
        { cause: err },
      );
    });
    assert.equal(ready.status, 503);
    assert.equal((await ready.json()).status, 'draining');
    assert.equal((await fetch(`${leaving.url}/healthz`)).status, 200, 'in-flight and new requests are still served while draining');
    assert.equal(await exit, 0);
  });
});
