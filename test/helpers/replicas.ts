// Starts real `mandate serve` processes that share one PostgreSQL schema, as replicas behind a
// load balancer would. Each replica listens on its own loopback port.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMasterKeySpec } from '../../src/secrets/index.js';
import { dropSchema, freshSchema, POSTGRES_URL } from './stores.js';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const BIN = new URL('../../bin/mandate.js', import.meta.url).pathname;

export interface Replica {
  readonly url: string;
  readonly child: ChildProcess;
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
      err += d;
    });
    child.stdout.on('data', (d) => {
      out += d;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1] === undefined) return;
      const url = match[1];
      resolve({
        url,
        child,
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
