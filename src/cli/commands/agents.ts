// `mandate agents ...` and `mandate mandates ...`: the agent registry and mandate lifecycle,
// through the admin API of a running broker.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { MandateError } from '../../errors/index.js';
import { type AdminFlags, adminRequest, printJson, printTable, withAdminFlags } from './admin-request.js';
import { registerMandateOpenCommands } from './mandate-open.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** A ceiling scope from a JSON file (`@file`), inline JSON, or a list of --tool names. */
function ceilingFrom(value: string | undefined, tools: readonly string[], delegable: boolean): unknown {
  if (value !== undefined) {
    const text = value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value;
    try {
      return JSON.parse(text);
    } catch {
      throw new MandateError('ERR_VALIDATION', '--ceiling must be JSON or @file.json');
    }
  }
  return { tools: tools.map((tool) => ({ tool })), delegable };
}

/** Task templates by name (docs/identity.md) from a JSON file (`@file`) or inline JSON. */
function templatesFrom(value: string): unknown {
  const text = value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value;
  try {
    return JSON.parse(text);
  } catch {
    throw new MandateError('ERR_VALIDATION', '--templates must be JSON or @file.json (an object of templates by name)');
  }
}

interface AgentView {
  principal: { id: string; status: string; owner?: string; environment?: string };
  identity: { spiffeId?: string; issuer?: string; subject?: string };
}

const identityOf = (i: AgentView['identity']) => i.spiffeId ?? `${i.issuer ?? '?'} ${i.subject ?? '?'}`;

interface RegisterFlags extends AdminFlags {
  name?: string;
  owner: string;
  environment: string;
  spiffeId?: string;
  issuer?: string;
  subject?: string;
  ceiling?: string;
  tool: string[];
  delegable?: boolean;
  taskType: string[];
  maxTtl: string;
  dpop?: boolean;
  receiveDelegation?: boolean;
  templates?: string;
}

