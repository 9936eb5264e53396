// Admin authorization (src/http/admin-policy.ts and the route gate in src/http/route-access.ts):
// the permission table is checked cell by cell against an independent copy of the intended
// policy — every permission × every role — so widening or narrowing any entry fails here. The gate
// runs in a real fastify app; operator authentication is a stand-in we control (roles from the
// bearer value), since what is under test is the decision after authentication.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Broker } from '../../src/broker.js';
import { AuthError, isMandateError } from '../../src/errors/index.js';
import { authorizeOperator, isPermission, type Permission, permissions } from '../../src/http/admin-policy.js';
import { installRouteAccess, isRouteAccess, PUBLIC, permissionOf } from '../../src/http/route-access.js';
import type { Operator } from '../../src/identity/operators.js';
import { throwsWith } from './helpers.js';

/** The intended policy, written out independently of the table under test. */
const EXPECTED: Record<Permission, readonly string[] | 'any'> = {
  'self:read': 'any',
  'principals:read': ['admin', 'auditor'],
  'principals:write': ['admin'],
  'upstreams:read': ['admin', 'auditor'],
  'upstreams:write': ['admin'],
  'approvals:read': ['admin', 'approver', 'auditor'],
  'approvals:decide': 'any',
  'webhooks:read': ['admin', 'auditor'],
  'console:read': ['admin', 'auditor', 'approver'],
  'agents:read': ['admin', 'auditor'],
  'agents:write': ['admin'],
  'mandates:read': ['admin', 'auditor'],
  'mandates:end': 'any',
  'mandates:open': ['admin', 'orchestrator'],
  'tokens:introspect': ['admin', 'resource-server'],
  'policy:read': ['admin', 'auditor'],
  'policy:write': ['admin'],
  'authzen:evaluate': ['admin', 'pdp'],
  'audit:read': ['admin', 'auditor'],
  'audit:write': ['admin'],
};
const ROLES = ['admin', 'auditor', 'approver', 'resource-server', 'pdp', 'orchestrator', 'finance', '*x', ''];

const operator = (roles: string[]): Operator => ({ id: `op:${roles.join(',')}`, subject: 's', name: 'n', roles, via: 'oidc' });
const allowed = (op: Operator, p: Permission) => {
  try {
    authorizeOperator(op, p);
    return true;
  } catch (err) {
    assert.ok(err instanceof AuthError);
    assert.equal(err.code, 'ERR_FORBIDDEN');
    assert.equal(err.message, `operator lacks permission ${p}`);
    return false;
  }
};

describe('permission table', () => {
  test('names exactly the expected permissions', () => {
    assert.deepEqual(Object.keys(permissions).sort(), Object.keys(EXPECTED).sort());
  });

  for (const [perm, roles] of Object.entries(EXPECTED) as [Permission, readonly string[] | 'any'][]) {
    test(`${perm}: ${roles === 'any' ? 'every operator' : roles.join(', ')} and nobody else`, () => {
      for (const role of ROLES) {
        const expected = roles === 'any' || roles.includes(role);
        assert.equal(allowed(operator([role]), perm), expected, `role "${role}" on ${perm}`);
      }
      assert.equal(allowed(operator([]), perm), roles === 'any', `no roles on ${perm}`);
      // Several roles: any one that holds the permission suffices.
      if (roles !== 'any') assert.equal(allowed(operator(['finance', roles[roles.length - 1] ?? '']), perm), true);
    });
  }

  test('isPermission: own keys only, strings only', () => {
    for (const p of Object.keys(EXPECTED)) assert.equal(isPermission(p), true);
    // ['audit:read'] and an object with that toString would pass a key lookup that coerces to string.
    const coercing = { toString: () => 'audit:read' };
    for (const v of [
      'toString',
      '__proto__',
      'constructor',
      'hasOwnProperty',
      'admin',
      '',
      'principals:READ',
      1,
      undefined,
      null,
      {},
      ['audit:read'],
      coercing,
    ]) {
      assert.equal(isPermission(v), false, String(v));
    }
  });

  test('a permission list never grants through a role spelled differently', () => {
    throwsWith(() => authorizeOperator(operator(['Admin', 'ADMIN', ' admin']), 'principals:write'), 'ERR_FORBIDDEN', /principals:write/);
  });
});

describe('route access rules', () => {
  test('isRouteAccess and permissionOf', () => {
    for (const a of ['public', 'agent', 'client', 'pdp', { permission: 'audit:read' }]) assert.equal(isRouteAccess(a), true);
    for (const a of [undefined, null, 'admin', 'PUBLIC', {}, { permission: 'nope' }, { permission: 'toString' }, 'permission']) {
      assert.equal(isRouteAccess(a), false, JSON.stringify(a));
    }
    assert.equal(permissionOf({ permission: 'audit:write' }), 'audit:write');
    assert.equal(permissionOf('public'), undefined);
    assert.equal(permissionOf(undefined), undefined);
    assert.deepEqual(PUBLIC, { config: { access: 'public' } });
  });
});

