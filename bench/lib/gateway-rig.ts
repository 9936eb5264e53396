// The gateway benchmarks' rig, shared by bench/gateway.bench.ts and bench/soak.bench.ts, one
// process per part so no two share an event loop:
//   - upstream: a raw node:http MCP server (no SDK) with one fast read tool, serving both
//     revisions: 2026-07-28 statelessly, 2025-11-25 over initialize → Mcp-Session-Id;
//   - broker: Mandate with that upstream registered, a mandate for the tool and its access token,
//     `policy.engine` as asked; it answers profiler commands over IPC (see `Broker.profile`).
// The load generator is a third kind of process (bench/lib/loadgen.ts).
//
//   node --import tsx bench/lib/gateway-rig.ts upstream | broker <upstream-url> <engine>   (spawned by startUpstream / startBroker)
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/helpers/ports.js';
import { serveFetch } from './fetch-server.js';
import { client } from './loadgen.js';
import { META_VERSION, openTarget, type Revision, TOOL, VERSION } from './mcp-wire.js';

const SELF = fileURLToPath(import.meta.url);

// ── role: upstream (raw JSON-RPC over node:http, both revisions) ──
// As cheap as an MCP server can be while still speaking the protocol: the direct baseline is this
// server's own cost, so the ratio measures the gateway and not an SDK server.
function runUpstream(): void {
  const sessions = new Set<string>();
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, res, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
  });
  const send = (res: ServerResponse, status: number, message: unknown, extra: Record<string, string> = {}) => {
    const body = JSON.stringify(message);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extra }).end(body);
  };
  const error = (id: unknown, code: number, message: string, data?: unknown) => ({
    jsonrpc: '2.0',
    id: id ?? null,
    error: { code, message, ...(data === undefined ? {} : { data }) },
  });
  const tool = {
    name: TOOL.direct,
    description: 'read one ticket',
    inputSchema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
    annotations: { readOnlyHint: true },
  };
  /** The result of one request, or undefined for an unknown method. */
  const handle = (method: string, params: Record<string, unknown> | undefined, modern: boolean): unknown => {
    const complete = modern ? { resultType: 'complete' } : {};
    switch (method) {
      case 'tools/call': {
        const args = (params?.arguments ?? {}) as { id?: unknown };
        if (params?.name !== TOOL.direct) return { ...complete, content: [{ type: 'text', text: 'unknown tool' }], isError: true };
        const text = JSON.stringify({ id: args.id, subject: 'Charged twice', status: 'open' });
        return { ...complete, content: [{ type: 'text', text }] };
      }
      case 'tools/list':
        return { ...complete, tools: [tool] };
      case 'ping':
        return { ...complete };
      case 'server/discover':
        return modern
          ? {
              ...complete,
              supportedVersions: [VERSION.modern],
              capabilities: { tools: {} },
              _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'bench-upstream', version: '1' } },
            }
          : undefined;
      default:
        return undefined;
    }
  };
  // tools/call answered per revision: tells which revision the gateway's client chose upstream.
  const calls = { modern: 0, legacy: 0, connections: 0 };
  server.on('connection', () => calls.connections++);
  process.on('message', (m: { cmd?: string }) => {
    if (m.cmd === 'stats') process.send?.({ cmd: 'stats', calls });
  });
  const answer = (req: IncomingMessage, res: ServerResponse, raw: Buffer) => {
    let msg: { id?: unknown; method?: unknown; params?: Record<string, unknown> };
    try {
      msg = JSON.parse(raw.toString('utf8'));
    } catch {
      send(res, 400, error(null, -32700, 'parse error'));
      return;
    }
    const method = typeof msg.method === 'string' ? msg.method : '';
    const version = req.headers['mcp-protocol-version'];
    if (version === VERSION.modern) {
      // 2026-07-28: the headers must agree with the body (the checks a real server makes, cheaply).
      const meta = msg.params?._meta as Record<string, unknown> | undefined;
      if (meta?.[META_VERSION] !== version || req.headers['mcp-method'] !== method) {
        send(res, 400, error(msg.id, -32020, 'header mismatch'));
        return;
      }
      if (method === 'tools/call') calls.modern++;
      const result = handle(method, msg.params, true);
      if (result === undefined) send(res, 404, error(msg.id, -32601, `method not found: ${method}`));
      else send(res, 200, { jsonrpc: '2.0', id: msg.id, result });
      return;
    }
    if (typeof version === 'string' && version > VERSION.legacy) {
      send(
        res,
        400,
        error(msg.id, -32022, 'unsupported protocol version', { supported: [VERSION.modern, VERSION.legacy], requested: version }),
      );
      return;
    }
    // 2025-11-25 and earlier: a session per initialize.
    if (method === 'initialize') {
      const sid = randomUUID();
      sessions.add(sid);
      const requested = (msg.params as { protocolVersion?: unknown } | undefined)?.protocolVersion;
      send(
        res,
        200,
        {
          jsonrpc: '2.0',
          id: msg.id,
          result: {
            protocolVersion: typeof requested === 'string' && requested <= VERSION.legacy ? requested : VERSION.legacy,
            capabilities: { tools: {} },
            serverInfo: { name: 'bench-upstream', version: '1' },
          },
        },
        { 'mcp-session-id': sid },
      );
      return;
    }
    const sid = req.headers['mcp-session-id'];
    if (typeof sid !== 'string' || !sessions.has(sid)) {
      send(res, 404, error(msg.id, -32001, 'session not found'));
      return;
    }
    if (msg.id === undefined) {
      res.writeHead(202).end();
      return;
    }
    if (method === 'tools/call') calls.legacy++;
    const result = handle(method, msg.params, false);
    send(res, 200, result === undefined ? error(msg.id, -32601, `method not found: ${method}`) : { jsonrpc: '2.0', id: msg.id, result });
  };
  server.keepAliveTimeout = 60_000;
  // Spawned with an IPC channel: a parent that dies takes this process with it.
  process.on('disconnect', () => process.exit(0));
  server.listen(0, '127.0.0.1', () =>
    process.stdout.write(`READY ${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`),
  );
}

