// Starts real `mandate serve` processes that share one PostgreSQL schema, as replicas behind a
// load balancer would. Each replica listens on its own loopback port.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevSpiffeAuthority } from '../../src/identity/dev-spiffe.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { generateMasterKeySpec } from '../../src/secrets/index.js';
import { freePort } from './ports.js';
import { dropSchema, freshSchema, POSTGRES_URL } from './stores.js';

const BIN = new URL('./mandate-source.js', import.meta.url).pathname;

export interface Replica {
  readonly url: string;
  readonly child: ChildProcess;
  /** The last few KB the process wrote to stderr (for failure messages). */
  stderr(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash). */
  kill(): Promise<void>;
}

export interface Cluster {
  /** The URL every replica advertises (issuer, audience): the first replica's, as a load balancer's would be. */
  readonly publicUrl: string;
  readonly schema: string;
  readonly dataDir: string;
  readonly bootstrapToken: string;
  /** MANDATE_MASTER_KEY shared by the replicas (for CLI commands against the same store). */
  readonly masterKey: string;
  readonly replicas: Replica[];
  /** Starts one more replica on the same database. */
  add(): Promise<Replica>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  readonly replicas: number;
  /** Extra configuration merged into every replica's file. */
  readonly config?: Record<string, unknown>;
  readonly env?: Record<string, string>;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const schema = freshSchema();
  const dataDir = mkdtempSync(join(tmpdir(), 'mandate-cluster-'));
  const bootstrapToken = `bootstrap-${schema}-${'x'.repeat(24)}`;
  // Ports are reserved up front so every replica's /mcp accepts the others' Host headers (its
  // DNS-rebinding allow-list), as it would accept a load balancer's.
  const ports = await Promise.all(Array.from({ length: options.replicas + 2 }, () => freePort()));
  const publicUrl = `http://127.0.0.1:${ports[0]}`;
  const config = {
    mode: 'production',
    dataDir,
    log: { level: 'warn' },
    store: { driver: 'postgres', postgres: { schema, poolMax: 4 } },
    changes: { pollIntervalMs: 200, maxStalenessMs: 3000 },
    ...options.config,
    server: { publicUrl, ...(options.config?.server as object | undefined) },
    gateway: { allowedHosts: ports.map((p) => `127.0.0.1:${p}`), ...(options.config?.gateway as object | undefined) },
  };
  const configFile = join(dataDir, 'mandate.json');
  const masterKey = generateMasterKeySpec('cluster');
  writeFileSync(configFile, JSON.stringify(config));
  const env = {
    PATH: process.env.PATH ?? '',
    MANDATE_DATABASE_URL: POSTGRES_URL,
    MANDATE_MASTER_KEY: masterKey,
    MANDATE_BOOTSTRAP_TOKEN: bootstrapToken,
    ...options.env,
  };
  const replicas: Replica[] = [];
  const add = async () => {
    const port = ports[replicas.length];
    if (port === undefined) throw new Error('the cluster reserved ports for replicas + 2 processes');
    const replica = await startReplica(configFile, env, port);
    replicas.push(replica);
    return replica;
  };
  // Sequentially: the first replica migrates, the others find the schema ready.
  for (let i = 0; i < options.replicas; i++) await add();
  return {
    publicUrl,
    schema,
    dataDir,
    bootstrapToken,
    masterKey,
    replicas,
    add,
    async close() {
      await Promise.all(replicas.map((r) => r.kill()));
      await dropSchema(schema).catch(() => {});
    },
  };
}

function startReplica(configFile: string, env: Record<string, string>, port: number): Promise<Replica> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config', configFile, '--port', String(port)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => {
      err = (err + d).slice(-8000);
    });
    child.stdout.on('data', (d) => {
      out += d;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1] === undefined) return;
      const url = match[1];
      resolve({
        url,
        child,
        stderr: () => err.slice(-4000),
        async stop() {
          child.kill('SIGTERM');
          return exited;
        },
        async kill() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
      });
    });
    void exited.then((code) => reject(new Error(`replica exited early (${code}): ${err.slice(0, 2000)}`)));
  });
}

export const DEMO_TRIAGE = 'spiffe://demo.mandate.local/agent/support-triage';

export interface OpenedMandate {
  readonly status: number;
  readonly body: Record<string, unknown>;
  /** The access token (empty when the exchange was refused). */
  readonly token: string;
  readonly mandateId: string;
}

const authorities = new Map<string, Promise<DevSpiffeAuthority>>();

/**
 * Opens a root mandate for a demo agent through one replica's token endpoint (RFC 8693 with a
 * development JWT-SVID). For clusters started with `mode: 'demo'`.
 */
export async function openDemoMandate(
  cluster: Cluster,
  options: { tools: unknown[]; replica?: number; spiffeId?: string; form?: Record<string, string>; headers?: Record<string, string> },
): Promise<OpenedMandate> {
  let authority = authorities.get(cluster.dataDir);
  if (authority === undefined) {
    authority = DevSpiffeAuthority.open(cluster.dataDir);
    authorities.set(cluster.dataDir, authority);
  }
  const svid = await (await authority).mint({ spiffeId: options.spiffeId ?? DEMO_TRIAGE, audience: cluster.publicUrl });
  const request = {
    type: 'mandate',
    purpose: 'replica test',
    taskType: 'support.refund',
    environment: 'production',
    ttlSeconds: 600,
    tools: options.tools,
    delegable: true,
  };
  const res = await fetch(`${cluster.replicas[options.replica ?? 0]?.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...options.headers },
    body: new URLSearchParams({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: svid,
      subject_token_type: TOKEN_TYPE.jwt,
      authorization_details: JSON.stringify([request]),
      ...options.form,
    }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  const token = typeof body.access_token === 'string' ? body.access_token : '';
  return { status: res.status, body, token, mandateId: token === '' ? '' : mandateIdOf(token) };
}

/** The mandate id claim of an access token (read without verifying: tests and benchmarks only). */
export function mandateIdOf(token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).mandate as string;
}
