// The gateway benchmarks' rig, shared by bench/gateway.bench.ts and bench/soak.bench.ts: an
// upstream MCP server (stateful SDK server, one fast read tool) and a broker with that upstream
// registered and a mandate for the tool, each in its own process (this file, run with a role),
// plus a hand-made MCP session client over a keep-alive agent.
//
//   node --import tsx bench/lib/gateway-rig.ts upstream | gateway <upstream-url>   (spawned by startRig)
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/helpers/ports.js';

const SELF = fileURLToPath(import.meta.url);

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
  const { createBroker } = await import('../../src/broker.js');
  const { buildConfig } = await import('../../src/config/load.js');
  const { buildApp } = await import('../../src/http/app.js');
  const { DEV_TRUST_DOMAIN } = await import('../../src/identity/dev-spiffe.js');
  const { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } = await import('../../src/mandates/token-exchange.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'mandate-bench-gw-'));
  const port = await freePort();
  const config = buildConfig(
    {
      mode: 'demo',
      dataDir,
      log: { level: 'silent' },
      server: { port },
      gateway: { demoUpstreams: false, maxConcurrentCallsPerMandate: 1000 },
      // The longest token lifetime, so a 10-minute soak keeps one valid token throughout.
      identity: { tokenTtlSeconds: 3600 },
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

// ── the load generator's side ──
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

export interface Rig {
  /** The upstream's own MCP endpoint (the direct path). */
  readonly upstreamUrl: URL;
  /** Mandate's /mcp. */
  readonly gatewayUrl: URL;
  /** A mandate access token for bench.read_ticket. */
  readonly token: string;
  /** Process id of the broker (for RSS). */
  readonly gatewayPid: number;
  close(): Promise<void>;
}

export async function startRig(): Promise<Rig> {
  const up = await start(['upstream']);
  const upstreamUrl = `http://127.0.0.1:${up.info.port}/mcp`;
  const gw = await start(['gateway', upstreamUrl]);
  return {
    upstreamUrl: new URL(upstreamUrl),
    gatewayUrl: new URL(`http://127.0.0.1:${gw.info.port}/mcp`),
    token: gw.info.token as string,
    gatewayPid: gw.child.pid as number,
    async close() {
      agent.destroy();
      gw.child.kill('SIGTERM');
      await new Promise((r) => gw.child.once('exit', r));
      up.child.kill('SIGTERM');
    },
  };
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export function post(
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

/** An MCP session opened by hand, so both paths pay exactly the same client cost per call of `tool`. */
export async function session(url: URL, auth: Record<string, string>, tool: string): Promise<(id: number) => Promise<void>> {
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
      JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { id: `T-${id}` } } }),
    );
    if (res.status !== 200 || !res.body.includes('Charged twice')) throw new Error(`call failed: ${res.status} ${res.body.slice(0, 300)}`);
  };
}

/** Tool names on each path: the upstream's own, and the gateway's `<upstream id>.<tool>`. */
export const TOOL = { direct: 'read_ticket', gateway: 'bench.read_ticket' } as const;

const role = process.argv[1] === SELF ? process.argv[2] : undefined;
if (role === 'upstream') await runUpstream();
else if (role === 'gateway') await runGateway(process.argv[3] ?? '');
