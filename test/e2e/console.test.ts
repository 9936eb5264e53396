// End to end, in a real browser: Debian's Chromium (playwright-core) drives the console of a real
// demo broker while the real demo agent (`src/demo/agent.ts`, a separate process with the MCP SDK
// client) runs the refund scenario. Sign in through the development issuer (authorization code +
// PKCE); menus and buttons follow each human's roles (the admin cannot approve, the approver sees
// no page the API would refuse); the refund reads $249.00 from the catalog's amount hint; approve
// the agent's pending call and see the card close; see the retried call succeed and the audit
// timeline update live; open explain with the in-browser inclusion proof; revoke the root mandate
// after a confirmation that counts its descendants; check the charts' scales and titles and that
// a policy containing markup renders as text. One broker, one browser, one agent run.
//
// Screenshots of every step go to test-artifacts/; with MANDATE_SCREENSHOTS_DIR set (npm run
// docs:screenshots) the ones the docs show are written there too, as console-NAME.png.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { DEMO_POLICY_DIR } from '../../src/policy/source.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { ensureConsoleBuilt, ROOT } from '../helpers/console-build.js';
import { freePort } from '../identity/helpers.js';

const CHROMIUM = process.env.MANDATE_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
/** Where the docs' screenshots go when regenerating them (scripts/screenshots.ts). */
const DOCS_SHOTS = process.env.MANDATE_SCREENSHOTS_DIR;
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const TIMEOUT = 30_000;

/** The demo agent as a separate process; its stdout is the narrative the e2e waits on. */
class AgentRun {
  readonly #proc: ChildProcess;
  #out = '';
  readonly exited: Promise<number | null>;

  constructor(base: string, dataDir: string) {
    this.#proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/demo/agent.ts',
        '--url',
        base,
        '--data-dir',
        dataDir,
        '--poll-seconds',
        '1',
        '--keep-open',
        '--approval-timeout-seconds',
        '180',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#proc.stdout?.on('data', (b: Buffer) => {
      this.#out += b.toString();
    });
    this.#proc.stderr?.on('data', (b: Buffer) => {
      this.#out += b.toString();
    });
    this.exited = new Promise((resolve) => this.#proc.on('exit', (code) => resolve(code)));
  }

  get output(): string {
    return this.#out;
  }

  /** Resolves with the first match of `re` in the agent's output. */
  async waitFor(re: RegExp, timeoutMs = 120_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#out.match(re);
      if (m !== null) return m;
      if (this.#proc.exitCode !== null) throw new Error(`the agent exited before ${re}:\n${this.#out}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}:\n${this.#out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  kill(): void {
    if (this.#proc.exitCode === null) this.#proc.kill('SIGTERM');
  }
}

/** A screenshot in test-artifacts/; `docs` ones also in MANDATE_SCREENSHOTS_DIR as console-NAME.png. */
async function shot(page: Page, name: string, options: { docs?: boolean; fullPage?: boolean } = {}): Promise<void> {
  const png = await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: options.fullPage ?? true });
  if (options.docs && DOCS_SHOTS !== undefined) writeFileSync(join(DOCS_SHOTS, `console-${name}.png`), png);
}

/** The labels of the main navigation, in order. */
async function navLabels(page: Page): Promise<string[]> {
  return page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
}

// A policy whose annotation and comment carry markup: the Policies page must show it as text.
const MARKUP_POLICY = `@id("markup-<img src=x onerror=window.__xss=2>")
forbid (principal, action, resource)
// Markup in a policy is text on the Policies page: <script>window.__xss = 1</script>
when { false };`;

