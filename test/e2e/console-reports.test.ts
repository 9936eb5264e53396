// The console's Reports page in a real browser (Debian's Chromium via playwright-core) against a
// demo broker: an admin opens a report, switches to the control map of one framework; values are
// React text, so markup in a principal's name is shown, never run.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { chromiumSkip, launchChromium } from '../helpers/console-browser.js';
import { ensureConsoleBuilt } from '../helpers/console-build.js';
import { freePort } from '../identity/helpers.js';

// Skipped only on a developer machine without Chromium (the reason is the skip value); under CI a
// missing browser fails the run instead (test/helpers/console-browser.ts).
describe('console reports page (Chromium, demo broker)', { skip: chromiumSkip }, () => {
  let t: TestApp;
  let base: string;
  let browser: Browser;

  before(async () => {
    ensureConsoleBuilt();
    const port = await freePort();
    t = await buildTestApp({ config: { server: { port }, audit: { checkpointIntervalMs: 0 } } });
    await t.app.listen({ host: '127.0.0.1', port });
    base = `http://127.0.0.1:${port}`;
    await t.broker.principals.create({
      id: 'markup-human',
      actorType: 'human',
      displayName: '<img src=x onerror=window.__xss=1>',
      status: 'active',
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close().catch(() => {});
    await t?.close();
  });

  test('an admin reads the inventory and the control map of one framework', async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(30_000);
    const page = await context.newPage();
    await page.goto(`${base}/console/`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: /Alice Admin/ }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Reports' }).click();
    await page.getByRole('heading', { name: 'Inventory of principals' }).waitFor();
    await page.getByTestId('report-rows').getByText('<img src=x onerror=window.__xss=1>').waitFor();
    assert.equal(await page.locator('main img').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
    await page.getByTestId('report-name').selectOption('controls');
    await page.getByRole('combobox', { name: /^Framework/ }).selectOption('owasp-nhi');
    await page.getByRole('heading', { name: /Control map: OWASP Non-Human Identities/ }).waitFor();
    await page.getByTestId('report-rows').getByText('Improper Offboarding').waitFor();
    assert.equal(await page.getByTestId('report-rows').locator('tbody tr').count(), 10);
    await context.close();
  });
});
