// The leases configuration is validated once, at start: what is refused and what defaults apply.
import assert from 'node:assert/strict';
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
