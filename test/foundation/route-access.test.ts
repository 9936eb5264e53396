// The admin gate decides on the route the router matched, never on the request-target string:
// every registered route is tried without credentials in every spelling an attacker would use,
// over a real socket (so Node's parser and the router see exactly these bytes).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { type Permission, permissions } from '../../src/http/admin-policy.js';
import { ADMIN_PREFIX } from '../../src/http/app.js';
import { type AccessEntry, installRouteAccess } from '../../src/http/route-access.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

/** One raw HTTP/1.1 exchange; resolves to the status code (0 when the server closed without one). */
function rawRequest(port: number, method: string, target: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const body = method === 'GET' || method === 'HEAD' ? '' : '{}';
    const head = [
      `${method} ${target} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Connection: close',
      ...(body === '' ? [] : ['Content-Type: application/json', `Content-Length: ${body.length}`]),
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    let data = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error(`timeout on ${method} ${target}`)));
    // Read the status line, then hang up: a half-close before the answer could race the server.
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      if (data.includes('\r\n')) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
    socket.write(`${head.join('\r\n')}\r\n\r\n${body}`);
  });
}

const encode = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** Every spelling of `path` that some router, proxy or upstream might treat as the same route. */
export function spellings(path: string, port: number): string[] {
  const out = new Set<string>([path]);
  const segments = path.split('/').slice(1);
  for (let i = 0; i < path.length; i++) {
    const c = path.charAt(i);
    if (c === '/') continue;
    out.add(path.slice(0, i) + encode(c).toUpperCase() + path.slice(i + 1));
    out.add(path.slice(0, i) + encode(c) + path.slice(i + 1));
  }
  out.add(path.replace(/[^/]/g, (c) => encode(c)));
  out.add(path.replaceAll('/', '%2F'));
  out.add(path.toUpperCase());
  out.add(segments.map((s) => `/${s.charAt(0).toUpperCase()}${s.slice(1)}`).join(''));
  out.add(`/${path}`);
  out.add(path.replaceAll('/', '//'));
  for (let i = 1; i < segments.length; i++) {
    const [head, tail] = [segments.slice(0, i), segments.slice(i)];
    out.add(`/${head.join('/')}//${tail.join('/')}`);
    out.add(`/${head.join('/')};x=1/${tail.join('/')}`);
    out.add(`/${head.join('/')}/./${tail.join('/')}`);
    out.add(`/${head.join('/')}/x/../${tail.join('/')}`);
    out.add(`/${head.join('/')}/x/%2e%2e/${tail.join('/')}`);
    out.add(`/${head.join('/')}%2f${tail.join('/')}`);
    out.add(`/${head.join('/')}\\${tail.join('/')}`);
  }
  out.add(`${path}/`);
  out.add(`${path};x=1`);
  out.add(`${path};`);
  out.add(`${path}?x=1`);
  out.add(`${path}#x`);
  out.add(`${path}%00`);
  out.add(`${path}%20`);
  out.add(`/x/..${path}`);
  out.add(`/%2e%2e${path}`);
  out.add(`http://127.0.0.1:${port}${path}`);
  out.add(`HTTP://127.0.0.1:${port}${path}`);
  out.add(`http://evil.example${path}`);
  out.add(`http://127.0.0.1:${port}/${path.slice(1).replace(/^./, (c) => encode(c))}`);
  return [...out];
}

const grants = (permission: Permission, role: string) =>
  (permissions[permission] as readonly string[]).some((r) => r === '*' || r === role);
const concrete = (url: string) => url.replace(/:[A-Za-z0-9_]+/g, 'x').replace(/\*$/, 'x');