async function signIn(page: Page, base: string, human: 'Alice Admin' | 'Bob Support Lead' | 'Carol Finance'): Promise<void> {
  await page.goto(`${base}/console/`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // The development issuer's page: pick a seeded human.
  await page.getByRole('button', { name: new RegExp(human) }).click();
  await page.getByTestId('signed-in-as').filter({ hasText: human }).waitFor();
}

// Skipped locally without Chromium; under CI (.ci/run installs it) a missing browser fails the run.
if (process.env.CI && !existsSync(CHROMIUM)) throw new Error(`Chromium is required under CI but missing at ${CHROMIUM}`);

describe('console end to end (Chromium, demo broker, demo agent)', {
  skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}`,
}, () => {
  let t: TestApp;
  let base: string;
  let policyDir: string;
  let browser: Browser;
  let alice: BrowserContext;
  let bob: BrowserContext;
  let carol: BrowserContext;
  let agent: AgentRun | undefined;

  before(async () => {
    ensureConsoleBuilt();
    mkdirSync(ARTIFACTS, { recursive: true });
    if (DOCS_SHOTS !== undefined) mkdirSync(DOCS_SHOTS, { recursive: true });
    // The demo policies plus one whose source carries markup.
    policyDir = mkdtempSync(join(tmpdir(), 'mandate-e2e-policies-'));
    cpSync(DEMO_POLICY_DIR, policyDir, { recursive: true });
    writeFileSync(join(policyDir, '90-markup.cedar'), `${MARKUP_POLICY}\n`);
    const port = await freePort();
    t = await buildTestApp({ config: { server: { port }, audit: { checkpointIntervalMs: 0 }, policy: { dir: policyDir } } });
    await t.app.listen({ host: '127.0.0.1', port });
    base = `http://127.0.0.1:${port}`;
    // One browser; an isolated context per human (sessionStorage, cookies).
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const context = async () => {
      const c = await browser.newContext({ viewport: { width: 1366, height: 900 } });
      c.setDefaultTimeout(TIMEOUT);
      return c;
    };
    alice = await context();
    bob = await context();
    carol = await context();
  });

  after(async () => {
    agent?.kill();
    await browser?.close().catch(() => {});
    await t?.close();
    if (policyDir) rmSync(policyDir, { recursive: true, force: true });
  });

  test('sign in, approve a real agent call by role, watch it run, explain it, revoke with a counted cascade', async () => {
    const admin = await alice.newPage();
    await signIn(admin, base, 'Alice Admin');
    // An admin holds every admin permission: every page is offered.
    assert.deepEqual(await navLabels(admin), ['Overview', 'Approvals', 'Agents', 'Mandates', 'Audit', 'Policies', 'Reports']);
    await shot(admin, 'overview-empty');

    agent = new AgentRun(base, t.dataDir);
    const [, mandateId] = await agent.waitFor(/mandate (mnd_[A-Za-z0-9_-]+): "Resolve ticket/);
    const [, approvalId] = await agent.waitFor(/waiting for approval (apr_[A-Za-z0-9-]+)/);
    assert.ok(mandateId && approvalId);

    // The admin watches the audit timeline of refund executions before anything is allowed.
    await admin.goto(`${base}/console/audit?tool=helpdesk.execute_refund&outcome=allow`);
    await admin.getByText(/No audit events match/).waitFor();

    // The admin sees the live approval (the refund as money) but no Approve/Deny: it needs finance.
    await admin.goto(`${base}/console/approvals/${approvalId}`);
    const adminCard = admin.getByTestId('approval');
    await adminCard.getByTestId('amount-amountCents').getByText('$249.00').waitFor();
    assert.equal(await adminCard.getAttribute('data-state'), 'live');
    await adminCard
      .getByTestId('cannot-decide')
      .getByText(/needs one of the roles finance; you have admin/)
      .waitFor();
    assert.equal(await adminCard.getByRole('button', { name: /Approve|Deny/ }).count(), 0);
    await shot(admin, 'approval-cannot-decide', { docs: true });

    // Bob approves things, but not a request made on his own behalf; and an approver is offered
    // only the pages the API lets him read: a typed URL says why instead of "forbidden".
    const bobPage = await bob.newPage();
    await signIn(bobPage, base, 'Bob Support Lead');
    assert.deepEqual(await navLabels(bobPage), ['Overview', 'Approvals']);
    await bobPage.goto(`${base}/console/approvals/${approvalId}`);
    await bobPage
      .getByTestId('cannot-decide')
      .getByText(/the human this agent acts for/)
      .waitFor();
    assert.equal(await bobPage.getByRole('button', { name: 'Approve' }).count(), 0);
    for (const page of ['agents', 'mandates', 'audit', 'policies']) {
      await bobPage.goto(`${base}/console/${page}`);
      await bobPage.getByTestId('not-permitted').waitFor();
      assert.equal(await bobPage.getByText(/ERR_FORBIDDEN/).count(), 0, page);
    }

    // Carol (finance) signs in, sees only her pages, and finds the pending approval in her inbox.
    const approver = await carol.newPage();
    await signIn(approver, base, 'Carol Finance');
    assert.deepEqual(await navLabels(approver), ['Overview', 'Approvals']);
    await approver.getByRole('link', { name: 'Approvals' }).click();
    const card = approver.getByTestId('approval').filter({ hasText: 'helpdesk.execute_refund' });
    await card.waitFor();
    await card.getByTestId('amount-amountCents').getByText('$249.00').waitFor();
    await card.getByText('24900 minor units, USD').waitFor();
    await card.getByTestId('approval-state').getByText(/Live/).waitFor();
    await card
      .getByText(/Resolve ticket T-4821/)
      .first()
      .waitFor();
    await card.getByText('support-triage', { exact: false }).first().waitFor();
    await card.getByText(/large-refund-needs-finance/).waitFor();
    // No links to pages she may not open (the chain's mandates).
    assert.equal(await card.getByRole('link', { name: 'support-triage' }).count(), 0);
    await shot(approver, 'approvals-pending', { docs: true });
    await card.getByLabel('Comment (optional)').fill('duplicate charge confirmed on the statement');
    await card.getByRole('button', { name: 'Approve' }).click();
    await approver.getByRole('combobox', { name: /^Show/ }).selectOption('all');
    const decided = approver.getByTestId('approval').filter({ hasText: 'duplicate charge confirmed' });
    await decided.waitFor();

    // The agent's retry of the same call now runs.
    await agent.waitFor(/approved: the retried call ran/);
    await agent.waitFor(/denied \(RPC_CALL_DENIED\)/);
    await agent.waitFor(/Leave the mandates open/);
    assert.equal(await agent.exited, 0, agent.output);

    // The decided card is closed, says so in words, and offers nothing to click.
    await decided
      .getByTestId('approval-state')
      .getByText(/Closed: Approved by \S*carol as finance and used: the call ran/)
      .waitFor();
    assert.equal(await decided.getAttribute('data-state'), 'stale');
    assert.equal(await decided.getByRole('button').count(), 0);
    await shot(approver, 'approval-closed', { docs: true });

    // Without a reload, the admin's filtered timeline shows the allowed execution (server-sent events).
    await admin.goto(`${base}/console/audit?tool=helpdesk.execute_refund&outcome=allow`);
    const allowed = admin.getByTestId('audit-timeline').locator('tr[data-type="decision"]');
    await allowed.first().waitFor();
    await shot(admin, 'audit-timeline', { docs: true });
    await allowed.first().getByRole('link', { name: /^\d+$/ }).click();

    // Explain: the human, the mandate, the decision and carol's approval; the proof checks in the browser.
    const steps = admin.getByTestId('explain-steps');
    await steps.getByText('bob', { exact: true }).waitFor();
    await steps.getByRole('link', { name: mandateId }).waitFor();
    await steps.getByText(/human:carol/).waitFor();
    await admin
      .getByTestId('inclusion-result')
      .getByText(/Verified in this browser/)
      .waitFor();
    await admin.getByText('valid for the log key').waitFor();
    // The event's arguments, with the amount as money.
    await admin.getByTestId('amount-amountCents').getByText('$249.00').waitFor();
    await shot(admin, 'audit-event-explain', { docs: true });

    // Revoke the root mandate: a confirmation counts the delegated child; cancel changes nothing.
    await admin.goto(`${base}/console/mandates/${mandateId}`);
    const tree = admin.getByTestId('delegation-tree');
    await tree.locator('[data-status="active"]').nth(1).waitFor();
    assert.equal(await tree.locator('g[data-mandate]').count(), 2);
    // Budgets read as money too (the sum of refunds granted).
    await admin.getByText(/\$249\.00 \/ \$250\.00 amountCents/).waitFor();
    await shot(admin, 'mandate-tree');
    await admin.getByLabel('Reason (optional)').fill('e2e: end the task');
    await admin.getByRole('button', { name: 'Revoke mandate…' }).click();
    const dialog = admin.getByTestId('revoke-dialog');
    await dialog
      .getByTestId('revoke-count')
      .getByText(/and 1 delegated mandate under it: mnd_/)
      .waitFor();
    // The viewport only: a modal dialog's backdrop covers the viewport, not the full page.
    await shot(admin, 'revoke-confirm', { docs: true, fullPage: false });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal((await t.broker.mandates.get(mandateId))?.status, 'active', 'cancel revokes nothing');
    await admin.getByRole('button', { name: 'Revoke mandate…' }).click();
    await admin.getByTestId('revoke-dialog').getByRole('button', { name: 'Revoke 2 mandates' }).click();
    await admin.getByText(/Revoked 2 mandates/).waitFor();
    await tree.locator('[data-status="revoked"]').nth(1).waitFor();
    assert.equal(await tree.locator('[data-status="active"]').count(), 0);
    const child = await tree.locator('g[data-mandate]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-mandate')));
    for (const id of child) assert.equal((await t.broker.mandates.get(id ?? ''))?.status, 'revoked');
    await shot(admin, 'mandate-revoked', { docs: true });

    // The other main pages render with data.
    await admin.goto(`${base}/console/`);
    await admin.getByRole('heading', { name: /Overview/ }).waitFor();
    await admin.locator('figure svg').first().waitFor();
    await shot(admin, 'overview', { docs: true });
    await admin.goto(`${base}/console/agents`);
    await admin.getByTestId('agent-support-triage').waitFor();
    await shot(admin, 'agents', { docs: true });
    // Quarantine from the inventory: the registry changes and the row says so (then undo it).
    await admin.getByRole('button', { name: 'Quarantine remediation' }).click();
    await admin.getByTestId('agent-remediation').getByText('quarantined').waitFor();
    // The registry this replica holds follows the change feed: give it a moment.
    for (let i = 0; i < 50 && (await t.broker.agents.get('remediation'))?.principal.status !== 'quarantined'; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await t.broker.agents.get('remediation'))?.principal.status, 'quarantined');
    await admin.getByRole('button', { name: 'Activate remediation' }).click();
    await admin.getByTestId('agent-remediation').getByText('active', { exact: true }).waitFor();
    await admin.goto(`${base}/console/mandates`);
    await admin.getByTestId(`mandate-row-${mandateId}`).waitFor();
    await shot(admin, 'mandates');
  });

  test('charts: every point under the top tick, whole-number ticks for counts, separate approval series, titles in human units', async () => {
    const page = await alice.newPage();
    await signIn(page, base, 'Alice Admin');
    const figures = page.locator('figure');
    await figures.first().waitFor();
    const check = async (window: string) => {
      const charts = await figures.evaluateAll((nodes) =>
        nodes.map((f) => {
          const ticks = [...f.querySelectorAll('[data-tick]')].map((g) => ({
            value: Number(g.getAttribute('data-tick')),
            y: Number(g.querySelector('line')?.getAttribute('y1')),
          }));
          const topY = Math.min(...ticks.map((t) => t.y));
          return {
            title: f.querySelector('figcaption')?.textContent ?? '',
            ticks: ticks.map((t) => t.value),
            topY,
            pointYs: [...f.querySelectorAll('circle')].map((c) => Number(c.getAttribute('cy'))),
            barYs: [...f.querySelectorAll('rect')].map((r) => Number(r.getAttribute('y'))),
            series: [...f.querySelectorAll('rect[data-series]')].map((r) => ({
              series: r.getAttribute('data-series'),
              x: Number(r.getAttribute('x')),
            })),
          };
        }),
      );
      assert.equal(charts.length, 3, window);
      for (const c of charts) {
        for (const y of [...c.pointYs, ...c.barYs])
          assert.ok(y >= c.topY - 0.01, `${window}: "${c.title}" has a mark at y=${y} above the top tick (y=${c.topY})`);
      }
      const [calls, approvals, latency] = charts;
      assert.ok(calls && approvals && latency);
      for (const c of [calls, approvals]) for (const v of c.ticks) assert.ok(Number.isInteger(v), `${window}: "${c.title}" tick ${v}`);
      // Requested and decided are drawn side by side, never one on top of the other.
      const requested = approvals.series.filter((r) => r.series === 'requested');
      const decidedBars = approvals.series.filter((r) => r.series === 'decided');
      assert.ok(requested.length > 0 && decidedBars.length > 0, `${window}: both approval series are drawn`);
      for (const r of requested) assert.ok(!decidedBars.some((d) => d.x === r.x), `${window}: approval bars overlap`);
      assert.ok(latency.pointYs.length > 0, `${window}: the approval latency is plotted`);
      return charts;
    };
    const hour = await check('last hour');
    assert.equal(hour[0]?.title, 'Calls per 5 min');
    await page.getByRole('combobox', { name: /^Window/ }).selectOption({ label: 'last 7 days' });
    await figures.first().getByText('Calls per 6 h').waitFor();
    const week = await check('last 7 days');
    assert.equal(week[1]?.title, 'Approvals requested and decided per 6 h');
    await page.getByRole('combobox', { name: /^Window/ }).selectOption({ label: 'last 24 hours' });
    await figures.first().getByText('Calls per 1 h').waitFor();
  });

  test('policies: the Cedar source, highlighted; markup in a policy is shown as text, never run', async () => {
    const page = await alice.newPage();
    await signIn(page, base, 'Alice Admin');
    await page.goto(`${base}/console/policies`);
    await page.getByText(/Valid: \d+ policies/).waitFor();
    const finance = page.getByTestId('policy-large-refund-needs-finance');
    await finance
      .locator('pre.cedar')
      .getByText(/amountCents/)
      .waitFor();
    assert.ok((await finance.locator('.tok-effect').count()) >= 1, 'the effect is highlighted');
    assert.ok((await finance.locator('.tok-keyword').count()) >= 3, 'keywords are highlighted');
    assert.ok((await finance.locator('.tok-string').count()) >= 1, 'strings are highlighted');
    const markup = page.getByTestId('policy-markup-<img src=x onerror=window.__xss=2>');
    const source = markup.locator('pre.cedar');
    await source.waitFor();
    // Exactly the file's text, with the markup as characters: no element was made from it.
    assert.equal(await source.textContent(), MARKUP_POLICY);
    await source.locator('.tok-comment').getByText('<script>window.__xss = 1</script>', { exact: false }).waitFor();
    assert.equal(await page.locator('main script, main img').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
    await page.getByRole('button', { name: 'Explain' }).click();
    await page
      .getByTestId('whatif-result')
      .getByText(/approval required/)
      .waitFor();
    await shot(page, 'policies');
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, 'policies-source', { docs: true, fullPage: false });
  });

  test('keyboard: the main navigation is reachable and announces the current page', async () => {
    const page = await alice.newPage();
    await page.goto(`${base}/console/agents`);
    // sessionStorage is per tab: a new tab signs in again (the issuer remembers nothing either).
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: /Alice Admin/ }).click();
    await page.getByRole('heading', { name: /Agents/ }).waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    const current = page.getByRole('navigation', { name: 'Main' }).locator('[aria-current="page"]');
    assert.equal(await current.textContent(), 'Agents');
    // Every form control of the audit filters has an accessible name.
    await page.goto(`${base}/console/audit`);
    // count() does not wait: the filters render with the page, which a loaded machine takes a while to.
    await page.getByRole('combobox', { name: /^Decision/ }).waitFor();
    for (const name of ['Agent', 'Mandate', 'Human', 'Tool', 'Event type', 'From', 'To']) {
      assert.equal(
        await page
          .getByRole('textbox', { name, exact: true })
          .or(page.getByLabel(name, { exact: true }))
          .count(),
        1,
        name,
      );
    }
    // A select's accessible name also carries its current option, hence the prefix.
    assert.equal(await page.getByRole('combobox', { name: /^Decision/ }).count(), 1);
  });
});
