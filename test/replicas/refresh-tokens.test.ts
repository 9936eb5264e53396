// Refresh tokens and client assertions across replicas (real broker processes, one PostgreSQL
// schema): a refresh token rotated on one replica is reuse on another, which ends the mandate
// everywhere; two replicas consuming the same token at once cannot both win; a client assertion
// accepted by one replica is a replay on the other; a client-credentials standing grant opened on
// one replica is continued on the other.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DevSpiffeAuthority } from '../../src/identity/dev-spiffe.js';
import { CLIENT_ASSERTION_TYPE } from '../../src/oauth/client-credentials.js';
import { type Cluster, DEMO_TRIAGE, mandateIdOf, openDemoMandate, startCluster } from '../helpers/replicas.js';
import { postgresFactory } from '../helpers/stores.js';

const pgf = await postgresFactory();
const TOOLS = [{ tool: 'helpdesk.search_tickets' }];

async function eventually(check: () => Promise<boolean>, boundMs = 5000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > boundMs) throw new Error(`not reached within ${boundMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('refresh tokens and client assertions across replicas', { skip: pgf.skip }, () => {
  let cluster: Cluster;
  let authority: DevSpiffeAuthority;
  before(async () => {
    cluster = await startCluster({ replicas: 2, config: { mode: 'demo' } });
    authority = await DevSpiffeAuthority.open(cluster.dataDir);
  });
  after(() => cluster.close());

  const url = (i: number) => cluster.replicas[i]?.url ?? '';
  const svid = () => authority.mint({ spiffeId: DEMO_TRIAGE, audience: cluster.publicUrl });
  const token = async (replica: number, form: Record<string, string>) => {
    const res = await fetch(`${url(replica)}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const refresh = async (replica: number, refreshToken: string, assertion?: string) =>
    token(replica, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: assertion ?? (await svid()),
    });
  const active = async (replica: number, accessToken: string) => {
    const res = await fetch(`${url(replica)}/oauth/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${cluster.bootstrapToken}` },
      body: new URLSearchParams({ token: accessToken }),
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { active: boolean }).active;
  };
  const open = async () => {
    const m = await openDemoMandate(cluster, { tools: TOOLS });
    assert.equal(m.status, 200, JSON.stringify(m.body));
    return { ...m, refresh: String(m.body.refresh_token) };
  };

  test('rotated on A, reused on B: the mandate ends on both replicas', async () => {
    const m = await open();
    const rotated = await refresh(0, m.refresh);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const successor = String(rotated.body.access_token);
    assert.equal(mandateIdOf(successor), m.mandateId);
    assert.equal(await active(1, successor), true, 'B accepts the refreshed token');
    const reuse = await refresh(1, m.refresh);
    assert.equal(reuse.status, 400);
    assert.equal(reuse.body.error, 'invalid_grant');
    assert.equal(await active(1, successor), false, 'B ended it at once');
    await eventually(async () => !(await active(0, successor)));
    await eventually(async () => !(await active(0, m.token)));
    // The rotated successor refresh token is dead on A too.
    const after = await refresh(0, String(rotated.body.refresh_token));
    assert.equal(after.body.error, 'invalid_grant');
  });

  test('the same refresh token on A and B at once: exactly one wins, and the mandate ends', async () => {
    const m = await open();
    const [a, b] = await Promise.all([refresh(0, m.refresh), refresh(1, m.refresh)]);
    assert.deepEqual([a.status, b.status].sort(), [200, 400], JSON.stringify([a.body, b.body]));
    await eventually(async () => !(await active(0, m.token)) && !(await active(1, m.token)));
  });

  test('a client assertion accepted by A is a replay on B', async () => {
    const assertion = await svid();
    const form = {
      grant_type: 'client_credentials',
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: assertion,
      authorization_details: JSON.stringify([
        { type: 'mandate', purpose: 'replay', taskType: 'support.refund', environment: 'production', ttlSeconds: 300, tools: TOOLS },
      ]),
    };
    assert.equal((await token(0, form)).status, 200);
    const replay = await token(1, form);
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error, 'invalid_client');
  });

  test('a standing client-credentials grant opened on A is continued on B', async () => {
    const details = JSON.stringify([
      { type: 'mandate', purpose: 'standing', taskType: 'support.refund', environment: 'production', ttlSeconds: 300, tools: TOOLS },
    ]);
    const cc = async (replica: number) =>
      token(replica, {
        grant_type: 'client_credentials',
        client_assertion_type: CLIENT_ASSERTION_TYPE,
        client_assertion: await svid(),
        authorization_details: details,
      });
    const a = await cc(0);
    const b = await cc(1);
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.equal(mandateIdOf(String(b.body.access_token)), mandateIdOf(String(a.body.access_token)));
  });
});
