// The external AuthZEN PDP engine (src/policy/authzen-engine.ts): decisions agree with cedar-wasm
// when the PDP is Mandate's own AuthZEN PDP serving the same policies (a second real broker over
// HTTP), and every way a PDP can fail or lie (down, slow, 5xx, garbage, type confusion, redirect,
// oversized) is a deny with a registry code. Hostile PDPs are plain node:http servers on loopback.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { createBroker } from '../../src/broker.js';
import { buildConfig } from '../../src/config/load.js';
import { isErrorCode } from '../../src/errors/index.js';
import { authorizeAny, authzenEngine, authzenEngineFromConfig, type ExternalPdpEngine } from '../../src/policy/authzen-engine.js';
import { BudgetCounter } from '../../src/policy/budgets.js';
import { wasmEngine } from '../../src/policy/cedar/engine.js';
import { DecisionService } from '../../src/policy/decisions.js';
import type { EngineRequest, EntityJson, LoadedPolicySet, PolicyFile } from '../../src/policy/engine.js';
import { DEMO_POLICY_DIR, SHIPPED_SCHEMA } from '../../src/policy/source.js';
import { PolicyStore } from '../../src/policy/store.js';
import type { DecisionInput } from '../../src/policy/types.js';
import type { Store } from '../../src/store/types.js';
import { CA_EXTENSIONS, TestPki } from '../helpers/pki.js';
import { sqliteFactory } from '../helpers/stores.js';
import { type RunningPdp, startExample } from './authzen-server.js';
import {
  POLICIES as CONFORMANCE_POLICIES,
  SCHEMA as CONFORMANCE_SCHEMA,
  entities as conformanceEntities,
  engineConformance,
} from './engine-conformance.test.js';
import { agent, mandate, NOW, tool } from './fixtures.js';

const EXAMPLE = 'examples/authzen-certification';
const schema: PolicyFile = { path: 'records.cedarschema', text: readFileSync(`${EXAMPLE}/records.cedarschema`, 'utf8') };
const files: PolicyFile[] = [{ path: 'records.cedar', text: readFileSync(`${EXAMPLE}/policies/records.cedar`, 'utf8') }];
const entities: EntityJson[] = JSON.parse(readFileSync(`${EXAMPLE}/entities.json`, 'utf8'));
const entityOf = (type: string, id: string) =>
  entities.find((e) => {
    const u = '__entity' in e.uid ? e.uid.__entity : e.uid;
    return u.type === type && u.id === id;
  }) as EntityJson;

/** A Cedar request of the certification scenario, with the principal and resource entities. */
function recordsRequest(user: string, action: string, record: string, soft?: unknown): EngineRequest {
  return {
    principal: { type: 'Records::user', id: user },
    action: { type: 'Records::Action', id: action },
    resource: { type: 'Records::record', id: record },
    context: soft === undefined ? {} : { action: { soft } as never },
    entities: [entityOf('Records::user', user), entityOf('Records::record', record)],
  };
}

const loaded = (engine: { load: typeof wasmEngine.load }): LoadedPolicySet => {
  const r = engine.load(schema, files);
  assert.ok(r.ok, JSON.stringify(r));
  return r.set;
};

