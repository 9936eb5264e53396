// Configuration: strict validation with key paths, secrets only from the environment, frozen.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildConfig, loadConfigFile } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors/index.js';

const dir = mkdtempSync(join(tmpdir(), 'mandate-config-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const code = (expected: string) => (err: unknown) => err instanceof ConfigError && err.code === expected;

test('defaults fill an empty file and the result is deeply frozen', () => {
  const config = loadConfigFile(file('empty.yaml', ''));
  assert.equal(config.mode, 'production');
  assert.equal(config.server.port, 8080);
  assert.equal(config.store.driver, 'sqlite');
  assert.equal(config.store.sqlite.path, join(dir, 'data', 'mandate.db'), 'relative paths resolve against the file');
  assert.ok(Object.isFrozen(config.server));
  assert.throws(() => {
    (config.server as { port: number }).port = 1;
  }, TypeError);
});

test('an unknown key is rejected with its full path', () => {
  assert.throws(
    () => loadConfigFile(file('unknown.yaml', 'server:\n  host: 127.0.0.1\n  prot: 80\n')),
    (err: unknown) => code('ERR_CONFIG_UNKNOWN_KEY')(err) && (err as Error).message.includes('"server.prot"'),
  );
  assert.throws(
    () => buildConfig({ nope: 1 }),
    (err: unknown) => code('ERR_CONFIG_UNKNOWN_KEY')(err) && (err as Error).message.includes('"nope"'),
  );
});

test('a wrong type names the key', () => {
  assert.throws(
    () => loadConfigFile(file('type.yaml', 'server:\n  port: "eighty"\n')),
    (err: unknown) => code('ERR_CONFIG_INVALID')(err) && (err as Error).message.includes('"server.port"'),
  );
  assert.throws(() => buildConfig({ server: { port: 70000 } }), code('ERR_CONFIG_INVALID'));
});

test('unreadable and unparsable files have their own codes', () => {
  assert.throws(() => loadConfigFile(join(dir, 'missing.yaml')), code('ERR_CONFIG_UNREADABLE'));
  assert.throws(() => loadConfigFile(file('bad.yaml', 'server: [unclosed\n')), code('ERR_CONFIG_PARSE'));
  assert.throws(() => loadConfigFile(file('dup.yaml', 'mode: demo\nmode: production\n')), code('ERR_CONFIG_PARSE'));
  assert.throws(() => loadConfigFile(file('list.yaml', '- a\n- b\n')), code('ERR_CONFIG_INVALID'));
});

test('JSON files are accepted too', () => {
  assert.equal(loadConfigFile(file('c.json', '{"mode":"demo","server":{"port":9000}}')).server.port, 9000);
});

test('secrets come from the environment only, and the database URL env overrides the file', () => {
  const config = buildConfig(
    { store: { driver: 'postgres', postgres: { url: 'postgres://file/db' } } },
    {
      env: {
        MANDATE_DATABASE_URL: 'postgres://env/db',
        MANDATE_MASTER_KEY: 'k1:abc',
        MANDATE_BOOTSTRAP_TOKEN: 'x'.repeat(40),
        HOME: '/root',
      },
    },
  );
  assert.equal(config.store.postgres.url, 'postgres://env/db');
  assert.equal(config.secrets.masterKey, 'k1:abc');
  assert.match(config.secrets.bootstrapTokenSha256 ?? '', /^[0-9a-f]{64}$/);
  assert.ok(!JSON.stringify(config).includes('x'.repeat(40)), 'the bootstrap token itself is not kept');
});

test('postgres without a URL, and a short bootstrap token, are refused', () => {
  assert.throws(() => buildConfig({ store: { driver: 'postgres' } }), code('ERR_CONFIG_INVALID'));
  assert.throws(() => buildConfig({}, { env: { MANDATE_BOOTSTRAP_TOKEN: 'short' } }), code('ERR_CONFIG_INVALID'));
});
