// `mandate policy validate|test|explain`: org policy tooling that runs without a broker.
// Problems print as `file:line:column: message`, so editors and CI can point at them.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../config/load.js';
import { MandateError } from '../../errors/index.js';
import { CaseRunner, parseRequest, readCases } from '../../policy/cases.js';
import { SHIPPED_SCHEMA } from '../../policy/source.js';
import { PolicyStore } from '../../policy/store.js';
import { formatProblems } from '../../policy/wiring.js';
import { type AdminFlags, adminRequest, printJson, withAdminFlags } from './admin-request.js';

interface PolicyFlags {
  readonly schema?: string;
  readonly entities?: string;
  readonly config?: string;
  readonly namespace?: string;
  readonly approverRoles?: string;
  readonly json?: boolean;
  readonly request?: string;
}

interface Loaded {
  readonly store: PolicyStore;
  readonly namespace: string;
  readonly types: Readonly<Record<string, string>>;
  readonly approverRoles: readonly string[];
}

/** Loads DIR with the schema/entities from flags, else from --config, else the shipped schema. */
async function load(dir: string | undefined, flags: PolicyFlags): Promise<Loaded> {
  const config = flags.config === undefined ? undefined : loadConfigFile(flags.config, { env: {} });
  const store = new PolicyStore({
    dir: dir ?? config?.policy.dir,
    schemaPath: flags.schema ?? config?.policy.schema ?? SHIPPED_SCHEMA,
    entitiesPath: flags.entities ?? config?.policy.entities,
    now: () => Date.now(),
  });
  const report = await store.load();
  if (!report.ok) throw new MandateError('ERR_POLICY_INVALID', `the policy set is invalid:\n${formatProblems(report.problems)}`);
  return {
    store,
    namespace: flags.namespace ?? config?.policy.authzen.namespace ?? 'Mandate',
    types: config?.policy.authzen.types ?? { agent: 'Agent', human: 'Human', tool: 'Tool', mandate: 'Mandate' },
    approverRoles: flags.approverRoles?.split(',').filter(Boolean) ??
      config?.policy.approverRoles ?? ['support-lead', 'finance', 'admin', 'approver'],
  };
}

function runner(l: Loaded): CaseRunner {
  return new CaseRunner({ policies: l.store, approverRoles: l.approverRoles, namespace: l.namespace, types: l.types, now: Date.now() });
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('Validate, test and explain org policy (Cedar).');
  const common = (c: Command) =>
    c
      .option('--schema <file>', 'Cedar schema (default: the shipped policies/mandate.cedarschema)')
      .option('--entities <file>', 'Cedar JSON entities file (AuthZEN subjects and resources)')
      .option('-c, --config <file>', 'take schema, entities, namespace and approver roles from this configuration file')
      .option('--namespace <ns>', 'Cedar namespace of AuthZEN requests (default Mandate)')
      .option('--approver-roles <roles>', 'comma-separated approver roles tried for approval_required');

  common(policy.command('validate').argument('<dir>', 'policy directory (.cedar files, read recursively)'))
    .description('Parse and strictly validate every policy against the schema; all or nothing.')
    .action(async (dir: string, flags: PolicyFlags) => {
      const { store } = await load(dir, flags);
      const set = store.current?.set;
      process.stdout.write(`ok: ${set?.policies.length ?? 0} policies valid (version ${set?.version.slice(0, 12)})\n`);
    });

  common(policy.command('test').argument('<dir>', 'policy directory').argument('<cases>', 'a YAML/JSON case file, or a directory of them'))
    .option('--json', 'print results as JSON')
    .description('Run data-driven cases (request + expected outcome) against the policies.')
    .action(async (dir: string, cases: string, flags: PolicyFlags) => {
      const loaded = await load(dir, flags);
      const run = runner(loaded);
      const results = (await readCases(cases)).flatMap(({ file, cases: list }) => list.map((c) => run.run(file, c)));
      const failed = results.filter((r) => !r.ok);
      if (flags.json === true) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
      else {
        for (const r of results) {
          process.stdout.write(`${r.ok ? 'PASS' : 'FAIL'} ${r.file}: ${r.name}\n`);
          for (const f of r.failures) process.stdout.write(`     ${f}\n`);
          if (!r.ok) process.stdout.write(`     got: ${JSON.stringify(r.got)}\n`);
        }
        process.stdout.write(`${results.length - failed.length}/${results.length} cases passed\n`);
      }
      if (failed.length > 0) throw new MandateError('ERR_VALIDATION', `${failed.length} of ${results.length} policy cases failed`);
    });

  withAdminFlags(policy.command('reload'))
    .description('Ask a running broker to reload org policy from its directory (every replica follows).')
    .action(async (flags: AdminFlags) => {
      printJson(await adminRequest(flags, 'POST', '/admin/v1/policies/reload'));
    });

  withAdminFlags(policy.command('status'))
    .description('Show the org policy set a running broker serves, and the problems of a refused reload.')
    .action(async (flags: AdminFlags) => {
      printJson(await adminRequest(flags, 'GET', '/admin/v1/policies'));
    });

  common(policy.command('explain').argument('<dir>', 'policy directory'))
    .requiredOption('-r, --request <file>', 'a request as YAML/JSON: { call: {...} } or { authzen: {...} }')
    .option('--json', 'print the explanation as JSON')
    .description('Decide one request and show which grants and policies decided it, and why.')
    .action(async (dir: string, flags: PolicyFlags) => {
      const loaded = await load(dir, flags);
      const request = parseRequest(parseYaml(await readFile(flags.request as string, 'utf8')));
      const run = runner(loaded);
      const byId = new Map(loaded.store.current?.set.policies.map((p) => [p.id, p]));
      if (request.call !== undefined) {
        const { decision, grants, request: cedar } = run.explainCall(request.call);
        const explanation = {
          outcome: decision.outcome,
          reasons: decision.reasons,
          policies: decision.policies.map((id) => ({ id, at: byId.has(id) ? `${byId.get(id)?.file}:${byId.get(id)?.line}` : undefined })),
          grants: grants.map((g) => ({ mandateId: g.mandateId, index: g.index, grant: g.grant })),
          approvalRoles: decision.approvalRoles,
          errors: decision.errors,
          cedar,
        };
        if (flags.json === true) process.stdout.write(`${JSON.stringify(explanation, null, 2)}\n`);
        else {
          process.stdout.write(`outcome: ${decision.outcome}\n`);
          for (const r of decision.reasons) process.stdout.write(`  - ${r}\n`);
          for (const p of explanation.policies) process.stdout.write(`  policy ${p.id}${p.at ? ` (${p.at})` : ''}\n`);
          if (decision.approvalRoles) process.stdout.write(`  approver roles: ${decision.approvalRoles.join(', ')}\n`);
          for (const e of decision.errors ?? []) process.stdout.write(`  error: ${e}\n`);
        }
      } else if (request.authzen !== undefined) {
        const d = run.explainAuthzen(request.authzen);
        if (flags.json === true) process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
        else process.stdout.write(`decision: ${d.decision}${d.context?.reason_admin ? `\n  - ${d.context.reason_admin.en}` : ''}\n`);
      }
    });
}
