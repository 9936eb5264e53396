// Gateway overhead: the same tools/call workload (a fast read tool on a stateful streamable HTTP
// MCP server) sent directly to the upstream and through Mandate's /mcp gateway (token verified,
// decided by Cedar, decision and result durably audited, forwarded over a pooled SDK session),
// in one run, side by side. Upstream, gateway and load generator are separate processes sharing
// the machine's cores. BENCH_QUICK=1 finishes in under 20 s.
//
//   npx tsx bench/gateway.bench.ts
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/ports.js';
import { summarize } from './lib/stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const SELF = fileURLToPath(import.meta.url);
const role = process.argv[2];

// ── role: upstream (a stateful SDK server with one fast read tool) ──
async function runUpstream(): Promise<void> {
  const { McpServer } = await import('@modelcontextprotocol/sdk/server/mcp.js');
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js');
  const { isInitializeRequest } = await import('@modelcontextprotocol/sdk/types.js');
  const { randomUUID } = await import('node:crypto');
  const { z } = await import('zod');
  const sessions = new Map<string, InstanceType<typeof StreamableHTTPServerTransport>>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', async () => {
      const parsed = body === '' ? undefined : JSON.parse(body);
      const sid = req.headers['mcp-session-id'];
      if (typeof sid === 'string' && sessions.has(sid)) return sessions.get(sid)?.handleRequest(req, res, parsed);
      if (!isInitializeRequest(parsed)) {
        res.writeHead(400).end();
        return;
      }
      const mcp = new McpServer({ name: 'bench-upstream', version: '1' });
      mcp.registerTool(
        'read_ticket',
        { description: 'read one ticket', inputSchema: { id: z.string() }, annotations: { readOnlyHint: true } },
        ({ id }) => ({ content: [{ type: 'text', text: JSON.stringify({ id, subject: 'Charged twice', status: 'open' }) }] }),
      );
      const transport: InstanceType<typeof StreamableHTTPServerTransport> = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: true,
        onsessioninitialized: (id) => void sessions.set(id, transport),
      });
      await mcp.connect(transport);
      await transport.handleRequest(req, res, parsed);
    });
  });
  server.listen(0, '127.0.0.1', () =>
    process.stdout.write(`READY ${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`),
  );
}

