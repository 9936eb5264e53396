// Which module registers which top-level `mandate` command, so src/cli/main.ts loads only the one
// a command line runs.
import type { Command } from 'commander';

export type Register = (program: Command) => void;

/**
 * Each module's top-level commands, in the order `mandate --help` lists them. A module is loaded
 * only for a command it registers: most of them load the whole broker (~1 s of module loading),
 * which `mandate agents list` or `mandate dev operator-token` do not need.
 * (test/cli/lazy-commands.test.ts keeps these names equal to what each module registers.)
 */
export const COMMAND_MODULES: readonly { readonly commands: readonly string[]; readonly load: () => Promise<Register> }[] = [
  { commands: ['serve', 'migrate'], load: async () => (await import('./commands/serve.js')).registerServeCommands },
  { commands: ['config', 'secrets'], load: async () => (await import('./commands/config.js')).registerConfigCommands },
  { commands: ['dev'], load: async () => (await import('./commands/dev.js')).registerDevCommands },
  { commands: ['policy'], load: async () => (await import('./commands/policy.js')).registerPolicyCommands },
  { commands: ['dev'], load: async () => (await import('./commands/dev-svid.js')).registerDevSvidCommands },
  { commands: ['agents', 'mandates', 'templates'], load: async () => (await import('./commands/agents.js')).registerAgentCommands },
  { commands: ['audit'], load: async () => (await import('./commands/audit.js')).registerAuditCommands },
  { commands: ['upstreams', 'catalog'], load: async () => (await import('./commands/upstreams.js')).registerUpstreamCommands },
  { commands: ['approvals'], load: async () => (await import('./commands/approvals.js')).registerApprovalCommands },
  { commands: ['report'], load: async () => (await import('./commands/report.js')).registerReportCommands },
];
