// Governance reports over a seeded scenario, on SQLite and PostgreSQL: every report's numbers, every
// live check seen failing when configuration or data changes, and evidence packs that verify offline
// and fail when one byte of a cited event changes.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuditService } from '../../src/audit/log.js';
import { verifyProofBundle } from '../../src/audit/proof-bundle.js';
import { buildConfig, type Config } from '../../src/config/load.js';
import { compiledEngine } from '../../src/policy/compiled/engine.js';
import type { LoadedPolicySet } from '../../src/policy/engine.js';
import { SHIPPED_SCHEMA } from '../../src/policy/source.js';
import { type CheckName, checks, controlMap, controlMapSchema, controlsReport, evidenceQueries } from '../../src/reports/controls.js';
import { buildEvidencePack, verifyEvidencePack, writeEvidencePack } from '../../src/reports/evidence.js';
import { reportNames, runReport } from '../../src/reports/index.js';
import { render } from '../../src/reports/render.js';
import type { ReportContext } from '../../src/reports/types.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import type { Store } from '../../src/store/types.js';
import type { CatalogEntry } from '../../src/upstreams/catalog.js';
import { type StoreFactory, storeFactories } from '../helpers/stores.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-06-01T12:00:00Z');

const POLICIES = `
@id("active-agents")
permit (principal is Mandate::Agent, action == Mandate::Action::"call", resource) when { principal.status == "active" };
@id("destructive-needs-admin")
forbid (principal, action == Mandate::Action::"call", resource) when { resource.actionClass == "destructive" }
unless { context has approval && context.approval.approverRole == "admin" };
@id("never-fires")
forbid (principal, action == Mandate::Action::"call", resource) when { context.environment == "nowhere" };
`;

/** A rule on provenance (docs/injection.md): what the L2 data-poisoning check looks for. */
const PROVENANCE_POLICY = `
@id("url-from-tool-output-is-denied")
forbid (principal, action == Mandate::Action::"call", resource)
when { context.intent.args has url && context.intent.args.url.fromToolOutput };
`;

function loadSet(extra = ''): LoadedPolicySet {
  const r = compiledEngine.load({ path: SHIPPED_SCHEMA, text: readFileSync(SHIPPED_SCHEMA, 'utf8') }, [
    { path: 'org.cedar', text: POLICIES + extra },
  ]);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.set;
}

function tool(name: string, actionClass: CatalogEntry['actionClass'], props: string[]): CatalogEntry {
  return {
    name,
    upstream: name.split('.')[0] as string,
    upstreamTool: name.split('.')[1] as string,
    actionClass,
    sensitivity: 'internal',
    sensitiveArgs: [],
    pathArgs: [],
    title: undefined,
    description: undefined,
    inputSchema: { type: 'object', properties: Object.fromEntries(props.map((p) => [p, {}])) },
    annotations: {},
    overridden: [],
    amountArgs: {},
  };
}

const catalog = [
  tool('h.refund', 'execute', ['amountCents', 'customerId']),
  tool('h.search', 'read', ['q']),
  tool('h.delete', 'destructive', ['id']),
  tool('h.unused', 'read', []),
];

function config(over: Record<string, unknown> = {}): Config {
  return buildConfig({ mode: 'production', log: { level: 'silent' }, dataDir: '/tmp/unused', ...over }, { env: {} });
}