/** A loopback HTTP server answering every request with `handler`; counts requests and keeps the last. */
async function fakePdp(handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void) {
  const seen: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      seen.push({ headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/access/v1/evaluation`;
  return {
    url,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const json = (status: number, body: unknown) => (_req: http.IncomingMessage, res: http.ServerResponse) => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json' }).end(text);
};

const ALLOW = recordsRequest('alice', 'read', 'record-1');

describe('AuthZEN engine against Mandate’s own AuthZEN PDP (same policies)', () => {
  let pdp: RunningPdp;
  let engine: ExternalPdpEngine;
  const TOKEN = 'pdp-bootstrap-token-0123456789abcdef0123456789';
  before(async () => {
    // The PDP requires a bearer token with the pdp/admin role (the bootstrap token is admin).
    pdp = await startExample(
      `${EXAMPLE}/config.yaml`,
      { policy: { ...readPolicy(), authzen: { auth: 'bearer', namespace: 'Records', types: {} } } },
      {
        MANDATE_BOOTSTRAP_TOKEN: TOKEN,
      },
    );
    engine = authzenEngine({ url: `${pdp.url}/access/v1/evaluation`, timeoutMs: 5_000, namespace: 'Records', types: {}, token: TOKEN });
  });
  after(async () => {
    engine?.close();
    await pdp?.close();
  });

  it('loads the same set as cedar-wasm (version, policy ids), and names itself', () => {
    const ours = loaded(engine);
    const reference = loaded(wasmEngine);
    assert.equal(ours.engine, 'authzen');
    assert.equal(ours.version, reference.version);
    assert.deepEqual(
      ours.policies.map((p) => p.id),
      reference.policies.map((p) => p.id),
    );
  });

  it('agrees with cedar-wasm on every user × action × record × soft of the scenario', async () => {
    const ours = loaded(engine);
    const reference = loaded(wasmEngine);
    const disagreements: string[] = [];
    let allows = 0;
    let n = 0;
    for (const user of ['alice', 'bob']) {
      for (const record of ['record-1', 'record-2']) {
        for (const [action, soft] of [['read'], ['write'], ['delete', true], ['delete', false], ['delete']] as [string, boolean?][]) {
          const request = recordsRequest(user, action, record, soft);
          const expected = reference.authorize(request);
          const got = await authorizeAny(ours, request);
          n++;
          if (got.decision === 'allow') allows++;
          if (got.decision !== expected.decision || got.errors.length > 0) {
            disagreements.push(JSON.stringify({ user, action, record, soft, expected: expected.decision, got }));
          }
        }
      }
    }
    assert.deepEqual(disagreements, []);
    assert.equal(n, 20);
    // Both outcomes occur, so agreement is not a constant answer.
    assert.ok(allows > 0 && allows < n, `allows: ${allows}`);
  });

  it('sends subject/action/resource with the entities’ attributes as properties, and the context', () => {
    const sent = engine.toAuthzen(recordsRequest('bob', 'delete', 'record-2', true));
    assert.deepEqual(sent, {
      subject: { type: 'user', id: 'bob', properties: { role: 'admin' } },
      action: { name: 'delete' },
      resource: {
        type: 'record',
        id: 'record-2',
        properties: { status: 'archived', owner: { __entity: { type: 'Records::user', id: 'alice' } } },
      },
      context: { action: { soft: true } },
    });
  });

  it('without the bearer token the PDP refuses (401) and the decision is a deny', async () => {
    const anonymous = authzenEngine({ url: `${pdp.url}/access/v1/evaluation`, timeoutMs: 5_000, namespace: 'Records', types: {} });
    try {
      const a = await anonymous.ask(ALLOW);
      assert.equal(a.decision, 'deny');
      assert.equal(a.code, 'ERR_PDP_BAD_RESPONSE');
      assert.match(a.errors[0] as string, /HTTP 401/);
    } finally {
      anonymous.close();
    }
  });

  it('the synchronous authorize of an external set fails closed', () => {
    const a = loaded(engine).authorize(ALLOW);
    assert.equal(a.decision, 'deny');
    assert.match(a.errors[0] as string, /^ERR_PDP_UNAVAILABLE: /);
  });
});

function readPolicy() {
  return { dir: './policies', schema: './records.cedarschema', entities: './entities.json' };
}

describe('AuthZEN engine: every PDP failure is a deny with a registry code', () => {
  const cases: { name: string; handler: Parameters<typeof fakePdp>[0]; code: string; message: RegExp }[] = [
    { name: 'HTTP 500', handler: json(500, { decision: true }), code: 'ERR_PDP_BAD_RESPONSE', message: /HTTP 500/ },
    { name: 'HTTP 403 with decision true', handler: json(403, { decision: true }), code: 'ERR_PDP_BAD_RESPONSE', message: /HTTP 403/ },
    { name: 'garbage instead of JSON', handler: json(200, '{"decision": tru'), code: 'ERR_PDP_BAD_RESPONSE', message: /not JSON/ },
    {
      name: 'decision "true" (a string)',
      handler: json(200, { decision: 'true' }),
      code: 'ERR_PDP_BAD_RESPONSE',
      message: /string "true"/,
    },
    { name: 'decision 1', handler: json(200, { decision: 1 }), code: 'ERR_PDP_BAD_RESPONSE', message: /a number/ },
    { name: 'decision missing', handler: json(200, { allowed: true }), code: 'ERR_PDP_BAD_RESPONSE', message: /missing/ },
    {
      name: 'decision only on __proto__',
      handler: json(200, '{"__proto__": {"decision": true}}'),
      code: 'ERR_PDP_BAD_RESPONSE',
      message: /missing/,
    },
    {
      name: 'decision in context only',
      handler: json(200, { context: { decision: true } }),
      code: 'ERR_PDP_BAD_RESPONSE',
      message: /missing/,
    },
    { name: 'a JSON array', handler: json(200, [{ decision: true }]), code: 'ERR_PDP_BAD_RESPONSE', message: /not a JSON object/ },
    { name: 'JSON null', handler: json(200, 'null'), code: 'ERR_PDP_BAD_RESPONSE', message: /not a JSON object/ },
    {
      name: 'an oversized answer',
      handler: json(200, { decision: true, context: { padding: 'x'.repeat(100_000) } }),
      code: 'ERR_PDP_BAD_RESPONSE',
      message: /larger than/,
    },
    {
      name: 'an oversized answer without content-length',
      handler: (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"decision":true,"pad":"');
        res.end(`${'x'.repeat(100_000)}"}`);
      },
      code: 'ERR_PDP_BAD_RESPONSE',
      message: /larger than/,
    },
  ];
  for (const c of cases) {
    it(`${c.name} → deny, ${c.code}`, async () => {
      const server = await fakePdp(c.handler);
      const engine = authzenEngine({ url: server.url, timeoutMs: 2_000 });
      try {
        const a = await engine.ask(ALLOW);
        assert.equal(a.decision, 'deny');
        assert.equal(a.code, c.code);
        assert.ok(isErrorCode(c.code));
        assert.match(a.errors[0] as string, new RegExp(`^${c.code}: `));
        assert.match(a.errors[0] as string, c.message);
        assert.equal(server.seen.length, 1);
      } finally {
        engine.close();
        await server.close();
      }
    });
  }

  it('a well-formed allow from the same kind of server is an allow (the harness is not always-deny)', async () => {
    const server = await fakePdp(json(200, { decision: true, context: { id: 'x' } }));
    const engine = authzenEngine({ url: server.url, timeoutMs: 2_000 });
    try {
      const a = await engine.ask(ALLOW);
      assert.deepEqual(a, { decision: 'allow', policies: [], erroring: [], errors: [] });
      assert.equal(server.seen[0]?.headers['content-type'], 'application/json');
      assert.equal(server.seen[0]?.headers.authorization, undefined);
      assert.match(String(server.seen[0]?.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    } finally {
      engine.close();
      await server.close();
    }
  });

  it('a redirect is not followed: deny, even when the target would allow', async () => {
    const target = await fakePdp(json(200, { decision: true }));
    const redirect = await fakePdp((_q, res) => res.writeHead(307, { location: target.url }).end());
    const engine = authzenEngine({ url: redirect.url, timeoutMs: 2_000 });
    try {
      const a = await engine.ask(ALLOW);
      assert.equal(a.decision, 'deny');
      assert.equal(a.code, 'ERR_PDP_BAD_RESPONSE');
      assert.match(a.errors[0] as string, /HTTP 307.*redirects are not followed/);
      assert.equal(target.seen.length, 0);
    } finally {
      engine.close();
      await redirect.close();
      await target.close();
    }
  });

  it('a PDP that is down → deny, ERR_PDP_UNAVAILABLE', async () => {
    const server = await fakePdp(json(200, { decision: true }));
    const url = server.url;
    await server.close();
    const engine = authzenEngine({ url, timeoutMs: 2_000 });
    try {
      const a = await engine.ask(ALLOW);
      assert.equal(a.decision, 'deny');
      assert.equal(a.code, 'ERR_PDP_UNAVAILABLE');
      assert.match(a.errors[0] as string, /ECONNREFUSED/);
    } finally {
      engine.close();
    }
  });

  it('a PDP that closes the connection without answering → deny, ERR_PDP_UNAVAILABLE', async () => {
    const server = await fakePdp((req) => req.socket.destroy());
    const engine = authzenEngine({ url: server.url, timeoutMs: 2_000 });
    try {
      const a = await engine.ask(ALLOW);
      assert.equal(a.decision, 'deny');
      assert.equal(a.code, 'ERR_PDP_UNAVAILABLE');
    } finally {
      engine.close();
      await server.close();
    }
  });

  it('a PDP that drops the connection mid-answer → deny at once, ERR_PDP_UNAVAILABLE', async () => {
    const server = await fakePdp((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"decision": true');
      setTimeout(() => req.socket.destroy(), 20).unref();
    });
    const engine = authzenEngine({ url: server.url, timeoutMs: 3_000 });
    try {
      const started = performance.now();
      const a = await engine.ask(ALLOW);
      assert.equal(a.decision, 'deny');
      assert.equal(a.code, 'ERR_PDP_UNAVAILABLE');
      assert.ok(performance.now() - started < 2_500);
    } finally {
      engine.close();
      await server.close();
    }
  });

  it('a slow PDP → deny at the timeout, ERR_PDP_TIMEOUT, not when it finally answers', async () => {
    const server = await fakePdp((_q, res) => {
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"decision":true}'), 1_500).unref();
    });
    const engine = authzenEngine({ url: server.url, timeoutMs: 150 });
    try {
      const started = performance.now();
      const a = await engine.ask(ALLOW);
      const took = performance.now() - started;
      assert.equal(a.decision, 'deny');
      assert.equal(a.code, 'ERR_PDP_TIMEOUT');
      assert.match(a.errors[0] as string, /150 ms/);
      assert.ok(took >= 140 && took < 1_200, `took ${took} ms`);
    } finally {
      engine.close();
      await server.close();
    }
  });

  it('a PDP that sends headers then stalls the body → deny at the timeout', async () => {
    const server = await fakePdp((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"decision":');
    });
    const engine = authzenEngine({ url: server.url, timeoutMs: 150 });
    try {
      const a = await engine.ask(ALLOW);
      assert.equal(a.decision, 'deny');
      assert.equal(a.code, 'ERR_PDP_TIMEOUT');
    } finally {
      engine.close();
      await server.close();
    }
  });
});