// ── role: sdk-upstream (the official MCP SDK 2.x server, both revisions) ──
// What an MCP server usually is: `@modelcontextprotocol/server` behind node:http, 2026-07-28
// stateless and 2025-11-25 through the SDK's stateless legacy fallback (no session id). The
// issue's baseline (direct 4,460 calls/s) was measured against an SDK server like this one.
async function runSdkUpstream(): Promise<void> {
  const { createMcpHandler, McpServer } = await import('@modelcontextprotocol/server');
  const { z } = await import('zod');
  const calls = { modern: 0, legacy: 0, connections: 0 };
  const handler = createMcpHandler(
    (ctx) => {
      const server = new McpServer({ name: 'bench-sdk-upstream', version: '1' });
      server.registerTool(TOOL.direct, { description: 'read one ticket', inputSchema: z.object({ id: z.string() }) }, ({ id }) => {
        calls[ctx.era]++;
        return { content: [{ type: 'text', text: JSON.stringify({ id, subject: 'Charged twice', status: 'open' }) }] };
      });
      return server;
    },
    { legacy: 'stateless' },
  );
  const { server } = await serveFetch(handler);
  server.on('connection', () => calls.connections++);
  process.on('message', (m: { cmd?: string }) => {
    if (m.cmd === 'stats') process.send?.({ cmd: 'stats', calls });
  });
  process.on('disconnect', () => process.exit(0));
  process.stdout.write(`READY ${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
}

// ── role: broker (Mandate with the upstream registered and a mandate for the tool) ──
async function runBroker(upstreamUrl: string, engine: string): Promise<void> {
  const { createBroker } = await import('../../src/broker.js');
  const { buildConfig } = await import('../../src/config/load.js');
  const { buildApp } = await import('../../src/http/app.js');
  const { DEV_TRUST_DOMAIN } = await import('../../src/identity/dev-spiffe.js');
  const { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } = await import('../../src/oauth/token-exchange.js');
  // BENCH_DIR picks the disk (as in the other benchmarks): the audit's COMMIT waits for its fsync.
  const dataDir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'mandate-bench-gw-'));
  const port = await freePort();
  const pgUrl = process.env.BENCH_DATABASE_URL;
  const config = buildConfig(
    {
      mode: 'demo',
      dataDir,
      log: { level: 'silent' },
      server: { port },
      gateway: { demoUpstreams: false, maxConcurrentCallsPerMandate: 1000 },
      // The longest token lifetime, so a 10-minute soak keeps one valid token throughout.
      identity: { tokenTtlSeconds: 3600 },
      policy: { engine: engine as 'compiled' | 'wasm' },
      ...(pgUrl
        ? { store: { driver: 'postgres' as const, postgres: { url: pgUrl, schema: `bench_${process.pid}` } } }
        : { store: { sqlite: { writerThread: process.env.BENCH_WRITER_THREAD !== 'off' } } }),
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
    ceiling: { tools: [{ tool: TOOL.gateway }], delegable: false },
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
          tools: [{ tool: TOOL.gateway }],
          delegable: false,
        },
      ]),
    }),
  });
  const token = ((await res.json()) as { access_token?: string }).access_token;
  if (token === undefined) throw new Error(`token exchange failed: HTTP ${res.status}`);
  const notices = broker.notices.filter((n) => n.startsWith('org policy:'));
  process.stdout.write(`READY ${JSON.stringify({ port, token, notices })}\n`);
  serveProfiler();
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void app
      .close()
      .then(async () => {
        if (!pgUrl) return;
        const { default: pg } = await import('pg');
        const client = new pg.Client({ connectionString: pgUrl });
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
  process.on('disconnect', stop);
}

/**
 * The V8 sampling profiler of this process, driven by its parent over IPC: the in-process
 * equivalent of `--cpu-prof`, limited to the phase being profiled (start-up and token exchange
 * stay out of it).
 */
function serveProfiler(): void {
  let session: import('node:inspector/promises').Session | undefined;
  process.on('message', (m: { cmd?: string; intervalUs?: number; file?: string }) => {
    void (async () => {
      if (m.cmd === 'profile-start') {
        const { Session } = await import('node:inspector/promises');
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.setSamplingInterval', { interval: m.intervalUs ?? 500 });
        await session.post('Profiler.start');
        process.send?.({ cmd: 'profile-started' });
      } else if (m.cmd === 'profile-stop' && session !== undefined && m.file !== undefined) {
        const { profile } = await session.post('Profiler.stop');
        // No Debugger domain here (not even to read sources): V8 once aborted this process
        // ("unreachable code" in the deoptimizer) profiling again after Debugger.enable/disable.
        session.disconnect();
        session = undefined;
        writeFileSync(m.file, JSON.stringify(profile));
        process.send?.({ cmd: 'profile-stopped', file: m.file });
      }
    })();
  });
}

// ── the parent's side ──
interface Started {
  readonly child: ChildProcess;
  readonly info: Record<string, unknown>;
}

function start(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, ...args], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  // A send racing the child's death is reported by `ask`, not thrown as an unhandled 'error'.
  child.on('error', () => {});
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

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** A child process of the rig. */
export interface Part {
  readonly pid: number;
  close(): Promise<void>;
}

export interface Upstream extends Part {
  /** The upstream's own MCP endpoint (the direct path). */
  readonly url: string;
  /** tools/call answered so far, per revision, and TCP connections accepted. */
  calls(): Promise<Record<Revision | 'connections', number>>;
}

/** Which MCP server stands upstream: the official SDK 2.x server, or the cheapest raw one. */
export type UpstreamKind = 'sdk' | 'raw';

export async function startUpstream(kind: UpstreamKind = 'raw'): Promise<Upstream> {
  const { child, info } = await start([kind === 'sdk' ? 'sdk-upstream' : 'upstream']);
  return {
    url: `http://127.0.0.1:${info.port}/mcp`,
    pid: child.pid as number,
    calls: () => ask(child, { cmd: 'stats' }, 'stats').then((m) => m.calls as Record<Revision | 'connections', number>),
    close: () => stop(child),
  };
}