async function seed(store: Store, audit: AuditService, clock: { t: number }): Promise<void> {
  const p = (id: string, type: string, owner: string | null, status: string, created: number) =>
    store.run(
      'INSERT INTO principals (id, actor_type, display_name, owner, environment, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [id, type, id, owner, type === 'agent' ? 'production' : null, status, created, created],
    );
  await p('alice', 'human', null, 'active', NOW - 200 * DAY);
  await p('dave', 'human', null, 'disabled', NOW - 200 * DAY);
  await p('svc', 'service', null, 'active', NOW - 200 * DAY);
  await p('a1', 'agent', 'alice', 'active', NOW - 100 * DAY);
  await p('a2', 'agent', 'dave', 'active', NOW - 2 * DAY);
  await p('a3', 'agent', 'ghost', 'active', NOW - 2 * DAY);
  await p('a4', 'agent', 'alice', 'active', NOW - 100 * DAY);
  const ceiling = {
    tools: [{ tool: 'h.refund', args: { amountCents: { max: 50000 } } }, { tool: 'h.search' }, { tool: 'h.delete' }],
    delegable: true,
  };
  for (const [id, c] of [
    ['a1', ceiling],
    ['a2', { tools: [{ tool: 'h.search' }], delegable: false }],
    ['a3', { tools: [{ tool: 'h.search' }], delegable: false }],
    ['a4', { tools: [{ tool: 'h.search' }], delegable: false }],
  ] as const) {
    await store.run(
      'INSERT INTO agent_profiles (agent_id, identity_key, ceiling, max_ttl_seconds, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
      [id, `spiffe:spiffe://t/${id}`, JSON.stringify(c), id === 'a4' ? 172800 : 3600, NOW, NOW],
    );
  }
  const m = (id: string, agent: string, parent: string | null, depth: number, path: string, ttl: number) =>
    store.run(
      `INSERT INTO mandates (id, agent_id, parent_id, root_id, path, depth, on_behalf_of, purpose, task_type, environment, scope, status, expires_at, created_at)
       VALUES (?, ?, ?, 'm1', ?, ?, ?, 'p', 't', 'production', '{"tools":[]}', 'active', ?, ?)`,
      [id, agent, parent, path, depth, parent === null ? 'alice' : null, NOW - DAY + ttl * 1000, NOW - DAY],
    );
  await m('m1', 'a1', null, 0, '/m1/', 900);
  await m('m2', 'a2', 'm1', 1, '/m1/m2/', 600);
  await m('m3', 'a3', 'm1', 1, '/m1/m3/', 600);
  await m('m4', 'a3', 'm2', 2, '/m1/m2/m4/', 300);
  clock.t = NOW - DAY;
  const decide = (
    mandateId: string,
    t: string,
    cls: string,
    outcome: string,
    args: Record<string, unknown>,
    policies: string[],
    extra = {},
  ) =>
    audit.append({
      type: 'decision',
      actors: [{ type: 'agent', id: 'a1' }],
      mandateId,
      environment: 'production',
      data: { decisionId: `d-${Math.random()}`, outcome, tool: t, actionClass: cls, args, reasons: [], policies, ...extra },
    });
  await decide('m1', 'h.refund', 'execute', 'allow', { amountCents: 1200, customerId: 'C-1' }, ['active-agents']);
  await decide('m1', 'h.refund', 'execute', 'allow', { amountCents: 3400, customerId: 'C-1' }, ['active-agents']);
  await decide('m1', 'h.search', 'read', 'allow', { q: 'x' }, ['active-agents']);
  await decide('m1', 'h.delete', 'destructive', 'allow', { id: 'T-1' }, ['active-agents'], { approvalId: 'ap-1' });
  await decide('m1', 'h.delete', 'destructive', 'deny', { id: 'T-2' }, ['destructive-needs-admin']);
  await decide('m2', 'h.search', 'read', 'allow', { q: 'y' }, ['active-agents']);
  await audit.append({
    type: 'approval.decided',
    actors: [{ type: 'human', id: 'bob' }],
    mandateId: 'm1',
    data: { approvalId: 'ap-1', outcome: 'approved' },
  });
  await audit.append({ type: 'admin.agent.registered', actors: [{ type: 'operator', id: 'alice' }], data: { agentId: 'a1' } });
  const ap = (id: string, status: string, by: string | null, role: string | null, latency: number | null) =>
    store.run(
      `INSERT INTO approvals (id, call_hash, mandate_id, tool, agent_id, status, required_roles, forbid_approvers, decision_id, reasons, context, decided_by, decided_role, created_at, expires_at, decided_at)
       VALUES (?, 'h', 'm1', 'h.delete', 'a1', ?, '[]', '[]', 'd', '[]', '{}', ?, ?, ?, ?, ?)`,
      [id, status, by, role, NOW - DAY, NOW, latency === null ? null : NOW - DAY + latency],
    );
  await ap('ap-1', 'consumed', 'bob', 'admin', 30_000);
  await ap('ap-2', 'approved', 'bob', 'admin', 90_000);
  await ap('ap-3', 'denied', 'carol', 'finance', 120_000);
  await ap('ap-4', 'expired', null, null, null);
  const up = (id: string, updated: number) =>
    store.run(
      `INSERT INTO upstreams (id, display_name, transport, isolation, default_sensitivity, credential_sealed, credential_names, created_at, updated_at)
       VALUES (?, ?, '{"type":"http","url":"https://x.example/mcp"}', 'shared', 'internal', 'sealed', '{"headers":["Authorization"],"env":[]}', ?, ?)`,
      [id, id, NOW - 200 * DAY, updated],
    );
  await up('h', NOW - 100 * DAY);
  await up('g', NOW - 5 * DAY);
  await up('k', NOW - 5 * DAY);
}

