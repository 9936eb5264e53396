// Headless Chromium for the console's browser tests: where it is, whether a suite runs, and a page
// signed in to a broker's console through the development sign-in.
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.MANDATE_CHROMIUM ?? '/usr/bin/chromium';
// CI never skips: .ci/run installs Chromium, so a missing browser there is a failure, not a skip.
if (process.env.CI && !existsSync(CHROMIUM)) throw new Error(`Chromium is required under CI but missing at ${CHROMIUM}`);

/** `describe`'s skip option: the reason on a machine without Chromium (never under CI, see above). */
export const chromiumSkip: string | false = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}`;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}

/** A page on `${base}/console/`, signed in as the seeded operator whose button matches `who` (shown as `name`). */
export async function signedInConsole(browser: Browser, base: string, who: RegExp, name: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  context.setDefaultTimeout(30_000);
  const page = await context.newPage();
  await page.goto(`${base}/console/`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: who }).click();
  await page.getByTestId('signed-in-as').filter({ hasText: name }).waitFor();
  return page;
}
