// Which commands a stdio upstream may start on the broker host. Registering one is running a
// program as the broker, so only command lines the operator named in configuration are allowed —
// including the environment they get, since NODE_OPTIONS or LD_PRELOAD would run other code.
import type { Config } from '../config/load.js';
import { MandateError } from '../errors/index.js';
import type { UpstreamTransport } from './upstream.js';

export type AllowedCommand = Config['upstreams']['stdio']['allowedCommands'][number];

interface Rule {
  readonly command: string;
  readonly args?: readonly string[];
  readonly env: readonly string[];
  readonly cwd?: string;
}

const asRule = (entry: AllowedCommand): Rule => (typeof entry === 'string' ? { command: entry, env: [] } : entry);

/** Why no rule allows this command line, or undefined when one does. */
function mismatch(rule: Rule, stdio: Extract<UpstreamTransport, { type: 'stdio' }>, envNames: readonly string[]): string | undefined {
  if (rule.command !== stdio.command) return 'command';
  if (rule.args !== undefined && (stdio.args.length < rule.args.length || rule.args.some((a, i) => stdio.args[i] !== a)))
    return 'arguments';
  const extra = envNames.filter((n) => !rule.env.includes(n));
  if (extra.length > 0) return `environment variable ${extra.join(', ')}`;
  if (stdio.cwd !== undefined && stdio.cwd !== rule.cwd) return 'working directory';
  return undefined;
}

/**
 * Refuses a stdio transport that no allow-list entry permits (ERR_STDIO_COMMAND_NOT_ALLOWED).
 * `credentialEnv` names the variables the upstream's credential injects: they reach the process too.
 */
export function assertStdioAllowed(
  transport: UpstreamTransport,
  credentialEnv: readonly string[],
  allowed: readonly AllowedCommand[],
): void {
  if (transport.type !== 'stdio') return;
  const envNames = [...new Set([...Object.keys(transport.env), ...credentialEnv])];
  const reasons = allowed.map((entry) => mismatch(asRule(entry), transport, envNames));
  if (reasons.includes(undefined)) return;
  const closest = reasons.find((r) => r !== 'command');
  throw new MandateError(
    'ERR_STDIO_COMMAND_NOT_ALLOWED',
    closest === undefined
      ? `the stdio command "${transport.command}" is not in upstreams.stdio.allowedCommands`
      : `the stdio command "${transport.command}" is allowed, but not with this ${closest}`,
  );
}
