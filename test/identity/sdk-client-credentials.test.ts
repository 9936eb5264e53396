// The official MCP SDKs' own client-credentials providers, unmodified, against a real broker:
// SDK 1.x (@modelcontextprotocol/sdk) and 2.x (@modelcontextprotocol/client) StaticPrivateKeyJwtProvider
// given the agent's JWT-SVID as the private_key_jwt assertion and nothing else: discovery (RFC 9728
// then RFC 8414), the client_credentials grant, a mandate from the agent's default task template,
// tools listed and called through /mcp. Then the token expires (a moved clock, 10 s tokens) and the
// SDK's own re-authentication — the 401, a new client_credentials request with the agent's current
// SVID — keeps the SAME mandate, and a 2025-11-25 session carries on (sessions belong to mandates).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  DpopSession,
  Client as Sdk2Client,
  StaticPrivateKeyJwtProvider as Sdk2Provider,
  StreamableHTTPClientTransport as Sdk2Transport,
} from '@modelcontextprotocol/client';
import { StaticPrivateKeyJwtProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import type { ConfigInput } from '../../src/config/load.js';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import type { Clock } from '../../src/lib/clock.js';
import { CLIENT_ASSERTION_TYPE } from '../../src/oauth/client-credentials.js';
import { type GatewayHarness, startGateway, text } from '../gateway/harness.js';
import { storeFactories } from '../helpers/stores.js';
import { mandateOf } from './grant-helpers.js';

const AGENT = { id: 'sdk-agent', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/sdk-agent` };
const TEMPLATE_TOOLS = ['everything.echo', 'helpdesk.search_tickets'];
const LEGACY = '2025-11-25';
const MODERN = '2026-07-28';

for (const factory of await storeFactories()) {
  describe(`MCP SDK client-credentials providers with the SVID as assertion (${factory.name})`, { skip: factory.skip }, () => {
    let h: GatewayHarness;
    let offsetMs = 0;
    const clock: Clock = { now: () => Date.now() + offsetMs };
    const closers: (() => Promise<void>)[] = [];
    before(async () => {
      h = await startGateway({
        store: await factory.open(),
        clock,
        config: {
          server: { rateLimit: { enabled: false } },
          upstreams: { stdio: { allowedCommands: [process.execPath] } },
          // Short tokens and no leeway: a 15 s step of the clock expires every token.
          // DPoP proofs carry the SDK's real clock in iat: allow them the broker's moved clock (< 10 min here).
          identity: { tokenTtlSeconds: 10, leewaySeconds: 0, dpopMaxAgeSeconds: 600 },
          // The replica's freshness check runs on the same moved clock; it is not what these tests are about.
          changes: { maxStalenessMs: 3_600_000 },
        } as ConfigInput,
      });
      await h.broker.agents.register({
        id: AGENT.id,
        displayName: 'SDK agent',
        owner: 'alice',
        environment: 'production',
        identity: { spiffeId: AGENT.spiffeId },
        ceiling: { tools: [...TEMPLATE_TOOLS, 'helpdesk.get_customer'].map((tool) => ({ tool })), delegable: false },
        templates: {
          default: {
            purpose: 'Look up tickets and echo',
            taskType: 'support.triage',
            ttlSeconds: 900,
            tools: TEMPLATE_TOOLS.map((tool) => ({ tool })),
          },
        },
      });
    });
    after(async () => {
      for (const c of closers) await c().catch(() => {});
      await h?.close();
      await factory.cleanup();
    });

    /** The agent's current JWT-SVID, as a SPIFFE Workload API client hands it out; counts the calls. */
    const svids = { minted: 0 };
    const currentSvid = async () => {
      svids.minted++;
      return h.svid(AGENT.spiffeId);
    };

    /**
     * The SDK's StaticPrivateKeyJwtProvider with its OAuthClientProvider hook `addClientAuthentication`
     * given the function above: the provider sends a fresh SVID on every token request (Mandate
     * accepts each assertion once), which is what a long-running client needs.
     */
    function withCurrentSvid<P extends { addClientAuthentication?: unknown }>(provider: P): P {
      provider.addClientAuthentication = async (_headers: Headers, params: URLSearchParams) => {
        params.set('client_assertion', await currentSvid());
        params.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
      };
      return provider;
    }

    const callOk = async (call: Promise<unknown>, mentions: RegExp) => {
      const r = (await call) as { isError?: boolean };
      assert.notEqual(r.isError, true, JSON.stringify(r));
      assert.match(text(r), mentions);
    };

    describe('SDK 1.x (@modelcontextprotocol/sdk)', () => {
      it('StaticPrivateKeyJwtProvider with only the SVID: discovers, gets a token, lists the template tools, calls one', async () => {
        const provider = new StaticPrivateKeyJwtProvider({
          clientId: AGENT.id,
          jwtBearerAssertion: await currentSvid(),
          expectedIssuer: h.base,
        });
        const client = new Client({ name: 'sdk1-cc', version: '1' });
        const transport = new StreamableHTTPClientTransport(h.mcpUrl, { authProvider: provider });
        await client.connect(transport);
        closers.push(() => client.close());
        const token = provider.tokens()?.access_token;
        assert.ok(token, 'the SDK obtained a token from Mandate');
        const mandate = await h.broker.mandates.require(mandateOf(token));
        assert.equal(mandate.agentId, AGENT.id);
        assert.equal(mandate.purpose, 'Look up tickets and echo');
        const { tools } = await client.listTools();
        assert.deepEqual(tools.map((t) => t.name).sort(), TEMPLATE_TOOLS);
        await callOk(client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'charged twice' } }), /T-4821/);
        // Outside the template: refused by the mandate, not by authentication.
        const denied = (await client.callTool({ name: 'helpdesk.get_customer', arguments: { customerId: 'C-1009' } })) as {
          isError?: boolean;
        };
        assert.equal(denied.isError, true);
      });

      it('a token that expires is replaced by the SDK under the SAME mandate, and the 2025-11-25 session continues', async () => {
        const provider = withCurrentSvid(
          new StaticPrivateKeyJwtProvider({ clientId: AGENT.id, jwtBearerAssertion: 'unused', expectedIssuer: h.base }),
        );
        const client = new Client({ name: 'sdk1-cc-long', version: '1' });
        const transport = new StreamableHTTPClientTransport(h.mcpUrl, { authProvider: provider });
        await client.connect(transport);
        closers.push(() => client.close());
        assert.equal(transport.protocolVersion, LEGACY);
        const session = transport.sessionId;
        assert.ok(session);
        const first = provider.tokens()?.access_token ?? '';
        const mandateId = mandateOf(first);
        await callOk(client.callTool({ name: 'everything.echo', arguments: { message: 'before expiry' } }), /before expiry/);
        const minted = svids.minted;
        offsetMs += 15_000;
        await assert.rejects(
          h.broker.verifier.verify({ token: first, scheme: 'Bearer', method: 'POST', url: h.mcpUrl.href }),
          /expired/,
          'the first token has expired',
        );
        await callOk(client.callTool({ name: 'everything.echo', arguments: { message: 'after expiry' } }), /after expiry/);
        const second = provider.tokens()?.access_token ?? '';
        assert.notEqual(second, first, 'the SDK re-authenticated');
        assert.equal(svids.minted, minted + 1, 'with one fresh SVID');
        assert.equal(mandateOf(second), mandateId, 'the SAME mandate');
        assert.equal(transport.sessionId, session, 'the same MCP session');
        // Twice more, for good measure: still one mandate.
        offsetMs += 15_000;
        await callOk(client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'charged twice' } }), /T-4821/);
        assert.equal(mandateOf(provider.tokens()?.access_token ?? ''), mandateId);
        assert.equal((await h.broker.mandates.list({ agentId: AGENT.id, status: 'active' })).filter((m) => m.id === mandateId).length, 1);
      });

      it('a static assertion is good once: after expiry the SDK cannot re-authenticate with it', async () => {
        const provider = new StaticPrivateKeyJwtProvider({
          clientId: AGENT.id,
          jwtBearerAssertion: await currentSvid(),
          expectedIssuer: h.base,
        });
        const client = new Client({ name: 'sdk1-cc-static', version: '1' });
        await client.connect(new StreamableHTTPClientTransport(h.mcpUrl, { authProvider: provider }));
        closers.push(() => client.close());
        offsetMs += 15_000;
        await assert.rejects(client.callTool({ name: 'everything.echo', arguments: { message: 'x' } }), /already been used|invalid_client/);
      });
    });

    describe('SDK 2.x (@modelcontextprotocol/client)', () => {
      it('StaticPrivateKeyJwtProvider with only the SVID: pinned to 2026-07-28, lists and calls', async () => {
        const provider = new Sdk2Provider({ clientId: AGENT.id, jwtBearerAssertion: await currentSvid(), expectedIssuer: h.base });
        const client = new Sdk2Client({ name: 'sdk2-cc', version: '1' }, { versionNegotiation: { mode: { pin: MODERN } } });
        await client.connect(new Sdk2Transport(h.mcpUrl, { authProvider: provider }));
        closers.push(() => client.close());
        assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
        const token = (await provider.tokens())?.access_token;
        assert.ok(token);
        assert.equal((await h.broker.mandates.require(mandateOf(token))).agentId, AGENT.id);
        const { tools } = await client.listTools();
        assert.deepEqual(tools.map((t) => t.name).sort(), TEMPLATE_TOOLS);
        await callOk(client.callTool({ name: 'everything.echo', arguments: { message: 'sdk two' } }), /sdk two/);
      });

      it("with the SDK's DPoP session: a DPoP-bound token, renewed after expiry under the SAME mandate and key", async () => {
        const session = await DpopSession.create({ alg: 'ES256' });
        const provider = Object.assign(
          withCurrentSvid(new Sdk2Provider({ clientId: AGENT.id, jwtBearerAssertion: 'unused', expectedIssuer: h.base })),
          { dpop: () => session },
        );
        const client = new Sdk2Client({ name: 'sdk2-cc-dpop', version: '1' }, { versionNegotiation: { mode: { pin: MODERN } } });
        await client.connect(new Sdk2Transport(h.mcpUrl, { authProvider: provider }));
        closers.push(() => client.close());
        const first = await provider.tokens();
        assert.equal(first?.token_type?.toLowerCase(), 'dpop');
        assert.equal((decodeJwt(first?.access_token ?? '').cnf as { jkt?: string } | undefined)?.jkt, session.thumbprint);
        await callOk(client.callTool({ name: 'everything.echo', arguments: { message: 'bound' } }), /bound/);
        offsetMs += 15_000;
        await callOk(client.callTool({ name: 'everything.echo', arguments: { message: 'still bound' } }), /still bound/);
        const second = await provider.tokens();
        assert.notEqual(second?.access_token, first?.access_token);
        assert.equal(mandateOf(second?.access_token), mandateOf(first?.access_token), 'the SAME mandate');
        assert.equal((decodeJwt(second?.access_token ?? '').cnf as { jkt?: string } | undefined)?.jkt, session.thumbprint);
        // A Bearer client of the same agent and template has its own standing grant: not this mandate.
        const bearer = new Sdk2Provider({ clientId: AGENT.id, jwtBearerAssertion: await currentSvid(), expectedIssuer: h.base });
        const other = new Sdk2Client({ name: 'sdk2-cc-bearer', version: '1' }, { versionNegotiation: { mode: { pin: MODERN } } });
        await other.connect(new Sdk2Transport(h.mcpUrl, { authProvider: bearer }));
        closers.push(() => other.close());
        assert.notEqual(mandateOf((await bearer.tokens())?.access_token), mandateOf(second?.access_token));
      });

      for (const era of ['modern', 'legacy'] as const) {
        it(`re-authenticates after expiry under the SAME mandate (${era === 'modern' ? MODERN : `${LEGACY}, same session`})`, async () => {
          const provider = withCurrentSvid(new Sdk2Provider({ clientId: AGENT.id, jwtBearerAssertion: 'unused', expectedIssuer: h.base }));
          const client = new Sdk2Client(
            { name: `sdk2-cc-${era}`, version: '1' },
            era === 'modern' ? { versionNegotiation: { mode: { pin: MODERN } } } : {},
          );
          const transport = new Sdk2Transport(h.mcpUrl, { authProvider: provider });
          await client.connect(transport);
          closers.push(() => client.close());
          if (era === 'legacy') assert.equal(client.getNegotiatedProtocolVersion(), LEGACY);
          const session = transport.sessionId;
          const first = (await provider.tokens())?.access_token ?? '';
          await callOk(client.callTool({ name: 'everything.echo', arguments: { message: 'one' } }), /one/);
          offsetMs += 15_000;
          await callOk(client.callTool({ name: 'everything.echo', arguments: { message: 'two' } }), /two/);
          const second = (await provider.tokens())?.access_token ?? '';
          assert.notEqual(second, first);
          assert.equal(mandateOf(second), mandateOf(first), 'the SAME mandate');
          assert.equal(transport.sessionId, session, era === 'legacy' ? 'the same session' : 'still stateless');
        });
      }
    });
  });
}