describe('route gate in a fastify app', () => {
  let app: FastifyInstance;
  const authenticated: (string | undefined)[] = [];
  // Stand-in authentication: `Bearer role1,role2` is an operator with those roles; anything else is refused.
  const broker = {
    authenticateOperator: async (header: string | undefined) => {
      authenticated.push(header);
      if (header?.startsWith('Bearer ') !== true) throw new AuthError('ERR_AUTH_MISSING');
      return operator(header.slice(7).split(','));
    },
  } as unknown as Broker;

  before(async () => {
    app = Fastify();
    app.setErrorHandler((err, _req, reply) => {
      const status = isMandateError(err) ? err.spec.status : 500;
      void reply.status(status).send({ code: isMandateError(err) ? err.code : 'other' });
    });
    installRouteAccess(app, broker, '/admin/');
    app.get('/open', PUBLIC, async () => 'open');
    app.get('/agent', { config: { access: 'agent' } }, async () => 'agent');
    app.get('/admin/v1/audit', { config: { access: { permission: 'audit:read' } } }, async (req) => ({ op: req.operator?.id }));
    app.post('/admin/v1/audit/checkpoint', { config: { access: { permission: 'audit:write' } } }, async () => 'signed');
    await app.ready();
  });
  after(() => app.close());

  test('routes without a valid rule, and admin routes without a permission, stop registration', async () => {
    const other = Fastify();
    installRouteAccess(other, broker, '/admin/');
    assert.throws(
      () => other.get('/x', async () => 'x'),
      (e: unknown) =>
        isMandateError(e) && e.code === 'ERR_ROUTE_ACCESS_UNDECLARED' && /^route GET \/x declares no access rule$/.test(e.message),
    );
    assert.throws(
      () => other.get('/y', { config: { access: 'everyone' as never } }, async () => 'y'),
      (e: unknown) => isMandateError(e) && e.code === 'ERR_ROUTE_ACCESS_UNDECLARED',
    );
    assert.throws(
      () => other.get('/admin/v1/open', PUBLIC, async () => 'x'),
      (e: unknown) =>
        isMandateError(e) &&
        e.code === 'ERR_ROUTE_ACCESS_UNDECLARED' &&
        /^admin route GET \/admin\/v1\/open must demand a permission$/.test(e.message),
    );
    assert.throws(
      () => other.route({ method: ['GET', 'POST'], url: '/z', handler: async () => 'z' }),
      (e: unknown) => isMandateError(e) && /^route GET,POST \/z declares no access rule$/.test(e.message),
    );
    other.get('/admin-like', PUBLIC, async () => 'fine');
    assert.deepEqual(
      other.accessTable.map((r) => `${r.method} ${r.url}`),
      ['GET /admin-like', 'HEAD /admin-like'],
    );
    await other.close();
  });

  test('attack: a route registered before the gate was installed (no rule) is denied at request time', async () => {
    const early = Fastify();
    early.setErrorHandler((err, _req, reply) => {
      void reply
        .status(isMandateError(err) ? err.spec.status : 500)
        .send({ code: isMandateError(err) ? err.code : 'other', message: (err as Error).message });
    });
    early.get('/early', async () => 'leaked');
    installRouteAccess(early, broker, '/admin/');
    const res = await early.inject({ url: '/early' });
    assert.deepEqual(
      [res.statusCode, res.json()],
      [403, { code: 'ERR_FORBIDDEN', message: 'this route declares no access rule and is denied' }],
    );
    await early.close();
  });

  test('the access table lists every route with its rule, one entry per method', () => {
    const rows = app.accessTable.map((r) => `${r.method} ${r.url} ${JSON.stringify(r.access)}`);
    assert.ok(rows.includes('GET /open "public"'));
    assert.ok(rows.includes('HEAD /open "public"'));
    assert.ok(rows.includes('GET /admin/v1/audit {"permission":"audit:read"}'));
    assert.ok(rows.includes('POST /admin/v1/audit/checkpoint {"permission":"audit:write"}'));
  });

  test('public and self-authenticated routes are not gated', async () => {
    authenticated.length = 0;
    assert.equal((await app.inject({ url: '/open' })).body, 'open');
    assert.equal((await app.inject({ url: '/agent' })).body, 'agent');
    assert.equal((await app.inject({ url: '/nowhere' })).statusCode, 404);
    assert.deepEqual(authenticated, []);
  });

  test('attack: an operator route without a token, or with a role lacking the permission, is refused', async () => {
    assert.equal((await app.inject({ url: '/admin/v1/audit' })).statusCode, 401);
    const weak = await app.inject({ url: '/admin/v1/audit', headers: { authorization: 'Bearer approver' } });
    assert.deepEqual([weak.statusCode, weak.json()], [403, { code: 'ERR_FORBIDDEN' }]);
    const writer = await app.inject({ method: 'POST', url: '/admin/v1/audit/checkpoint', headers: { authorization: 'Bearer auditor' } });
    assert.equal(writer.statusCode, 403);
    // Percent-encoded and mixed spellings reach the same gate (the router decodes; the gate reads the match).
    assert.equal((await app.inject({ url: '/%61dmin/v1/audit' })).statusCode, 401);
  });

  test('a permitted operator passes and the handler sees who it is', async () => {
    const ok = await app.inject({ url: '/admin/v1/audit', headers: { authorization: 'Bearer auditor' } });
    assert.deepEqual([ok.statusCode, ok.json()], [200, { op: 'op:auditor' }]);
    const admin = await app.inject({ method: 'POST', url: '/admin/v1/audit/checkpoint', headers: { authorization: 'Bearer admin' } });
    assert.deepEqual([admin.statusCode, admin.body], [200, 'signed']);
  });
});
