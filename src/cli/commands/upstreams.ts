// `mandate upstreams ...` and `mandate catalog ...`: register MCP servers behind the gateway and
// tune their tools, through the admin API of a running broker.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { MandateError } from '../../errors/index.js';
import { type AdminFlags, adminRequest, printJson, withAdminFlags } from './admin-request.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `NAME=VALUE` pairs into a record; the value may come from a file with NAME=@path. */
function pairs(items: readonly string[], what: string): Record<string, string> | undefined {
  if (items.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq < 1) throw new MandateError('ERR_VALIDATION', `${what} must be NAME=VALUE`);
    const raw = item.slice(eq + 1);
    out[item.slice(0, eq)] = raw.startsWith('@') ? readFileSync(raw.slice(1), 'utf8').trim() : raw;
  }
  return out;
}

/** Prints the upstream; a discovery that failed is the command's failure (exit 1), not a field to spot. */
function printDiscovered(upstream: unknown): void {
  printJson(upstream);
  const { id, discoveryError } = upstream as { id?: string; discoveryError?: string };
  if (discoveryError !== undefined) {
    throw new MandateError(
      'ERR_UPSTREAM_DISCOVERY_FAILED',
      `upstream "${id}" is registered, but its tools could not be listed: ${discoveryError}. Fix it, then \`mandate upstreams refresh ${id}\``,
    );
  }
}

/**
 * Where the broker reads an OpenAPI description: an http(s) URL as given, anything else a file path,
 * made absolute here (the broker reads it, and only under upstreams.httpApi.descriptionDirs).
 */
function openapiDescription(value: string): { url: string } | { path: string } {
  return /^https?:\/\//i.test(value) ? { url: value } : { path: resolve(value) };
}

export function registerUpstreamCommands(program: Command): void {
  const up = program.command('upstreams').description('MCP servers behind the gateway and their credentials.');

  withAdminFlags(up.command('list').description('List upstreams.')).action(async (flags: AdminFlags) => {
    printJson(await adminRequest(flags, 'GET', '/admin/v1/upstreams'));
  });

  withAdminFlags(
    up
      .command('add <id>')
      .description('Register an upstream (stdio command after --, --mcp-url, or --openapi) and discover its tools.')
      .option('--mcp-url <url>', 'streamable HTTP endpoint of the MCP server (instead of a command)')
      .option(
        '--openapi <url|path>',
        'an HTTP API: its OpenAPI 3 description, a URL or a file the broker reads (under upstreams.httpApi.descriptionDirs); one tool per operation',
      )
      .option('--server-url <url>', "with --openapi: the base URL requests go to (overrides the description's servers)")
      .option('--env <NAME=VALUE>', 'non-secret environment for a stdio upstream (repeatable)', collect, [])
      .option('--secret-env <NAME=VALUE>', 'secret environment (stored encrypted; VALUE or @file) (repeatable)', collect, [])
      .option('--secret-header <NAME=VALUE>', 'secret HTTP header (stored encrypted; VALUE or @file) (repeatable)', collect, [])
      .option('--isolation <mode>', 'mandate (own session per mandate) or shared', 'mandate')
      .option('--sensitivity <level>', 'default data sensitivity of its tools', 'internal')
      .argument('[command...]', 'command and arguments of a stdio upstream'),
  ).action(
    async (
      id: string,
      command: string[],
      flags: AdminFlags & {
        env: string[];
        secretEnv: string[];
        secretHeader: string[];
        isolation: string;
        sensitivity: string;
        mcpUrl?: string;
        openapi?: string;
        serverUrl?: string;
      },
    ) => {
      const [cmd, ...args] = command;
      const kinds = [flags.mcpUrl, flags.openapi, cmd].filter((k) => k !== undefined).length;
      if (kinds !== 1) throw new MandateError('ERR_VALIDATION', 'give exactly one of: a command after --, --mcp-url, --openapi');
      if (flags.serverUrl !== undefined && flags.openapi === undefined) {
        throw new MandateError('ERR_VALIDATION', '--server-url goes with --openapi');
      }
      const transport =
        flags.mcpUrl !== undefined
          ? { type: 'http', url: flags.mcpUrl }
          : flags.openapi !== undefined
            ? {
                type: 'openapi',
                description: openapiDescription(flags.openapi),
                ...(flags.serverUrl === undefined ? {} : { serverUrl: flags.serverUrl }),
              }
            : { type: 'stdio', command: cmd, args, env: pairs(flags.env, '--env') ?? {} };
      const env = pairs(flags.secretEnv, '--secret-env');
      const headers = pairs(flags.secretHeader, '--secret-header');
      printDiscovered(
        await adminRequest(flags, 'POST', '/admin/v1/upstreams', {
          id,
          transport,
          isolation: flags.isolation,
          defaultSensitivity: flags.sensitivity,
          ...(env === undefined && headers === undefined
            ? {}
            : { credential: { ...(env ? { env } : {}), ...(headers ? { headers } : {}) } }),
        }),
      );
    },
  );

  withAdminFlags(up.command('show <id>').description('Show one upstream.')).action(async (id: string, flags: AdminFlags) => {
    printJson(await adminRequest(flags, 'GET', `/admin/v1/upstreams/${encodeURIComponent(id)}`));
  });

  withAdminFlags(up.command('refresh <id>').description('List its tools again.')).action(async (id: string, flags: AdminFlags) => {
    printDiscovered(await adminRequest(flags, 'POST', `/admin/v1/upstreams/${encodeURIComponent(id)}/refresh`));
  });

  withAdminFlags(up.command('remove <id>').description('Remove an upstream and its tools.')).action(
    async (id: string, flags: AdminFlags) => {
      await adminRequest(flags, 'DELETE', `/admin/v1/upstreams/${encodeURIComponent(id)}`);
      process.stdout.write(`removed ${id}\n`);
    },
  );

  const catalog = program.command('catalog').description('The tool catalog the gateway enforces.');
  withAdminFlags(catalog.command('list').description('List every tool with its action class and sensitivity.')).action(
    async (flags: AdminFlags) => {
      printJson(await adminRequest(flags, 'GET', '/admin/v1/catalog'));
    },
  );
  withAdminFlags(
    catalog
      .command('set <tool>')
      .description('Override what the upstream declared (use "default" to clear a field).')
      .option('--action-class <class>', 'read | propose | execute | destructive | default')
      .option('--sensitivity <level>', 'public | internal | confidential | restricted | default')
      .option('--sensitive-args <names>', 'comma-separated argument names to mask, or "default"'),
  ).action(async (tool: string, flags: AdminFlags & { actionClass?: string; sensitivity?: string; sensitiveArgs?: string }) => {
    const clear = (v: string | undefined) => (v === 'default' ? null : v);
    printJson(
      await adminRequest(flags, 'PATCH', `/admin/v1/catalog/${encodeURIComponent(tool)}`, {
        ...(flags.actionClass === undefined ? {} : { actionClass: clear(flags.actionClass) }),
        ...(flags.sensitivity === undefined ? {} : { sensitivity: clear(flags.sensitivity) }),
        ...(flags.sensitiveArgs === undefined
          ? {}
          : { sensitiveArgs: flags.sensitiveArgs === 'default' ? null : flags.sensitiveArgs.split(',').filter((s) => s !== '') }),
      }),
    );
  });
}
