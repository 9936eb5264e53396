// The console's risk views in Chromium: after an agent probes tools outside its mandate, the agents
// page shows its score and leading signal, and the mandate page shows the tree's score, each
// signal's contribution and the timeline of automatic responses (held, then revoked).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { type GatewayHarness, startGateway, TESTER } from '../gateway/harness.js';
import { chromiumSkip, launchChromium, signedInConsole } from '../helpers/console-browser.js';
import { ensureConsoleBuilt } from '../helpers/console-build.js';

// Skipped only on a developer machine without Chromium (the reason is the skip value); under CI a
// missing browser fails the run instead (test/helpers/console-browser.ts).
describe('console: risk (Chromium)', { skip: chromiumSkip }, () => {
  let gw: GatewayHarness;
  let browser: Browser;
  let page: Page;
  let mandateId: string;

  before(async () => {
    ensureConsoleBuilt();
    gw = await startGateway({ config: { server: { rateLimit: { enabled: false } } } });
    const opened = await gw.mandate([{ tool: 'helpdesk.search_tickets' }]);
    mandateId = opened.mandateId;
    const client = await gw.connect(opened.token);
    for (let i = 0; i < 10; i++) await client.callTool({ name: `secret.tool_${i}`, arguments: {} }).catch(() => {});
    await gw.broker.risk.responder.idle();
    browser = await launchChromium();
    page = await signedInConsole(browser, gw.base, /Alice Admin/, 'Alice Admin');
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await gw?.close();
  });

  test('the agents page shows the prober’s score and its leading signal', async () => {
    await page.goto(`${gw.base}/console/agents`);
    const cell = page.getByTestId(`risk-${TESTER.id}`);
    await cell.filter({ hasText: 'scope_probe' }).waitFor();
    const score = Number((await cell.locator('.badge').textContent())?.trim());
    assert.ok(score >= 50, `agent score ${score}`);
  });

  test('the mandate page shows the tree’s signals and the timeline: held, then revoked', async () => {
    await page.goto(`${gw.base}/console/mandates/${mandateId}`);
    await page.getByTestId('risk-signals').filter({ hasText: 'scope_probe' }).waitFor();
    const timeline = page.getByTestId('risk-timeline');
    await timeline.filter({ hasText: 'revoke' }).waitFor();
    const text = (await timeline.textContent()) ?? '';
    assert.match(text, /fired require_approval on the tree at\s+score \d+/);
    assert.ok(text.indexOf('require_approval') < text.indexOf('revoke'), 'held before it was revoked');
    assert.match((await page.getByTestId('risk-scores').textContent()) ?? '', /delegation tree score \d+/);
  });
});
