// bench/replicas: how fast a revocation on one replica reaches another (revoke answered on A →
// the token is refused on B), over many revocations, on real broker processes sharing one
// PostgreSQL. Printed next to the 5-minute token lifetime it replaces as the exposure window.
// BENCH_QUICK=1 runs 100 revocations instead of 1,000.
import { DevSpiffeAuthority } from '../src/identity/dev-spiffe.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../src/mandates/token-exchange.js';
import { startCluster } from '../test/helpers/replicas.js';
import { summarize } from './lib/stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const REVOCATIONS = QUICK ? 100 : 1000;
const TOKEN_LIFETIME_MS = 5 * 60 * 1000;

const cluster = await startCluster({ replicas: 2, config: { mode: 'demo', changes: { pollIntervalMs: 1000, maxStalenessMs: 5000 } } });
try {
  const [a, b] = cluster.replicas;
  if (a === undefined || b === undefined) throw new Error('two replicas expected');
  const authority = await DevSpiffeAuthority.open(cluster.dataDir);
  const admin = { authorization: `Bearer ${cluster.bootstrapToken}` };
  const form = (body: Record<string, string>) => ({
    method: 'POST',
    headers: { ...admin, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body),
  });
  const details = JSON.stringify([
    {
      type: 'mandate',
      purpose: 'bench',
      taskType: 'support.refund',
      environment: 'production',
      ttlSeconds: 600,
      tools: [{ tool: 'helpdesk.search_tickets' }],
      delegable: false,
    },
  ]);
  const active = async (base: string, token: string) =>
    ((await (await fetch(`${base}/oauth/introspect`, form({ token }))).json()) as { active: boolean }).active;

  const samples: number[] = [];
  for (let i = 0; i < REVOCATIONS; i++) {
    const svid = await authority.mint({ spiffeId: 'spiffe://demo.mandate.local/agent/support-triage', audience: cluster.publicUrl });
    const res = await fetch(`${a.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: GRANT_TOKEN_EXCHANGE,
        subject_token: svid,
        subject_token_type: TOKEN_TYPE.jwt,
        authorization_details: details,
      }),
    });
    const { access_token: token } = (await res.json()) as { access_token: string };
    const mandateId = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).mandate as string;
    if (!(await active(b.url, token))) throw new Error('B must accept the token before the revocation');
    const revoked = await fetch(`${a.url}/admin/v1/mandates/${mandateId}/revoke`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: '{}',
    });
    if (revoked.status !== 200) throw new Error(`revoke failed: ${revoked.status}`);
    const t0 = performance.now();
    while (await active(b.url, token)) {
      if (performance.now() - t0 > 10_000) throw new Error('revocation never reached B');
    }
    samples.push(performance.now() - t0);
  }
  const s = summarize(samples);
  process.stdout.write(
    `revocation propagation A→B over ${s.n} revocations: p50 ${s.p50.toFixed(2)} ms   p99 ${s.p99.toFixed(2)} ms   max ${s.max.toFixed(2)} ms\n`,
  );
  process.stdout.write(`token lifetime it replaces as exposure window: ${TOKEN_LIFETIME_MS} ms\n`);
  process.stdout.write(
    `RESULT replicas revocations=${s.n} propagation_p50_ms=${s.p50.toFixed(2)} propagation_p99_ms=${s.p99.toFixed(2)} ` +
      `token_lifetime_over_p99=${(TOKEN_LIFETIME_MS / s.p99).toFixed(0)}x goal_p99_le_100ms=${s.p99 <= 100 ? 'met' : 'missed'}\n`,
  );
} finally {
  await cluster.close();
}
