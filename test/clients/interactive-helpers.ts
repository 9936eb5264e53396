// What an interactive client's user does, driven for real: headless Chromium (playwright-core with
// the Debian `chromium` binary) follows the authorization URL a client opens, signs in at the
// development issuer as a seeded human, fills the consent page and lands on the client's loopback
// redirect URI, where a small HTTP server hands the code back to the test.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { GatewayHarness } from '../gateway/harness.js';

export const CHROMIUM = process.env.MANDATE_CHROMIUM ?? '/usr/bin/chromium';

/** The agent principal alice grants to from interactive clients (an operator enables it with `attributes.interactive`). */
export const ASSISTANT = 'alice-assistant';
export const ASSISTANT_TOOLS = ['helpdesk.search_tickets', 'helpdesk.get_customer', 'everything.echo'];

export async function registerAssistant(h: GatewayHarness, over: Record<string, unknown> = {}): Promise<void> {
  await h.broker.agents.register({
    id: ASSISTANT,
    displayName: "Alice's assistant",
    owner: 'alice',
    environment: 'production',
    // Never presented in the interactive flow (the human authenticates); unique like every agent identity.
    identity: { issuer: h.base, subject: `interactive:${ASSISTANT}` },
    attributes: { interactive: true },
    ceiling: { tools: ASSISTANT_TOOLS.map((tool) => ({ tool })) },
    templates: {
      default: {
        purpose: 'answer support questions',
        taskType: 'support.triage',
        ttlSeconds: 1800,
        tools: [{ tool: 'helpdesk.search_tickets', maxCalls: 50 }, { tool: 'everything.echo' }],
      },
    },
    ...over,
  });
}

export interface Callback {
  readonly url: string;
  /** The query of the next request to the redirect URI. */
  next(): Promise<URLSearchParams>;
  close(): Promise<void>;
}

/** A loopback redirect URI (RFC 8252 §7.3) that records what the authorization server sent. */
export async function callbackServer(): Promise<Callback> {
  const waiting: ((q: URLSearchParams) => void)[] = [];
  const received: URLSearchParams[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    // Browsers also ask for /favicon.ico: only the redirect URI counts.
    if (url.pathname !== '/callback') return res.writeHead(404).end();
    const q = url.searchParams;
    const w = waiting.shift();
    if (w === undefined) received.push(q);
    else w(q);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('You can close this window.');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/callback`,
    next: () => {
      const r = received.shift();
      return r !== undefined ? Promise.resolve(r) : new Promise((resolve) => waiting.push(resolve));
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

export interface ConsentChoices {
  /** The seeded human who signs in at the development issuer. */
  readonly human?: string;
  /** Replaces the tools textarea (JSON tool grants). */
  readonly tools?: string;
  readonly purpose?: string;
  readonly decision?: 'approve' | 'deny';
}

/**
 * Opens `authorizationUrl` in a fresh browser context (no cookies), signs in and decides on the
 * consent page. Returns the page: it ends on the client's redirect URI, or on the consent page
 * again when the choices were refused.
 */
export async function consent(browser: Browser, authorizationUrl: string, choices: ConsentChoices = {}): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(authorizationUrl);
  await page.locator(`button[name="user"][value="${choices.human ?? 'alice'}"]`).click();
  await page.waitForURL(/\/oauth\/consent\?/);
  if (choices.purpose !== undefined) await page.locator('textarea[name="purpose"]').fill(choices.purpose);
  else if ((await page.locator('textarea[name="purpose"]').inputValue()) === '') {
    await page.locator('textarea[name="purpose"]').fill('interactive test');
  }
  if (choices.tools !== undefined) await page.locator('textarea[name="tools"]').fill(choices.tools);
  await Promise.all([
    page.waitForLoadState('load'),
    page.locator(`button[name="decision"][value="${choices.decision ?? 'approve'}"]`).click(),
  ]);
  return page;
}

export interface DocumentHost {
  /** https://127.0.0.1:<port> */
  readonly origin: string;
  /** The CA certificate file the broker must trust (interactiveClients.metadataDocuments.caFile). */
  readonly caFile: string;
  /** Serves `body` at `path` (JSON unless `type` says otherwise). */
  set(path: string, body: string, type?: string): void;
  /** How many requests reached the host. */
  readonly hits: () => number;
  close(): Promise<void>;
}

/** An https host for Client ID Metadata Documents, with a certificate from a test CA (openssl CLI). */
export async function documentHost(): Promise<DocumentHost> {
  const { TestPki, CA_EXTENSIONS, leafExtensions } = await import('../helpers/pki.js');
  const { createServer: createHttps } = await import('node:https');
  const { readFileSync } = await import('node:fs');
  const pki = new TestPki();
  pki.selfSigned('ca', CA_EXTENSIONS);
  pki.issue('host', 'ca', leafExtensions('IP:127.0.0.1,DNS:localhost', 'digitalSignature,keyEncipherment'));
  const docs = new Map<string, { body: string; type: string }>();
  let hits = 0;
  const server = createHttps({ cert: readFileSync(pki.file('host.pem')), key: readFileSync(pki.file('host.key')) }, (req, res) => {
    hits += 1;
    const doc = docs.get(new URL(req.url ?? '/', 'https://x').pathname);
    if (doc === undefined) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': doc.type }).end(doc.body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    origin: `https://127.0.0.1:${port}`,
    caFile: pki.file('ca.pem'),
    set: (path, body, type = 'application/json') => docs.set(path, { body, type }),
    hits: () => hits,
    close: () =>
      new Promise((resolve) =>
        server.close(() => {
          pki.cleanup();
          resolve();
        }),
      ),
  };
}
