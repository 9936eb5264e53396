// The raw JSON-RPC upstream client against real MCP servers, both protocol eras × both transports:
// SDK 2.x (`@modelcontextprotocol/server`, dual-era, serves 2026-07-28 statelessly) and SDK 1.x
// (legacy 2025-11-25, sessions on HTTP). Era detection, credentials, cancellation that reaches the
// server, a process dying mid-call, legacy session loss.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { UpstreamCredential } from '../../src/secrets/upstream-credentials.js';
import { connectUpstream } from '../../src/upstreams/connect.js';
import { UpstreamCallError, type UpstreamClient } from '../../src/upstreams/mcp-client/index.js';
import type { UpstreamTransport } from '../../src/upstreams/upstream.js';
import { cancelledRequests, SDK1_SERVER_PATH, type Sdk1Http, startSdk1Http } from './fixtures/sdk1-server.js';
import { SDK2_SERVER_PATH, type Sdk2Http, startSdk2Http } from './fixtures/sdk2-server.js';

const stdio = (path: string, ...extra: string[]): UpstreamTransport => ({
  type: 'stdio',
  command: process.execPath,
  args: ['--import', 'tsx', path, ...extra],
  env: { FIXTURE_PLAIN: 'plain-value' },
});

const text = (r: Record<string, unknown>): string => ((r.content as { text?: string }[])[0]?.text ?? '') as string;
const call = (c: UpstreamClient, name: string, args: Record<string, unknown> = {}, timeoutMs = 5000, signal?: AbortSignal) =>
  c.request('tools/call', { name, arguments: args }, signal === undefined ? { timeoutMs } : { timeoutMs, signal });