/** The next IPC message `cmd` from `child`. */
/** Sends `message` to `child` and waits for its IPC answer `cmd`; rejects if the child is or goes away. */
function ask(child: ChildProcess, message: Record<string, unknown>, cmd: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const gone = () => {
      child.off('message', on);
      reject(new Error(`the ${child.spawnargs[4] ?? 'child'} process exited (${child.signalCode ?? `code ${child.exitCode}`})`));
    };
    const on = (m: Record<string, unknown>) => {
      if (m.cmd !== cmd) return;
      child.off('message', on);
      child.off('exit', gone);
      resolve(m);
    };
    if (child.exitCode !== null || child.signalCode !== null || !child.connected) {
      gone();
      return;
    }
    child.on('message', on);
    child.once('exit', gone);
    child.send(message);
  });
}

export type Engine = 'compiled' | 'wasm';

export interface Broker extends Part {
  /** Mandate's /mcp. */
  readonly url: string;
  /** A mandate access token for bench.read_ticket. */
  readonly token: string;
  /** What the broker said at start about the engine serving org policy. */
  readonly notices: readonly string[];
  /** Runs `during` under the broker's V8 sampling profiler and returns the profile (a .cpuprofile object). */
  profile<T>(during: () => Promise<T>, intervalUs?: number): Promise<{ result: T; profile: CpuProfile }>;
}

