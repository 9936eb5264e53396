// End to end, in a real browser: Debian's Chromium (playwright-core) drives the console of a real
// demo broker while the real demo agent (`src/demo/agent.ts`, a separate process with the MCP SDK
// client) runs the refund scenario. Sign in through the development issuer (authorization code +
// PKCE), approve the agent's pending call, see the retried call succeed and the audit timeline
// update live, open explain with the in-browser inclusion proof, revoke the root mandate and see
// its child revoked. Screenshots of the main pages go to test-artifacts/.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { ensureConsoleBuilt, ROOT } from '../helpers/console-build.js';
import { freePort } from '../identity/helpers.js';

const CHROMIUM = process.env.MANDATE_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
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

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

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
  let userData: string;
  let alice: BrowserContext;
  let carol: BrowserContext;
  let agent: AgentRun | undefined;

  before(async () => {
    ensureConsoleBuilt();
    mkdirSync(ARTIFACTS, { recursive: true });
    const port = await freePort();
    t = await buildTestApp({ config: { server: { port }, audit: { checkpointIntervalMs: 0 } } });
    await t.app.listen({ host: '127.0.0.1', port });
    base = `http://127.0.0.1:${port}`;
    userData = mkdtempSync(join(tmpdir(), 'mandate-chromium-'));
    // One browser, two isolated contexts: the admin watching, the finance approver deciding.
    const launch = (dir: string) =>
      chromium.launchPersistentContext(dir, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1366, height: 900 },
      });
    alice = await launch(join(userData, 'alice'));
    carol = await launch(join(userData, 'carol'));
    alice.setDefaultTimeout(TIMEOUT);
    carol.setDefaultTimeout(TIMEOUT);
  });

  after(async () => {
    agent?.kill();
    await alice?.close().catch(() => {});
    await carol?.close().catch(() => {});
    await t?.close();
    if (userData) rmSync(userData, { recursive: true, force: true });
  });

  test('sign in, approve a real agent call, watch it run, explain it, revoke with cascade', async () => {
    const admin = alice.pages()[0] ?? (await alice.newPage());
    await signIn(admin, base, 'Alice Admin');
    await shot(admin, 'overview-empty');

    agent = new AgentRun(base, t.dataDir);
    const [, mandateId] = await agent.waitFor(/mandate (mnd_[A-Za-z0-9_-]+): "Resolve ticket/);
    const [, approvalId] = await agent.waitFor(/waiting for approval (apr_[A-Za-z0-9-]+)/);
    assert.ok(mandateId && approvalId);

    // The admin watches the audit timeline of refund executions before anything is allowed.
    await admin.goto(`${base}/console/audit?tool=helpdesk.execute_refund&outcome=allow`);
    await admin.getByText(/No audit events match/).waitFor();

    // Carol (finance) signs in and finds the pending approval in her inbox.
    const approver = carol.pages()[0] ?? (await carol.newPage());
    await signIn(approver, base, 'Carol Finance');
    await approver.getByRole('link', { name: 'Approvals' }).click();
    const card = approver.getByTestId('approval').filter({ hasText: 'helpdesk.execute_refund' });
    await card.waitFor();
    await card.getByText('24900').waitFor();
    await card
      .getByText(/Resolve ticket T-4821/)
      .first()
      .waitFor();
    await card.getByText('support-triage', { exact: false }).first().waitFor();
    await card.getByText(/large-refund-needs-finance/).waitFor();
    await shot(approver, 'approvals-pending');
    await card.getByLabel('Comment (optional)').fill('duplicate charge confirmed on the statement');
    await card.getByRole('button', { name: 'Approve' }).click();
    await approver.getByRole('combobox', { name: /^Show/ }).selectOption('all');
    await approver.getByTestId('approval').filter({ hasText: 'duplicate charge confirmed' }).waitFor();

    // The agent's retry of the same call now runs.
    await agent.waitFor(/approved: the retried call ran/);
    await agent.waitFor(/denied \(RPC_CALL_DENIED\)/);
    await agent.waitFor(/Leave the mandates open/);
    assert.equal(await agent.exited, 0, agent.output);

    // Without a reload, the admin's filtered timeline shows the allowed execution (server-sent events).
    const allowed = admin.getByTestId('audit-timeline').locator('tr[data-type="decision"]');
    await allowed.first().waitFor();
    await shot(admin, 'audit-timeline');
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
    await shot(admin, 'audit-event-explain');

    // Revoke the root mandate: its delegated child follows, live in the tree.
    await admin.goto(`${base}/console/mandates/${mandateId}`);
    const tree = admin.getByTestId('delegation-tree');
    await tree.locator('[data-status="active"]').nth(1).waitFor();
    assert.equal(await tree.locator('g[data-mandate]').count(), 2);
    await shot(admin, 'mandate-tree');
    await admin.getByLabel('Reason (optional)').fill('e2e: end the task');
    await admin.getByRole('button', { name: 'Revoke mandate' }).click();
    await admin.getByText(/Revoked 2 mandates/).waitFor();
    await tree.locator('[data-status="revoked"]').nth(1).waitFor();
    assert.equal(await tree.locator('[data-status="active"]').count(), 0);
    const child = await tree.locator('g[data-mandate]').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-mandate')));
    for (const id of child) assert.equal((await t.broker.mandates.get(id ?? ''))?.status, 'revoked');
    await shot(admin, 'mandate-revoked');

    // The other main pages render with data.
    await admin.goto(`${base}/console/`);
    await admin.getByRole('heading', { name: /Overview/ }).waitFor();
    await admin.locator('figure svg').first().waitFor();
    await shot(admin, 'overview');
    await admin.goto(`${base}/console/agents`);
    await admin.getByTestId('agent-support-triage').waitFor();
    await shot(admin, 'agents');
    // Quarantine from the inventory: the registry changes and the row says so (then undo it).
    await admin.getByRole('button', { name: 'Quarantine remediation' }).click();
    await admin.getByTestId('agent-remediation').getByText('quarantined').waitFor();
    assert.equal((await t.broker.agents.get('remediation'))?.principal.status, 'quarantined');
    await admin.getByRole('button', { name: 'Activate remediation' }).click();
    await admin.getByTestId('agent-remediation').getByText('active', { exact: true }).waitFor();
    await admin.goto(`${base}/console/mandates`);
    await admin.getByTestId(`mandate-row-${mandateId}`).waitFor();
    await shot(admin, 'mandates');
    await admin.goto(`${base}/console/policies`);
    await admin.getByText(/Valid: \d+ policies/).waitFor();
    await admin.getByRole('button', { name: 'Explain' }).click();
    await admin
      .getByTestId('whatif-result')
      .getByText(/approval required/)
      .waitFor();
    await shot(admin, 'policies');
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