async function rejects(p: Promise<unknown>, kind: UpstreamCallError['kind'], message?: RegExp): Promise<UpstreamCallError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof UpstreamCallError, `expected UpstreamCallError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return err;
  }
  assert.fail('expected a rejection');
}

const until = async (cond: () => boolean | Promise<boolean>, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

let sdk2: Sdk2Http;
let sdk1: Sdk1Http;
before(async () => {
  // A secret of the gateway's own environment: no stdio upstream may see it.
  process.env.MANDATE_TEST_LEAK = 'gateway-secret';
  sdk2 = await startSdk2Http();
  sdk1 = await startSdk1Http();
});
after(async () => {
  await sdk2.close();
  await sdk1.close();
});

interface Case {
  readonly name: string;
  readonly era: 'modern' | 'legacy';
  readonly transport: () => UpstreamTransport;
  readonly credential: UpstreamCredential;
  /** Cancelled request ids the server saw (stdio: asked via a tool; HTTP: the in-process list). */
  readonly cancelled: (c: UpstreamClient) => Promise<string[]>;
}

const viaTool = async (c: UpstreamClient): Promise<string[]> => JSON.parse(text(await call(c, 'cancelled'))) as string[];
const inProcess = async (): Promise<string[]> => [...cancelledRequests];

const cases: Case[] = [
  {
    name: 'modern stdio (SDK 2.x)',
    era: 'modern',
    transport: () => stdio(SDK2_SERVER_PATH),
    credential: { env: { UPSTREAM_KEY: 's3cret-env' } },
    cancelled: viaTool,
  },
  {
    name: 'legacy stdio (SDK 1.x)',
    era: 'legacy',
    transport: () => stdio(SDK1_SERVER_PATH),
    credential: { env: { UPSTREAM_KEY: 's3cret-env' } },
    cancelled: viaTool,
  },
  {
    name: 'modern HTTP (SDK 2.x)',
    era: 'modern',
    transport: () => ({ type: 'http', url: sdk2.url }),
    credential: { headers: { Authorization: 'Bearer s3cret-header', 'X-Api-Key': 'k1' } },
    cancelled: inProcess,
  },
  {
    name: 'legacy HTTP with sessions (SDK 1.x)',
    era: 'legacy',
    transport: () => ({ type: 'http', url: sdk1.url }),
    credential: { headers: { Authorization: 'Bearer s3cret-header', 'X-Api-Key': 'k1' } },
    cancelled: inProcess,
  },
];

for (const k of cases) {
  describe(`upstream client: ${k.name}`, () => {
    let client: UpstreamClient;
    before(async () => {
      client = await connectUpstream({ transport: k.transport(), credential: k.credential, timeoutMs: 15_000 });
    });
    after(async () => {
      await client.close();
    });

    it('detects the era and negotiates its protocol version', async () => {
      assert.equal(client.era, k.era);
      assert.equal(client.protocolVersion, k.era === 'modern' ? '2026-07-28' : '2025-11-25');
      if (k.name.includes('SDK 2.x')) assert.equal(text(await call(client, 'era')), k.era);
    });

    it('lists tools and calls one, many in flight at once', async () => {
      const list = await client.request('tools/list', {}, { timeoutMs: 5000 });
      assert.ok(Array.isArray(list.tools));
      assert.ok((list.tools as { name: string }[]).some((t) => t.name === 'echo'));
      const texts = await Promise.all(Array.from({ length: 20 }, (_, i) => call(client, 'echo', { text: `m${i}` }).then(text)));
      assert.deepEqual(
        texts,
        Array.from({ length: 20 }, (_, i) => `m${i}`),
      );
    });

    it('injects the credential, and nothing else of the gateway', async () => {
      if (k.transport().type === 'stdio') {
        assert.equal(text(await call(client, 'env', { name: 'UPSTREAM_KEY' })), 's3cret-env');
        assert.equal(text(await call(client, 'env', { name: 'FIXTURE_PLAIN' })), 'plain-value');
        // Only the safe inherited variables, the upstream's env and its credential: nothing else of the gateway's.
        const keys = JSON.parse(text(await call(client, 'env_keys'))) as string[];
        const allowed = ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER', 'UPSTREAM_KEY', 'FIXTURE_PLAIN'];
        assert.deepEqual(
          keys.filter((x) => !allowed.includes(x)),
          [],
        );
        assert.ok(keys.includes('PATH'));
      } else {
        const headers = JSON.parse(text(await call(client, 'headers'))) as Record<string, string>;
        assert.equal(headers.authorization, 'Bearer s3cret-header');
        assert.equal(headers['x-api-key'], 'k1');
        if (k.era === 'modern') {
          assert.equal(headers['mcp-protocol-version'], '2026-07-28');
          assert.equal(headers['mcp-method'], 'tools/call');
          assert.equal(headers['mcp-name'], 'headers');
        } else {
          assert.equal(headers['mcp-protocol-version'], '2025-11-25');
          assert.ok(headers['mcp-session-id'] !== undefined);
        }
      }
    });

    it('cancels on timeout, and the server hears it', async () => {
      const before = (await k.cancelled(client)).length;
      const started = Date.now();
      await rejects(call(client, 'sleep', { ms: 10_000 }, 300), 'timeout', /300 ms/);
      assert.ok(Date.now() - started < 2000);
      await until(async () => (await k.cancelled(client)).length > before);
      // The client is still usable.
      assert.equal(text(await call(client, 'echo', { text: 'still here' })), 'still here');
    });

    it('cancels when the caller aborts, and the server hears it', async () => {
      const before = (await k.cancelled(client)).length;
      const ac = new AbortController();
      const p = call(client, 'sleep', { ms: 10_000 }, 10_000, ac.signal);
      setTimeout(() => ac.abort(), 150);
      const started = Date.now();
      await rejects(p, 'unavailable', /cancelled by the caller/);
      assert.ok(Date.now() - started < 2000);
      await until(async () => (await k.cancelled(client)).length > before);
      await rejects(call(client, 'echo', { text: 'x' }, 1000, AbortSignal.abort()), 'unavailable', /cancelled/);
    });

    it('reports an upstream JSON-RPC error as kind rpc with its code', async () => {
      const err = await rejects(client.request('no/such/method', {}, { timeoutMs: 5000 }), 'rpc');
      assert.equal(err.rpcCode, -32601);
      assert.equal(err.code, 'RPC_UPSTREAM_ERROR');
    });
  });
}

describe('upstream client: a process that dies mid-call', () => {
  for (const [name, path] of [
    ['modern (SDK 2.x)', SDK2_SERVER_PATH],
    ['legacy (SDK 1.x)', SDK1_SERVER_PATH],
  ] as const) {
    it(`${name}: the call fails as unavailable at once, onclose fires, later calls fail fast`, async () => {
      const client = await connectUpstream({ transport: stdio(path), credential: undefined, timeoutMs: 15_000 });
      let closed = 0;
      client.onclose = () => closed++;
      const slow = call(client, 'sleep', { ms: 10_000 }, 10_000);
      const started = Date.now();
      await rejects(call(client, 'die', {}, 10_000), 'unavailable', /exited/);
      await rejects(slow, 'unavailable', /exited/);
      assert.ok(Date.now() - started < 5000);
      assert.equal(closed, 1);
      await rejects(call(client, 'echo', { text: 'x' }), 'unavailable');
      await client.close();
      assert.equal(closed, 1);
    });
  }
});

describe('upstream client: legacy HTTP session lost', () => {
  it('re-initializes once when the server forgets the session (404), and the request runs once', async () => {
    const client = await connectUpstream({ transport: { type: 'http', url: sdk1.url }, credential: undefined, timeoutMs: 10_000 });
    const first = JSON.parse(text(await call(client, 'headers'))) as Record<string, string>;
    await sdk1.forget();
    const seenBefore = sdk1.seen.length;
    const second = JSON.parse(text(await call(client, 'headers'))) as Record<string, string>;
    assert.notEqual(second['mcp-session-id'], first['mcp-session-id']);
    const methods = sdk1.seen.slice(seenBefore).map((s) => (s.body === '' ? s.method : (JSON.parse(s.body) as { method?: string }).method));
    // The refused call (404), the new session, then the call again: once processed.
    assert.deepEqual(methods, ['tools/call', 'initialize', 'notifications/initialized', 'tools/call']);
    await client.close();
    assert.equal(sdk1.seen.at(-1)?.method, 'DELETE');
  });

  it('gives up (unavailable, onclose) when the renewed session is lost as well', async () => {
    const client = await connectUpstream({ transport: { type: 'http', url: sdk1.url }, credential: undefined, timeoutMs: 10_000 });
    let closed = 0;
    client.onclose = () => closed++;
    await sdk1.forget();
    // Concurrent calls all see the 404 and share one renewal; the server forgets the new session too.
    const original = sdk1.sessions.set.bind(sdk1.sessions);
    sdk1.sessions.set = () => sdk1.sessions;
    try {
      const results = await Promise.allSettled([call(client, 'echo', { text: 'a' }), call(client, 'echo', { text: 'b' })]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        const reason = (r as PromiseRejectedResult).reason as UpstreamCallError;
        assert.ok(reason instanceof UpstreamCallError);
        assert.equal(reason.kind, 'unavailable');
      }
      assert.equal(sdk1.seen.filter((s) => s.body.includes('"initialize"')).length >= 1, true);
    } finally {
      sdk1.sessions.set = original;
    }
    assert.equal(closed, 1);
  });
});
