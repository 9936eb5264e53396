#!/usr/bin/env node
// The `mandate` command. Errors print as one line (`mandate: CODE: message`) and exit non-zero;
// --debug adds the stack.
import { Command, Option } from 'commander';
import { isMandateError, MandateError } from '../errors/index.js';
import { version } from '../version.js';
import { COMMAND_MODULES } from './command-modules.js';

/** The CLI with every command, or, given the arguments, only the modules of the command they run. */
export async function buildCli(argv?: readonly string[]): Promise<Command> {
  const program = new Command('mandate')
    .description('Mandate: access broker for AI agents — task mandates, per-call policy, approvals, tamper-evident audit.')
    .version(version, '-V, --version')
    .addOption(new Option('--debug', 'print stack traces on errors'))
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });
  const name = argv?.slice(2).find((a) => !a.startsWith('-'));
  const only = COMMAND_MODULES.filter((m) => name !== undefined && m.commands.includes(name));
  // Help, --version, or an unknown or misspelt command: every module (help lists them all, and
  // commander suggests the nearest name).
  for (const m of only.length > 0 ? only : COMMAND_MODULES) (await m.load())(program);
  return program;
}

/** A file the user named that cannot be read is their mistake, said with its path: not ERR_INTERNAL. */
function fileError(err: unknown): MandateError | undefined {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string' || typeof e.path !== 'string' || typeof e.syscall !== 'string') return undefined;
  const why: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory' };
  return new MandateError('ERR_FILE_UNREADABLE', `cannot ${e.syscall} ${e.path}: ${why[e.code] ?? e.code}`);
}

/**
 * A reader that stops early (`mandate approvals list | head -1`) closes the pipe: that ends the
 * command quietly, as it does for any Unix tool, instead of an unhandled EPIPE with a stack.
 */
function exitQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

export async function main(argv: readonly string[]): Promise<void> {
  exitQuietlyOnClosedPipe(process.stdout);
  exitQuietlyOnClosedPipe(process.stderr);
  const program = await buildCli(argv);
  try {
    await program.parseAsync([...argv]);
  } catch (caught) {
    const err = fileError(caught) ?? caught;
    const debug = argv.includes('--debug');
    const code = isMandateError(err) ? err.code : 'ERR_INTERNAL';
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`mandate: ${code}: ${message}\n`);
    if (debug && caught instanceof Error) process.stderr.write(`${caught.stack ?? ''}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv);
