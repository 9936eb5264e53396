// The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in package.json),
// server mode, against the gateway fronting the MCP reference "everything" server with a mandate
// that grants every one of its tools under the demo org policy (which permits them). It runs once
// per protocol revision the gateway serves, each at its own wire (`--spec-version`): 2025-11-25
// (initialize + sessions) and 2026-07-28 (stateless, per-request _meta, server/discover), on both
// stores (tasks, approvals and the audit trail the scenarios write live in the store).
//
// The runner's client has no OAuth support, so a small test proxy adds the mandate token, as an
// agent's MCP client configuration would; the gateway still verifies, decides and audits every
// request. Scenarios that fail are listed, with the reason, in one expected-failures file per
// revision; the runner itself fails on an unexpected failure AND on a stale entry (a listed
// scenario that passes).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { storeFactories } from '../helpers/stores.js';
import { freePort, type Running, startBroker } from '../identity/helpers.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const RUNNER = createRequire(import.meta.url).resolve('@modelcontextprotocol/conformance/dist/index.js');
/**
 * Each revision the gateway serves, with its baseline of known failures. `openBug` marks a run
 * that fails on a gateway bug (reported, not baselined): node:test reports it as TODO with the
 * reason until the fix lands and the line is deleted.
 */
const REVISIONS: readonly { version: string; expected: string; openBug?: string }[] = [
  { version: '2025-11-25', expected: join(here, 'mcp-expected-failures.yaml') },
  { version: '2026-07-28', expected: join(here, 'mcp-expected-failures-2026-07-28.yaml') },
];
const AGENT = { id: 'conformance-agent', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/conformance-agent` };

/**
 * Forwards every request to the gateway's /mcp with the agent's bearer token added. Transparent
 * otherwise: Host and Origin naming the proxy are mapped to the gateway, any other value (the
 * DNS-rebinding scenario's evil.example.com) is passed through for the gateway to judge.
 */
function tokenProxy(target: URL, token: string, self: () => string): Server {
  return createServer((req, res) => {
    const headers = { ...req.headers, authorization: `Bearer ${token}` };
    if (req.headers.host === self()) headers.host = target.host;
    if (req.headers.origin === `http://${self()}`) headers.origin = target.origin;
    const upstream = request(target, { method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
}

for (const factory of await storeFactories()) {
  // The skip is only the PostgreSQL half on a machine where PostgreSQL is unreachable (its reason is the
  // skip value, test/helpers/stores.ts); under CI (CI set) storeFactories() throws instead.
  describe(`MCP conformance (server mode) against the gateway (${factory.name})`, { skip: factory.skip }, () => {
    let b: Running;
    let proxy: Server;
    let proxyUrl: string;
    // MCP_CONFORMANCE_OUT keeps the runner's per-scenario checks.json for inspection.
    const out = process.env.MCP_CONFORMANCE_OUT ?? mkdtempSync(join(tmpdir(), 'mcp-conformance-'));

    before(async () => {
      // The runner is a conformance client, not an agent: its edge cases (unknown tools, bad
      // metadata, rebinding probes) are refusals the risk engine would rightly count as probing and
      // answer by holding, then revoking, the one mandate every scenario uses. Responses off here.
      b = await startBroker({ store: await factory.open(), config: { risk: { responses: [] } } });
      const everything = await b.broker.upstreams.registry.refresh('everything');
      assert.equal(everything.discoveryError, undefined);
      const tools = b.broker.upstreams.catalog
        .list()
        .filter((t) => t.upstream === 'everything')
        .map((t) => ({ tool: t.name }));
      assert.ok(tools.length > 5);
      await b.broker.agents.register({
        id: AGENT.id,
        displayName: 'MCP conformance runner',
        owner: 'alice',
        environment: 'production',
        identity: { spiffeId: AGENT.spiffeId },
        ceiling: { tools, delegable: false },
      });
      const res = await b.open(AGENT.spiffeId, {
        type: 'mandate',
        purpose: 'MCP conformance run',
        taskType: 'conformance',
        environment: 'production',
        ttlSeconds: 1800,
        tools,
        delegable: false,
      });
      const port = await freePort();
      proxy = tokenProxy(new URL('/mcp', b.base), res.access_token, () => `127.0.0.1:${port}`);
      await new Promise<void>((r) => proxy.listen(port, '127.0.0.1', r));
      proxyUrl = `http://127.0.0.1:${port}/mcp`;
    });
    after(async () => {
      proxy?.closeAllConnections();
      proxy?.close();
      await b?.close();
      await factory.cleanup();
      if (process.env.MCP_CONFORMANCE_OUT === undefined) rmSync(out, { recursive: true, force: true });
    });

    for (const { version, expected, openBug } of REVISIONS) {
      const name = `passes every ${version} scenario except the documented expected failures, and the baseline is not stale`;
      it(name, openBug === undefined ? {} : { todo: openBug }, async () => {
        const args = [
          '--import',
          join(here, 'mcp-node20-hooks.mjs'),
          RUNNER,
          'server',
          '--url',
          proxyUrl,
          // Every scenario that applies to the revision, pending ones included (not only the default "active" set).
          '--suite',
          'all',
          '--spec-version',
          version,
          '--expected-failures',
          expected,
          '-o',
          join(out, factory.name, version),
        ];
        const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        child.stdout.on('data', (c) => (output += c));
        child.stderr.on('data', (c) => (output += c));
        const code = await new Promise<number | null>((r) => child.on('close', r));
        if (process.env.MCP_CONFORMANCE_VERBOSE) process.stderr.write(output);
        assert.equal(code, 0, `conformance runner (${version}) failed:\n${output.slice(-4000)}`);
        assert.match(output, /Baseline check passed/);
      });
    }
  });
}
