// `mandate approvals list|show|approve|deny`: decide human approvals from the terminal, through the
// admin API of a running broker, with your own operator token.
import type { Command } from 'commander';
import { type AdminFlags, adminRequest, printJson, withAdminFlags } from './admin-request.js';

interface ApprovalView {
  id: string;
  status: string;
  tool: string;
  agentId: string;
  onBehalfOf?: string;
  requiredRoles: string[];
  expiresAt: number;
  context: { purpose: string; args: Record<string, unknown> };
}

export function registerApprovalCommands(program: Command): void {
  const approvals = program.command('approvals').description('Human approvals of exact tool calls.');

  withAdminFlags(
    approvals
      .command('list')
      .description('List approvals, newest first (pending by default).')
      .option('--status <status>', 'pending | approved | denied | consumed | expired | withdrawn | all', 'pending')
      .option('--json', 'print JSON'),
  ).action(async (flags: AdminFlags & { status: string; json?: boolean }) => {
    const q = flags.status === 'all' ? '' : `?status=${encodeURIComponent(flags.status)}`;
    const { items } = (await adminRequest(flags, 'GET', `/admin/v1/approvals${q}`)) as { items: ApprovalView[] };
    if (flags.json) return printJson(items);
    for (const a of items) {
      process.stdout.write(
        `${a.id}  ${a.status.padEnd(8)}  ${a.tool}  agent=${a.agentId}${a.onBehalfOf ? ` for=${a.onBehalfOf}` : ''}  roles=${a.requiredRoles.join('|')}  expires=${new Date(a.expiresAt).toISOString()}\n`,
      );
      process.stdout.write(`    ${a.context.purpose}\n    args ${JSON.stringify(a.context.args)}\n`);
    }
    if (items.length === 0) process.stdout.write('no approvals\n');
  });

  withAdminFlags(approvals.command('show <id>').description('Show one approval with its full context.')).action(
    async (id: string, flags: AdminFlags) => {
      printJson(await adminRequest(flags, 'GET', `/admin/v1/approvals/${encodeURIComponent(id)}`));
    },
  );

  withAdminFlags(
    approvals
      .command('approve <id>')
      .description('Approve exactly this call (used once, by the same call, before it expires).')
      .option('--role <role>', 'the role you approve in')
      .option('--note <text>', 'why'),
  ).action(async (id: string, flags: AdminFlags & { role?: string; note?: string }) => {
    printJson(
      await adminRequest(flags, 'POST', `/admin/v1/approvals/${encodeURIComponent(id)}/approve`, {
        ...(flags.role === undefined ? {} : { role: flags.role }),
        ...(flags.note === undefined ? {} : { note: flags.note }),
      }),
    );
  });

  withAdminFlags(approvals.command('deny <id>').description('Deny this call.').option('--note <text>', 'why')).action(
    async (id: string, flags: AdminFlags & { note?: string }) => {
      printJson(
        await adminRequest(
          flags,
          'POST',
          `/admin/v1/approvals/${encodeURIComponent(id)}/deny`,
          flags.note === undefined ? {} : { note: flags.note },
        ),
      );
    },
  );
}