for (const factory of await storeFactories()) {
  describe(`governance reports on ${factory.name}`, { skip: factory.skip }, () => {
    let store: Store;
    let audit: AuditService;
    let ctx: ReportContext;
    const clock = { t: NOW, now: () => clock.t };
    const f: StoreFactory = factory;
    const dir = mkdtempSync(join(tmpdir(), 'mandate-evidence-'));

    before(async () => {
      store = await f.open();
      const box = new SecretBox(parseMasterKeys(generateMasterKeySpec()));
      audit = await AuditService.open({ store, secrets: box, clock, origin: 'reports.test/audit' });
      await seed(store, audit, clock);
      clock.t = NOW;
      const prints: Record<string, string[]> = { h: ['hmac:A'], g: ['hmac:A', 'hmac:B'], k: ['hmac:C'] };
      ctx = { db: store, config: config(), now: NOW, catalog, policySet: loadSet(), credentialFingerprints: (id) => prints[id] };
    });
    after(async () => {
      await audit.close();
      await f.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('inventory: principals by actor type, owners, last activity from the audit log', async () => {
      const r = await runReport('inventory', ctx);
      assert.deepEqual(r.summary, {
        principals: 7,
        humans: 2,
        services: 1,
        agents: 4,
        agentsActive: 4,
        agentsQuarantined: 0,
        agentsDisabled: 0,
        agentsNeverActive: 2,
      });
      const a1 = (r.rows as { id: string; lastActivity: string | null }[]).find((x) => x.id === 'a1');
      assert.equal(a1?.lastActivity, new Date(NOW - DAY).toISOString());
      const alice = (r.rows as { id: string; lastActivity: string | null }[]).find((x) => x.id === 'alice');
      assert.equal(alice?.lastActivity, new Date(NOW - DAY).toISOString(), 'a mandate opened on her behalf');
    });

    it('ownership: owner missing, owner disabled, dormant', async () => {
      const r = await runReport('ownership', ctx);
      const rows = r.rows as { agentId: string; finding: string }[];
      assert.deepEqual(
        rows.map((x) => `${x.agentId}:${x.finding}`),
        ['a2:owner_disabled', 'a3:owner_missing', 'a4:dormant'],
      );
      assert.equal(r.summary.dormant, 1);
      const longer = await runReport('ownership', { ...ctx, now: NOW + 40 * DAY });
      assert.equal(longer.summary.dormant, 4, '40 days on, every agent has been idle for 30+ days');
    });

    it('over-privilege: unused grants, observed ranges and a narrower suggested ceiling', async () => {
      const r = await runReport('over-privilege', ctx);
      const fleet = (r.rows as { agentId: string; suggestedCeiling: unknown; allowedCalls: number }[]).find((x) => x.agentId === 'a1');
      assert.equal(fleet?.allowedCalls, 4);
      assert.equal(fleet?.suggestedCeiling, null, 'the fleet report reads no argument values');
      const one = await runReport('over-privilege', ctx, { agentId: 'a1' });
      assert.equal(one.rows.length, 1);
      const a1 = (
        one.rows as { agentId: string; unusedTools: string[]; suggestedCeiling: unknown; allowedCalls: number; usedTools: number }[]
      ).find((x) => x.agentId === 'a1');
      assert.deepEqual(a1?.unusedTools, []);
      assert.equal(a1?.allowedCalls, 4);
      assert.deepEqual(a1?.suggestedCeiling, {
        tools: [
          { tool: 'h.refund', args: { amountCents: { max: 3400, min: 1200 }, customerId: { eq: 'C-1' } } },
          { tool: 'h.search', args: { q: { eq: 'x' } } },
          { tool: 'h.delete', args: { id: { eq: 'T-1' } } },
        ],
        delegable: true,
      });
      assert.equal(r.summary.agentsWithUnusedGrants, 2, 'a3 and a4 never used h.search');
      const narrow = await runReport('over-privilege', { ...ctx, now: NOW }, { since: NOW - DAY / 2 });
      const a1n = (narrow.rows as { agentId: string; unusedTools: string[] }[]).find((x) => x.agentId === 'a1');
      assert.deepEqual(a1n?.unusedTools, ['h.refund', 'h.search', 'h.delete'], 'outside the window nothing was used');
    });

    it('credentials: stale, shared and static-without-lease; token and mandate lifetimes', async () => {
      const r = await runReport('credentials', ctx);
      const rows = r.rows as { upstreamId: string; findings: string[]; sharedWith: string[] }[];
      assert.deepEqual(
        rows.map((x) => [x.upstreamId, x.findings, x.sharedWith]),
        [
          ['g', ['shared', 'static_no_lease'], ['h']],
          ['h', ['stale', 'shared', 'static_no_lease'], ['g']],
          ['k', ['static_no_lease'], []],
        ],
      );
      assert.equal(r.summary.mandateTtlP50Seconds, 600);
      assert.equal(r.summary.mandateTtlMaxSeconds, 900);
      assert.equal(r.summary.agentsAllowedOverOneDay, 1);
      const leased = await runReport('credentials', {
        ...ctx,
        config: config({
          leases: {
            upstreams: {
              k: { type: 'mandate-token', audience: 'https://k.example', inject: { header: 'Authorization', prefix: 'Bearer ' } },
            },
          },
        }),
      }).catch((e: Error) => e);
      if (!(leased instanceof Error)) assert.equal(leased.summary.staticWithoutLease, 2);
    });

    it('approvals: volume, latency, ratio, approvers', async () => {
      const r = await runReport('approvals', ctx);
      assert.equal(r.summary.requested, 4);
      assert.equal(r.summary.approved, 2);
      assert.equal(r.summary.denied, 1);
      assert.equal(r.summary.expiredUnanswered, 1);
      assert.equal(r.summary.approveRatio, 0.667);
      assert.equal(r.summary.latencyP50Seconds, 90);
      assert.equal(r.summary.latencyP95Seconds, 120);
      assert.deepEqual(r.rows, [
        { approver: 'bob', role: 'admin', approved: 2, denied: 0, medianLatencySeconds: 30 },
        { approver: 'carol', role: 'finance', approved: 0, denied: 1, medianLatencySeconds: 120 },
      ]);
    });

    it('coverage: execute tools without an approval rule, unused tools, policies that never matched', async () => {
      const r = await runReport('coverage', ctx);
      const rows = (r.rows as { subject: string; finding: string; count: number | null }[]).map(
        (x) => `${x.finding}:${x.subject}:${x.count}`,
      );
      assert.deepEqual(rows.sort(), [
        'allowed_without_approval:h.refund:2',
        'no_approval_rule:h.refund:null',
        'policy_never_matched:never-fires:0',
        'tool_unused:h.unused:0',
      ]);
    });

    it('delegation: depth and fan-out distribution', async () => {
      const r = await runReport('delegation', ctx);
      assert.deepEqual(
        (r.rows as { measure: string; value: number; mandates: number }[]).map((x) => `${x.measure}${x.value}=${x.mandates}`),
        ['depth0=1', 'depth1=2', 'depth2=1', 'fanout1=1', 'fanout2=1'],
      );
      assert.equal(r.summary.maxDepth, 2);
      assert.equal(r.summary.meanFanout, 1.5);
    });

    it('every report renders in every format, escaped', async () => {
      for (const name of reportNames) {
        const r = await runReport(name, ctx);
        const html = render(r, 'html');
        assert.match(html, /^<!doctype html>/);
        assert.doesNotMatch(html, /<script|<link|src=/);
        assert.ok(render(r, 'csv').split('\r\n').length >= 2);
        assert.ok(JSON.parse(render(r, 'json')).name === name);
        assert.match(render(r, 'md'), /^# /);
      }
      const hostile = await runReport('inventory', { ...ctx });
      const evil = { ...hostile, rows: [{ id: '<img src=x onerror=alert(1)>', displayName: '=HYPERLINK("x")' }] };
      assert.doesNotMatch(render(evil, 'html'), /<img/);
      assert.match(render(evil, 'csv'), /'=HYPERLINK/);
    });

    it('the control map covers every framework named and every check can fail', async () => {
      const ids = new Set(controlMap.controls.map((c) => `${c.framework}/${c.id}`));
      for (let i = 1; i <= 10; i++) {
        assert.ok(ids.has(`owasp-asi/ASI${String(i).padStart(2, '0')}`));
        assert.ok(ids.has(`owasp-nhi/NHI${i}`));
      }
      for (const id of ['eu-ai-act/Art. 12', 'eu-ai-act/Art. 14', 'nist-csf-2/PR.AA-05', 'nist-ai-rmf/MAP 3.5', 'csa-maestro/L7'])
        assert.ok(ids.has(id), id);
      // Every MAESTRO layer, L1 to L7, has at least one row.
      for (let layer = 1; layer <= 7; layer++) {
        assert.ok(
          controlMap.controls.some((c) => c.framework === 'csa-maestro' && (c.id === `L${layer}` || c.id.startsWith(`L${layer}-`))),
          `MAESTRO L${layer}`,
        );
      }
      // Seen failing: each check with the configuration or data that makes it fail.
      const failing: Record<CheckName, ReportContext> = {
        'policy.loaded': { ...ctx, policySet: undefined },
        'audit.checkpoints_signed': { ...ctx, config: config({ audit: { checkpointIntervalMs: 0 } }) },
        'audit.entries_private': { ...ctx, config: config({ audit: { publicEntries: true } }) },
        'tokens.short_lived': { ...ctx, config: config({ identity: { tokenTtlSeconds: 3600 } }) },
        'tokens.dpop_production': ctx,
        'identity.workload_issuers': ctx,
        'delegation.bounded': { ...ctx, config: config({ identity: { maxDelegationDepth: 5 } }) },
        'approvals.gated_tools': ctx,
        'approvals.answered': { ...ctx, now: NOW },
        'agents.owned': ctx,
        'agents.no_dormant': ctx,
        'agents.least_privilege': { ...ctx },
        'credentials.rotated': ctx,
        'credentials.not_shared': ctx,
        'credentials.leases': ctx,
        // The seeded policies never read context.intent.
        'intent.provenance_policy': ctx,
        'risk.read_then_send': { ...ctx, config: config({ risk: { signals: { read_then_send: { enabled: false } } } }) },
      };
      await store.run(`UPDATE approvals SET status = 'expired' WHERE id IN ('ap-2')`);
      for (const [name, c] of Object.entries(failing) as [CheckName, ReportContext][]) {
        const r = await checks[name](c, name === 'agents.least_privilege' ? { since: NOW - 2 * DAY } : {});
        if (name === 'agents.least_privilege') {
          // a2 used its only grant; a1 used all of its: pass until a1 holds a grant it never used.
          assert.equal(r.status, 'pass', r.reason);
          await store.run('UPDATE agent_profiles SET ceiling = ? WHERE agent_id = ?', [
            JSON.stringify({ tools: [{ tool: 'h.search' }, { tool: 'h.unused' }], delegable: false }),
            'a2',
          ]);
          const again = await checks[name](c, { since: NOW - 2 * DAY });
          assert.equal(again.status, 'fail', again.reason);
          continue;
        }
        assert.equal(r.status, 'fail', `${name}: ${r.reason}`);
      }
      await store.run(`UPDATE approvals SET status = 'approved' WHERE id IN ('ap-2')`);
      // And passing where the deployment is configured for it.
      const good = {
        ...ctx,
        config: config({ identity: { dpopRequiredEnvironments: ['production'], oidcIssuers: [{ issuer: 'https://k8s.example' }] } }),
      };
      assert.equal((await checks['tokens.dpop_production'](good, {})).status, 'pass');
      assert.equal((await checks['identity.workload_issuers'](good, {})).status, 'pass');
      assert.equal((await checks['tokens.short_lived'](ctx, {})).status, 'pass');
      assert.equal((await checks['policy.loaded'](ctx, {})).status, 'pass');
      assert.equal((await checks['intent.provenance_policy']({ ...ctx, policySet: loadSet(PROVENANCE_POLICY) }, {})).status, 'pass');
      assert.equal((await checks['intent.provenance_policy']({ ...ctx, policySet: undefined }, {})).status, 'fail');
      assert.equal((await checks['risk.read_then_send'](ctx, {})).status, 'pass', 'on by default');
      assert.equal((await checks['risk.read_then_send']({ ...ctx, config: config({ risk: { enabled: false } }) }, {})).status, 'fail');
      const report = await controlsReport(ctx, { framework: 'eu-ai-act' });
      assert.equal(report.rows.length, 2);
      assert.ok((report.rows[0]?.evidence[0]?.events.length ?? 0) > 0, 'Art. 12 cites decision events');
    });

    it('MAESTRO L1/L2: out-of-scope threats are not applicable with their reason; the L2 poisoning row follows the policy', async () => {
      const r = await controlsReport(ctx, { framework: 'csa-maestro' });
      const row = (id: string) => {
        const found = r.rows.find((x) => x.control === id);
        assert.ok(found !== undefined, id);
        return found;
      };
      for (const id of ['L1-model', 'L2-model-data']) {
        assert.equal(row(id).status, 'not_applicable');
        assert.equal(row(id).checks.length, 1);
        assert.equal(row(id).checks[0]?.name, 'out_of_scope');
        assert.match(row(id).checks[0]?.reason ?? '', /outside the broker|never sees/);
        assert.deepEqual(row(id).evidence, []);
      }
      assert.equal(row('L2-poisoning').status, 'fail', 'no seeded policy reads context.intent');
      assert.equal(row('L1-actions').status, 'fail', 'h.refund is reachable without approval');
      assert.ok((row('L1-actions').evidence[0]?.events.length ?? 0) > 0, 'cites denied decisions');
      const withProvenance = await controlsReport({ ...ctx, policySet: loadSet(PROVENANCE_POLICY) }, { framework: 'csa-maestro' });
      assert.equal(withProvenance.rows.find((x) => x.control === 'L2-poisoning')?.status, 'pass');
      assert.ok(render(r, 'html').includes('out_of_scope'));
    });

    it('evidence pack: verifies offline with the vkey; one changed byte of a cited event fails', async () => {
      const pack = await buildEvidencePack(ctx, audit, { framework: 'owasp-asi' });
      // decisions (newest first, shared across controls), decisions denied, approvals decided, admin changes.
      assert.ok(pack.cited.length >= 3, `cited ${pack.cited.length}`);
      const out = join(dir, f.name);
      writeEvidencePack(out, pack);
      const ok = verifyEvidencePack(out, audit.vkey);
      assert.deepEqual(ok.failures, []);
      assert.equal(ok.checked, pack.cited.length);
      const first = pack.cited[0]?.seq as number;
      // The single-proof verifier (`mandate audit verify-proof`) accepts each file too.
      assert.equal(verifyProofBundle(JSON.parse(readFileSync(join(out, 'proofs', `${first}.json`), 'utf8')), audit.vkey).ok, true);
      const file = join(out, 'proofs', `${first}.json`);
      const original = readFileSync(file, 'utf8');
      const bundle = JSON.parse(original) as { entry: string };
      const i = bundle.entry.indexOf('"type"');
      bundle.entry = `${bundle.entry.slice(0, i + 2)}${bundle.entry[i + 2] === 'y' ? 'Y' : 'y'}${bundle.entry.slice(i + 3)}`;
      writeFileSync(file, JSON.stringify(bundle));
      const bad = verifyEvidencePack(out, audit.vkey);
      assert.equal(bad.ok, false);
      assert.ok(
        bad.failures.some((x) => x.startsWith(`event ${first}:`)),
        bad.failures.join('; '),
      );
      assert.equal(verifyProofBundle(bundle, audit.vkey).ok, false);
      writeFileSync(file, original);
      const otherKey = new SecretBox(parseMasterKeys(generateMasterKeySpec()));
      const other = await AuditService.open({ store: await f.open(), secrets: otherKey, clock, origin: 'reports.test/audit' });
      assert.equal(verifyEvidencePack(out, other.vkey).ok, false, 'another log key does not verify it');
      await other.close();
    });
  });
}

describe('control map schema', () => {
  const base = (c: Record<string, unknown>) => ({
    version: 1,
    frameworks: [{ id: 'f', title: 'F', url: 'https://f.example/' }],
    controls: [{ framework: 'f', id: 'C1', title: 'T', capability: 'cap', checks: [], evidence: [], ...c }],
  });
  it('takes an out-of-scope control with a reason and no checks', () => {
    assert.equal(controlMapSchema.safeParse(base({ outOfScope: 'not ours' })).success, true);
  });
  it('refuses an out-of-scope control that also names checks or evidence, and a control with neither checks nor a reason', () => {
    assert.equal(controlMapSchema.safeParse(base({ outOfScope: 'x', checks: ['policy.loaded'] })).success, false);
    assert.equal(controlMapSchema.safeParse(base({ outOfScope: 'x', evidence: ['decisions.all'] })).success, false);
    assert.equal(controlMapSchema.safeParse(base({ outOfScope: '' })).success, false);
    assert.equal(controlMapSchema.safeParse(base({})).success, false);
    assert.equal(controlMapSchema.safeParse(base({ checks: ['no.such.check'] })).success, false);
    assert.equal(controlMapSchema.safeParse(base({ checks: ['policy.loaded'] })).success, true);
  });
});

describe('docs/governance.md', () => {
  it('lists every report, live check, evidence query and control', () => {
    const doc = readFileSync(new URL('../../docs/governance.md', import.meta.url), 'utf8');
    for (const name of [...reportNames, 'controls']) assert.ok(doc.includes(`### \`${name}\``), `report ${name}`);
    for (const name of Object.keys(checks)) assert.ok(doc.includes(`| \`${name}\` |`), `check ${name}`);
    for (const c of controlMap.controls)
      assert.ok(doc.includes(`| ${c.id} | ${c.title.replace(/\|/g, '\\|')} |`), `control ${c.framework}/${c.id}`);
    for (const f of controlMap.frameworks) assert.ok(doc.includes(`\`${f.id}\``), `framework ${f.id}`);
    for (const q of Object.keys(evidenceQueries)) assert.ok(doc.includes(`\`${q}\``), `evidence query ${q}`);
  });
});
