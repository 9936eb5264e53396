// Fault-test harness: a real `mandate serve` process (SQLite file or PostgreSQL schema) in front of
// a counting MCP upstream, plus clients that record every decision the broker acknowledged, so a
// test can kill or starve the broker and then compare what was acknowledged with the audit log.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { decodeLeaf } from '../../src/audit/event.js';
import { readEntryRows } from '../../src/audit/log.js';
import { DEV_ISSUER_PATH, DevIssuer } from '../../src/identity/dev-issuer.js';
import { DEV_TRUST_DOMAIN, DevSpiffeAuthority } from '../../src/identity/dev-spiffe.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { generateMasterKeySpec } from '../../src/secrets/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { freePort } from '../helpers/ports.js';

const BIN = new URL('../helpers/mandate-source.js', import.meta.url).pathname;
export const AGENT = { id: 'fault-agent', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/fault-agent` };
export const TOOL = 'counter.hit';

/** A stateless streamable-HTTP MCP server whose one read-only tool records the nonce of every call it receives. */
export interface CountingUpstream {
  readonly url: string;
  readonly received: Set<string>;
  close(): Promise<void>;
}

export async function startCountingUpstream(): Promise<CountingUpstream> {
  const received = new Set<string>();
  const http: Server = createServer(async (req, res) => {
    const server = new McpServer({ name: 'counter', version: '1' });
    server.registerTool(
      'hit',
      { description: 'counts calls', inputSchema: { n: z.string() }, annotations: { readOnlyHint: true } },
      async ({ n }) => {
        received.add(n);
        return { content: [{ type: 'text', text: `hit ${n}` }] };
      },
    );
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void server.close().catch(() => {}));
    await server.connect(transport);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString();
    await transport.handleRequest(req, res, raw === '' ? undefined : JSON.parse(raw));
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const { port } = http.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    received,
    close: () =>
      new Promise((r) => {
        http.closeAllConnections();
        http.close(() => r());
      }),
  };
}

export type StoreKind = 'sqlite' | 'postgres';

export interface BrokerSetup {
  readonly kind: StoreKind;
  /** PostgreSQL URL and schema (postgres only). */
  readonly databaseUrl?: string;
  readonly schema?: string;
}

/** One configuration (data folder, store, keys) that can be served, killed and served again. */
export interface BrokerSite {
  readonly dataDir: string;
  readonly configFile: string;
  readonly publicUrl: string;
  readonly env: Record<string, string>;
  readonly setup: BrokerSetup;
  /** Starts `mandate serve` on the site's port. */
  start(): Promise<BrokerProcess>;
  /** `mandate audit verify --json` as a separate CLI process. */
  verifyCli(): { status: number | null; report: { ok: boolean; entries: number; failure?: unknown }; output: string };
  /** Every audit entry (read with a fresh store connection). */
  entries(): Promise<{ seq: number; type: string; mandateId?: string; data: Record<string, unknown> }[]>;
}

export interface BrokerProcess {
  readonly url: string;
  readonly child: ChildProcess;
  stderr(): string;
  alive(): boolean;
  kill(): Promise<void>;
}

export async function brokerSite(setup: BrokerSetup): Promise<BrokerSite> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mandate-fault-'));
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const store =
    setup.kind === 'sqlite'
      ? { driver: 'sqlite', sqlite: { busyTimeoutMs: 1000 } }
      : { driver: 'postgres', postgres: { schema: setup.schema, poolMax: 4, connectTimeoutMs: 1000 } };
  const configFile = join(dataDir, 'mandate.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      mode: 'demo',
      dataDir,
      log: { level: 'warn' },
      store,
      server: { publicUrl, drainMs: 0 },
      gateway: { allowedHosts: [`127.0.0.1:${port}`], upstreamTimeoutMs: 5000 },
    }),
  );
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    MANDATE_MASTER_KEY: generateMasterKeySpec('faults'),
    ...(setup.databaseUrl === undefined ? {} : { MANDATE_DATABASE_URL: setup.databaseUrl }),
  };
  const openStore = () =>
    setup.kind === 'sqlite'
      ? openSqliteStore({ path: join(dataDir, 'mandate.db') })
      : openPostgresStore({ url: setup.databaseUrl ?? '', schema: setup.schema ?? 'public', poolMax: 2 });
  return {
    dataDir,
    configFile,
    publicUrl,
    env,
    setup,
    start: () => startBroker(configFile, env, port),
    verifyCli() {
      const r = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--config', configFile, '--json'], {
        env,
        encoding: 'utf8',
        timeout: 60_000,
      });
      let report = { ok: false, entries: -1 } as { ok: boolean; entries: number };
      try {
        report = JSON.parse(r.stdout);
      } catch {}
      return { status: r.status, report, output: `${r.stdout.slice(0, 2000)}\n${r.stderr.slice(0, 2000)}` };
    },
    async entries() {
      const s = openStore();
      try {
        const rows = await readEntryRows(s, 0, Number.MAX_SAFE_INTEGER);
        return rows.map((r) => {
          const e = decodeLeaf(r.body).event as unknown as { type: string; mandateId?: string; data: Record<string, unknown> };
          return { seq: r.seq, type: e.type, ...(e.mandateId === undefined ? {} : { mandateId: e.mandateId }), data: e.data };
        });
      } finally {
        await s.close();
      }
    },
  };
}

function startBroker(configFile: string, env: Record<string, string>, port: number): Promise<BrokerProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config', configFile, '--port', String(port)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let err = '';
  child.stderr.on('data', (d) => {
    err = (err + d).slice(-8000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (!/listening on http:\/\//.test(out)) return;
      out = '';
      resolve({
        url: `http://127.0.0.1:${port}`,
        child,
        stderr: () => err.slice(-4000),
        alive: () => child.exitCode === null && child.signalCode === null,
        async kill() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
      });
    });
    void exited.then(() => reject(new Error(`broker exited early (${child.exitCode}): ${err.slice(0, 3000)}`)));
  });
}

