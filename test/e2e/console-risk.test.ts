// The console's risk views in Chromium: after an agent probes tools outside its mandate, the agents
// page shows its score and leading signal, and the mandate page shows the tree's score, each
// signal's contribution and the timeline of automatic responses (held, then revoked).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type GatewayHarness, startGateway, TESTER } from '../gateway/harness.js';
import { ensureConsoleBuilt } from '../helpers/console-build.js';

const CHROMIUM = process.env.MANDATE_CHROMIUM ?? '/usr/bin/chromium';
if (process.env.CI && !existsSync(CHROMIUM)) throw new Error(`Chromium is required under CI but missing at ${CHROMIUM}`);

// Skipped only on a developer machine without Chromium (the reason is the skip value); under CI the
// line above makes a missing browser fail the run instead.
describe('console: risk (Chromium)', { skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}` }, () => {
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
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    context.setDefaultTimeout(30_000);
    page = await context.newPage();
    await page.goto(`${gw.base}/console/`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: /Alice Admin/ }).click();
    await page.getByTestId('signed-in-as').filter({ hasText: 'Alice Admin' }).waitFor();
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
