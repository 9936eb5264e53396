// Hot-path state across two replicas (two brokers in this process on one PostgreSQL schema, each
// behind its own port, one public URL): budgets leased in chunks stay exact when both replicas are
// hammered and when one dies holding a lease; DPoP nonces are bound to the replica that issued
// them, so a proof made for A is challenged on B and a replay is refused; an agent suspended on A
// is refused on B as soon as the change arrives.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { generateKeyPair } from 'jose';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { generateMasterKeySpec } from '../../src/secrets/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { freePort } from '../helpers/ports.js';
import { dropSchema, freshSchema, POSTGRES_URL, postgresFactory } from '../helpers/stores.js';
import { ath, handDpopProof } from '../identity/helpers.js';

const pgf = await postgresFactory();
/** Catch-up polling of the change feed (NOTIFY is the fast path): the propagation bound under test. */
const POLL_MS = 200;
const AGENT = { id: 'hot-path-agent', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/hot-path-agent` };

describe('hot-path state across two replicas (PostgreSQL)', { skip: pgf.skip }, () => {
  const schema = freshSchema();
  let a: TestApp;
  let b: TestApp;
  let publicUrl: string;
  const urls: string[] = [];
  const clients: Client[] = [];

  before(async () => {
    const ports = [await freePort(), await freePort()];
    publicUrl = `http://127.0.0.1:${ports[0]}`;
    const env = { MANDATE_MASTER_KEY: generateMasterKeySpec('hot') };
    const replica = async (port: number) => {
      const t = await buildTestApp({
        env,
        store: openPostgresStore({ url: POSTGRES_URL, schema, poolMax: 4 }),
        config: {
          server: { port, publicUrl },
          changes: { pollIntervalMs: POLL_MS, maxStalenessMs: 3000 },
          // Every hammering call must reach the budget (the per-replica in-flight limit is 16 by default).
          gateway: { allowedHosts: ports.map((p) => `127.0.0.1:${p}`), maxConcurrentCallsPerMandate: 1000 },
          // Idle leases stay put during a test: what a replica holds is what the assertions count.
          policy: { budgets: { leaseMaxCalls: 32, leaseIdleMs: 600_000, flushIntervalMs: 100 } },
        },
      });
      await t.app.listen({ host: '127.0.0.1', port });
      urls.push(`http://127.0.0.1:${port}`);
      return t;
    };
    // Sequentially: A migrates and seeds, B finds the schema ready.
    a = await replica(ports[0] as number);
    b = await replica(ports[1] as number);
    await a.broker.agents.register({
      id: AGENT.id,
      displayName: AGENT.id,
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: AGENT.spiffeId },
      ceiling: { tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false },
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await a?.close().catch(() => {});
    await b?.close().catch(() => {});
    await dropSchema(schema).catch(() => {});
  });

  /** Opens a mandate through A's token endpoint (RFC 8693), DPoP-bound when a key is given. */
  async function open(tools: unknown[], dpopKey?: CryptoKeyPair): Promise<{ token: string; mandateId: string }> {
    const dev = a.broker.identity.devSpiffe;
    if (dev === undefined) throw new Error('demo mode expected');
    const url = `${urls[0]}/oauth/token`;
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (dpopKey !== undefined) headers.dpop = await handDpopProof(dpopKey, { htm: 'POST', htu: `${publicUrl}/oauth/token` });
    const res = await fetch(url, {
      method: 'POST',
      headers,
      body: new URLSearchParams({
        grant_type: GRANT_TOKEN_EXCHANGE,
        subject_token: await dev.mint({ spiffeId: AGENT.spiffeId, audience: publicUrl }),
        subject_token_type: TOKEN_TYPE.jwt,
        authorization_details: JSON.stringify([
          {
            type: 'mandate',
            purpose: 'hot path',
            taskType: 'support.refund',
            environment: 'production',
            ttlSeconds: 600,
            tools,
            delegable: false,
          },
        ]),
      }),
    });
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 200, JSON.stringify(body));
    const token = String(body.access_token);
    return { token, mandateId: JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).mandate };
  }

  async function connect(replica: number, token: string): Promise<Client> {
    const client = new Client({ name: 'hot-path-agent', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', urls[replica]), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
    );
    clients.push(client);
    return client;
  }

  const ran = async (c: Client) => {
    try {
      const r = await c.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'refund' } });
      return r.isError !== true;
    } catch {
      return false;
    }
  };

  test('a budget of N calls hammered concurrently through both replicas allows exactly N', async () => {
    for (const n of [3, 25]) {
      const { token } = await open([{ tool: 'helpdesk.search_tickets', maxCalls: n }]);
      const [onA, onB] = [await connect(0, token), await connect(1, token)];
      const results = await Promise.all(Array.from({ length: 2 * n + 10 }, (_, i) => ran(i % 2 === 0 ? onA : onB)));
      assert.equal(results.filter(Boolean).length, n, `budget of ${n}`);
    }
  });

  test('a replica that dies holding a budget lease never lets the budget over-spend', async () => {
    const n = 24;
    const { token, mandateId } = await open([{ tool: 'helpdesk.search_tickets', maxCalls: n }]);
    const onA = await connect(0, token);
    let allowedOnA = 0;
    for (let i = 0; i < 4; i++) if (await ran(onA)) allowedOnA++;
    assert.equal(allowedOnA, 4);
    // A crash as far as budgets go: A stops without reporting or returning its lease.
    a.broker.budgets.abandon();
    const onB = await connect(1, token);
    const results = await Promise.all(Array.from({ length: 2 * n }, () => ran(onB)));
    const allowedOnB = results.filter(Boolean).length;
    assert.ok(allowedOnA + allowedOnB <= n, `${allowedOnA} + ${allowedOnB} > ${n}`);
    await b.broker.budgets.flush();
    const usage = await b.broker.budgets.usage(mandateId, 0);
    // Everything is either consumed and reported, or still leased to the dead replica.
    assert.equal(usage.calls + usage.leasedCalls, n, JSON.stringify(usage));
    // What is lost is A's unused lease: never more than one lease (at most 1/8 of what was left).
    const lost = n - allowedOnA - allowedOnB;
    assert.ok(lost >= 0 && lost <= Math.ceil(n / 8), JSON.stringify({ allowedOnA, allowedOnB, usage }));
  });

  test('DPoP: a proof with the other replica’s nonce gets use_dpop_nonce, then passes; a replay is refused on both', async () => {
    const key = (await generateKeyPair('ES256')) as CryptoKeyPair;
    const { token } = await open([{ tool: 'helpdesk.search_tickets' }], key);
    const post = (replica: number, dpop: string) =>
      new Promise<{ status: number; auth: string; nonce: string | undefined }>((resolve, reject) => {
        const url = new URL('/mcp', urls[replica]);
        const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
        const req = request(
          url,
          {
            method: 'POST',
            headers: {
              authorization: `DPoP ${token}`,
              dpop,
              'content-type': 'application/json',
              accept: 'application/json, text/event-stream',
              'mcp-protocol-version': '2025-11-25',
            },
          },
          (res) => {
            res.resume();
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                auth: String(res.headers['www-authenticate'] ?? ''),
                nonce: res.headers['dpop-nonce'] as string | undefined,
              }),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const proof = (nonce: string) => handDpopProof(key, { htm: 'POST', htu: `${publicUrl}/mcp`, ath: ath(token), nonce });
    const nonceA = a.broker.identity.dpop.nonce();
    const nonceB = b.broker.identity.dpop.nonce();
    assert.notEqual(nonceA, nonceB, 'each replica issues its own nonces');
    // Made for A, sent to B (the load balancer moved the client): one extra round trip.
    const moved = await post(1, await proof(nonceA));
    assert.equal(moved.status, 401);
    assert.match(moved.auth, /DPoP error="use_dpop_nonce"/);
    assert.equal(moved.nonce !== undefined && moved.nonce !== nonceA, true);
    const withB = await proof(moved.nonce as string);
    assert.notEqual((await post(1, withB)).status, 401, 'with B’s nonce the request passes on B');
    const replayB = await post(1, withB);
    assert.equal(replayB.status, 401);
    assert.match(replayB.auth, /already been used/);
    const replayA = await post(0, withB);
    assert.equal(replayA.status, 401, 'A cannot verify B’s nonce, so it never accepts the proof');
    assert.match(replayA.auth, /use_dpop_nonce/);
    // Nothing of it went through the store.
    const stored = await a.broker.store.query('SELECT proof_key FROM dpop_proofs');
    assert.ok(stored.length <= 1, 'only the token endpoint’s nonce-less proof is recorded');
  });

  test('an agent suspended on A is refused on B as soon as the change arrives; reactivated, it works again', async (t) => {
    const { token } = await open([{ tool: 'helpdesk.search_tickets' }]);
    const verifyOnB = () => b.broker.verifier.verify({ token, scheme: 'Bearer', method: 'POST', url: `${publicUrl}/mcp` });
    assert.equal((await verifyOnB()).agent.status, 'active');
    const refusedWithin = async (status: RegExp): Promise<number> => {
      const started = Date.now();
      for (;;) {
        const error = await verifyOnB().then(
          () => undefined,
          (err: Error) => err,
        );
        if (error !== undefined) {
          assert.match(error.message, status);
          return Date.now() - started;
        }
        assert.ok(Date.now() - started < 5 * POLL_MS + 1000, 'B still accepts the suspended agent');
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await a.broker.agents.setStatus(AGENT.id, 'quarantined');
    const quarantineMs = await refusedWithin(/the agent is quarantined/);
    t.diagnostic(`quarantine on A refused on B after ${quarantineMs} ms (LISTEN/NOTIFY; catch-up poll every ${POLL_MS} ms)`);
    assert.ok(quarantineMs <= POLL_MS + 500, `took ${quarantineMs} ms`);
    // Through the generic principals API too (it publishes a principal change now).
    await a.broker.agents.setStatus(AGENT.id, 'active');
    for (
      let i = 0;
      (await verifyOnB()
        .then(() => true)
        .catch(() => false)) === false;
      i++
    ) {
      assert.ok(i < 200, 'B never saw the reactivation');
      await new Promise((r) => setTimeout(r, 10));
    }
    await a.broker.principals.update(AGENT.id, { status: 'disabled' });
    const disabledMs = await refusedWithin(/the agent is disabled/);
    t.diagnostic(`disabled through the principals API on A, refused on B after ${disabledMs} ms`);
    await a.broker.principals.update(AGENT.id, { status: 'active' });
  });

  test('agent lookups on the call path read no store: B answers from memory after the first lookup', async () => {
    const { token } = await open([{ tool: 'helpdesk.search_tickets' }]);
    await b.broker.verifier.verify({ token, scheme: 'Bearer', method: 'POST', url: `${publicUrl}/mcp` });
    // Deleting the profile row behind the registry's back (no change published) changes nothing for
    // B: it does not re-read. Restored at once so nothing else sees the gap.
    const [row] = await b.broker.store.query('SELECT * FROM agent_profiles WHERE agent_id = ?', [AGENT.id]);
    assert.ok(row !== undefined);
    await b.broker.store.run('UPDATE agent_profiles SET agent_id = ? WHERE agent_id = ?', [`${AGENT.id}-moved`, AGENT.id]);
    try {
      // Past the 5 s after which the registry used to re-read a cached agent.
      for (const wait of [0, 5500]) {
        await new Promise((r) => setTimeout(r, wait));
        const v = await b.broker.verifier.verify({ token, scheme: 'Bearer', method: 'POST', url: `${publicUrl}/mcp` });
        assert.equal(v.agent.id, AGENT.id);
      }
    } finally {
      await b.broker.store.run('UPDATE agent_profiles SET agent_id = ? WHERE agent_id = ?', [AGENT.id, `${AGENT.id}-moved`]);
    }
  });

  // Last: it stops B's change feed.
  test('a replica cut off from the change feed fails closed within changes.maxStalenessMs, never serving on stale memory beyond it', async (t) => {
    const { token } = await open([{ tool: 'helpdesk.search_tickets' }]);
    const verifyOnB = () => b.broker.verifier.verify({ token, scheme: 'Bearer', method: 'POST', url: `${publicUrl}/mcp` });
    await b.broker.changes.catchUp();
    assert.equal((await verifyOnB()).agent.status, 'active');
    await b.broker.changes.stop();
    const cutAt = Date.now();
    await a.broker.agents.setStatus(AGENT.id, 'quarantined');
    let error: unknown;
    for (;;) {
      error = await verifyOnB().then(
        () => undefined,
        (err: unknown) => err,
      );
      if (error !== undefined) break;
      assert.ok(Date.now() - cutAt < 3000 + 500, 'B served past maxStalenessMs');
      await new Promise((r) => setTimeout(r, 50));
    }
    t.diagnostic(`B refused ${Date.now() - cutAt} ms after losing the feed (maxStalenessMs 3000)`);
    assert.equal((error as { code?: string }).code, 'ERR_REPLICA_STALE', String(error));
    await a.broker.agents.setStatus(AGENT.id, 'active');
  });
});