/** The admin part of a test: registers the counting upstream and the test agent (through the admin API). */
export async function provision(site: BrokerSite, broker: BrokerProcess, upstreamUrl: string): Promise<{ operatorToken: string }> {
  const issuer = await DevIssuer.open(site.dataDir, `${site.publicUrl}${DEV_ISSUER_PATH}`);
  const operatorToken = await issuer.mint({ sub: 'alice', roles: ['admin'] });
  const admin = async (path: string, body: unknown) => {
    const res = await fetch(`${broker.url}/admin/v1/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 201, `${path}: ${await res.text()}`);
  };
  await admin('upstreams', { id: 'counter', transport: { type: 'http', url: upstreamUrl }, isolation: 'shared' });
  await admin('agents', {
    id: AGENT.id,
    displayName: 'fault agent',
    owner: 'alice',
    environment: 'production',
    identity: { spiffeId: AGENT.spiffeId },
    ceiling: { tools: [{ tool: TOOL }], delegable: false },
    taskTypes: ['faults.load'],
    maxTtlSeconds: 3600,
  });
  return { operatorToken };
}

/** What the broker acknowledged to clients: each entry is a decision a client acted on. */
export interface Acknowledged {
  /** Nonces of tools/call requests answered with a successful result. */
  readonly calls: Set<string>;
  /** jti of every access token the token endpoint returned. */
  readonly tokens: Set<string>;
  /** AuthZEN decision ids (context.id) returned. */
  readonly authzen: Set<string>;
}

export function acknowledged(): Acknowledged {
  return { calls: new Set(), tokens: new Set(), authzen: new Set() };
}

export function claimsOf(token: string): { jti: string; mandate: string } {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString());
}

/** RFC 8693 token exchange for the test agent; returns the HTTP status, the body and the token when issued. */
export async function exchange(site: BrokerSite, base: string): Promise<{ status: number; body: Record<string, unknown>; token?: string }> {
  const authority = await spiffe(site.dataDir);
  const svid = await authority.mint({ spiffeId: AGENT.spiffeId, audience: site.publicUrl });
  const res = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: svid,
      subject_token_type: TOKEN_TYPE.jwt,
      authorization_details: JSON.stringify([
        {
          type: 'mandate',
          purpose: 'fault test',
          taskType: 'faults.load',
          environment: 'production',
          ttlSeconds: 900,
          tools: [{ tool: TOOL }],
        },
      ]),
    }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, body, ...(typeof body.access_token === 'string' ? { token: body.access_token } : {}) };
}

const authorities = new Map<string, Promise<DevSpiffeAuthority>>();
function spiffe(dataDir: string): Promise<DevSpiffeAuthority> {
  let a = authorities.get(dataDir);
  if (a === undefined) {
    a = DevSpiffeAuthority.open(dataDir);
    authorities.set(dataDir, a);
  }
  return a;
}

/** One AuthZEN evaluation; returns status and body. */
export async function evaluate(base: string, operatorToken: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/access/v1/evaluation`, {
    method: 'POST',
    headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      subject: { type: 'agent', id: AGENT.id },
      action: { name: 'read' },
      resource: { type: 'tool', id: TOOL },
    }),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}

/** An SDK client on /mcp with this token (one session per client). */
export async function mcpClient(base: string, token: string): Promise<Client> {
  const client = new Client({ name: 'fault-agent', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL('/mcp', base), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
  );
  return client;
}

const RPC_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
};

type RpcAnswer = { result?: { isError?: boolean }; error?: { code: number | string; message: string; data?: unknown } };

async function rpcBody(res: Response): Promise<RpcAnswer> {
  const text = await res.text();
  // The SDK answers either JSON or one SSE message; the broker refuses before MCP with its own body.
  const json = text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '{}');
  try {
    const body = JSON.parse(json) as RpcAnswer & { error?: unknown; message?: string };
    if (typeof body.error === 'string') return { error: { code: body.error, message: body.message ?? '' } };
    return body;
  } catch {
    return { error: { code: 'unparsable', message: text.slice(0, 200) } };
  }
}

