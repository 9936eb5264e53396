#!/usr/bin/env node
// The `mandate` command. Errors print as one line (`mandate: CODE: message`) and exit non-zero;
// --debug adds the stack.
import { Command, Option } from 'commander';
import { isMandateError } from '../errors/index.js';
import { version } from '../version.js';
import { registerAgentCommands } from './commands/agents.js';
import { registerApprovalCommands } from './commands/approvals.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerConfigCommands } from './commands/config.js';
import { registerDevCommands } from './commands/dev.js';
import { registerDevSvidCommands } from './commands/dev-svid.js';
import { registerPolicyCommands } from './commands/policy.js';
import { registerServeCommands } from './commands/serve.js';
import { registerUpstreamCommands } from './commands/upstreams.js';

export function buildCli(): Command {
  const program = new Command('mandate')
    .description('Mandate: access broker for AI agents — task mandates, per-call policy, approvals, tamper-evident audit.')
    .version(version, '-V, --version')
    .addOption(new Option('--debug', 'print stack traces on errors'))
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });
  registerServeCommands(program);
  registerConfigCommands(program);
  registerDevCommands(program);
  registerPolicyCommands(program);
  registerDevSvidCommands(program);
  registerAgentCommands(program);
  registerAuditCommands(program);
  registerUpstreamCommands(program);
  registerApprovalCommands(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  const program = buildCli();
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    const debug = argv.includes('--debug');
    const code = isMandateError(err) ? err.code : 'ERR_INTERNAL';
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`mandate: ${code}: ${message}\n`);
    if (debug && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv);
