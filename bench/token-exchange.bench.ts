// Token exchanges per second on the embedded store: each exchange verifies a fresh JWT-SVID (no
// proof-cache hits: every SVID is distinct), checks the ceiling, records the mandate and its audit
// events, and signs an access token. Baseline in the same run against the same server: the plain
// refresh (re-exchange of a mandate token: verify our own token + sign, no store write for the mandate).
// The broker runs in this process; the client (node:http keep-alive) runs in its own process, as a
// real agent would, so the broker's event loop is the broker's alone. Both share the machine's cores.
//   npx tsx bench/token-exchange.bench.ts          (BENCH_QUICK=1 for a < 20 s run)
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
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
  /** CPU time of the client process per request. */
  readonly clientCpuMs: number;
}

/** What the parent measures around one client run: the broker's CPU per request. */
interface Measured extends Result {
  readonly serverCpuMs: number;
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
  let firstFailure = '';
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
        if (res.status !== 200 && failures++ === 0) firstFailure = `HTTP ${res.status} ${res.text.slice(0, 200)}`;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (failures > 0) throw new Error(`${name}: ${failures} requests failed (first: ${firstFailure})`);
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return {
    name,
    perSecond: bodies.length / seconds,
    p50: q(0.5),
    p99: q(0.99),
    clientCpuMs: (cpu.user + cpu.system) / 1000 / bodies.length,
  };
}

// ── the client process: runs what its parent sends, reports each result ──
function serveClient(): void {
  process.on('message', (m: { name: string; url: string; file: string }) => {
    const bodies = JSON.parse(readFileSync(m.file, 'utf8')) as string[];
    run(m.name, m.url, bodies).then(
      (result) => process.send?.({ result }),
      (err: unknown) => process.send?.({ error: String(err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}

// ── the broker's side ──
type Client = (name: string, url: string, bodies: readonly string[]) => Promise<Measured>;

function startClient(dir: string): { run: Client; close(): void } {
  const child = fork(SELF, ['client'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  let n = 0;
  return {
    async run(name, url, bodies) {
      const file = join(dir, `bodies-${n++}.json`);
      writeFileSync(file, JSON.stringify(bodies));
      const cpu0 = process.cpuUsage();
      const answer = await new Promise<{ result?: Result; error?: string }>((resolve, reject) => {
        child.once('message', resolve);
        child.once('exit', (code) => reject(new Error(`the client exited (${code})`)));
        child.send({ name, url, file });
      });
      const cpu = process.cpuUsage(cpu0);
      if (answer.result === undefined) throw new Error(answer.error ?? 'no result');
      return { ...answer.result, serverCpuMs: (cpu.user + cpu.system) / 1000 / bodies.length };
    },
    close: () => child.kill(),
  };
}

async function main(): Promise<void> {
  const { createBroker } = await import('../src/broker.js');
  const { buildConfig } = await import('../src/config/load.js');
  const { buildApp } = await import('../src/http/app.js');
  const { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } = await import('../src/oauth/token-exchange.js');
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
  const client = startClient(dataDir);
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
    await client.run('warm-up', tokenUrl, exchangeBodies.slice(COUNT));
    const first = JSON.parse((await post(tokenUrl, exchangeBodies[COUNT] as string)).text) as { access_token: string };
    const refreshBodies = Array.from({ length: COUNT }, () =>
      form({ subject_token: first.access_token, subject_token_type: TOKEN_TYPE.accessToken }),
    );

    const baseline = await client.run('refresh (baseline)', tokenUrl, refreshBodies);
    const exchange = await client.run('token exchange', tokenUrl, exchangeBodies.slice(0, COUNT));
    const fmt = (r: Measured) =>
      `${r.name.padEnd(20)} ${r.perSecond.toFixed(0).padStart(7)}/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms   ` +
      `broker cpu ${r.serverCpuMs.toFixed(3)} ms/req (max ${(1000 / r.serverCpuMs).toFixed(0)}/s on one event loop)   client cpu ${r.clientCpuMs.toFixed(3)} ms/req`;
    process.stdout.write(
      `token exchange benchmark: ${COUNT} requests each, concurrency ${CONCURRENCY}, SQLite, client in its own process (node:http keep-alive)\n`,
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
      exchangeBrokerCpuMs: +exchange.serverCpuMs.toFixed(3),
      refreshBrokerCpuMs: +baseline.serverCpuMs.toFixed(3),
      ratio: +(exchange.perSecond / baseline.perSecond).toFixed(3),
      goalPerSecond: 2000,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.stdout.write(
      `summary: exchange ${result.exchangesPerSecond}/s = ${result.ratio}x the refresh baseline (${result.refreshPerSecond}/s); goal >= 2000/s ${result.exchangesPerSecond >= 2000 ? 'met' : 'NOT met'}\n`,
    );
    process.stdout.write(
      `RESULT token-exchange exchanges_per_s=${result.exchangesPerSecond} refresh_per_s=${result.refreshPerSecond} ratio=${result.ratio} ` +
        `exchange_p50_ms=${result.exchangeP50Ms} exchange_p99_ms=${result.exchangeP99Ms} broker_cpu_ms_per_exchange=${result.exchangeBrokerCpuMs}\n`,
    );
  } finally {
    client.close();
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'client') serveClient();
else await main();
