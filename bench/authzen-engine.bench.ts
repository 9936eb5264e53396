// bench/authzen-engine: org-policy decisions through the external AuthZEN engine
// (src/policy/authzen-engine.ts) against Mandate's own AuthZEN PDP on loopback, demo policies,
// audit off: latency one at a time, then throughput with concurrent requests on kept-alive
// connections. PDP and client share this process (and so its core): a separate PDP does better.
// BENCH_QUICK=1 finishes in a few seconds.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBroker } from '../src/broker.js';
import { buildConfig } from '../src/config/load.js';
import { buildApp } from '../src/http/app.js';
import { authzenEngine } from '../src/policy/authzen-engine.js';
import { wasmEngine } from '../src/policy/cedar/engine.js';
import { cedarRequest } from '../src/policy/decisions.js';
import { DEMO_POLICY_DIR, SHIPPED_SCHEMA } from '../src/policy/source.js';
import type { DecisionInput } from '../src/policy/types.js';
import { summarize } from './lib/stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const SEQUENTIAL = QUICK ? 300 : 3_000;
const CONCURRENCY = 32;
const THROUGHPUT_MS = QUICK ? 1_000 : 5_000;

const tmp = mkdtempSync(join(tmpdir(), 'mandate-bench-authzen-'));
const config = buildConfig(
  { mode: 'demo', dataDir: tmp, log: { level: 'silent' }, policy: { authzen: { auth: 'off', audit: false } } },
  { env: {} },
);
const broker = await createBroker(config);
const app = await buildApp(broker);
await app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/access/v1/evaluation`;

const files = readdirSync(DEMO_POLICY_DIR, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.cedar'))
  .map((f) => ({ path: f, text: readFileSync(join(DEMO_POLICY_DIR, f), 'utf8') }));
const loaded = wasmEngine.load({ path: 'mandate.cedarschema', text: readFileSync(SHIPPED_SCHEMA, 'utf8') }, files);
if (!loaded.ok) throw new Error('the demo policies do not load');
const input = {
  agent: { id: 'agent-1', owner: 'support', actorType: 'agent', environment: 'production', status: 'active' },
  tool: { name: 'helpdesk.search_tickets', actionClass: 'read', sensitivity: 'confidential', upstream: 'helpdesk' },
  mandate: {
    id: 'm-1',
    purpose: 'Resolve ticket',
    taskType: 'support.refund',
    depth: 0,
    environment: 'production',
    agentId: 'agent-1',
    status: 'active',
  },
  chain: [],
  args: { query: 'refund' },
} as unknown as DecisionInput;
const request = cedarRequest(loaded.set, input, undefined);
const expected = loaded.set.authorize(request).decision;

const engine = authzenEngine({ url, timeoutMs: 5_000 });
const ask = async () => {
  const a = await engine.ask(request);
  if (a.decision !== expected || a.errors.length > 0) throw new Error(`the PDP disagrees with cedar-wasm: ${JSON.stringify(a)}`);
};

for (let i = 0; i < 100; i++) await ask();
const samples: number[] = [];
for (let i = 0; i < SEQUENTIAL; i++) {
  const t = performance.now();
  await ask();
  samples.push((performance.now() - t) * 1000);
}
const seq = summarize(samples);

let done = 0;
// CPU time of this process (client and PDP): decisions per CPU second hold on a busy machine too.
const cpu0 = process.cpuUsage();
const until = performance.now() + THROUGHPUT_MS;
const started = performance.now();
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < until) {
      await ask();
      done++;
    }
  }),
);
const perSec = done / ((performance.now() - started) / 1000);
const cpu = process.cpuUsage(cpu0);
const perCpuSec = done / ((cpu.user + cpu.system) / 1e6);

process.stdout.write(
  `authzen engine → Mandate PDP (${expected}): sequential p50 ${seq.p50.toFixed(0)} µs p99 ${seq.p99.toFixed(0)} µs; ` +
    `${CONCURRENCY} concurrent: ${perSec.toFixed(0)} decisions/s (${perCpuSec.toFixed(0)} per CPU second, client and PDP together)\n`,
);
process.stdout.write(
  `RESULT authzen_engine p50_us=${seq.p50.toFixed(0)} p99_us=${seq.p99.toFixed(0)} per_s=${perSec.toFixed(0)} per_cpu_s=${perCpuSec.toFixed(0)} concurrency=${CONCURRENCY}\n`,
);
engine.close();
await app.close();
await broker.close();
rmSync(tmp, { recursive: true, force: true });