export function registerAgentCommands(program: Command): void {
  const agents = program.command('agents').description('Registered agents: identity binding, owner, environment, status, ceiling.');

  withAdminFlags(
    agents
      .command('list')
      .description('List agents, by id, one page at a time.')
      .option('--limit <n>', 'agents per page (1..1000)', '100')
      .option('--after <id>', 'start after this agent id (the "next" of the previous page)')
      .option('--json', 'print the page as JSON ({ items, next? })'),
  ).action(async (flags: AdminFlags & { limit: string; after?: string; json?: boolean }) => {
    const q = new URLSearchParams({ limit: flags.limit });
    if (flags.after !== undefined) q.set('after', flags.after);
    const page = (await adminRequest(flags, 'GET', `/admin/v1/agents?${q}`)) as { items: AgentView[]; next?: string };
    if (flags.json === true) return printJson(page);
    printTable(
      ['ID', 'STATUS', 'ENVIRONMENT', 'OWNER', 'IDENTITY'],
      page.items.map((a) => [
        a.principal.id,
        a.principal.status,
        a.principal.environment ?? '-',
        a.principal.owner ?? '-',
        identityOf(a.identity),
      ]),
    );
    if (page.items.length === 0) process.stdout.write('no agents\n');
    if (page.next !== undefined) process.stdout.write(`more: mandate agents list --after ${page.next}\n`);
  });
  withAdminFlags(agents.command('get <id>').description('Show one agent.')).action(async (id: string, flags: AdminFlags) => {
    printJson(await adminRequest(flags, 'GET', `/admin/v1/agents/${encodeURIComponent(id)}`));
  });

  withAdminFlags(
    agents
      .command('register <id>')
      .description('Register an agent bound to a SPIFFE ID or an OIDC issuer+subject.')
      .requiredOption('--owner <id>', 'owning human or team (required)')
      .requiredOption('--environment <env>', 'production, staging, sandbox, ... (required)')
      .option('--name <text>', 'display name (defaults to the id)')
      .option('--spiffe-id <uri>', 'SPIFFE ID of the agent (JWT-SVID sub)')
      .option('--issuer <url>', 'OIDC workload issuer (with --subject)')
      .option('--subject <sub>', 'OIDC subject (with --issuer)')
      .option('--ceiling <json|@file>', 'ceiling scope as JSON (tools with constraints and budgets)')
      .option('--tool <name>', 'a tool of the ceiling without constraints (repeatable; instead of --ceiling)', collect, [])
      .option('--delegable', 'with --tool: mandates of this agent may be delegated')
      .option('--task-type <type>', 'allowed task type (repeatable; none allows any)', collect, [])
      .option('--max-ttl <seconds>', 'longest mandate this agent may hold', '3600')
      .option('--dpop', 'require DPoP-bound tokens')
      .option('--receive-delegation', 'other agents may delegate to this one')
      .option('--templates <json|@file>', 'task templates by name, for client-credentials clients (scope = a name)'),
  ).action(async (id: string, flags: RegisterFlags) => {
    const identity =
      flags.spiffeId !== undefined
        ? { spiffeId: flags.spiffeId }
        : flags.issuer !== undefined && flags.subject !== undefined
          ? { issuer: flags.issuer, subject: flags.subject }
          : undefined;
    if (identity === undefined) throw new MandateError('ERR_VALIDATION', 'pass --spiffe-id, or --issuer with --subject');
    const ceiling = ceilingFrom(flags.ceiling, flags.tool, flags.delegable === true);
    printJson(
      await adminRequest(flags, 'POST', '/admin/v1/agents', {
        id,
        displayName: flags.name ?? id,
        owner: flags.owner,
        environment: flags.environment,
        identity,
        ceiling,
        taskTypes: flags.taskType,
        maxTtlSeconds: Number(flags.maxTtl),
        dpopRequired: flags.dpop === true,
        mayReceiveDelegation: flags.receiveDelegation === true,
        ...(flags.templates === undefined ? {} : { templates: templatesFrom(flags.templates) }),
      }),
    );
  });

  withAdminFlags(
    agents
      .command('update <id>')
      .description('Change an agent (only the given fields).')
      .option('--owner <id>')
      .option('--environment <env>')
      .option('--name <text>')
      .option('--ceiling <json|@file>')
      .option('--max-ttl <seconds>')
      .option('--dpop <bool>', 'true or false')
      .option('--receive-delegation <bool>', 'true or false')
      .option('--templates <json|@file>', 'replace the task templates (an object of templates by name)'),
  ).action(
    async (
      id: string,
      flags: AdminFlags & {
        owner?: string;
        environment?: string;
        name?: string;
        ceiling?: string;
        maxTtl?: string;
        dpop?: string;
        receiveDelegation?: string;
        templates?: string;
      },
    ) => {
      const bool = (v: string | undefined) => (v === undefined ? undefined : v === 'true');
      const ceiling = flags.ceiling === undefined ? undefined : ceilingFrom(flags.ceiling, [], false);
      const patch = {
        owner: flags.owner,
        environment: flags.environment,
        displayName: flags.name,
        ceiling,
        maxTtlSeconds: flags.maxTtl === undefined ? undefined : Number(flags.maxTtl),
        dpopRequired: bool(flags.dpop),
        mayReceiveDelegation: bool(flags.receiveDelegation),
        templates: flags.templates === undefined ? undefined : templatesFrom(flags.templates),
      };
      printJson(await adminRequest(flags, 'PATCH', `/admin/v1/agents/${encodeURIComponent(id)}`, JSON.parse(JSON.stringify(patch))));
    },
  );

  for (const verb of ['quarantine', 'disable', 'activate'] as const) {
    withAdminFlags(agents.command(`${verb} <id>`).description(`Set the agent ${verb === 'activate' ? 'active' : `${verb}d`}.`)).action(
      async (id: string, flags: AdminFlags) => {
        printJson(await adminRequest(flags, 'POST', `/admin/v1/agents/${encodeURIComponent(id)}/${verb}`, {}));
      },
    );
  }
  withAdminFlags(agents.command('delete <id>').description('Delete an agent.')).action(async (id: string, flags: AdminFlags) => {
    await adminRequest(flags, 'DELETE', `/admin/v1/agents/${encodeURIComponent(id)}`);
  });

  const mandates = program
    .command('mandates')
    .description('Task mandates: open from a template, list, get, revoke (cascades to every descendant).');
  registerMandateOpenCommands(program, mandates);
  withAdminFlags(
    mandates
      .command('list')
      .description('List mandates, newest first.')
      .option('--agent <id>')
      .option('--status <status>', 'active, completed, failed, revoked, expired'),
  ).action(async (flags: AdminFlags & { agent?: string; status?: string }) => {
    const q = new URLSearchParams();
    if (flags.agent !== undefined) q.set('agentId', flags.agent);
    if (flags.status !== undefined) q.set('status', flags.status);
    printJson(await adminRequest(flags, 'GET', `/admin/v1/mandates${q.size > 0 ? `?${q}` : ''}`));
  });
  withAdminFlags(mandates.command('get <id>').description('Show a mandate and its delegation chain.')).action(
    async (id: string, flags: AdminFlags) => {
      printJson(await adminRequest(flags, 'GET', `/admin/v1/mandates/${encodeURIComponent(id)}`));
    },
  );
  withAdminFlags(mandates.command('revoke <id>').description('Revoke a mandate and all its descendants.').option('--reason <text>')).action(
    async (id: string, flags: AdminFlags & { reason?: string }) => {
      printJson(
        await adminRequest(
          flags,
          'POST',
          `/admin/v1/mandates/${encodeURIComponent(id)}/revoke`,
          flags.reason === undefined ? {} : { reason: flags.reason },
        ),
      );
    },
  );
}
