// Interactive clients with their own, unmodified OAuth: the MCP TypeScript SDK 1.x client's built-in
// OAuth (`@modelcontextprotocol/sdk/client/auth.js`) and the 2.x client (`@modelcontextprotocol/client`),
// each with an OAuthClientProvider whose redirectToAuthorization drives headless Chromium through the
// development issuer's sign-in and Mandate's consent page, then a working /mcp call; registration by
// RFC 7591 and by a Client ID Metadata Document; the refresh token keeps the mandate.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Browser } from 'playwright-core';
import { type ClientsHarness, startClientsGateway, textOf } from './helpers.js';
import {
  ASSISTANT,
  type Callback,
  callbackServer,
  consent,
  type DocumentHost,
  documentHost,
  launchChromium,
  registerAssistant,
} from './interactive-helpers.js';

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;

/** A minimal provider as an application writes one: in-memory storage, the browser opened on redirect. */
class BrowserProvider {
  client: Record<string, unknown> | undefined;
  saved: Record<string, unknown> | undefined;
  verifier = '';
  opened: Promise<URLSearchParams> | undefined;
  constructor(
    private readonly browser: Browser,
    private readonly callback: Callback,
    readonly clientMetadataUrl?: string,
  ) {}
  get redirectUrl() {
    return this.callback.url;
  }
  get clientMetadata() {
    return {
      client_name: 'interactive test client',
      redirect_uris: [this.callback.url],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.client as never;
  }
  saveClientInformation(info: Record<string, unknown>) {
    this.client = info;
  }
  tokens() {
    return this.saved as never;
  }
  saveTokens(tokens: Record<string, unknown>) {
    this.saved = tokens;
  }
  async redirectToAuthorization(url: URL) {
    const code = this.callback.next();
    await consent(this.browser, url.toString());
    this.opened = code;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

describe('interactive clients: authorization code + PKCE through Chromium', () => {
  let h: ClientsHarness;
  let browser: Browser;
  let callback: Callback;
  let host: DocumentHost;
  before(async () => {
    host = await documentHost();
    // The metadata documents live on a loopback https host with a test CA: allowed here only.
    h = await startClientsGateway({ interactiveClients: { metadataDocuments: { allowPrivateNetworks: true, caFile: host.caFile } } });
    await registerAssistant(h);
    browser = await launchChromium();
    callback = await callbackServer();
  });
  after(async () => {
    await browser?.close();
    await callback?.close();
    await h?.close();
    await host?.close();
  });

  it('SDK 1.x: registers (RFC 7591), signs alice in, consents, and calls a tool on her behalf', async () => {
    const provider = new BrowserProvider(browser, callback);
    const transport = new StreamableHTTPClientTransport(h.mcpUrl, { authProvider: provider as never });
    const client = new Client({ name: 'interactive-sdk1', version: '1' });
    await assert.rejects(client.connect(transport), UnauthorizedError);
    const q = await (provider.opened as Promise<URLSearchParams>);
    assert.equal(q.get('iss'), h.base, 'RFC 9207 iss in the authorization response');
    assert.match(String(provider.client?.client_id), /^mcl_/);
    await transport.finishAuth(q.get('code') ?? '');
    const tokens = provider.saved as { access_token: string; refresh_token?: string };
    assert.match(tokens.refresh_token ?? '', /^mrt_/);
    const claims = claimsOf(tokens.access_token);
    assert.equal(claims.sub, 'alice', 'the mandate is on the human’s behalf');
    assert.equal(claims.client_id, ASSISTANT);

    const connected = new Client({ name: 'interactive-sdk1', version: '1' });
    await connected.connect(new StreamableHTTPClientTransport(h.mcpUrl, { authProvider: provider as never }));
    const { tools } = await connected.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['everything.echo', 'helpdesk.search_tickets']);
    const r = await connected.callTool({ name: 'everything.echo', arguments: { message: 'from alice' } });
    assert.match(textOf(r), /from alice/);

    // The access token is revoked (RFC 7009): the next call gets a 401 and the SDK refreshes on its
    // own (refresh_token + its client_id) — a new token for the same mandate, the call goes through.
    const revoked = await fetch(`${h.base}/oauth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.access_token }),
    });
    assert.equal(revoked.status, 200);
    const again = await connected.callTool({ name: 'everything.echo', arguments: { message: 'still alice' } });
    assert.match(textOf(again), /still alice/);
    const renewed = provider.saved as { access_token: string; refresh_token: string };
    assert.notEqual(renewed.access_token, tokens.access_token);
    assert.notEqual(renewed.refresh_token, tokens.refresh_token, 'rotated');
    assert.equal(claimsOf(renewed.access_token).mandate, claims.mandate, 'the same mandate');
    await connected.close();
  });

  it('SDK 2.x: the same flow with @modelcontextprotocol/client, iss checked by finishAuth, and the refresh token keeps the mandate', async () => {
    const provider = new BrowserProvider(browser, callback);
    const transport = new Transport2(h.mcpUrl, { authProvider: provider as never });
    const client = new Client2({ name: 'interactive-sdk2', version: '1' });
    await assert.rejects(client.connect(transport));
    const q = await (provider.opened as Promise<URLSearchParams>);
    await transport.finishAuth(q);
    const tokens = provider.saved as { access_token: string; refresh_token: string };
    const mandate = claimsOf(tokens.access_token).mandate;

    const connected = new Client2({ name: 'interactive-sdk2', version: '1' });
    await connected.connect(new Transport2(h.mcpUrl, { authProvider: provider as never }));
    const r = await connected.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'charged twice' } });
    assert.match(textOf(r), /T-4821/);
    await connected.close();

    // A public client refreshes with its client_id; the mandate stays, the refresh token rotates.
    const refresh = (token: string, clientId: string) =>
      fetch(`${h.base}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: clientId }),
      });
    const clientId = String(provider.client?.client_id);
    const other = await refresh(tokens.refresh_token, 'mcl_someoneelseentirely00000');
    assert.equal(other.status, 400, 'another client_id cannot use it');
    const res = await refresh(tokens.refresh_token, clientId);
    assert.equal(res.status, 200);
    const next = (await res.json()) as { access_token: string; refresh_token: string };
    assert.equal(claimsOf(next.access_token).mandate, mandate);
    assert.notEqual(next.refresh_token, tokens.refresh_token);
  });