/** A raw MCP session over HTTP: initialize, then the session id on every request. */
export async function rawSession(base: string, token: string): Promise<string> {
  const res = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, ...RPC_HEADERS },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw-fault-agent', version: '1' } },
    }),
    signal: AbortSignal.timeout(15_000),
  });
  const sid = res.headers.get('mcp-session-id');
  await res.text();
  assert.ok(sid, `initialize answered ${res.status} without a session id`);
  return sid;
}

/** A raw JSON-RPC tools/call over HTTP, so every outcome (status, error code) is visible as sent. */
export async function rawCall(base: string, token: string, sid: string, n: string): Promise<{ status: number } & RpcAnswer> {
  const res = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid, ...RPC_HEADERS },
    body: JSON.stringify({ jsonrpc: '2.0', id: n, method: 'tools/call', params: { name: TOOL, arguments: { n } } }),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, ...(await rpcBody(res)) };
}

/**
 * Checks the audit log holds every acknowledged decision, and that every call the upstream
 * received has an audited allow (nothing forwarded without a durable decision).
 */
export async function assertAcknowledgedAudited(
  site: BrokerSite,
  acked: Acknowledged,
  upstreamReceived: ReadonlySet<string>,
): Promise<{
  entries: number;
}> {
  const entries = await site.entries();
  const allowedNonces = new Set<string>();
  const tokenIds = new Set<string>();
  const decisionIds = new Set<string>();
  for (const e of entries) {
    if (e.type === 'decision') {
      if (typeof e.data.decisionId === 'string') decisionIds.add(e.data.decisionId);
      const n = (e.data.args as { n?: unknown } | undefined)?.n;
      if (e.data.outcome === 'allow' && typeof n === 'string') allowedNonces.add(n);
    }
    if (e.type === 'token.issued' && typeof e.data.tokenId === 'string') tokenIds.add(e.data.tokenId);
  }
  const missing = (want: ReadonlySet<string>, have: ReadonlySet<string>) => [...want].filter((x) => !have.has(x));
  assert.deepEqual(missing(acked.calls, allowedNonces), [], 'every answered tools/call has an audited allow decision');
  assert.deepEqual(missing(acked.tokens, tokenIds), [], 'every issued token has a token.issued event');
  assert.deepEqual(missing(acked.authzen, decisionIds), [], 'every AuthZEN decision returned is audited');
  assert.deepEqual(missing(upstreamReceived, allowedNonces), [], 'the upstream received no call without an audited allow');
  return { entries: entries.length };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