/** The part of a V8 .cpuprofile the analysis reads. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; scriptId: string };
    children?: number[];
    positionTicks?: { line: number; ticks: number }[];
  }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export async function startBroker(upstreamUrl: string, engine: Engine): Promise<Broker> {
  const { child, info } = await start(['broker', upstreamUrl, engine]);
  return {
    url: `http://127.0.0.1:${info.port}/mcp`,
    token: info.token as string,
    notices: info.notices as string[],
    pid: child.pid as number,
    async profile(during, intervalUs = 500) {
      await ask(child, { cmd: 'profile-start', intervalUs }, 'profile-started');
      const result = await during();
      const file = join(tmpdir(), `mandate-bench-${child.pid}-${Date.now()}.cpuprofile`);
      await ask(child, { cmd: 'profile-stop', file }, 'profile-stopped');
      const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
      if (process.env.BENCH_KEEP_PROFILES !== '1') rmSync(file, { force: true });
      else process.stdout.write(`  (profile kept: ${file})\n`);
      return { result, profile };
    },
    close: () => stop(child),
  };
}

/** Upstream and one broker (the soak's rig). */
export interface Rig {
  readonly upstream: Upstream;
  readonly broker: Broker;
  /** Mandate's /mcp. */
  readonly gatewayUrl: URL;
  /** A mandate access token for bench.read_ticket. */
  readonly token: string;
  /** Process id of the broker (for RSS). */
  readonly gatewayPid: number;
  close(): Promise<void>;
}

export async function startRig(engine: Engine = 'wasm'): Promise<Rig> {
  const upstream = await startUpstream();
  const broker = await startBroker(upstream.url, engine).catch(async (err) => {
    await upstream.close();
    throw err;
  });
  return {
    upstream,
    broker,
    gatewayUrl: new URL(broker.url),
    token: broker.token,
    gatewayPid: broker.pid,
    async close() {
      await broker.close();
      await upstream.close();
    },
  };
}

/** The gateway as a load target: `tools/call bench.read_ticket` with the mandate's token. */
export function gatewayTarget(broker: Broker, revision: Revision) {
  return openTarget(broker.url, { authorization: `Bearer ${broker.token}` }, TOOL.gateway, revision);
}

/** The upstream as a load target: the same call straight to it. */
export function directTarget(upstream: Upstream, revision: Revision) {
  return openTarget(upstream.url, {}, TOOL.direct, revision);
}

/**
 * An in-process caller of `tool` at `url` (for the soak, which paces its own calls): the load
 * generator's client, throwing on anything but a successful result.
 */
export async function session(
  url: URL,
  auth: Record<string, string>,
  tool: string,
  revision: Revision = 'legacy',
): Promise<(id: number) => Promise<void>> {
  const c = client(await openTarget(url.href, auth, tool, revision), 256);
  return async (id) => {
    const problem = await c.call(id);
    if (problem !== undefined) throw new Error(problem);
  };
}

export { TOOL } from './mcp-wire.js';

const role = process.argv[1] === SELF ? process.argv[2] : undefined;
if (role === 'upstream') runUpstream();
else if (role === 'sdk-upstream') await runSdkUpstream();
else if (role === 'broker') await runBroker(process.argv[3] ?? '', process.argv[4] ?? 'wasm');
