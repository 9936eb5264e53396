// HTTP API upstreams: an OpenAPI description (examples/openapi/billing.yaml) compiled into tools,
// and those tools called through the real gateway (official MCP SDK client, real token exchange,
// demo org policy, approvals, audit) against a real HTTP API served by node:http in this test.
// Hostile cases at every boundary: the description (remote and cyclic $refs, fan-out, 10,000
// operations, files outside the allowed directories) and the call (path traversal, CRLF in
// headers, extra arguments that try to move the request, type confusion, huge responses, redirects).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { parse as parseYaml } from 'yaml';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { Catalog } from '../../src/upstreams/catalog.js';
import { buildRequest } from '../../src/upstreams/http-api/client.js';
import { compileDescription } from '../../src/upstreams/http-api/compile.js';
import { resolveRefs } from '../../src/upstreams/http-api/refs.js';
import { type GatewayHarness, mandateIdOf, meta, startGateway, text } from '../gateway/harness.js';
import { storeFactories } from '../helpers/stores.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/openapi/billing.yaml', import.meta.url));
const EXAMPLES_DIR = dirname(EXAMPLE);
const SECRET = 'test-fixture-billing-api-key-7f3c9a1e5b';
const example = (): Record<string, unknown> => parseYaml(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;

const compile = (doc: unknown, maxOperations = 1000) => compileDescription(doc, { serverUrl: 'http://api.test/v1', maxOperations });
const paths = (n: number): Record<string, unknown> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`/r${i}`, { get: { operationId: `op${i}`, responses: {} } }]));

