// bench/decision: the whole decision (chain scope + Cedar + approval search) in-process and over
// the AuthZEN HTTP endpoint, with 20 org policies, at 100 and at 100,000 active mandates (or
// AuthZEN entities), with the compiled and the cedar-wasm engines side by side, each against its
// bare engine call on the same request in the same run.
// BENCH_QUICK=1 finishes in well under 20 s (fewer iterations, 10,000 instead of 100,000).

import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { createBroker } from '../src/broker.js';
import { buildConfig } from '../src/config/load.js';
import { buildApp } from '../src/http/app.js';
import type { CallerAgent, CallerMandate } from '../src/oauth/caller.js';
import { BudgetCounter } from '../src/policy/budgets.js';
import type { CompiledPolicySet } from '../src/policy/cedar/engine.js';
import { wasmEngine } from '../src/policy/cedar/engine.js';
import { compiledEngine } from '../src/policy/compiled/engine.js';
import { cedarRequest, DecisionService } from '../src/policy/decisions.js';
import type { LoadedPolicySet, PolicyEngine } from '../src/policy/engine.js';
import { DEMO_POLICY_DIR, SHIPPED_SCHEMA } from '../src/policy/source.js';
import { PolicyStore } from '../src/policy/store.js';
import type { DecisionInput } from '../src/policy/types.js';
import type { Scope } from '../src/scope/scope.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';

const QUICK = process.env.BENCH_QUICK === '1';
const ITER = QUICK ? 600 : 10_000;
const HTTP_ITER = QUICK ? 150 : 3000;
const HTTP_CONCURRENCY = 32;