describe('AuthZEN engine: cache and credentials', () => {
  it('caches decisions for cacheTtlMs (fake clock), never failures; off by default', async () => {
    let answer: { status: number; body: unknown } = { status: 200, body: { decision: true } };
    const server = await fakePdp((q, res) => json(answer.status, answer.body)(q, res));
    let clock = 1_000_000;
    const cached = authzenEngine({ url: server.url, timeoutMs: 2_000, cacheTtlMs: 1_000, now: () => clock });
    const uncached = authzenEngine({ url: server.url, timeoutMs: 2_000, now: () => clock });
    try {
      assert.equal((await cached.ask(ALLOW)).decision, 'allow');
      answer = { status: 200, body: { decision: false } };
      // Within the TTL the cached allow is reused: the PDP is not asked again.
      clock += 999;
      assert.equal((await cached.ask(ALLOW)).decision, 'allow');
      assert.equal(server.seen.length, 1);
      // Another request is another key.
      assert.equal((await cached.ask(recordsRequest('bob', 'read', 'record-1'))).decision, 'deny');
      assert.equal(server.seen.length, 2);
      // After the TTL the PDP's new answer counts.
      clock += 2;
      assert.equal((await cached.ask(ALLOW)).decision, 'deny');
      assert.equal(server.seen.length, 3);
      // Failures are not cached.
      answer = { status: 500, body: {} };
      clock += 2_000;
      assert.equal((await cached.ask(ALLOW)).code, 'ERR_PDP_BAD_RESPONSE');
      answer = { status: 200, body: { decision: true } };
      assert.equal((await cached.ask(ALLOW)).decision, 'allow');
      assert.equal(server.seen.length, 5);
      // Default: every decision asks the PDP.
      await uncached.ask(ALLOW);
      await uncached.ask(ALLOW);
      assert.equal(server.seen.length, 7);
    } finally {
      cached.close();
      uncached.close();
      await server.close();
    }
  });

  it('from config: the bearer token comes from MANDATE_PDP_TOKEN, else the token file; a missing url is a config error', async () => {
    const server = await fakePdp(json(200, { decision: true }));
    const pki = new TestPki();
    const tokenFile = pki.file('pdp-token');
    writeFileSync(tokenFile, 'from-the-file\n');
    const base = {
      url: server.url,
      timeoutMs: 2_000,
      cacheTtlMs: 0,
      cacheMaxEntries: 10,
      namespace: 'Mandate',
      types: {},
      tokenFile,
      tls: undefined,
    };
    const config = (pdpToken: string | undefined, externalPdp: object = base) =>
      ({ policy: { externalPdp }, secrets: { pdpToken } }) as unknown as Parameters<typeof authzenEngineFromConfig>[0];
    try {
      const fromEnv = authzenEngineFromConfig(config('from-the-env'));
      await fromEnv.ask(ALLOW);
      fromEnv.close();
      const fromFile = authzenEngineFromConfig(config(undefined));
      await fromFile.ask(ALLOW);
      fromFile.close();
      assert.deepEqual(
        server.seen.map((s) => s.headers.authorization),
        ['Bearer from-the-env', 'Bearer from-the-file'],
      );
      assert.throws(() => authzenEngineFromConfig(config(undefined, { ...base, url: undefined })), { code: 'ERR_CONFIG_INVALID' });
      assert.throws(() => authzenEngineFromConfig(config(undefined, { ...base, tokenFile: pki.file('absent') })), {
        code: 'ERR_CONFIG_INVALID',
      });
      assert.throws(() => authzenEngineFromConfig(config('two words')), { code: 'ERR_CONFIG_INVALID' });
    } finally {
      pki.cleanup();
      await server.close();
    }
  });

  it('mTLS: the PDP sees the client certificate; without it the handshake fails and the decision is a deny', async () => {
    const pki = new TestPki();
    pki.selfSigned('ca', CA_EXTENSIONS);
    pki.issue('server', 'ca', 'basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\n');
    pki.issue('client', 'ca', 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n');
    const read = (n: string) => readFileSync(pki.file(n));
    const server = https.createServer(
      { cert: read('server.pem'), key: read('server.key'), ca: read('ca.pem'), requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ decision: peer.subject?.CN === 'client' }));
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/access/v1/evaluation`;
    const withCert = authzenEngine({
      url,
      timeoutMs: 3_000,
      tls: { ca: read('ca.pem'), cert: read('client.pem'), key: read('client.key') },
    });
    const withoutCert = authzenEngine({ url, timeoutMs: 3_000, tls: { ca: read('ca.pem') } });
    const untrusted = authzenEngine({ url, timeoutMs: 3_000 });
    try {
      assert.equal((await withCert.ask(ALLOW)).decision, 'allow');
      const refused = await withoutCert.ask(ALLOW);
      assert.equal(refused.decision, 'deny');
      assert.equal(refused.code, 'ERR_PDP_UNAVAILABLE');
      // The server's certificate is not trusted without the configured CA.
      const unknownCa = await untrusted.ask(ALLOW);
      assert.equal(unknownCa.decision, 'deny');
      assert.equal(unknownCa.code, 'ERR_PDP_UNAVAILABLE');
    } finally {
      withCert.close();
      withoutCert.close();
      untrusted.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      pki.cleanup();
    }
  });

  it('refuses a PDP URL that is not http(s), or that carries credentials', () => {
    assert.throws(() => authzenEngine({ url: 'file:///etc/passwd', timeoutMs: 100 }), /http\(s\)/);
    assert.throws(() => authzenEngine({ url: 'https://svc:hunter2@pdp.example.org/access/v1/evaluation', timeoutMs: 100 }), /credentials/);
    assert.throws(
      () => buildConfig({ policy: { externalPdp: { url: 'https://svc:hunter2@pdp.example.org/access/v1/evaluation' } } }, { env: {} }),
      { code: 'ERR_CONFIG_INVALID' },
    );
    assert.equal(
      buildConfig({ policy: { externalPdp: { url: 'https://pdp.example.org/a@b' } } }, { env: {} }).policy.externalPdp.url,
      'https://pdp.example.org/a@b',
    );
  });
});

describe('DecisionService with the AuthZEN engine (a Mandate PDP serving the demo policies)', () => {
  let pdp: RunningPdp;
  let engine: ExternalPdpEngine;
  let external: DecisionService;
  let reference: DecisionService;
  const factory = sqliteFactory();
  let store: Store;
  const service = async (options: { engine?: ExternalPdpEngine }) => {
    const policies = new PolicyStore({ dir: DEMO_POLICY_DIR, schemaPath: SHIPPED_SCHEMA, now: () => NOW, ...options });
    const report = await policies.load();
    assert.ok(report.ok, JSON.stringify(report));
    return new DecisionService({
      policies,
      budgets: new BudgetCounter(store),
      clock: { now: () => NOW },
      approverRoles: ['support-lead', 'finance', 'admin'],
    });
  };
  const call = (name: string, args: Record<string, unknown>, over: Partial<DecisionInput> = {}): DecisionInput => {
    const m = mandate();
    return { mandate: m, chain: [m], agent, tool: tool(name), args, now: NOW, ...over };
  };

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-pdp-demo-'));
    writeFileSync(join(dir, 'config.yaml'), 'mode: demo\nlog:\n  level: warn\npolicy:\n  authzen:\n    auth: "off"\n    audit: false\n');
    pdp = await startExample(join(dir, 'config.yaml'));
    store = await factory.open();
    engine = authzenEngine({ url: `${pdp.url}/access/v1/evaluation`, timeoutMs: 5_000 });
    external = await service({ engine });
    reference = await service({});
  });
  after(async () => {
    engine?.close();
    await pdp?.close();
    await factory.cleanup();
  });

  it('decides tool calls as cedar-wasm does; approval_required is never derived from the PDP (a deny)', async () => {
    const m = () => mandate();
    const inputs: DecisionInput[] = [
      call('helpdesk.get_customer', { customerId: 'C-1009' }),
      call('helpdesk.search_tickets', { query: 'refund' }),
      call('helpdesk.search_tickets', {}, { riskScore: 95 }),
      call('helpdesk.search_tickets', {}, { agent: { ...agent, environment: 'sandbox' } }),
      call('helpdesk.execute_refund', { customerId: 'C-1009', amountCents: 5000 }),
      call('helpdesk.delete_customer', { customerId: 'C-1009' }),
      call('helpdesk.delete_customer', { customerId: 'C-1009' }, { approval: { id: 'ap', approverId: 'alice', approverRole: 'admin' } }),
      call('helpdesk.delete_customer', { customerId: 'C-1009' }, { approval: { id: 'ap', approverId: 'dana', approverRole: 'admin' } }),
      call('helpdesk.delete_customer', { customerId: 'C-1009' }, { agent: { ...agent, status: 'quarantined' } }),
      (() => {
        const s = m();
        const sandbox = { ...s, environment: 'sandbox' };
        return call(
          'helpdesk.execute_refund',
          { customerId: 'C-1009', amountCents: 500 },
          { mandate: sandbox, chain: [sandbox], agent: { ...agent, environment: 'sandbox' } },
        );
      })(),
    ];
    const outcomes: string[] = [];
    for (const input of inputs) {
      const want = (await reference.evaluate(input)).decision;
      const got = await external.decide(input);
      const expected = want.outcome === 'approval_required' ? 'deny' : want.outcome;
      assert.equal(got.outcome, expected, JSON.stringify({ tool: input.tool.name, want, got }));
      assert.equal(got.errors, undefined, JSON.stringify(got));
      assert.deepEqual(got.policies, []);
      outcomes.push(want.outcome);
    }
    // The corpus covers every outcome the reference gives.
    assert.deepEqual([...new Set(outcomes)].sort(), ['allow', 'approval_required', 'deny']);
  });

  it('a call outside the mandate is denied before the PDP is asked; a PDP failure is a deny with its code', async () => {
    const server = await fakePdp(json(200, { decision: true }));
    const counted = authzenEngine({ url: server.url, timeoutMs: 2_000 });
    const down = authzenEngine({ url: 'http://127.0.0.1:9/access/v1/evaluation', timeoutMs: 2_000 });
    try {
      const viaCounted = await service({ engine: counted });
      const outside = await viaCounted.decide(call('helpdesk.get_customer', { customerId: 'C-2000' }));
      assert.equal(outside.outcome, 'deny');
      assert.equal(server.seen.length, 0);
      const inside = await viaCounted.decide(call('helpdesk.get_customer', { customerId: 'C-1009' }));
      assert.equal(inside.outcome, 'allow');
      assert.equal(server.seen.length, 1);
      assert.equal(JSON.parse(server.seen[0]?.body as string).resource.id, 'helpdesk.get_customer');

      const viaDown = await service({ engine: down });
      const d = await viaDown.decide(call('helpdesk.get_customer', { customerId: 'C-1009' }));
      assert.equal(d.outcome, 'deny');
      assert.match(d.errors?.join(' ') ?? '', /^ERR_PDP_UNAVAILABLE: /);
      assert.match(d.reasons.join(' '), /org policy could not be evaluated/);
      // The synchronous evaluate (explain, dry runs) fails closed with an external engine.
      const explained = viaCounted.evaluate(call('helpdesk.get_customer', { customerId: 'C-1009' })).decision;
      assert.equal(explained.outcome, 'deny');
      assert.match(explained.errors?.join(' ') ?? '', /asynchronously/);
    } finally {
      counted.close();
      down.close();
      await server.close();
    }
  });
});

describe('policy.engine: authzen selects the external PDP', () => {
  it('a broker configured with it decides org policy through the PDP, and refuses to start without a URL', async () => {
    let decision = true;
    const server = await fakePdp((q, res) => json(200, { decision })(q, res));
    const dataDir = mkdtempSync(join(tmpdir(), 'mandate-authzen-engine-'));
    const config = (externalPdp: object) =>
      buildConfig(
        { mode: 'demo', dataDir, log: { level: 'silent' }, policy: { engine: 'authzen', externalPdp } },
        { env: { MANDATE_PDP_TOKEN: 'tok-123' } },
      );
    const broker = await createBroker(config({ url: server.url, timeoutMs: 1_000 }));
    try {
      assert.equal(broker.policies.current?.set.engine, 'authzen');
      const m = mandate();
      const input: DecisionInput = {
        mandate: m,
        chain: [m],
        agent,
        tool: tool('helpdesk.get_customer'),
        args: { customerId: 'C-1009' },
        now: NOW,
      };
      assert.equal((await broker.decisions.decide(input)).outcome, 'allow');
      decision = false;
      assert.equal((await broker.decisions.decide(input)).outcome, 'deny');
      assert.equal(server.seen.length, 2);
      assert.equal(server.seen[0]?.headers.authorization, 'Bearer tok-123');
    } finally {
      await broker.close();
      await server.close();
    }
    await assert.rejects(createBroker(config({ timeoutMs: 1_000 })), { code: 'ERR_CONFIG_INVALID' });
    rmSync(dataDir, { recursive: true, force: true });
  });
});

describe('docs/policies.md § External PDPs', () => {
  it('its configuration example is a valid configuration selecting the authzen engine', () => {
    const text = readFileSync('docs/policies.md', 'utf8');
    const section = text.slice(text.indexOf('## 8. External PDPs'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] as string;
    const config = buildConfig({ mode: 'demo', ...parseYaml(yaml) }, { env: {}, cwd: '/etc/mandate' });
    assert.equal(config.policy.engine, 'authzen');
    assert.equal(config.policy.externalPdp.url, 'https://pdp.example.org/access/v1/evaluation');
    assert.equal(config.policy.externalPdp.cacheTtlMs, 0);
    assert.equal(config.policy.externalPdp.tls?.certFile, '/etc/mandate/mandate.pem');
  });
});

/** A Mandate AuthZEN PDP (auth off, audit off) serving `schema`, `policies` and `entities` in namespace `ns`. */
async function mandatePdp(ns: string, schemaText: string, policies: string, entityList: unknown[]): Promise<RunningPdp> {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-pdp-'));
  mkdirSync(join(dir, 'policies'));
  writeFileSync(join(dir, 'schema.cedarschema'), schemaText);
  writeFileSync(join(dir, 'policies', 'set.cedar'), policies);
  writeFileSync(join(dir, 'entities.json'), JSON.stringify(entityList));
  writeFileSync(
    join(dir, 'config.yaml'),
    `mode: demo\nlog:\n  level: warn\npolicy:\n  dir: ./policies\n  schema: ./schema.cedarschema\n  entities: ./entities.json\n  authzen:\n    auth: "off"\n    audit: false\n    namespace: ${ns}\n    types: {}\n`,
  );
  return startExample(join(dir, 'config.yaml'));
}

describe('extension values through a Mandate PDP', () => {
  const SCHEMA_TEXT = `namespace Net {
  entity Host = { minScore: decimal };
  entity Svc;
  action connect appliesTo { principal: [Host], resource: [Svc], context: { ip: ipaddr, score: decimal } };
}`;
  const POLICY = `@id("internal-and-good")
permit (principal, action == Net::Action::"connect", resource)
when { context.ip.isInRange(ip("10.0.0.0/8")) && context.score.greaterThanOrEqual(principal.minScore) };`;
  let pdp: RunningPdp;
  let engine: ExternalPdpEngine;
  before(async () => {
    pdp = await mandatePdp('Net', SCHEMA_TEXT, POLICY, [
      { uid: { type: 'Net::Host', id: 'h1' }, attrs: { minScore: { __extn: { fn: 'decimal', arg: '0.5' } } }, parents: [] },
    ]);
    engine = authzenEngine({ url: `${pdp.url}/access/v1/evaluation`, timeoutMs: 5_000, namespace: 'Net', types: {} });
  });
  after(async () => {
    engine?.close();
    await pdp?.close();
  });

  it('an AuthZEN client sends literals as strings; the engine sends Cedar JSON; both decide like cedar-wasm', async () => {
    const ask = (ip: string, score: string) =>
      pdp.post('/access/v1/evaluation', {
        subject: { type: 'Host', id: 'h1' },
        action: { name: 'connect' },
        resource: { type: 'Svc', id: 's' },
        context: { ip, score },
      });
    assert.equal((await ask('10.1.2.3', '0.75')).body.decision, true);
    assert.equal((await ask('192.168.1.1', '0.75')).body.decision, false);
    assert.equal((await ask('10.1.2.3', '0.25')).body.decision, false);
    assert.equal((await ask('not-an-ip', '0.75')).body.decision, false);

    const local = wasmEngine.load({ path: 's', text: SCHEMA_TEXT }, [{ path: 'p.cedar', text: POLICY }]);
    assert.ok(local.ok);
    const r = (ip: string, score: string): EngineRequest => ({
      principal: { type: 'Net::Host', id: 'h1' },
      action: { type: 'Net::Action', id: 'connect' },
      resource: { type: 'Net::Svc', id: 's' },
      context: { ip: { __extn: { fn: 'ip', arg: ip } }, score: { __extn: { fn: 'decimal', arg: score } } },
      entities: [{ uid: { type: 'Net::Host', id: 'h1' }, attrs: { minScore: { __extn: { fn: 'decimal', arg: '0.5' } } }, parents: [] }],
    });
    for (const [ip, score] of [
      ['10.1.2.3', '0.75'],
      ['192.168.1.1', '0.75'],
      ['10.1.2.3', '0.25'],
    ] as const) {
      const want = local.set.authorize(r(ip, score));
      const got = await engine.ask(r(ip, score));
      assert.equal(got.decision, want.decision, `${ip} ${score}`);
      assert.deepEqual(got.errors, []);
    }
  });
});

// The one PolicyEngine conformance suite, held to decisions (AuthZEN answers carry nothing else),
// against a Mandate PDP serving the suite's schema and policies. Its entities file holds the users
// and groups (the hierarchy: AuthZEN sends no parents); documents come as request properties, as
// the suite varies them per request. The PDP starts before the suite is declared.
const conformancePdp = await mandatePdp(
  'Docs',
  CONFORMANCE_SCHEMA.text,
  CONFORMANCE_POLICIES,
  conformanceEntities.filter((e) => e.uid.type !== 'Docs::Doc'),
);
const conformanceEngine = authzenEngine({
  url: `${conformancePdp.url}/access/v1/evaluation`,
  timeoutMs: 5_000,
  namespace: 'Docs',
  types: {},
});
after(async () => {
  conformanceEngine.close();
  await conformancePdp.close();
});
engineConformance('authzen (a Mandate PDP over HTTP)', () => conformanceEngine, { decisionsOnly: true });
