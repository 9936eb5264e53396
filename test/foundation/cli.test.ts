// The `mandate` command as a user runs it: real processes, exit codes, one-line errors.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const BIN = new URL('../helpers/mandate-source.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'mandate-cli-'));
const env = { PATH: process.env.PATH ?? '', HOME: dir };

function run(args: string[], extraEnv: Record<string, string> = {}) {
  const res = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 30_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Starts `mandate serve` and resolves with the URL it prints. */
function serve(args: string[], extraEnv: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { cwd: dir, env: { ...env, ...extraEnv } });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) resolve({ child, url: m[1] });
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

test('--version and --help on every command', () => {
  assert.match(run(['--version']).stdout, /^\d+\.\d+\.\d+/);
  for (const cmd of [[], ['serve'], ['migrate'], ['config', 'check'], ['dev', 'operator-token']]) {
    const res = run([...cmd, '--help']);
    assert.equal(res.code, 0, cmd.join(' '));
    assert.match(res.stdout, /Usage: mandate/);
  }
});

test('config check: ok, unknown key (one line, exit 1, no stack), and --debug adds the stack', () => {
  assert.match(run(['config', 'check', file('ok.yaml', 'mode: demo\n')]).stdout, /^ok: /);
  const bad = run(['config', 'check', file('bad.yaml', 'store:\n  drvier: sqlite\n')]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /^mandate: ERR_CONFIG_UNKNOWN_KEY: unknown configuration key "store.drvier"/);
  const debug = run(['--debug', 'config', 'check', join(dir, 'bad.yaml')]);
  assert.match(debug.stderr, /\n\s+at /);
  assert.match(run(['config', 'check', join(dir, 'missing.yaml')]).stderr, /ERR_CONFIG_UNREADABLE/);
});

test('serve without a master key in production refuses to start with one line', () => {
  const res = run(['serve', '--config', file('prod.yaml', `dataDir: ${join(dir, 'prod')}\n`)]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^mandate: ERR_MASTER_KEY_MISSING: /);
  const malformed = run(['serve', '--config', join(dir, 'prod.yaml')], { MANDATE_MASTER_KEY: 'nonsense' });
  assert.match(malformed.stderr, /^mandate: ERR_MASTER_KEY_MALFORMED: /);
});

test('an unreachable database is ERR_STORE_UNAVAILABLE, not a crash', () => {
  const cfg = file('pg.yaml', 'mode: demo\nstore:\n  driver: postgres\n  postgres:\n    connectTimeoutMs: 500\n');
  const res = run(['migrate', '--config', cfg], { MANDATE_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^mandate: ERR_STORE_UNAVAILABLE: /);
  assert.ok(!res.stderr.includes('nobody@'), 'the database URL is not printed');
});

test('migrate applies once; serve listens, answers, refuses a taken port, and exits 0 on SIGTERM', async () => {
  const cfg = file('demo.yaml', `mode: demo\ndataDir: ${join(dir, 'demo')}\nlog:\n  level: warn\n`);
  assert.match(run(['migrate', '--config', cfg]).stdout, /applied migrations: 1/);
  assert.match(run(['migrate', '--config', cfg]).stdout, /up to date/);
  const { child, url } = await serve(['--config', cfg, '--port', '0']);
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200);
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as { port: number }).port;
  const taken = run(['serve', '--config', cfg, '--port', String(port)]);
  assert.equal(taken.code, 1);
  assert.match(taken.stderr, /ERR_PORT_IN_USE/);
  blocker.close();
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.match(run(['serve', '--config', cfg, '--port', 'eighty']).stderr, /ERR_CONFIG_INVALID: --port/);
});