describe('OpenAPI descriptions become tools', () => {
  it('maps each operation to a tool with its schema and an action class from its method', () => {
    const { api, tools } = compile(example());
    assert.deepEqual(
      tools.map((t) => t.name),
      ['listCustomers', 'getCustomer', 'deleteCustomer', 'createRefund', 'get_files_name', 'exportAll', 'moved'],
    );
    const refund = tools.find((t) => t.name === 'createRefund');
    assert.deepEqual(refund?.inputSchema.required, ['customerId', 'Idempotency-Key', 'body']);
    const props = refund?.inputSchema.properties as Record<string, Record<string, unknown>>;
    // The Authorization header parameter is ignored: no argument can set it.
    assert.deepEqual(Object.keys(props).sort(), ['Idempotency-Key', 'body', 'customerId']);
    const bodyProps = props.body?.properties as Record<string, { type: string }> | undefined;
    assert.equal(bodyProps?.amountCents?.type, 'integer');
    assert.equal(refund?.inputSchema.additionalProperties, false);
    assert.equal(refund?.title, 'Refund a customer');
    assert.match(refund?.description ?? '', /idempotency key/);
    // $refs resolved, nested ones too (Customer.status → Status).
    const listProps = tools[0]?.inputSchema.properties as Record<string, unknown> | undefined;
    assert.deepEqual(listProps?.status, { type: 'string', enum: ['active', 'closed'] });
    assert.equal(tools.find((t) => t.name === 'getCustomer')?.annotations.readOnlyHint, true);
    assert.equal(tools.find((t) => t.name === 'deleteCustomer')?.annotations.destructiveHint, true);
    assert.equal(refund?.annotations.readOnlyHint, false);
    assert.equal(refund?.annotations.destructiveHint, false);
    assert.equal(api.serverUrl, 'http://api.test/v1');
    assert.equal(api.operations.deleteCustomer?.method, 'DELETE');
  });

  it('takes the server from the description (variables at their defaults) unless configuration sets it', () => {
    assert.equal(compileDescription(example(), { maxOperations: 100 }).api.serverUrl, 'https://billing.example/v1');
    const relative = { ...example(), servers: [{ url: '/api/v2' }] };
    assert.equal(
      compileDescription(relative, { maxOperations: 100, baseUrl: 'http://h.test/specs/a.json' }).api.serverUrl,
      'http://h.test/api/v2',
    );
    assert.throws(() => compileDescription(relative, { maxOperations: 100 }), /not an absolute URL/);
    assert.throws(() => compileDescription({ ...example(), servers: [{ url: 'file:///etc' }] }, { maxOperations: 100 }), /http or https/);
    assert.throws(
      () => compileDescription({ ...example(), servers: [{ url: 'https://u:p@h.test' }] }, { maxOperations: 100 }),
      /must not carry credentials/,
    );
  });

  it('converts OpenAPI 3.0 schemas to JSON Schema (nullable, boolean exclusive bounds) without touching property names', () => {
    const doc = {
      openapi: '3.0.3',
      paths: {
        '/x': {
          post: {
            operationId: 'x',
            requestBody: {
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      example: { type: 'string', nullable: true },
                      n: { type: 'number', minimum: 0, exclusiveMinimum: true },
                    },
                  },
                },
              },
            },
          },
        },
      },
    };
    const props = compile(doc).tools[0]?.inputSchema.properties as Record<string, Record<string, unknown>> | undefined;
    const body = props?.body;
    const p = body?.properties as Record<string, Record<string, unknown>>;
    assert.deepEqual(p.example, { type: ['string', 'null'] });
    assert.deepEqual(p.n, { type: 'number', exclusiveMinimum: 0 });
  });

  it('refuses a remote $ref, a cycle, a fan-out of $refs, and anything but OpenAPI 3.0/3.1', () => {
    const withSchema = (schema: unknown, components: unknown = {}) => ({
      openapi: '3.1.0',
      components,
      paths: { '/x': { get: { operationId: 'x', parameters: [{ name: 'q', in: 'query', schema }] } } },
    });
    for (const ref of ['https://evil.test/schema.json', 'other.yaml#/components/schemas/A', '//evil.test/x']) {
      assert.throws(
        () => compile(withSchema({ $ref: ref })),
        { code: 'ERR_HTTP_API_DESCRIPTION', message: /remote references are refused/ },
        ref,
      );
    }
    const cyclic = { schemas: { Node: { type: 'object', properties: { next: { $ref: '#/components/schemas/Node' } } } } };
    assert.throws(() => compile(withSchema({ $ref: '#/components/schemas/Node' }, cyclic)), {
      code: 'ERR_HTTP_API_DESCRIPTION',
      message: /cycle/,
    });
    const mutual = { schemas: { A: { $ref: '#/components/schemas/B' }, B: { $ref: '#/components/schemas/A' } } };
    assert.throws(() => compile(withSchema({ $ref: '#/components/schemas/A' }, mutual)), /cycle/);
    assert.throws(() => compile(withSchema({ $ref: '#/components/schemas/Missing' })), /points at nothing/);
    // 15 levels, each referring four times to the next: 4^15 nodes if expanded. Refused, quickly.
    const schemas: Record<string, unknown> = { L15: { type: 'string' } };
    for (let i = 0; i < 15; i++)
      schemas[`L${i}`] = { anyOf: Array.from({ length: 4 }, () => ({ $ref: `#/components/schemas/L${i + 1}` })) };
    const started = Date.now();
    assert.throws(() => compile(withSchema({ $ref: '#/components/schemas/L0' }, { schemas })), /too many nodes/);
    assert.ok(Date.now() - started < 2000);
    assert.throws(() => compile({ swagger: '2.0', paths: {} }), /only OpenAPI 3\.0 and 3\.1/);
    // A recursive schema that is only in a response is never resolved: the description is fine.
    const tree = {
      schemas: { Node: { type: 'object', properties: { children: { type: 'array', items: { $ref: '#/components/schemas/Node' } } } } },
    };
    const responses = {
      '200': { description: 'tree', content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } } },
    };
    assert.equal(
      compile({ openapi: '3.1.0', components: tree, paths: { '/t': { get: { operationId: 't', responses } } } }).tools.length,
      1,
    );
    // Path items can be $refs too (3.1 components.pathItems); a loop of them is refused.
    const viaRef = {
      openapi: '3.1.0',
      components: { pathItems: { P: { get: { operationId: 'p' } } } },
      paths: { '/p': { $ref: '#/components/pathItems/P' } },
    };
    assert.deepEqual(
      compile(viaRef).tools.map((t) => t.name),
      ['p'],
    );
    const loop = {
      openapi: '3.1.0',
      components: { pathItems: { A: { $ref: '#/components/pathItems/A' } } },
      paths: { '/a': { $ref: '#/components/pathItems/A' } },
    };
    assert.throws(() => compile(loop), /does not end/);
    assert.throws(() => compile([]), /not a JSON or YAML object/);
  });

  it('never lets a `__proto__` key in a description set a prototype', () => {
    const resolved = resolveRefs({}, JSON.parse('{"a":{"__proto__":{"polluted":true}}}'), { nodes: 100, maxDepth: 10 }) as Record<
      string,
      object
    >;
    assert.equal(Object.getPrototypeOf(resolved.a), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('caps the number of operations (10,000 refused before anything is resolved) and checks tool names for collisions', () => {
    const started = Date.now();
    assert.throws(() => compile({ openapi: '3.1.0', paths: paths(10_000) }), {
      code: 'ERR_HTTP_API_DESCRIPTION',
      message: /10000 operations, over the limit of 1000/,
    });
    assert.ok(Date.now() - started < 1000);
    assert.equal(compile({ openapi: '3.1.0', paths: paths(1000) }).tools.length, 1000);
    // Counted through path-item $refs too: 1001 paths sharing one item are 1001 operations.
    const shared = { openapi: '3.1.0', components: { pathItems: { P: { get: {} } } }, paths: {} as Record<string, unknown> };
    for (let i = 0; i <= 1000; i++) shared.paths[`/p${i}`] = { $ref: '#/components/pathItems/P' };
    assert.throws(() => compile(shared), /1001 operations, over the limit of 1000/);
    // `get-a` and `get a` both become `get-a`/`get_a`... these two sanitize to the same name.
    const clash = {
      openapi: '3.1.0',
      paths: { '/a': { get: { operationId: 'list items' } }, '/b': { get: { operationId: 'list_items' } } },
    };
    assert.throws(() => compile(clash), /GET \/a and GET \/b both become tool "list_items"/);
    // Parameters that would share one argument name, or take the body's.
    const dup = {
      openapi: '3.1.0',
      paths: {
        '/a/{id}': {
          get: {
            parameters: [
              { name: 'id', in: 'path', required: true },
              { name: 'id', in: 'query' },
            ],
          },
        },
      },
    };
    assert.throws(() => compile(dup), /named in both path and query/);
    assert.throws(
      () => compile({ openapi: '3.1.0', paths: { '/a/{x}': { get: { operationId: 'a' } } } }),
      /path template \{x\} has no path parameter/,
    );
    assert.throws(
      () =>
        compile({
          openapi: '3.1.0',
          paths: { '/a': { post: { operationId: 'a', requestBody: { required: true, content: { 'text/csv': {} } } } } },
        }),
      /only JSON request bodies/,
    );
  });
});

describe('building the HTTP request', () => {
  const { api } = compile(example());
  const op = (name: string) => {
    const o = api.operations[name];
    if (o === undefined) throw new Error(name);
    return o;
  };

  it('keeps a path argument in one segment, whatever it contains', () => {
    const cases: [string, string][] = [
      ['../admin', '/v1/files/..%2Fadmin'],
      ['a/b', '/v1/files/a%2Fb'],
      ['%2e%2e', '/v1/files/%252e%252e'],
      ['..\\admin', '/v1/files/..%5Cadmin'],
      ['x?y=1#z', '/v1/files/x%3Fy%3D1%23z'],
      ['ü', '/v1/files/%C3%BC'],
    ];
    for (const [name, path] of cases) {
      const url = new URL(buildRequest(api.serverUrl, op('get_files_name'), { name }, undefined).url);
      assert.equal(url.pathname, path, name);
      assert.equal(url.search, '', name);
      assert.equal(url.origin, 'http://api.test');
    }
    for (const name of ['..', '.', '', 'a\uD800b', '\uDC00']) {
      assert.throws(() => buildRequest(api.serverUrl, op('get_files_name'), { name }, undefined), {
        code: 'RPC_UPSTREAM_ERROR',
        message: /nothing was sent/,
      });
    }
  });

  it('property: any path value is sent as exactly one segment that decodes to that value, or refused', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary', maxLength: 24 }), fc.constantFrom('..', '.', '', '%2e%2e', '../..', '/')),
        (name) => {
          let url: URL;
          try {
            url = new URL(buildRequest(api.serverUrl, op('get_files_name'), { name }, undefined).url);
          } catch (err) {
            assert.equal((err as { code?: string }).code, 'RPC_UPSTREAM_ERROR');
            assert.ok(name === '' || name === '.' || name === '..' || /[\uD800-\uDFFF]/u.test(name), JSON.stringify(name));
            return;
          }
          assert.equal(url.origin, 'http://api.test');
          assert.equal(url.search, '');
          assert.equal(url.hash, '');
          const segments = url.pathname.split('/');
          assert.deepEqual(segments.slice(0, 3), ['', 'v1', 'files']);
          assert.equal(segments.length, 4, url.pathname);
          assert.equal(decodeURIComponent(segments[3] ?? ''), name);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses CR, LF and other control characters in a header argument, and lets the credential win', () => {
    for (const bad of ['k\r\nX-Injected: 1', 'k\nx', 'k\u0000', 'k\u2028', 'ké\u0100']) {
      assert.throws(
        () => buildRequest(api.serverUrl, op('createRefund'), { customerId: 'C-1', 'Idempotency-Key': bad, body: {} }, undefined),
        /header argument Idempotency-Key/,
      );
    }
    const req = buildRequest(
      api.serverUrl,
      op('createRefund'),
      { customerId: 'C-1', 'Idempotency-Key': 'k1', body: { amountCents: 1, reason: 'r' } },
      { headers: { authorization: 'Bearer s' } },
    );
    assert.equal(req.headers.get('authorization'), 'Bearer s');
    assert.equal(req.headers.get('idempotency-key'), 'k1');
    assert.equal(req.headers.get('content-type'), 'application/json');
    assert.equal(req.body, '{"amountCents":1,"reason":"r"}');
  });

  it('serializes query arguments as the description says (arrays repeated)', () => {
    const url = new URL(buildRequest(api.serverUrl, op('listCustomers'), { limit: 5, tag: ['a&b', 'c'], status: 'active' }, undefined).url);
    assert.equal(url.search, '?limit=5&status=active&tag=a%26b&tag=c');
  });

  it('serializes the query styles OpenAPI defines (form, spaceDelimited, pipeDelimited, deepObject) and refuses the rest', () => {
    const doc = (parameters: unknown[]) => ({
      openapi: '3.1.0',
      info: { title: 't', version: '1' },
      paths: { '/items/{id}': { get: { operationId: 'list', parameters, responses: {} } } },
    });
    const id = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
    const arr = { type: 'array', items: { type: 'string' } };
    const { api: styled } = compile(
      doc([
        id,
        { name: 'sp', in: 'query', style: 'spaceDelimited', schema: arr },
        { name: 'pi', in: 'query', style: 'pipeDelimited', schema: arr },
        { name: 'fo', in: 'query', style: 'form', explode: false, schema: arr },
        { name: 'filter', in: 'query', style: 'deepObject', explode: true, schema: { type: 'object' } },
      ]),
    );
    const list = styled.operations.list;
    assert.ok(list);
    const url = new URL(
      buildRequest(
        styled.serverUrl,
        list,
        { id: 'x', sp: ['a b', 'c'], pi: ['d', 'e|f'], fo: ['g', 'h'], filter: { status: 'open', 'min.age': 3 } },
        undefined,
      ).url,
    );
    assert.deepEqual(
      [...url.searchParams],
      [
        ['sp', 'a b c'],
        ['pi', 'd|e|f'],
        ['fo', 'g,h'],
        ['filter[status]', 'open'],
        ['filter[min.age]', '3'],
      ],
    );
    // A deepObject value must be a flat object with plain property names.
    for (const filter of [['a'], 'open', { 'a]b': 1 }, { '': 1 }, { nested: { x: 1 } }]) {
      assert.throws(() => buildRequest(styled.serverUrl, list, { id: 'x', filter }, undefined), /filter/, JSON.stringify(filter));
    }
    // Styles the gateway cannot serialize are refused when the description is registered, naming them.
    for (const [param, why] of [
      [{ name: 'id', in: 'path', required: true, style: 'matrix', schema: { type: 'string' } }, /style "matrix"/],
      [{ name: 'id', in: 'path', required: true, style: 'label', schema: { type: 'string' } }, /style "label"/],
      [{ name: 'q', in: 'query', style: 'simple', schema: arr }, /style "simple"/],
      [{ name: 'q', in: 'query', style: 'deepObject', explode: false, schema: { type: 'object' } }, /must explode/],
      [{ name: 'X-H', in: 'header', style: 'form', schema: { type: 'string' } }, /style "form"/],
    ] as const) {
      const params = param.in === 'path' ? [param] : [id, param];
      assert.throws(() => compile(doc(params)), why);
    }
  });
});

// ── end to end through the gateway, on both stores ──

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  /** The newest audit decision of the current mandate when the request arrived. */
  readonly auditedBefore: unknown;
}

