// The leases configuration is validated once, at start: what is refused and what defaults apply.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/load.js';

const pgBase = { type: 'postgres-role', adminUrl: 'postgres://admin@db/app', connectionUrl: 'postgresql://{{role}}:{{password}}@db/app' };
const load = (upstreams: Record<string, unknown>) => buildConfig({ mode: 'demo', leases: { upstreams } } as never, { env: {} });

test('leases config: defaults per provider', () => {
  const c = load({ db: pgBase, tickets: { type: 'mandate-token', audience: 'https://t.example/mcp' } }).leases;
  assert.equal(c.reapIntervalMs, 30_000);
  const db = c.upstreams.db;
  assert.ok(db?.type === 'postgres-role');
  assert.deepEqual(db.inject, { env: 'DATABASE_URL' });
  assert.equal(db.ownedObjects, 'drop');
  assert.equal(db.obtain, 'lazy');
  const t = c.upstreams.tickets;
  assert.ok(t?.type === 'mandate-token');
  assert.deepEqual(t.inject, { header: 'Authorization', prefix: 'Bearer ' });
  assert.equal(t.maxTtlSeconds, 300);
});

test('leases config: refused at start', () => {
  const refused: [string, Record<string, unknown>][] = [
    ['reassign without a target', { db: { ...pgBase, ownedObjects: 'reassign' } }],
    ['an unknown provider', { db: { ...pgBase, type: 'vault' } }],
    ['an unknown key', { db: { ...pgBase, superuser: true } }],
    ['a role prefix that is not a plain identifier', { db: { ...pgBase, rolePrefix: 'x"; drop' } }],
    ['a non-postgres admin URL', { db: { ...pgBase, adminUrl: 'mysql://db/app' } }],
    ['an upstream id with a dot', { 'a.b': pgBase }],
    ['an injected header name with a newline', { db: { ...pgBase, inject: { header: 'X-A\nB' } } }],
    [
      'an http issuer is still a URL, but a scope with a space is not a scope',
      {
        crm: { type: 'oauth-client-credentials', issuer: 'https://as.example', clientId: 'c', clientSecret: 's', baseScopes: ['a b'] },
      },
    ],
    ['a token lifetime over a day', { t: { type: 'mandate-token', audience: 'x', maxTtlSeconds: 90_000 } }],
  ];
  for (const [why, upstreams] of refused) assert.throws(() => load(upstreams), /invalid configuration|unknown/, why);
});

// Secrets need not live in the configuration file: `<field>Env` names an environment variable,
// `<field>File` a file (relative to the configuration file). Errors name the field, never the value.
const PG_SECRET = 'postgres://lease_admin:S3cr3t-pg-Pw@db/app';
const AS_SECRET = 'as-client-secret-0123456789';
const asBase = { type: 'oauth-client-credentials', issuer: 'https://as.example', clientId: 'c' };
const loadIn = (upstreams: Record<string, unknown>, env: Record<string, string>, cwd?: string) =>
  buildConfig({ mode: 'demo', leases: { upstreams } } as never, cwd === undefined ? { env } : { env, cwd });

test('leases config: adminUrl and clientSecret from an environment variable or a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lease-secrets-'));
  try {
    writeFileSync(join(dir, 'pg.url'), `${PG_SECRET}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'as.secret'), `  ${AS_SECRET}\n`, { mode: 0o600 });
    const { adminUrl: _a, ...pgNoUrl } = pgBase;
    const fromEnv = loadIn(
      { db: { ...pgNoUrl, adminUrlEnv: 'CRM_DB_ADMIN_URL' }, crm: { ...asBase, clientSecretEnv: 'CRM_AS_SECRET' } },
      { CRM_DB_ADMIN_URL: PG_SECRET, CRM_AS_SECRET: AS_SECRET },
    ).leases.upstreams;
    assert.ok(fromEnv.db?.type === 'postgres-role' && fromEnv.crm?.type === 'oauth-client-credentials');
    assert.equal(fromEnv.db.adminUrl, PG_SECRET);
    assert.equal(fromEnv.crm.clientSecret, AS_SECRET);
    assert.ok(!('adminUrlEnv' in fromEnv.db), 'the resolved config keeps only the value');

    const fromFile = loadIn(
      { db: { ...pgNoUrl, adminUrlFile: 'pg.url' }, crm: { ...asBase, clientSecretFile: join(dir, 'as.secret') } },
      {},
      dir,
    ).leases.upstreams;
    assert.ok(fromFile.db?.type === 'postgres-role' && fromFile.crm?.type === 'oauth-client-credentials');
    assert.equal(fromFile.db.adminUrl, PG_SECRET, 'relative to the configuration folder, trimmed');
    assert.equal(fromFile.crm.clientSecret, AS_SECRET);

    // Refusals name the field and never print the secret.
    const refusals: [string, Record<string, unknown>, Record<string, string>, string][] = [
      ['none set', { db: pgNoUrl }, {}, 'leases.upstreams.db.adminUrl'],
      ['two set', { db: { ...pgBase, adminUrlEnv: 'X' } }, { X: PG_SECRET }, 'leases.upstreams.db.adminUrl'],
      ['variable unset', { db: { ...pgNoUrl, adminUrlEnv: 'MISSING_VAR' } }, {}, 'leases.upstreams.db.adminUrlEnv'],
      ['variable empty', { crm: { ...asBase, clientSecretEnv: 'EMPTY' } }, { EMPTY: '  ' }, 'leases.upstreams.crm.clientSecretEnv'],
      ['file missing', { crm: { ...asBase, clientSecretFile: 'nope.secret' } }, {}, 'leases.upstreams.crm.clientSecretFile'],
      [
        'not a postgres URL',
        { db: { ...pgNoUrl, adminUrlEnv: 'BAD' } },
        { BAD: `mysql://u:${AS_SECRET}@db` },
        'leases.upstreams.db.adminUrl',
      ],
      ['a lowercase variable name', { db: { ...pgNoUrl, adminUrlEnv: 'path' } }, { path: PG_SECRET }, 'leases.upstreams.db.adminUrlEnv'],
      [
        'a clientSecret too long',
        { crm: { ...asBase, clientSecretEnv: 'LONG' } },
        { LONG: 'x'.repeat(5000) },
        'leases.upstreams.crm.clientSecret',
      ],
    ];
    for (const [why, upstreams, env, path] of refusals) {
      assert.throws(
        () => loadIn(upstreams, env, dir),
        (err: Error & { code?: string; details?: { path?: string } }) => {
          assert.equal(err.code, 'ERR_CONFIG_INVALID', why);
          assert.equal(err.details?.path, path, why);
          assert.ok(err.message.includes(path), `${why}: ${err.message}`);
          const text = `${err.message} ${JSON.stringify(err)}`;
          for (const secret of [PG_SECRET, AS_SECRET, 'S3cr3t-pg-Pw', 'x'.repeat(100)])
            assert.ok(!text.includes(secret), `${why}: no secret`);
          return true;
        },
        why,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
