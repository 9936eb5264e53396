// Token exchanges per second on the embedded store: each exchange verifies a fresh JWT-SVID (no
// proof-cache hits: every SVID is distinct), checks the ceiling, records the mandate and its audit
// events, and signs an access token. Baseline in the same run against the same server: the plain
// refresh (re-exchange of a mandate token: verify our own token + sign, no store write for the mandate).
// Client and server share this process and the machine's cores.
//   npx tsx bench/token-exchange.bench.ts          (BENCH_QUICK=1 for a < 20 s run)
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createBroker } from '../src/broker.js';
import { buildConfig } from '../src/config/load.js';
import { buildApp } from '../src/http/app.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../src/oauth/token-exchange.js';

const QUICK = process.env.BENCH_QUICK === '1';
const COUNT = QUICK ? 1500 : 6000;
const CONCURRENCY = 32;
const TRIAGE = 'spiffe://demo.mandate.local/agent/support-triage';

const request = JSON.stringify([
  {
    type: 'mandate',
    purpose: 'benchmark',
    taskType: 'support.refund',
    environment: 'production',
    ttlSeconds: 900,
    tools: [{ tool: 'helpdesk.search_tickets' }, { tool: 'helpdesk.propose_refund', args: { amountCents: { max: 25_000 } }, maxCalls: 3 }],
    delegable: false,
  },
]);

interface Result {
  readonly name: string;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  /** CPU time of this process (server + client) per request: comparable across loaded machines. */
  readonly cpuMsPerRequest: number;
}

// node:http with keep-alive: fetch (undici + web streams) cost the in-process client more CPU than
// the server spent on a refresh, which would measure the client instead of the broker.
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function post(url: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function run(name: string, url: string, bodies: readonly string[]): Promise<Result> {
  const latencies: number[] = [];
  let next = 0;
  let failures = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (;;) {
        const i = next++;
        if (i >= bodies.length) return;
        const t0 = performance.now();
        const res = await post(url, bodies[i] as string);
        latencies.push(performance.now() - t0);
        if (res.status !== 200) failures++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (failures > 0) throw new Error(`${name}: ${failures} requests failed`);
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return {
    name,
    perSecond: bodies.length / seconds,
    p50: q(0.5),
    p99: q(0.99),
    cpuMsPerRequest: (cpu.user + cpu.system) / 1000 / bodies.length,
  };
}

async function main(): Promise<void> {
  // BENCH_DIR puts the SQLite file on the disk to measure (fsync cost dominates on slow disks).
  const dataDir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'mandate-bench-'));
  const port = 18_000 + Math.floor(Math.random() * 1000);
  // One client address at full speed: the per-address rate limit (docs/operations.md) would measure 429s.
  const config = buildConfig(
    { mode: 'demo', dataDir, log: { level: 'silent' }, server: { port, rateLimit: { enabled: false } } },
    { env: {} },
  );
  const broker = await createBroker(config);
  const app = await buildApp(broker);
  await app.listen({ host: '127.0.0.1', port });
  const base = `http://127.0.0.1:${port}`;
  const tokenUrl = `${base}/oauth/token`;
  try {
    const dev = broker.identity.devSpiffe;
    if (dev === undefined) throw new Error('demo mode expected');
    const form = (p: Record<string, string>) => new URLSearchParams({ grant_type: GRANT_TOKEN_EXCHANGE, ...p }).toString();
    // Pre-mint distinct SVIDs so every exchange pays for a full signature verification.
    const svids = await Promise.all(
      Array.from({ length: COUNT + 200 }, () => dev.mint({ spiffeId: TRIAGE, audience: base, ttlSeconds: 600 })),
    );
    const exchangeBodies = svids.map((s) => form({ subject_token: s, subject_token_type: TOKEN_TYPE.jwt, authorization_details: request }));
    // Warm-up (JIT, connection pool, statement cache).
    await run('warm-up', tokenUrl, exchangeBodies.slice(COUNT));
    const first = JSON.parse((await post(tokenUrl, exchangeBodies[COUNT] as string)).text) as { access_token: string };
    const refreshBodies = Array.from({ length: COUNT }, () =>
      form({ subject_token: first.access_token, subject_token_type: TOKEN_TYPE.accessToken }),
    );

    const baseline = await run('refresh (baseline)', tokenUrl, refreshBodies);
    const exchange = await run('token exchange', tokenUrl, exchangeBodies.slice(0, COUNT));
    const fmt = (r: Result) =>
      `${r.name.padEnd(20)} ${r.perSecond.toFixed(0).padStart(7)}/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms   cpu ${r.cpuMsPerRequest.toFixed(2)} ms/req`;
    process.stdout.write(
      `token exchange benchmark: ${COUNT} requests each, concurrency ${CONCURRENCY}, SQLite, client in-process (node:http keep-alive)\n`,
    );
    process.stdout.write(`${fmt(baseline)}\n${fmt(exchange)}\n`);
    const result = {
      bench: 'token-exchange',
      exchangesPerSecond: Math.round(exchange.perSecond),
      exchangeP50Ms: +exchange.p50.toFixed(3),
      exchangeP99Ms: +exchange.p99.toFixed(3),
      refreshPerSecond: Math.round(baseline.perSecond),
      refreshP50Ms: +baseline.p50.toFixed(3),
      refreshP99Ms: +baseline.p99.toFixed(3),
      exchangeCpuMs: +exchange.cpuMsPerRequest.toFixed(3),
      refreshCpuMs: +baseline.cpuMsPerRequest.toFixed(3),
      ratio: +(exchange.perSecond / baseline.perSecond).toFixed(3),
      goalPerSecond: 2000,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.stdout.write(
      `summary: exchange ${result.exchangesPerSecond}/s = ${result.ratio}x the refresh baseline (${result.refreshPerSecond}/s); goal >= 2000/s ${result.exchangesPerSecond >= 2000 ? 'met' : 'NOT met'}\n`,
    );
  } finally {
    agent.destroy();
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
