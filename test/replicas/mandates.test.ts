// Mandates across replicas: a mandate opened on one replica is usable on every other; a revocation
// on one is refused on the others within the change-feed bound, also when notifications are lost;
// DPoP replay is refused across replicas. Real broker processes, one PostgreSQL schema.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import pg from 'pg';
import { DevSpiffeAuthority } from '../../src/identity/dev-spiffe.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { type Cluster, mandateIdOf, openDemoMandate, startCluster } from '../helpers/replicas.js';
import { POSTGRES_URL, postgresFactory } from '../helpers/stores.js';

const REMEDIATION = 'spiffe://demo.mandate.local/agent/remediation';
const pgf = await postgresFactory();

const request = (over: Record<string, unknown> = {}) => ({
  type: 'mandate',
  purpose: 'Resolve ticket T-4821',
  taskType: 'support.refund',
  environment: 'production',
  ttlSeconds: 600,
  tools: [{ tool: 'helpdesk.search_tickets' }, { tool: 'helpdesk.get_customer', args: { customerId: { eq: 'C-1009' } } }],
  delegable: true,
  ...over,
});

/** Polls until `check` holds; the bound is generous because CI machines are shared. */
async function eventually(check: () => Promise<boolean>, boundMs = 5000): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > boundMs) throw new Error(`not reached within ${boundMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
}

describe('mandates across replicas', { skip: pgf.skip }, () => {
  let cluster: Cluster;
  let authority: DevSpiffeAuthority;
  before(async () => {
    cluster = await startCluster({ replicas: 3, config: { mode: 'demo' } });
    authority = await DevSpiffeAuthority.open(cluster.dataDir);
  });
  after(() => cluster.close());

  const url = (i: number) => cluster.replicas[i]?.url ?? '';
  const post = (base: string, path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form),
    });

  const open = async (replica: number, form: Record<string, string> = {}, headers: Record<string, string> = {}) =>
    openDemoMandate(cluster, { replica, tools: request().tools, form, headers });

  async function delegate(base: string, parentToken: string) {
    const svid = await authority.mint({ spiffeId: REMEDIATION, audience: cluster.publicUrl });
    const res = await post(base, '/oauth/token', {
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: parentToken,
      subject_token_type: TOKEN_TYPE.accessToken,
      actor_token: svid,
      actor_token_type: TOKEN_TYPE.jwt,
      authorization_details: JSON.stringify([request({ tools: [{ tool: 'helpdesk.search_tickets' }], ttlSeconds: 300, delegable: false })]),
    });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { access_token: string };
  }

  const active = async (base: string, token: string) => {
    const res = await post(base, '/oauth/introspect', { token }, { authorization: `Bearer ${cluster.bootstrapToken}` });
    assert.equal(res.status, 200);
    return ((await res.json()) as { active: boolean }).active;
  };

  const revoke = async (base: string, mandateId: string) => {
    const res = await fetch(`${base}/admin/v1/mandates/${mandateId}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cluster.bootstrapToken}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { ended: string[] };
  };

  test('a mandate opened on A is active on B and C', async () => {
    const opened = await open(0);
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    const { token } = opened;
    assert.equal(await active(url(1), token), true);
    assert.equal(await active(url(2), token), true);
  });

  test('revoked on B, refused on A and C within the bound', async () => {
    const token = (await open(0)).token;
    assert.equal(await active(url(0), token), true, 'A has it cached as active');
    await revoke(url(1), mandateIdOf(token));
    assert.equal(await active(url(1), token), false, 'the revoking replica refuses at once');
    await eventually(async () => !(await active(url(0), token)));
    await eventually(async () => !(await active(url(2), token)));
  });

  test('a child mandate revoked through its parent on A is refused on B', async () => {
    const parent = (await open(0)).token;
    const child = (await delegate(url(0), parent)).access_token;
    assert.equal(await active(url(1), child), true);
    const { ended } = await revoke(url(0), mandateIdOf(parent));
    assert.ok(ended.includes(mandateIdOf(child)), 'the cascade names the child');
    await eventually(async () => !(await active(url(1), child)));
  });

  test('with every LISTEN connection terminated, catch-up by sequence still applies a revocation', async () => {
    const token = (await open(0)).token;
    assert.equal(await active(url(2), token), true);
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    try {
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid() AND datname = current_database()",
      );
      assert.ok((killed.rowCount ?? 0) >= 3, 'each replica had a LISTEN connection');
    } finally {
      await admin.end();
    }
    await revoke(url(0), mandateIdOf(token));
    await eventually(async () => !(await active(url(2), token)));
  });

  test('a DPoP proof accepted by A is refused as a replay by B', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const proof = await new SignJWT({ jti: randomUUID(), htm: 'POST', htu: `${cluster.publicUrl}/oauth/token` })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
      .setIssuedAt()
      .sign(privateKey);
    const first = await open(0, {}, { dpop: proof });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.token_type, 'DPoP');
    const replay = await open(1, {}, { dpop: proof });
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_dpop_proof');
  });
});
