// The MCP Inspector CLI (@modelcontextprotocol/inspector 2.12, `mcp-inspector --cli`), unmodified,
// with its own OAuth: no token is handed to it. It meets /mcp's 401, discovers Mandate, registers
// (RFC 7591) or presents a Client ID Metadata Document (--client-metadata-url), starts its loopback
// callback listener and prints "Please navigate to: <authorization URL>"; headless Chromium follows
// that URL through the sign-in and the consent page to the CLI's listener, and the CLI finishes the
// token exchange and runs its method.
//
// Headless is possible because the CLI allows interactive OAuth without a TTY when
// MCP_AUTO_OPEN_ENABLED=true; its attempt to open a browser then fails harmlessly (BROWSER=true,
// no display) after the URL was printed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { freePort } from '../helpers/ports.js';
import { type ClientsHarness, startClientsGateway, textOf } from './helpers.js';
import { consent, type DocumentHost, documentHost, launchChromium, registerAssistant } from './interactive-helpers.js';

const LAUNCHER = createRequire(import.meta.url).resolve('@modelcontextprotocol/inspector/clients/launcher/build/index.js');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly authorizationUrl: string;
}

describe('MCP Inspector CLI with its own OAuth (authorization code + PKCE, headless Chromium)', () => {
  let h: ClientsHarness;
  let browser: Browser;
  let host: DocumentHost;
  const home = mkdtempSync(join(tmpdir(), 'mandate-inspector-oauth-'));
  before(async () => {
    host = await documentHost();
    h = await startClientsGateway({ interactiveClients: { metadataDocuments: { allowPrivateNetworks: true, caFile: host.caFile } } });
    await registerAssistant(h);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await h?.close();
    await host?.close();
    rmSync(home, { recursive: true, force: true });
  });

  async function inspector(era: 'legacy' | 'modern', args: string[], callbackUrl?: string): Promise<Run> {
    const callback = callbackUrl ?? `http://127.0.0.1:${await freePort()}/oauth/callback`;
    // A fresh OAuth store per run: every run logs in again.
    const runHome = mkdtempSync(join(home, 'run-'));
    const child = spawn(
      process.execPath,
      [
        LAUNCHER,
        '--cli',
        '--transport',
        'http',
        '--server-url',
        h.mcpUrl.href,
        '--callback-url',
        callback,
        '--protocol-era',
        era,
        '--format',
        'json',
        ...args,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          HOME: runHome,
          MCP_CATALOG_PATH: join(runHome, 'mcp.json'),
          MCP_CLIENT_CONFIG_PATH: join(runHome, 'client.json'),
          MCP_INSPECTOR_SECRET_STORE: 'memory',
          MCP_AUTO_OPEN_ENABLED: 'true',
          BROWSER: 'true',
          DISPLAY: '',
        },
      },
    );
    let stdout = '';
    let stderr = '';
    let announce: (url: string) => void = () => {};
    const announced = new Promise<string>((resolve) => {
      announce = resolve;
    });
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => {
      stderr += c;
      const m = /navigate to: (\S+)/.exec(stderr);
      if (m?.[1] !== undefined) announce(m[1]);
    });
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const url = await Promise.race([announced, closed.then(() => '')]);
    if (url !== '') await (await consent(browser, url)).context().close();
    const code = await closed;
    clearTimeout(timer);
    return { code, stdout, stderr, authorizationUrl: url };
  }
  const show = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout.slice(0, 1500)}\nstderr: ${r.stderr.slice(0, 2000)}`;

  it('legacy era: registers dynamically, alice consents, tools/list shows the granted tools', async () => {
    const r = await inspector('legacy', ['--method', 'tools/list']);
    assert.equal(r.code, 0, show(r));
    const url = new URL(r.authorizationUrl);
    assert.match(url.searchParams.get('client_id') ?? '', /^mcl_/, 'a dynamically registered client');
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(r.stderr, /Authorization complete/);
    const tools = ((JSON.parse(r.stdout) as { result: { tools: { name: string }[] } }).result.tools ?? []).map((t) => t.name);
    assert.deepEqual(tools.sort(), ['everything.echo', 'helpdesk.search_tickets']);
  });

  it('modern era with a Client ID Metadata Document: tools/call through the mandate', async () => {
    const docUrl = `${host.origin}/inspector.json`;
    // The CLI's redirect URI is its --callback-url; the document lists the loopback callback it will use.
    const port = await freePort();
    const callback = `http://127.0.0.1:${port}/oauth/callback`;
    host.set('/inspector.json', JSON.stringify({ client_id: docUrl, client_name: 'MCP Inspector (CIMD)', redirect_uris: [callback] }));
    const r = await inspector(
      'modern',
      [
        '--client-metadata-url',
        docUrl,
        '--method',
        'tools/call',
        '--tool-name',
        'everything.echo',
        '--tool-arg',
        'message=from the inspector',
      ],
      callback,
    );
    assert.equal(r.code, 0, show(r));
    assert.equal(new URL(r.authorizationUrl).searchParams.get('client_id'), docUrl);
    const result = (JSON.parse(r.stdout) as { result: unknown }).result;
    assert.match(textOf(result), /from the inspector/);
  });
});