/** Decisions per second with HTTP_CONCURRENCY requests in flight over keep-alive sockets. */
async function concurrentRate(url: string, body: (i: number) => string, total: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: HTTP_CONCURRENCY });
  const target = new URL(url);
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const b = body(i);
      const req = httpRequest(
        {
          hostname: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) },
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (data += c));
          res.on('end', () =>
            res.statusCode === 200 && data.includes('"decision":true')
              ? resolve()
              : reject(new Error(`AuthZEN answered ${res.statusCode}: ${data.slice(0, 200)}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(b);
    });
  let next = 0;
  const worker = async () => {
    while (next < total) await one(next++);
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: HTTP_CONCURRENCY }, worker));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  return total / seconds;
}
const SIZES = QUICK ? [100, 10_000] : [100, 100_000];
const NOW = Date.now();

const tmp = mkdtempSync(join(tmpdir(), 'mandate-bench-'));
const policyDir = join(tmp, 'policies');
cpSync(DEMO_POLICY_DIR, policyDir, { recursive: true });
// 10 demo policies + 10 realistic ceilings = 20 org policies.
const extra = Array.from(
  { length: 10 },
  (_, i) => `@id("ceiling-${i}")
forbid (principal is Mandate::Agent, action == Mandate::Action::"call", resource)
when { resource.upstream == "legacy-${i}" && (context.taskType like "batch.*" || principal.owner == "team-${i}") };`,
).join('\n\n');
writeFileSync(join(policyDir, '90-ceilings.cedar'), extra);

const scope: Scope = {
  tools: [
    { tool: 'helpdesk.search_tickets' },
    { tool: 'helpdesk.get_customer', args: { customerId: { prefix: 'C-' } } },
    { tool: 'helpdesk.propose_refund', args: { amountCents: { max: 25000 } } },
  ],
  delegable: true,
};

/** N active mandates held in memory (as the verifier's cache holds them), each a root with one child. */
function mandates(n: number): Map<string, CallerMandate[]> {
  const chains = new Map<string, CallerMandate[]>();
  for (let i = 0; i < n; i++) {
    const root: CallerMandate = {
      id: `root-${i}`,
      agentId: 'agent-1',
      purpose: 'Resolve ticket',
      taskType: 'support.refund',
      environment: 'production',
      scope,
      depth: 0,
      status: 'active',
      expiresAt: NOW + 3_600_000,
      onBehalfOf: 'dana',
    };
    const child: CallerMandate = { ...root, id: `child-${i}`, parentId: root.id, depth: 1 };
    chains.set(child.id, [root, child]);
  }
  return chains;
}

const agent: CallerAgent = { id: 'agent-1', actorType: 'agent', owner: 'team-support', environment: 'production', status: 'active' };
const tool = {
  name: 'helpdesk.get_customer',
  upstream: 'helpdesk',
  actionClass: 'read' as const,
  sensitivity: 'confidential' as const,
  sensitiveArgs: [],
};
const args = { customerId: 'C-1009', query: 'double charge' };

function stats(samples: number[]): { p50: number; p99: number; perSec: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  const total = samples.reduce((a, b) => a + b, 0);
  return { p50: at(0.5), p99: at(0.99), perSec: (samples.length / total) * 1e6 };
}

function line(label: string, r: { p50: number; p99: number; perSec: number }): void {
  process.stdout.write(
    `${label.padEnd(44)} p50 ${r.p50.toFixed(0).padStart(6)} µs   p99 ${r.p99.toFixed(0).padStart(6)} µs   ${r.perSec.toFixed(0).padStart(7)} /s\n`,
  );
}

// Timers are made per engine and size: sharing one timing loop between the compiled engine's
// closures and cedar-wasm calls made V8 (Node 20) deoptimize into a fatal "unreachable code".
function asyncTimer() {
  return async (n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await fn(i);
      out.push((performance.now() - t) * 1000);
    }
    return out;
  };
}

function syncTimer() {
  return (n: number, fn: (i: number) => unknown): number[] => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      fn(i);
      out.push((performance.now() - t) * 1000);
    }
    return out;
  };
}

const timeAsync = asyncTimer();

const store = openSqliteStore({ path: join(tmp, 'bench.db') });
await store.migrate();
// The same org policy in each engine, side by side: the compiled engine (the default) and cedar-wasm.
const ENGINES: PolicyEngine[] = [compiledEngine, wasmEngine];
// Measured wasm first: after the compiled engine's loop, a cedar-wasm call at 100,000 mandates made
// V8 (Node 20) abort in its deoptimizer ("unreachable code"); the other order runs clean.
const ORDER = [wasmEngine.name, compiledEngine.name];
const services = new Map<string, { decisions: DecisionService; set: LoadedPolicySet }>();
for (const engine of ENGINES) {
  const policies = new PolicyStore({ dir: policyDir, schemaPath: SHIPPED_SCHEMA, now: () => NOW, engine });
  const loaded = await policies.load();
  if (!loaded.ok || loaded.policies !== 20) throw new Error(`expected 20 policies, got ${JSON.stringify(loaded)}`);
  if (loaded.engine !== engine.name) throw new Error(`the ${engine.name} engine does not serve the set: ${loaded.notices.join('; ')}`);
  const decisions = new DecisionService({
    policies,
    budgets: new BudgetCounter(store),
    clock: { now: () => NOW },
    approverRoles: ['support-lead', 'finance', 'admin'],
  });
  const set = policies.current?.set;
  if (set === undefined) throw new Error('no set');
  services.set(engine.name, { decisions, set });
}

process.stdout.write(
  `decision benchmark: 20 policies, engines ${ENGINES.map((e) => e.name).join(' and ')}, ${ITER} in-process / ${HTTP_ITER} HTTP iterations${QUICK ? ' (quick)' : ''}; CPU shared with other work\n`,
);
const results: Record<string, { p50: number; p99: number; perSec: number }> = {};
const concurrent: Record<string, number> = {};
for (const n of SIZES) {
  const chains = mandates(n);
  const ids = [...chains.keys()];
  const input = (i: number): DecisionInput => {
    const chain = chains.get(ids[(i * 7919) % ids.length] as string) as CallerMandate[];
    return { mandate: chain[chain.length - 1] as CallerMandate, chain, agent, tool, args, now: NOW };
  };
  for (const name of ORDER) {
    const { decisions, set } = services.get(name) as { decisions: DecisionService; set: LoadedPolicySet };
    const first = await decisions.decide(input(0));
    if (first.outcome !== 'allow') throw new Error(`benchmark request is not allowed: ${first.reasons.join('; ')}`);
    // The bare engine call on the very same request (prebuilt once, outside the timing).
    const req = cedarRequest(set, input(0), undefined);
    const wasmSet = set as CompiledPolicySet;
    const bareCall =
      name === 'wasm'
        ? () =>
            cedar.statefulIsAuthorized({
              ...req,
              preparsedSchemaName: wasmSet.schemaName,
              preparsedPolicySetId: wasmSet.setId,
              validateRequest: true,
            })
        : () => set.authorize(req);
    const bareLabel = name === 'wasm' ? 'bare statefulIsAuthorized' : `bare ${name} authorize`;
    const timeSync = syncTimer();
    const timeAsync = asyncTimer();
    timeSync(500, bareCall);
    await timeAsync(500, (i) => decisions.decide(input(i)));
    const bare = stats(timeSync(ITER, bareCall));
    const full = stats(await timeAsync(ITER, (i) => decisions.decide(input(i))));
    results[`${name}-bare-${n}`] = bare;
    results[`${name}-decide-${n}`] = full;
    line(`${bareLabel} (${n} mandates)`, bare);
    line(`decide, ${name} engine (${n} mandates)`, full);
    process.stdout.write(
      `${'  ratio decide / bare'.padEnd(44)} p50 ${(full.p50 / bare.p50).toFixed(2)}x   p99 ${(full.p99 / bare.p99).toFixed(2)}x\n`,
    );
  }
}

// AuthZEN over HTTP: N agent entities in the entities file; each request names one of them.
// Measured with the per-decision audit append off (the PDP path itself), and once with it on
// (the default: every answer waits for its durable audit event).
const httpRuns: { n: number; audit: boolean }[] = [...SIZES.map((n) => ({ n, audit: false })), { n: SIZES[0] as number, audit: true }];
for (const { n, audit } of httpRuns) {
  const entities = Array.from({ length: n }, (_, i) => ({
    uid: { type: 'Mandate::Agent', id: `agent-${i}` },
    attrs: { owner: 'team-support', actorType: 'agent', environment: 'production', status: 'active' },
    parents: [],
  }));
  entities.push({
    uid: { type: 'Mandate::Tool', id: tool.name },
    attrs: { actionClass: 'read', sensitivity: 'confidential', upstream: 'helpdesk' } as never,
    parents: [],
  });
  const entitiesFile = join(tmp, `entities-${n}.json`);
  writeFileSync(entitiesFile, JSON.stringify(entities));
  const config = buildConfig(
    {
      mode: 'demo',
      dataDir: join(tmp, `data-${n}`),
      log: { level: 'silent' },
      policy: { dir: policyDir, entities: entitiesFile, authzen: { auth: 'off', audit } },
    },
    { env: {} },
  );
  const broker = await createBroker(config);
  const app = await buildApp(broker);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/access/v1/evaluation`;
  const body = (i: number) =>
    JSON.stringify({
      subject: { type: 'agent', id: `agent-${(i * 7919) % n}` },
      action: { name: 'call' },
      resource: { type: 'tool', id: tool.name },
      context: {
        args,
        environment: 'production',
        risk: 0,
        delegationDepth: 1,
        purpose: 'Resolve ticket',
        taskType: 'support.refund',
        mandate: { type: 'Mandate::Mandate', id: 'm-1' },
      },
    });
  const post = async (i: number) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(i) });
    const json = (await res.json()) as { decision: boolean };
    if (json.decision !== true) throw new Error(`AuthZEN request denied: ${JSON.stringify(json)}`);
  };
  await timeAsync(100, post);
  const http = stats(await timeAsync(HTTP_ITER, post));
  results[`http-${n}${audit ? '-audit' : ''}`] = http;
  line(`AuthZEN HTTP (${n} entities${audit ? ', audited' : ''})`, http);
  // Throughput is not 1 / latency: many PDP clients ask at once. Keep-alive node:http (fetch costs
  // the client several times the CPU), HTTP_CONCURRENCY requests in flight; the client shares the
  // broker's process and cores, so this is a floor.
  const rate = await concurrentRate(url, body, HTTP_ITER * 2);
  concurrent[`http-${n}${audit ? '-audit' : ''}`] = rate;
  process.stdout.write(
    `${`AuthZEN HTTP (${n} entities${audit ? ', audited' : ''}), ${HTTP_CONCURRENCY} in flight`.padEnd(44)} ${rate.toFixed(0).padStart(7)} /s\n`,
  );
  await app.close();
}

