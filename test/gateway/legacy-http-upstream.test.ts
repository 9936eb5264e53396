// A legacy (2025-11-25) upstream over streamable HTTP with sessions — the MCP SDK 1.x server pattern —
// behind the gateway, called by agents of both revisions: the gateway opens one upstream session
// per mandate (isolation `mandate`) and reuses it call after call, never shares it between mandates,
// probes the upstream's era once, and when the upstream forgets its sessions (a restart) it opens a
// new one for the next call.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { type Sdk1Http, startSdk1Http } from '../upstreams/fixtures/sdk1-server.js';
import { type GatewayHarness, mandateIdOf, modernRequest, startGateway, text } from './harness.js';

const AGENT = { id: 'legacy-http-agent', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/legacy-http-agent` };
const TOOLS = [{ tool: 'legacy.echo' }, { tool: 'legacy.headers' }];

describe('gateway in front of a legacy HTTP upstream with sessions (SDK 1.x)', () => {
  let upstream: Sdk1Http;
  let h: GatewayHarness;
  before(async () => {
    upstream = await startSdk1Http();
    h = await startGateway();
    await h.broker.upstreams.registry.create({ id: 'legacy', transport: { type: 'http', url: upstream.url }, isolation: 'mandate' });
    await h.broker.agents.register({
      id: AGENT.id,
      displayName: AGENT.id,
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: AGENT.spiffeId },
      ceiling: { tools: TOOLS, delegable: false },
    });
  });
  after(async () => {
    await h?.close();
    await upstream?.close();
  });

  const open = async () => {
    const res = await h.open(AGENT.spiffeId, {
      type: 'mandate',
      purpose: 'legacy upstream test',
      taskType: 'support.triage',
      environment: 'production',
      ttlSeconds: 600,
      tools: TOOLS,
      delegable: false,
    });
    return { token: res.access_token, mandateId: mandateIdOf(res.access_token) };
  };

  /** A 2026-07-28 tools/call (stateless) through the gateway. */
  const modernCall = async (token: string, name: string, args: Record<string, unknown>) => {
    const res = await modernRequest(h.mcpUrl, token, 'tools/call', { name, arguments: args });
    assert.equal(res.status, 200);
    return ((await res.json()) as { result: unknown }).result;
  };

  /** The upstream session ids the gateway used since `from`, and how many sessions it initialized. */
  const sessionsSince = (from: number) => {
    const seen = upstream.seen.slice(from);
    const initialized = seen.filter((r) => r.method === 'POST' && r.body.includes('"method":"initialize"')).length;
    const ids = new Set(seen.map((r) => r.headers['mcp-session-id']).filter((id): id is string => id !== undefined));
    return { initialized, ids };
  };

  test('one upstream session per mandate, reused across calls of both revisions, never shared', async () => {
    const a = await open();
    const b = await open();
    const from = upstream.seen.length;
    const client = await h.connect(a.token);
    for (let i = 0; i < 3; i++) {
      assert.equal(text(await client.callTool({ name: 'legacy.echo', arguments: { text: `a${i}` } })), `a${i}`);
      assert.equal(text(await modernCall(a.token, 'legacy.echo', { text: `a-modern${i}` })), `a-modern${i}`);
      assert.equal(text(await modernCall(b.token, 'legacy.echo', { text: `b${i}` })), `b${i}`);
    }
    const { initialized, ids } = sessionsSince(from);
    assert.equal(initialized, 2, 'one initialize per mandate, not per call or per client');
    assert.equal(ids.size, 2, 'two mandates, two upstream sessions');
    // The era probe (a 2026-07-28 server/discover) ran for the first session only: the pool
    // remembers that this upstream answered as a legacy server and handshakes at once after that.
    const probes = upstream.seen.slice(from).filter((r) => r.body.includes('"method":"server/discover"')).length;
    assert.equal(probes, 1);
    // Every request on a session carried the negotiated legacy revision (the era probe that opens a
    // connection, a 2026-07-28 server/discover the SDK 1.x server refuses, carries no session).
    const onSessions = upstream.seen.slice(from).filter((r) => r.headers['mcp-session-id'] !== undefined);
    assert.ok(onSessions.length >= 9);
    assert.deepEqual(new Set(onSessions.map((r) => r.headers['mcp-protocol-version'])), new Set(['2025-11-25']));
  });

  test('an upstream that forgot its sessions (restarted) gets a new one; the call succeeds', async () => {
    const a = await open();
    assert.equal(text(await modernCall(a.token, 'legacy.echo', { text: 'before' })), 'before');
    const before = sessionsSince(0).ids;
    await upstream.forget();
    const from = upstream.seen.length;
    assert.equal(text(await modernCall(a.token, 'legacy.echo', { text: 'after' })), 'after');
    const { initialized, ids } = sessionsSince(from);
    assert.equal(initialized, 1, 'one new session');
    const now = [...ids].filter((id) => !before.has(id));
    assert.equal(now.length, 1, 'the call ran on the new session');
  });
});