  it('SDK 1.x with a Client ID Metadata Document (client_id is an https URL)', async () => {
    const docUrl = `${host.origin}/clients/assistant.json`;
    host.set(
      '/clients/assistant.json',
      JSON.stringify({
        client_id: docUrl,
        client_name: 'Metadata Document Assistant',
        redirect_uris: [callback.url],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }),
    );
    const provider = new BrowserProvider(browser, callback, docUrl);
    const transport = new StreamableHTTPClientTransport(h.mcpUrl, { authProvider: provider as never });
    await assert.rejects(new Client({ name: 'cimd', version: '1' }).connect(transport), UnauthorizedError);
    const q = await (provider.opened as Promise<URLSearchParams>);
    assert.equal(provider.client?.client_id, docUrl, 'no registration: the URL is the client_id');
    await transport.finishAuth(q.get('code') ?? '');
    const connected = new Client({ name: 'cimd', version: '1' });
    await connected.connect(new StreamableHTTPClientTransport(h.mcpUrl, { authProvider: provider as never }));
    assert.match(textOf(await connected.callTool({ name: 'everything.echo', arguments: { message: 'cimd' } })), /cimd/);
    await connected.close();
  });

  it('consent beyond the agent ceiling is refused on the page; nothing reaches the client until it is within', async () => {
    const registered = (await (
      await fetch(`${h.base}/oauth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'ceiling test', redirect_uris: [callback.url], token_endpoint_auth_method: 'none' }),
      })
    ).json()) as { client_id: string };
    const url = new URL(`${h.base}/oauth/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: registered.client_id,
      redirect_uri: callback.url,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      state: 'st-1',
    }).toString();
    const page = await consent(browser, url.toString(), { tools: JSON.stringify([{ tool: 'helpdesk.execute_refund' }]) });
    assert.match(page.url(), /\/oauth\/consent$/, 'the consent page again');
    assert.match((await page.locator('.problem').textContent()) ?? '', /exceeds the agent's ceiling[\s\S]*execute_refund/);
    await page.locator('textarea[name="tools"]').fill(JSON.stringify([{ tool: 'everything.echo', maxCalls: 3 }]));
    const code = callback.next();
    await page.locator('button[name="decision"][value="approve"]').click();
    const q = await code;
    assert.equal(q.get('state'), 'st-1');
    assert.match(q.get('code') ?? '', /^mac_/);
    await page.context().close();
  });
});