const [small, large] = SIZES as [number, number];
const r = (k: string) => results[k] as { p50: number; p99: number; perSec: number };
const serving = ENGINES[0]?.name as string;
const d = (engine: string, n: number) => r(`${engine}-decide-${n}`);
process.stdout.write(
  `RESULT decision p50_us=${d(serving, large).p50.toFixed(1)} p99_us=${d(serving, large).p99.toFixed(1)} engine=${serving} ` +
    `ratio_to_bare_p50=${(d(serving, large).p50 / r(`${serving}-bare-${large}`).p50).toFixed(2)} ` +
    `p99_growth_${small}_to_${large}=${(d(serving, large).p99 / d(serving, small).p99).toFixed(2)} ` +
    `wasm_p50_us=${d('wasm', large).p50.toFixed(0)} wasm_p99_us=${d('wasm', large).p99.toFixed(0)} ` +
    `wasm_bare_p50_us=${r(`wasm-bare-${large}`).p50.toFixed(0)} speedup_p50=${(d('wasm', large).p50 / d(serving, large).p50).toFixed(1)} ` +
    `http_p50_us=${r(`http-${large}`).p50.toFixed(0)} http_per_s=${(concurrent[`http-${large}`] ?? 0).toFixed(0)} ` +
    `http_sequential_per_s=${r(`http-${large}`).perSec.toFixed(0)} http_audited_p50_us=${r(`http-${small}-audit`).p50.toFixed(0)} ` +
    `http_audited_per_s=${(concurrent[`http-${small}-audit`] ?? 0).toFixed(0)}\n`,
);
await store.close();
rmSync(tmp, { recursive: true, force: true });