// ── role: gateway (a broker with the upstream registered and a mandate for the tool) ──
async function runGateway(upstreamUrl: string): Promise<void> {
  const { createBroker } = await import('../src/broker.js');
  const { buildConfig } = await import('../src/config/load.js');
  const { buildApp } = await import('../src/http/app.js');
  const { DEV_TRUST_DOMAIN } = await import('../src/identity/dev-spiffe.js');
  const { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } = await import('../src/mandates/token-exchange.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'mandate-bench-gw-'));
  const port = await freePort();
  const config = buildConfig(
    {
      mode: 'demo',
      dataDir,
      log: { level: 'silent' },
      server: { port },
      gateway: { demoUpstreams: false, maxConcurrentCallsPerMandate: 1000 },
    },
    { env: {} },
  );
  const broker = await createBroker(config);
  const app = await buildApp(broker);
  await app.listen({ host: '127.0.0.1', port });
  const base = `http://127.0.0.1:${port}`;
  await broker.upstreams.registry.create({ id: 'bench', transport: { type: 'http', url: upstreamUrl }, isolation: 'shared' });
  const spiffeId = `spiffe://${DEV_TRUST_DOMAIN}/agent/bench`;
  await broker.agents.register({
    id: 'bench-agent',
    displayName: 'bench',
    owner: 'alice',
    environment: 'production',
    identity: { spiffeId },
    ceiling: { tools: [{ tool: 'bench.read_ticket' }], delegable: false },
  });
  const svid = await broker.identity.devSpiffe?.mint({ spiffeId, audience: base });
  const res = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: svid ?? '',
      subject_token_type: TOKEN_TYPE.jwt,
      authorization_details: JSON.stringify([
        {
          type: 'mandate',
          purpose: 'benchmark',
          taskType: 'bench',
          environment: 'production',
          ttlSeconds: 3600,
          tools: [{ tool: 'bench.read_ticket' }],
          delegable: false,
        },
      ]),
    }),
  });
  const token = ((await res.json()) as { access_token?: string }).access_token;
  if (token === undefined) throw new Error(`token exchange failed: HTTP ${res.status}`);
  process.stdout.write(`READY ${JSON.stringify({ port, token })}\n`);
  const stop = () => {
    void app
      .close()
      .then(async () => {
        if (!process.env.BENCH_DATABASE_URL) return;
        const { default: pg } = await import('pg');
        const client = new pg.Client({ connectionString: process.env.BENCH_DATABASE_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS bench_${process.pid} CASCADE`);
        await client.end();
      })
      .finally(() => {
        rmSync(dataDir, { recursive: true, force: true });
        process.exit(0);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// ── load generator (main) ──
function start(args: string[]): Promise<{ child: ChildProcess; info: Record<string, unknown> }> {
  // BENCH_PROFILE=DIR writes a CPU profile of the gateway process there.
  const prof = args[0] === 'gateway' && process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', SELF, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c) => {
      out += c;
      const m = /READY (.*)\n/.exec(out);
      if (m !== null) resolve({ child, info: JSON.parse(m[1] as string) });
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function post(
  url: URL,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** An MCP session opened by hand, so both paths pay exactly the same client cost per call. */
async function session(url: URL, auth: Record<string, string>): Promise<(id: number) => Promise<void>> {
  const init = await post(
    url,
    auth,
    JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
    }),
  );
  const sid = init.headers['mcp-session-id'];
  if (init.status !== 200 || typeof sid !== 'string') throw new Error(`initialize failed: ${init.status} ${init.body.slice(0, 200)}`);
  const headers = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
  await post(url, headers, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  return async (id) => {
    const res = await post(
      url,
      headers,
      JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: '%TOOL%', arguments: { id: `T-${id}` } } }).replace(
        '%TOOL%',
        toolOf(url),
      ),
    );
    if (res.status !== 200 || !res.body.includes('Charged twice')) throw new Error(`call failed: ${res.status} ${res.body.slice(0, 300)}`);
  };
}
const toolOf = (url: URL) => (url.pathname === '/mcp' && url.port !== '' && gatewayPort === url.port ? 'bench.read_ticket' : 'read_ticket');
let gatewayPort = '';

/** Closed loop: `concurrency` callers, `total` calls. */
async function saturate(call: (id: number) => Promise<void>, total: number, concurrency: number) {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const id = next++;
        const s = performance.now();
        await call(id);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { rate: total / secs, ...summarize(lat) };
}

/** Open loop at a fixed rate: latency without queueing in the load generator. */
async function paced(call: (id: number) => Promise<void>, rate: number, seconds: number) {
  const lat: number[] = [];
  const total = Math.round(rate * seconds);
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const s = performance.now();
    pending.push(call(i).then(() => void lat.push(performance.now() - s)));
  }
  await Promise.all(pending);
  return summarize(lat);
}

const f = (n: number, d = 2) => n.toFixed(d);

async function main(): Promise<void> {
  const up = await start(['upstream']);
  const upstreamUrl = `http://127.0.0.1:${up.info.port}/mcp`;
  const gw = await start(['gateway', upstreamUrl]);
  gatewayPort = String(gw.info.port);
  try {
    const direct = await session(new URL(upstreamUrl), {});
    const through = await session(new URL(`http://127.0.0.1:${gw.info.port}/mcp`), { authorization: `Bearer ${gw.info.token}` });
    const total = QUICK ? 1500 : 20_000;
    const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
    // Warm up both paths (JIT, pooled sessions, cached token verification).
    await saturate(direct, 300, 8);
    await saturate(through, 300, 8);
    const d = await saturate(direct, total, concurrency);
    const g = await saturate(through, total, concurrency);
    process.stdout.write(
      `gateway bench (${QUICK ? 'quick' : 'full'}; ${total} calls, ${concurrency} in flight; shared CPU: upstream, gateway and load generator on the same cores)\n`,
    );
    process.stdout.write(`  direct  : ${f(d.rate, 0)} calls/s  p50 ${f(d.p50)} ms  p99 ${f(d.p99)} ms\n`);
    process.stdout.write(
      `  gateway : ${f(g.rate, 0)} calls/s  p50 ${f(g.p50)} ms  p99 ${f(g.p99)} ms  (verified, decided, 2 audit appends, forwarded)\n`,
    );
    const seconds = QUICK ? 3 : 10;
    const dp = await paced(direct, 500, seconds);
    const gp = await paced(through, 500, seconds);
    process.stdout.write(
      `  at 500 calls/s for ${seconds} s: direct p50 ${f(dp.p50)} ms p99 ${f(dp.p99)} ms; gateway p50 ${f(gp.p50)} ms p99 ${f(gp.p99)} ms\n`,
    );
    process.stdout.write(
      `RESULT gateway throughput_ratio=${f(g.rate / d.rate)} gateway_calls_per_s=${f(g.rate, 0)} direct_calls_per_s=${f(d.rate, 0)} added_p50_ms_at_500=${f(gp.p50 - dp.p50)}\n`,
    );
  } finally {
    agent.destroy();
    gw.child.kill('SIGTERM');
    await new Promise((r) => gw.child.once('exit', r));
    up.child.kill('SIGTERM');
  }
}

if (role === 'upstream') await runUpstream();
else if (role === 'gateway') await runGateway(process.argv[3] ?? '');
else await main();
