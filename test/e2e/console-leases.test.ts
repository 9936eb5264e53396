// The console mandate page's Leases section in Chromium: a mandate holding a per-mandate upstream
// token shows the upstream, the provider, the audience, its state and its expiry; when the mandate
// ends the row turns revoked with the reason (live). The token itself is never in the DOM.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { type GatewayHarness, startGateway, TESTER } from '../gateway/harness.js';
import { chromiumSkip, launchChromium, signedInConsole } from '../helpers/console-browser.js';
import { ensureConsoleBuilt } from '../helpers/console-build.js';

const AUDIENCE = 'https://everything.test/mcp';

// Skipped only on a developer machine without Chromium (the reason is the skip value); under CI a
// missing browser fails the run instead (test/helpers/console-browser.ts).
describe('console: mandate leases (Chromium)', { skip: chromiumSkip }, () => {
  let gw: GatewayHarness;
  let browser: Browser;
  let page: Page;
  let mandateId: string;
  let token: string;

  before(async () => {
    ensureConsoleBuilt();
    gw = await startGateway({
      config: {
        server: { rateLimit: { enabled: false } },
        leases: { upstreams: { everything: { type: 'mandate-token', audience: AUDIENCE, maxTtlSeconds: 120 } } },
      },
    });
    const opened = await gw.mandate([{ tool: 'everything.echo' }]);
    mandateId = opened.mandateId;
    // Obtained at the seam the gateway injects through (as on the mandate's first call to the upstream).
    const held = await gw.broker.leases.service.obtain(mandateId, 'everything');
    token = (held.credential.headers?.Authorization ?? '').replace(/^Bearer /, '');
    assert.ok(token.split('.').length === 3, 'a JWT was minted');
    browser = await launchChromium();
    page = await signedInConsole(browser, gw.base, /Alice Admin/, 'Alice Admin');
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await gw?.close();
  });

  const noSecretInDom = async () => {
    const html = await page.content();
    const signature = token.split('.')[2] ?? '';
    assert.ok(signature.length > 20);
    assert.ok(!html.includes(token), 'the token is not in the DOM');
    assert.ok(!html.includes(signature), 'not even its signature');
  };

  test('the Leases section shows upstream, provider, audience, state and expiry — never the token', async () => {
    await page.goto(`${gw.base}/console/mandates/${mandateId}`);
    const table = page.getByTestId('leases');
    const row = table.locator('tbody tr').filter({ hasText: 'everything' });
    await row.filter({ hasText: 'active' }).waitFor();
    const cells = (await row.locator('td').allTextContents()).map((t) => t.trim());
    assert.equal(cells[0], 'everything');
    assert.equal(cells[1], 'mandate-token');
    assert.match(cells[2] ?? '', new RegExp(AUDIENCE.replaceAll('.', '\\.')));
    assert.match(cells[2] ?? '', /echo/, 'the narrowed scope');
    assert.match(cells[3] ?? '', /active/);
    assert.ok((cells[5] ?? '').length > 0, 'an expiry is shown');
    // The time element carries the expiry; it is no later than the token's lifetime (120 s) from now.
    const at = await row.locator('td').nth(5).locator('time').getAttribute('datetime');
    assert.ok(at !== null, 'expiry as a <time>');
    const expires = Date.parse(at);
    assert.ok(expires > Date.now() && expires <= Date.now() + 121_000, `expiry ${at}`);
    await noSecretInDom();
  });

  test('when the mandate completes the row turns revoked with the reason, live', async () => {
    await page.goto(`${gw.base}/console/mandates/${mandateId}`);
    const row = page.getByTestId('leases').locator('tbody tr').filter({ hasText: 'everything' });
    await row.filter({ hasText: 'active' }).waitFor();
    await gw.broker.mandates.complete(mandateId, { type: 'agent', id: TESTER.id });
    await gw.broker.leases.service.settled();
    await row.filter({ hasText: 'revoked' }).waitFor();
    assert.match((await row.textContent()) ?? '', /mandate completed/);
    await noSecretInDom();
    await assert.rejects(gw.broker.leases.upstreamTokens.verify(token), 'the upstream token is refused once the mandate ended');
  });
});