describe('route access: decided on the matched route', () => {
  let t: TestApp;
  let port: number;

  before(async () => {
    // Rate limits would answer 429 before the gate is reached; this test is about the gate.
    t = await buildTestApp({ config: { server: { rateLimit: { enabled: false } } } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as { port: number }).port;
  });
  after(async () => t.close());

  test('the access table lists every route, and every admin route demands a permission', () => {
    const table = t.app.accessTable;
    assert.ok(table.length > 60, `only ${table.length} routes`);
    const admin = table.filter((e) => e.url.startsWith(ADMIN_PREFIX));
    assert.ok(admin.length > 30);
    for (const e of admin) assert.equal(typeof e.access, 'object', `${e.method} ${e.url} must demand a permission`);
    assert.deepEqual(
      table.filter((e) => e.url === '/mcp').map((e) => e.access),
      ['agent', 'agent', 'agent', 'agent'],
    );
  });

  test('the encoded-path and absolute-form bypasses of the old prefix gate are refused', async () => {
    for (const target of [
      '/admin/%761/principals',
      '/%61dmin/v1/principals',
      '/admin/v%31/agents',
      `http://127.0.0.1:${port}/admin/v1/principals`,
      `http://evil.example/admin/v1/audit/events/1`,
    ]) {
      assert.equal(await rawRequest(port, 'GET', target), 401, target);
    }
    // Registering a stdio upstream without a token: refused before the body is looked at.
    assert.equal(await rawRequest(port, 'POST', '/admin/%76%31/upstreams'), 401);
  });

  test('no non-public route answers 2xx to any spelling without credentials', async () => {
    const guarded = t.app.accessTable.filter((e: AccessEntry) => e.access !== 'public');
    const cases = guarded.flatMap((e) => spellings(concrete(e.url), port).map((target) => ({ method: e.method, target })));
    assert.ok(cases.length > 3000, `${cases.length} cases`);
    const failures: string[] = [];
    const crashes: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++];
        if (c === undefined) break;
        const status = await rawRequest(port, c.method, c.target);
        if (status >= 200 && status < 300) failures.push(`${c.method} ${c.target} → ${status}`);
        if (status >= 500 || status === 0) crashes.push(`${c.method} ${c.target} → ${status}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    assert.deepEqual(failures, []);
    assert.deepEqual(crashes, []);
  });

  test('a wrong or foreign token is refused on every admin route, spelled plainly', async () => {
    const auditor = await t.operatorToken('bob', ['auditor']);
    for (const e of t.app.accessTable.filter((r) => r.url.startsWith(ADMIN_PREFIX) && r.method !== 'HEAD')) {
      const status = await rawRequest(port, e.method, concrete(e.url), { Authorization: 'Bearer not-a-token' });
      assert.equal(status, 401, `${e.method} ${e.url}`);
      // A token without the route's permission is refused before the handler (403), on every route.
      if (typeof e.access === 'object' && !grants(e.access.permission, 'auditor')) {
        assert.equal(
          await rawRequest(port, e.method, concrete(e.url), { Authorization: `Bearer ${auditor}` }),
          403,
          `${e.method} ${e.url}`,
        );
      }
    }
  });

  test('even an admin cannot register or switch to a stdio command outside upstreams.stdio.allowedCommands', async () => {
    const admin = { authorization: `Bearer ${await t.operatorToken('alice')}` };
    const create = await t.app.inject({
      method: 'POST',
      url: `${ADMIN_PREFIX}upstreams`,
      headers: admin,
      payload: {
        id: 'rce',
        transport: { type: 'stdio', command: process.execPath, args: ['-e', 'require("fs").writeFileSync("/tmp/pwned", "x")'] },
      },
    });
    assert.equal(create.statusCode, 403);
    assert.equal(create.json().error, 'ERR_STDIO_COMMAND_NOT_ALLOWED');
    const patch = await t.app.inject({
      method: 'PATCH',
      url: `${ADMIN_PREFIX}upstreams/helpdesk`,
      headers: admin,
      payload: { transport: { type: 'stdio', command: '/bin/sh', args: ['-c', 'id'] } },
    });
    assert.equal(patch.statusCode, 403);
    assert.equal(patch.json().error, 'ERR_STDIO_COMMAND_NOT_ALLOWED');
  });

  test('a malformed percent-encoding is a registry error, not the framework body', async () => {
    const res = await t.app.inject({ url: '/admin/v1/princ%ZZipals' });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(Object.keys(res.json()).sort(), ['error', 'message', 'request_id']);
    assert.equal(res.json().error, 'ERR_BAD_REQUEST');
  });

  test('requests Node cannot parse are answered in the registry shape, not the framework body', async () => {
    const raw = (bytes: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let data = '';
        socket.on('data', (c) => {
          data += c.toString('latin1');
        });
        socket.on('error', reject);
        socket.on('close', () => resolve(data));
        socket.write(bytes);
      });
    const cases: [string, number, string][] = [
      [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'ERR_HEADERS_TOO_LARGE'],
      ['GARBAGE\r\n\r\n', 400, 'ERR_BAD_REQUEST'],
      ['GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400, 'ERR_BAD_REQUEST'],
    ];
    for (const [bytes, status, code] of cases) {
      const answer = await raw(bytes);
      assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), bytes.slice(0, 40));
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
      assert.equal(body.error, code);
      assert.deepEqual(Object.keys(body).sort(), ['error', 'message', 'request_id']);
    }
  });

  test('attacker-chosen text in a refusal never breaks the response (found by npm run fuzz)', async () => {
    // A token whose header names a non-ASCII alg: the refusal message echoes it into WWW-Authenticate.
    const header = Buffer.from(JSON.stringify({ alg: 'ἧ𝆹', typ: 'at+jwt' })).toString('base64url');
    const token = `${header}.${Buffer.from('{}').toString('base64url')}.sig`;
    const host = new URL(t.broker.gateway.resource).host;
    for (const method of ['GET', 'HEAD', 'POST'] as const) {
      const res = await t.app.inject({ method, url: '/mcp', headers: { host, authorization: `Bearer ${token}` } });
      assert.equal(res.statusCode, 401, method);
      assert.match(String(res.headers['www-authenticate']), /^Bearer [\x20-\x7e]*$/);
    }
    const admin = await t.app.inject({ url: `${ADMIN_PREFIX}principals`, headers: { authorization: `Bearer ${token}` } });
    assert.equal(admin.statusCode, 401);
    // A path parameter longer than the router takes is a bad request, not a 500.
    const long = await t.app.inject({ url: `${ADMIN_PREFIX}mandates/${'x'.repeat(300)}` });
    assert.equal(long.statusCode, 400);
    assert.equal(long.json().error, 'ERR_BAD_REQUEST');
  });

  test('lone surrogates in JSON bodies and a null DPoP key are refused as bad requests (found by npm run fuzz)', async () => {
    const admin = `Bearer ${await t.operatorToken('alice')}`;
    const evaluation = await t.app.inject({
      method: 'POST',
      url: '/access/v1/evaluation',
      headers: { authorization: admin, 'content-type': 'application/json' },
      payload: '{"subject":{"type":"agent","id":"a"},"action":{"name":"call"},"resource":{"type":"tool","id":"\\ud800"}}',
    });
    assert.equal(evaluation.statusCode, 400, evaluation.body);
    assert.equal(evaluation.json().error, 'ERR_BAD_REQUEST');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const proof = `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: null })}.${b64({ htm: 'POST', htu: 'x', iat: 1, jti: 'j' })}.c2ln`;
    for (const url of ['/oauth/token', '/mcp']) {
      const res = await t.app.inject({
        method: 'POST',
        url,
        headers: {
          host: new URL(t.broker.gateway.resource).host,
          dpop: proof,
          authorization: 'DPoP x.y.z',
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload:
          'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=x.y.z&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt',
      });
      assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${url}: ${res.statusCode} ${res.body}`);
    }
  });

  test('docs/security.md lists exactly the public routes', () => {
    const doc = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
    const documented = new Set([...doc.matchAll(/^\| `(GET|POST) ([^`]+)` \|/gm)].map((m) => `${m[1]} ${m[2]}`));
    const isPublic = new Set(
      t.app.accessTable.filter((e) => e.access === 'public' && e.method !== 'HEAD').map((e) => `${e.method} ${e.url}`),
    );
    assert.deepEqual(
      [...isPublic].filter((r) => !documented.has(r)),
      [],
      'public routes missing from docs/security.md',
    );
    assert.deepEqual(
      [...documented].filter((r) => !isPublic.has(r)),
      [],
      'docs/security.md lists routes that are not public',
    );
  });
});

describe('route access: registration', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(async () => t.close());

  const fresh = () => {
    const app = Fastify();
    installRouteAccess(app, t.broker, ADMIN_PREFIX);
    return app;
  };

  test('a route without an access rule stops the broker at startup', async () => {
    const app = fresh();
    assert.throws(() => app.get('/x', async () => 'x'), { code: 'ERR_ROUTE_ACCESS_UNDECLARED' });
    assert.throws(() => app.get('/y', { config: { access: 'everyone' as never } }, async () => 'y'), {
      code: 'ERR_ROUTE_ACCESS_UNDECLARED',
    });
    assert.throws(() => app.get('/z', { config: { access: { permission: 'root:all' as never } } }, async () => 'z'), {
      code: 'ERR_ROUTE_ACCESS_UNDECLARED',
    });
    await app.close();
  });

  test('an admin route that does not demand a permission stops the broker at startup', async () => {
    const app = fresh();
    assert.throws(() => app.get(`${ADMIN_PREFIX}open`, { config: { access: 'public' } }, async () => 'x'), {
      code: 'ERR_ROUTE_ACCESS_UNDECLARED',
    });
    assert.throws(() => app.get(`${ADMIN_PREFIX}mine`, { config: { access: 'agent' } }, async () => 'x'), {
      code: 'ERR_ROUTE_ACCESS_UNDECLARED',
    });
    await app.close();
  });

  test('routes registered inside plugins are checked too', async () => {
    const app = fresh();
    app.register(async (scope) => {
      scope.get('/inner', async () => 'x');
    });
    await assert.rejects(
      async () => {
        await app.ready();
      },
      { code: 'ERR_ROUTE_ACCESS_UNDECLARED' },
    );
  });
});
