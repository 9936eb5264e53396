// The gateway's pool of upstream clients over real stdio servers of both eras: one process per
// mandate or one shared, a dead process replaced on the next call (never the failed call retried),
// sessions closed when their mandate ends, when idle, and least recently used first when full.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UpstreamPool } from '../../src/gateway/upstream-pool.js';
import { UpstreamCallError } from '../../src/upstreams/mcp-client/index.js';
import type { UpstreamConnection } from '../../src/upstreams/registry.js';
import type { Upstream } from '../../src/upstreams/upstream.js';
import { SDK1_SERVER_PATH } from './fixtures/sdk1-server.js';
import { SDK2_SERVER_PATH } from './fixtures/sdk2-server.js';

function registry(paths: Record<string, string>): { connection(id: string): Promise<UpstreamConnection>; opened: string[] } {
  const opened: string[] = [];
  return {
    opened,
    async connection(id) {
      opened.push(id);
      const path = paths[id];
      if (path === undefined) throw new Error(`unknown upstream ${id}`);
      const upstream = {
        id,
        transport: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', path], env: {} },
        isolation: 'mandate',
      } as unknown as Upstream;
      return { upstream, credential: undefined } as UpstreamConnection;
    },
  };
}

const pidOf = async (pool: UpstreamPool, upstream: string, isolation: 'mandate' | 'shared', mandate: string): Promise<string> => {
  const r = await pool.call(upstream, isolation, mandate, 'tools/call', { name: 'pid', arguments: {} }, { timeoutMs: 10_000 });
  return (r.content as { text: string }[])[0]?.text ?? '';
};

describe('upstream pool', () => {
  it('isolates mandates (one process each) and shares a shared upstream, in both eras', async () => {
    let now = 1_000_000;
    const reg = registry({ modern: SDK2_SERVER_PATH, legacy: SDK1_SERVER_PATH });
    // The clock is frozen, so nothing is idle until the test moves it (the sweep runs every second).
    const pool = new UpstreamPool({ registry: reg, clock: { now: () => now }, connectTimeoutMs: 15_000, idleMs: 1000, maxSessions: 3 });
    try {
      for (const u of ['modern', 'legacy']) {
        const [a1, a2, b1] = await Promise.all([
          pidOf(pool, u, 'mandate', 'A'),
          pidOf(pool, u, 'mandate', 'A'),
          pidOf(pool, u, 'mandate', 'B'),
        ]);
        assert.equal(a1, a2, 'concurrent first calls of one mandate share one session');
        assert.notEqual(a1, b1, 'another mandate gets its own process');
        pool.closeMandate('A');
        pool.closeMandate('B');
      }
      const s1 = await pidOf(pool, 'modern', 'shared', 'A');
      const s2 = await pidOf(pool, 'modern', 'shared', 'B');
      assert.equal(s1, s2, 'a shared upstream serves every mandate from one session');
      const openedBefore = reg.opened.length;
      // LRU: a fourth session evicts the least recently used one (the shared one, used first).
      await pidOf(pool, 'modern', 'mandate', 'C');
      await pidOf(pool, 'modern', 'mandate', 'D');
      await pidOf(pool, 'legacy', 'mandate', 'E');
      assert.equal(pool.size, 3);
      assert.notEqual(await pidOf(pool, 'modern', 'shared', 'A'), s1, 'the evicted session was closed, a new one opened');
      assert.equal(reg.opened.length, openedBefore + 4);
      // Idle sessions are closed by the sweep.
      now += 2000;
      await new Promise((r) => setTimeout(r, 1200));
      assert.equal(pool.size, 0);
    } finally {
      await pool.close();
    }
  });

  it('drops a session whose process died: the failed call is not retried, the next one gets a new process', async () => {
    const reg = registry({ modern: SDK2_SERVER_PATH });
    const pool = new UpstreamPool({
      registry: reg,
      clock: { now: () => Date.now() },
      connectTimeoutMs: 15_000,
      idleMs: 60_000,
      maxSessions: 10,
    });
    try {
      const first = await pidOf(pool, 'modern', 'mandate', 'A');
      await assert.rejects(
        pool.call('modern', 'mandate', 'A', 'tools/call', { name: 'die', arguments: {} }, { timeoutMs: 10_000 }),
        (err: unknown) => err instanceof UpstreamCallError && err.kind === 'unavailable',
      );
      assert.equal(pool.size, 0);
      const second = await pidOf(pool, 'modern', 'mandate', 'A');
      assert.notEqual(second, first);
      assert.equal(reg.opened.length, 2);
      // An upstream that cannot be resolved fails the call and leaves nothing behind.
      await assert.rejects(pool.call('nope', 'shared', 'A', 'tools/list', {}, { timeoutMs: 1000 }), /unknown upstream/);
      assert.equal(pool.size, 1);
    } finally {
      await pool.close();
    }
  });
});
