// A throwaway PostgreSQL cluster for fault tests: Debian's initdb/pg_ctl on a free loopback port,
// in a temporary folder, so a test can stop and start "the database" without touching the shared
// server on 5432. As root the tools run as the `postgres` user (PostgreSQL refuses to run as root).
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';

export interface PgCluster {
  readonly url: string;
  start(): void;
  /** Immediate shutdown: every connection is cut, as when the database host dies. */
  stop(): void;
  destroy(): void;
}

/** The newest Debian PostgreSQL bin folder, or undefined when the tools are not installed. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')) && existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/** Why a throwaway cluster cannot run here, or undefined when it can. */
export function pgClusterSkip(): string | undefined {
  const bin = postgresBin();
  if (bin === undefined) return 'no initdb/pg_ctl under /usr/lib/postgresql/*/bin';
  if (userInfo().uid === 0) {
    try {
      execFileSync('id', ['postgres'], { stdio: 'ignore' });
    } catch {
      return 'running as root without a postgres user to run initdb/pg_ctl as';
    }
  }
  return undefined;
}

export async function startPgCluster(): Promise<PgCluster> {
  const bin = postgresBin();
  if (bin === undefined) throw new Error('PostgreSQL tools are not installed');
  const asRoot = userInfo().uid === 0;
  const dir = mkdtempSync(join(tmpdir(), 'mandate-pg-'));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const run = (tool: string, args: string[]) => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    execFileSync(cmd as string, argv as string[], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  };
  const port = await freePort();
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  const start = () => run('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']);
  const stop = () => run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    destroy() {
      try {
        stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