const AGENT = { id: 'billing-agent', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/billing-agent` };
const TOOLS = [
  'billing.listCustomers',
  'billing.getCustomer',
  'billing.deleteCustomer',
  'billing.createRefund',
  'billing.get_files_name',
  'billing.exportAll',
  'billing.moved',
  'byurl.slow',
  'byurl.empty',
  'byurl.broken',
  'byurl.lying',
  'byurl.getCustomer',
  'leased.getCustomer',
];

for (const factory of await storeFactories()) {
  describe(`HTTP API upstreams through the gateway (${factory.name})`, { skip: factory.skip }, () => {
    let h: GatewayHarness;
    let api: Server;
    let elsewhere: Server;
    let apiBase = '';
    let elsewhereHits = 0;
    const seen: Seen[] = [];
    let currentMandate = '';
    let admin = '';
    const served: Record<string, unknown> = {};
    // A second allowed directory with a description over the size limit and a symlink out of it.
    const dir = mkdtempSync(join(tmpdir(), 'mandate-openapi-'));
    const leasedTokens: string[] = [];
    let jwks: ReturnType<typeof createRemoteJWKSet>;

    const listen = async (s: Server): Promise<string> => {
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
    };

    before(async () => {
      elsewhere = createServer((_req, res) => {
        elsewhereHits++;
        res.end('stolen');
      });
      const elsewhereBase = await listen(elsewhere);
      api = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', async () => {
          const url = new URL(req.url ?? '/', 'http://x');
          if (url.pathname.startsWith('/specs/')) {
            const doc = served[url.pathname.slice('/specs/'.length)];
            res.writeHead(doc === undefined ? 404 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(doc ?? {}));
            return;
          }
          const decisions =
            currentMandate === '' ? [] : await h.broker.audit.entriesBy('mandate_id', currentMandate, { types: ['decision'] });
          seen.push({
            method: req.method ?? '',
            url: req.url ?? '',
            headers: req.headers,
            body,
            auditedBefore: decisions.at(-1)?.event.data,
          });
          const json = (status: number, value: unknown) =>
            res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
          if (url.pathname.startsWith('/leased/')) {
            // This API trusts Mandate: a per-mandate RFC 9068 token, checked against Mandate's JWKS.
            try {
              const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
              const { payload } = await jwtVerify(token, jwks, { issuer: h.base, audience: `${apiBase}/leased`, typ: 'at+jwt' });
              leasedTokens.push(token);
              return json(200, { id: url.pathname.split('/').at(-1), mandate: payload.mandate });
            } catch {
              return json(401, { error: 'no valid mandate token' });
            }
          }
          if (req.headers.authorization !== `Bearer ${SECRET}`) return json(401, { error: 'no or wrong API key' });
          const m = /^\/v1\/customers\/([^/]+)(\/refunds)?$/.exec(url.pathname);
          if (req.method === 'GET' && url.pathname === '/v1/customers')
            return json(200, { query: url.search, customers: [{ id: 'C-1009' }] });
          if (req.method === 'GET' && m !== null && m[2] === undefined) {
            return m[1] === 'C-1009'
              ? json(200, { id: 'C-1009', name: 'Dana', status: 'active' })
              : json(404, { error: 'no such customer' });
          }
          if (req.method === 'DELETE' && m !== null && m[2] === undefined) return json(200, { deleted: m[1] });
          if (req.method === 'POST' && m?.[2] === '/refunds') {
            return json(201, {
              customer: m[1],
              refunded: (JSON.parse(body) as { amountCents: number }).amountCents,
              key: req.headers['idempotency-key'],
            });
          }
          if (req.method === 'GET' && url.pathname.startsWith('/v1/files/')) {
            return res.writeHead(200, { 'content-type': 'text/plain' }).end(`file at ${url.pathname}`);
          }
          if (req.method === 'GET' && url.pathname === '/v1/exports/full') {
            // Chunked, no content-length: the cap must hold while streaming.
            res.writeHead(200, { 'content-type': 'application/json' });
            res.write('["');
            for (let i = 0; i < 64; i++) res.write('x'.repeat(16 * 1024));
            return res.end('"]');
          }
          if (req.method === 'GET' && url.pathname === '/v1/moved') return res.writeHead(302, { location: `${elsewhereBase}/steal` }).end();
          if (req.method === 'GET' && url.pathname === '/v1/slow') return setTimeout(() => json(200, { late: true }), 3000);
          if (url.pathname === '/v1/empty') return res.writeHead(204, { 'content-type': 'application/json' }).end();
          if (url.pathname === '/v1/broken')
            return res.writeHead(502, { 'content-type': 'application/json' }).end('<html>Bad gateway</html>');
          if (url.pathname === '/v1/lying') return res.writeHead(200, { 'content-type': 'application/json' }).end('not json');
          json(404, { error: 'no route' });
        });
      });
      apiBase = await listen(api);
      // The same API described again, served over HTTP with a relative server URL and one more operation.
      const doc = example();
      served['billing.json'] = {
        ...doc,
        servers: [{ url: '/v1' }],
        paths: {
          ...(doc.paths as object),
          '/slow': { get: { operationId: 'slow', responses: {} } },
          '/empty': { get: { operationId: 'empty', responses: {} } },
          '/broken': { get: { operationId: 'broken', responses: {} } },
          '/lying': { get: { operationId: 'lying', responses: {} } },
        },
      };
      served['remote-ref.json'] = {
        openapi: '3.1.0',
        paths: { '/x': { get: { operationId: 'x', parameters: [{ $ref: `${elsewhereBase}/param.json` }] } } },
      };
      served['huge.json'] = { openapi: '3.1.0', servers: [{ url: '/v1' }], paths: paths(10_000) };
      const withQuery = (schema: unknown) => ({
        openapi: '3.1.0',
        servers: [{ url: '/v1' }],
        paths: { '/x': { get: { operationId: 'x', parameters: [{ name: 'q', in: 'query', schema }] } } },
      });
      served['bad-schema.json'] = withQuery({ type: 'strange' });
      served['padded.json'] = { ...example(), info: { title: 'x', version: '1', description: 'x'.repeat(2 * 1024 * 1024) } };
      writeFileSync(join(dir, 'padded.yaml'), `${readFileSync(EXAMPLE, 'utf8')}\n# ${'x'.repeat(2 * 1024 * 1024)}\n`);
      symlinkSync('/etc/hostname', join(dir, 'escape.yaml'));
      // A dialect URI the validator does not know is dropped, not fetched or fatal.
      served['dialect.json'] = withQuery({
        $schema: 'https://spec.openapis.org/oas/3.1/dialect/base',
        $id: 'https://x.test/q',
        type: 'string',
      });

      h = await startGateway({
        store: await factory.open(),
        config: {
          upstreams: { httpApi: { descriptionDirs: [EXAMPLES_DIR, dir], maxResponseBytes: 256 * 1024, maxDescriptionBytes: 1024 * 1024 } },
          leases: { upstreams: { leased: { type: 'mandate-token', audience: `${apiBase}/leased`, maxTtlSeconds: 120 } } },
        },
      });
      jwks = createRemoteJWKSet(new URL('/oauth/jwks', h.base));
      admin = await h.operatorToken('alice');
      await h.broker.agents.register({
        id: AGENT.id,
        displayName: AGENT.id,
        owner: 'alice',
        environment: 'production',
        identity: { spiffeId: AGENT.spiffeId },
        ceiling: { tools: TOOLS.map((tool) => ({ tool })), delegable: false },
        mayReceiveDelegation: false,
      });
      const registered = await fetch(`${h.base}/admin/v1/upstreams`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          id: 'billing',
          transport: { type: 'openapi', description: { path: EXAMPLE }, serverUrl: `${apiBase}/v1` },
          isolation: 'shared',
          credential: { headers: { authorization: `Bearer ${SECRET}` } },
        }),
      });
      assert.equal(registered.status, 201, await registered.text());
      await h.broker.upstreams.registry.create({
        id: 'byurl',
        transport: { type: 'openapi', description: { url: `${apiBase}/specs/billing.json` } },
        credential: { headers: { authorization: `Bearer ${SECRET}` } },
      });
      // No static credential at all: every call carries the mandate's own token (a lease).
      await h.broker.upstreams.registry.create({
        id: 'leased',
        transport: { type: 'openapi', description: { path: EXAMPLE }, serverUrl: `${apiBase}/leased/v1` },
      });
    });
    after(async () => {
      await h.close();
      api.close();
      elsewhere.close();
      rmSync(dir, { recursive: true, force: true });
      await factory.cleanup();
    });

    const open = async (tools: string[]) => {
      const res = await h.open(AGENT.spiffeId, {
        type: 'mandate',
        purpose: 'billing via HTTP API',
        taskType: 'support.refund',
        environment: 'production',
        ttlSeconds: 600,
        tools: tools.map((tool) => ({ tool })),
      });
      currentMandate = mandateIdOf(res.access_token);
      return { client: await h.connect(res.access_token), mandateId: currentMandate, token: res.access_token };
    };
    const since = (n: number) => seen.slice(n);

    it('persists the registration: tools, bindings and action classes read back from the store', async () => {
      const catalog = new Catalog(h.broker.store);
      await catalog.reload();
      assert.equal(catalog.get('billing.getCustomer')?.actionClass, 'read');
      assert.equal(catalog.get('billing.createRefund')?.actionClass, 'execute');
      assert.equal(catalog.get('billing.deleteCustomer')?.actionClass, 'destructive');
      assert.equal(catalog.get('byurl.slow')?.actionClass, 'read');
      const [row] = await h.broker.store.query<{ http_api: string }>('SELECT http_api FROM upstreams WHERE id = ?', ['billing']);
      const stored = JSON.parse(row?.http_api ?? '{}') as { serverUrl: string; operations: Record<string, { method: string }> };
      assert.equal(stored.serverUrl, `${apiBase}/v1`);
      assert.equal(stored.operations.deleteCustomer?.method, 'DELETE');
      // The description's relative server URL, resolved against where it was fetched.
      assert.equal((await h.broker.upstreams.registry.connection('byurl')).httpApi?.api.serverUrl, `${apiBase}/v1`);
      // The admin API shows the credential's header names, never its value.
      const listed = await (await fetch(`${h.base}/admin/v1/upstreams/billing`, { headers: { authorization: `Bearer ${admin}` } })).text();
      assert.match(listed, /"openapi"/);
      assert.ok(!listed.includes(SECRET));
    });

    it('lists the granted tools with their schemas, and forwards an allowed GET with the credential injected', async () => {
      const { client, mandateId } = await open(['billing.getCustomer', 'billing.listCustomers']);
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['billing.getCustomer', 'billing.listCustomers']);
      const get = tools.find((t) => t.name === 'billing.getCustomer');
      assert.deepEqual(get?.inputSchema.required, ['customerId']);
      assert.equal(get?.annotations?.readOnlyHint, true);
      const n = seen.length;
      const r = await client.callTool({ name: 'billing.getCustomer', arguments: { customerId: 'C-1009' } });
      assert.equal(r.isError, undefined, text(r));
      assert.deepEqual(r.structuredContent, { id: 'C-1009', name: 'Dana', status: 'active' });
      assert.deepEqual(JSON.parse(text(r)), { id: 'C-1009', name: 'Dana', status: 'active' });
      const [req] = since(n);
      assert.equal(req?.method, 'GET');
      assert.equal(req?.url, '/v1/customers/C-1009');
      assert.equal(req?.headers.authorization, `Bearer ${SECRET}`);
      // Durable first: when the API saw the request, the allow decision was already in the audit log.
      assert.deepEqual(
        [(req?.auditedBefore as { tool?: string } | undefined)?.tool, (req?.auditedBefore as { outcome?: string } | undefined)?.outcome],
        ['billing.getCustomer', 'allow'],
      );
      const q = await client.callTool({ name: 'billing.listCustomers', arguments: { limit: 2, tag: ['vip', 'a b'] } });
      assert.match(text(q), /\?limit=2&tag=vip&tag=a\+b/);
      const missing = await client.callTool({ name: 'billing.getCustomer', arguments: { customerId: 'C-404' } });
      assert.equal(missing.isError, true);
      assert.match(text(missing), /^HTTP 404 Not Found: \{"error":"no such customer"\}/);
      assert.equal((missing.structuredContent as { status: number }).status, 404);
      // Decision then result, for every call; the secret is nowhere the agent or the audit log can see.
      const trail = await h.broker.audit.entriesBy('mandate_id', mandateId);
      const types = trail.map((e) => e.event.type).filter((t) => t === 'decision' || t === 'tool.result');
      assert.deepEqual(types, ['decision', 'tool.result', 'decision', 'tool.result', 'decision', 'tool.result']);
      for (const visible of [tools, r, q, missing, trail]) assert.ok(!JSON.stringify(visible).includes(SECRET));
    });

    it('sends a DELETE to approval, then forwards it exactly once after an admin approves', async () => {
      const { client, mandateId } = await open(['billing.deleteCustomer']);
      const call = { name: 'billing.deleteCustomer', arguments: { customerId: 'C-2001' } };
      const deletes = () => seen.filter((s) => s.method === 'DELETE' && s.url === '/v1/customers/C-2001').length;
      const pending = await client.callTool(call);
      assert.equal(pending.isError, true);
      const approvalId = meta(pending).approvalId as string;
      assert.match(approvalId, /^apr_/);
      assert.deepEqual(meta(pending).requiredRoles, ['admin']);
      assert.equal(deletes(), 0, 'nothing is sent before approval');
      const approved = await fetch(`${h.base}/admin/v1/approvals/${approvalId}/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ note: 'customer asked for erasure' }),
      });
      assert.equal(approved.status, 200, await approved.text());
      const [done, raced] = await Promise.all([client.callTool(call), client.callTool(call)]);
      const ok = [done, raced].filter((r) => r.isError !== true);
      assert.equal(ok.length, 1, JSON.stringify([done, raced]));
      assert.deepEqual(ok[0]?.structuredContent, { deleted: 'C-2001' });
      assert.equal(deletes(), 1);
      // Again: a new approval is needed, nothing more is sent.
      const again = await client.callTool(call);
      assert.equal(again.isError, true);
      assert.notEqual(meta(again).approvalId, approvalId);
      assert.equal(deletes(), 1);
      const trail = await h.broker.audit.entriesBy('approval_id', approvalId);
      // Both racing calls were decided (and audited); the approval was consumed once.
      assert.deepEqual(
        trail.map((e) => e.event.type).filter((t) => t !== 'decision'),
        ['approval.requested', 'approval.decided', 'approval.consumed'],
      );
      assert.ok(!JSON.stringify(await h.broker.audit.entriesBy('mandate_id', mandateId)).includes(SECRET));
    });

    it('lets the catalog override the action class of one tool', async () => {
      await h.broker.upstreams.registry.override('billing.exportAll', { actionClass: 'destructive' });
      try {
        const { client } = await open(['billing.exportAll']);
        const n = seen.length;
        const r = await client.callTool({ name: 'billing.exportAll', arguments: {} });
        assert.equal(r.isError, true);
        assert.match(String(meta(r).approvalId), /^apr_/);
        assert.equal(since(n).length, 0);
      } finally {
        await h.broker.upstreams.registry.override('billing.exportAll', { actionClass: null });
      }
    });

    it('sends a POST with its JSON body and declared header, and checks argument types before sending anything', async () => {
      const { client } = await open(['billing.createRefund']);
      const n = seen.length;
      const good = { customerId: 'C-1009', 'Idempotency-Key': 'k-1', body: { amountCents: 4900, reason: 'charged twice' } };
      const r = await client.callTool({ name: 'billing.createRefund', arguments: good });
      assert.equal(r.isError, undefined, text(r));
      assert.deepEqual(r.structuredContent, { customer: 'C-1009', refunded: 4900, key: 'k-1' });
      const [req] = since(n);
      assert.equal(req?.headers['content-type'], 'application/json');
      assert.equal(req?.body, '{"amountCents":4900,"reason":"charged twice"}');
      const hostile: [string, Record<string, unknown>][] = [
        ['amount as a string', { ...good, body: { ...good.body, amountCents: '4900' } }],
        ['amount as a float', { ...good, body: { ...good.body, amountCents: 49.5 } }],
        ['header as an object', { ...good, 'Idempotency-Key': { $ne: null } }],
        ['header as an array', { ...good, 'Idempotency-Key': ['k-1', 'k-2'] }],
        ['reason as a number', { ...good, body: { ...good.body, reason: 7 } }],
        ['body as a string', { ...good, body: '{"amountCents":1}' }],
        ['extra body field', { ...good, body: { ...good.body, currency: 'BTC' } }],
        ['missing header', { customerId: 'C-1009', body: good.body }],
        ['server URL in the arguments', { ...good, serverUrl: 'http://evil.test' }],
        ['url in the arguments', { ...good, url: 'http://evil.test/v1/customers/C-1/refunds' }],
        ['Host in the arguments', { ...good, Host: 'evil.test' }],
        ['Authorization in the arguments', { ...good, Authorization: 'Bearer agent-chosen' }],
        ['CRLF in a header', { ...good, 'Idempotency-Key': 'k\r\nAuthorization: Bearer x' }],
      ];
      for (const [what, args] of hostile) {
        const bad = await client.callTool({ name: 'billing.createRefund', arguments: args });
        assert.equal(bad.isError, true, what);
        assert.equal(meta(bad).code, 'RPC_UPSTREAM_ERROR', what);
        assert.match(text(bad), /nothing was sent/, what);
      }
      const extra = await client.callTool({ name: 'billing.createRefund', arguments: { ...good, serverUrl: 'http://evil.test' } });
      assert.match(text(extra), /"serverUrl" is not an argument of this tool; nothing was sent/);
      const typo = await client.callTool({
        name: 'billing.createRefund',
        arguments: { ...good, body: { ...good.body, amountCents: '1' } },
      });
      assert.match(text(typo), /argument body\.amountCents must be integer/);
      // An argument the org policy's schema types (customerId is a string there) is refused even earlier.
      const typed = await client.callTool({ name: 'billing.createRefund', arguments: { ...good, customerId: { $ne: null } } });
      assert.equal(meta(typed).code, 'RPC_CALL_DENIED');
      assert.equal(since(n).length, 1, 'only the good call reached the API');
    });

    it('keeps path traversal in one path segment and never reaches another path', async () => {
      const { client } = await open(['billing.get_files_name']);
      const n = seen.length;
      const r = await client.callTool({ name: 'billing.get_files_name', arguments: { name: '../admin' } });
      assert.equal(r.isError, undefined, text(r));
      assert.equal(text(r), 'file at /v1/files/..%2Fadmin');
      for (const name of ['..', '.', '']) {
        const bad = await client.callTool({ name: 'billing.get_files_name', arguments: { name } });
        assert.equal(bad.isError, true, name);
      }
      assert.deepEqual(
        since(n).map((s) => s.url),
        ['/v1/files/..%2Fadmin'],
      );
    });

    it('withholds an oversized response, answers a redirect without following it, and times out a slow API', async () => {
      const { client } = await open(['billing.exportAll', 'billing.moved', 'byurl.slow']);
      const big = await client.callTool({ name: 'billing.exportAll', arguments: {} });
      assert.equal(big.isError, true);
      assert.equal(meta(big).code, 'RPC_UPSTREAM_ERROR');
      assert.match(text(big), /more than 262144 bytes/);
      const moved = await client.callTool({ name: 'billing.moved', arguments: {} });
      assert.equal(moved.isError, true);
      assert.match(text(moved), /^HTTP 302/);
      assert.equal(elsewhereHits, 0);
      const slow = await client.callTool({ name: 'byurl.slow', arguments: {} });
      assert.equal(meta(slow).code, 'RPC_UPSTREAM_TIMEOUT');
    });

    it("injects a lease through the credential seam: each mandate's own token, never shown to the agent", async () => {
      const first = await open(['leased.getCustomer']);
      const r1 = await first.client.callTool({ name: 'leased.getCustomer', arguments: { customerId: 'C-1009' } });
      assert.equal(r1.isError, undefined, text(r1));
      assert.deepEqual(r1.structuredContent, { id: 'C-1009', mandate: first.mandateId });
      const second = await open(['leased.getCustomer']);
      const r2 = await second.client.callTool({ name: 'leased.getCustomer', arguments: { customerId: 'C-1009' } });
      assert.deepEqual(r2.structuredContent, { id: 'C-1009', mandate: second.mandateId });
      assert.equal(new Set(leasedTokens).size, 2, 'one token per mandate');
      const visible = JSON.stringify([
        r1,
        r2,
        await first.client.listTools(),
        await h.broker.audit.entriesBy('mandate_id', first.mandateId),
        await h.broker.audit.entriesBy('mandate_id', second.mandateId),
      ]);
      for (const token of leasedTokens) {
        assert.ok(!visible.includes(token));
        // Not even its signature (the part an audit HMAC or a truncated log line could keep).
        assert.ok(!visible.includes(token.split('.')[2] ?? 'x'));
      }
    });

    it('compiles a changed description before storing it, and keeps the old one when the new one is unusable', async () => {
      const reg = h.broker.upstreams.registry;
      await reg.create({ id: 'changing', transport: { type: 'openapi', description: { path: EXAMPLE }, serverUrl: `${apiBase}/v1` } });
      await assert.rejects(
        reg.update('changing', { transport: { type: 'openapi', description: { url: `${apiBase}/specs/remote-ref.json` } } }),
        { code: 'ERR_HTTP_API_DESCRIPTION' },
      );
      assert.equal((await reg.get('changing'))?.transport.type, 'openapi');
      assert.equal((await reg.tools('changing')).length, 7);
      const updated = await reg.update('changing', {
        transport: { type: 'openapi', description: { url: `${apiBase}/specs/billing.json` } },
      });
      assert.deepEqual(updated.transport, { type: 'openapi', description: { url: `${apiBase}/specs/billing.json` } });
      assert.equal((await reg.tools('changing')).length, 11);
      assert.equal((await reg.connection('changing')).httpApi?.api.operations.slow?.method, 'GET');
      await reg.delete('changing');
    });

    it('maps empty, mislabelled and failing responses without losing the status', async () => {
      const { client } = await open(['byurl.empty', 'byurl.broken', 'byurl.lying']);
      const empty = await client.callTool({ name: 'byurl.empty', arguments: {} });
      assert.equal(empty.isError, undefined, text(empty));
      assert.equal(text(empty), '');
      const broken = await client.callTool({ name: 'byurl.broken', arguments: {} });
      assert.equal(broken.isError, true);
      assert.equal(text(broken), 'HTTP 502 Bad Gateway: <html>Bad gateway</html>');
      assert.deepEqual(broken.structuredContent, { status: 502 });
      const lying = await client.callTool({ name: 'byurl.lying', arguments: {} });
      assert.equal(meta(lying).code, 'RPC_UPSTREAM_ERROR');
      assert.match(text(lying), /HTTP 200 as application\/json with a body that is not JSON/);
    });

    it('refuses unusable descriptions at registration and stores nothing', async () => {
      const reg = h.broker.upstreams.registry;
      const cases: [string, unknown, string, RegExp][] = [
        ['remote', { url: `${apiBase}/specs/remote-ref.json` }, 'ERR_HTTP_API_DESCRIPTION', /remote references are refused/],
        ['huge', { url: `${apiBase}/specs/huge.json` }, 'ERR_HTTP_API_DESCRIPTION', /10000 operations/],
        ['absent', { url: `${apiBase}/specs/absent.json` }, 'ERR_HTTP_API_DESCRIPTION', /HTTP 404/],
        ['badschema', { url: `${apiBase}/specs/bad-schema.json` }, 'ERR_HTTP_API_DESCRIPTION', /input schema of tool x cannot be used/],
        ['passwd', { path: '/etc/passwd' }, 'ERR_HTTP_API_FILE_NOT_ALLOWED', /descriptionDirs/],
        ['dotdot', { path: `${EXAMPLES_DIR}/../../package.json` }, 'ERR_HTTP_API_FILE_NOT_ALLOWED', /descriptionDirs/],
        ['symlink', { path: join(dir, 'escape.yaml') }, 'ERR_HTTP_API_FILE_NOT_ALLOWED', /descriptionDirs/],
        ['bigfile', { path: join(dir, 'padded.yaml') }, 'ERR_HTTP_API_DESCRIPTION', /larger than 1048576 bytes/],
        ['bigurl', { url: `${apiBase}/specs/padded.json` }, 'ERR_HTTP_API_DESCRIPTION', /larger than 1048576 bytes/],
        ['relative', { path: 'examples/openapi/billing.yaml' }, 'ERR_HTTP_API_DESCRIPTION', /absolute/],
      ];
      for (const [id, description, code, message] of cases) {
        await assert.rejects(
          reg.create({ id, transport: { type: 'openapi', description, serverUrl: `${apiBase}/v1` } as never }),
          (err: Error & { code?: string }) => {
            assert.equal(err.code, code, id);
            assert.match(err.message, message, id);
            assert.doesNotMatch(err.message, /root:/, id);
            return true;
          },
        );
        assert.equal(await reg.get(id), undefined, id);
      }
      const dialect = await reg.create({
        id: 'dialect',
        transport: { type: 'openapi', description: { url: `${apiBase}/specs/dialect.json` } },
      });
      assert.equal(dialect.discoveryError, undefined);
      assert.deepEqual((await reg.tools('dialect'))[0]?.inputSchema.properties, { q: { type: 'string' } });
      await reg.delete('dialect');
      await assert.rejects(
        reg.create({
          id: 'envcred',
          transport: { type: 'openapi', description: { path: EXAMPLE } },
          credential: { env: { API_KEY: 'x' } },
        }),
        { code: 'ERR_VALIDATION' },
      );
      // Over the admin API: the registry's code and status, no stack.
      const res = await fetch(`${h.base}/admin/v1/upstreams`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'passwd2', transport: { type: 'openapi', description: { path: '/etc/passwd' } } }),
      });
      assert.equal(res.status, 403);
      const body = await res.text();
      assert.match(body, /ERR_HTTP_API_FILE_NOT_ALLOWED/);
      assert.doesNotMatch(body, /root:|at .*\.ts/);
    });
  });
}
