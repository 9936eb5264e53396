// `mandate mandates open` and `mandate templates list`: open a mandate for an agent from a task
// template, its parameters and the human's request text, through the admin API of a running broker
// (POST /admin/v1/mandates); list the templates loaded with the org policy.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { MandateError } from '../../errors/index.js';
import { type AdminFlags, adminRequest, printJson, printTable, withAdminFlags } from './admin-request.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `@file` reads a file, anything else is the value itself. */
const textOf = (value: string): string => (value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value);

/**
 * Parameters from `--params <json|@file>` and repeated `--param name=value`. A value that is JSON
 * (a number, `true`, a list) is sent as JSON; anything else as a string (`iban=DE89 3704 …`).
 */
export function paramsFrom(json: string | undefined, pairs: readonly string[]): Record<string, unknown> {
  let params: Record<string, unknown> = {};
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(textOf(json));
    } catch {
      throw new MandateError('ERR_VALIDATION', '--params must be a JSON object or @file.json');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new MandateError('ERR_VALIDATION', '--params must be a JSON object');
    }
    params = { ...(parsed as Record<string, unknown>) };
  }
  for (const pair of pairs) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new MandateError('ERR_VALIDATION', `--param takes name=value, got "${pair.slice(0, 64)}"`);
    const raw = pair.slice(i + 1);
    let value: unknown = raw;
    try {
      const v: unknown = JSON.parse(raw);
      if (typeof v !== 'string' && v !== null) value = v;
    } catch {
      // Not JSON: the string as typed.
    }
    params[pair.slice(0, i)] = value;
  }
  return params;
}

interface OpenFlags extends AdminFlags {
  agent: string;
  template: string;
  templateVersion?: string;
  params?: string;
  param: string[];
  request?: string;
  onBehalfOf?: string;
  ttl?: string;
  purpose?: string;
  environment?: string;
}

export function registerMandateOpenCommands(program: Command, mandates: Command): void {
  withAdminFlags(
    mandates
      .command('open')
      .description('Open a mandate for an agent from a task template (the agent takes it with its identity proof).')
      .requiredOption('--agent <id>', 'the agent that will hold it')
      .requiredOption('--template <name>', 'task template name')
      .option('--template-version <n>', 'pin a template version (default: the highest loaded)')
      .option('--params <json|@file>', 'parameters as a JSON object')
      .option('--param <name=value>', 'one parameter (repeatable); JSON values (numbers, lists) are sent as JSON', collect, [])
      .option('--request <text|@file>', "the human's request, as written (intent binding compares arguments with it)")
      .option('--on-behalf-of <human>', 'the human the agent acts for')
      .option('--ttl <seconds>', "lifetime (at most the template's)")
      .option('--purpose <text>', "purpose (default: the template's)")
      .option('--environment <env>', "environment (default: the template's, else the agent's)"),
  ).action(async (flags: OpenFlags) => {
    const body: Record<string, unknown> = {
      agentId: flags.agent,
      template: flags.template,
      params: paramsFrom(flags.params, flags.param),
      ...(flags.templateVersion === undefined ? {} : { version: Number(flags.templateVersion) }),
      ...(flags.request === undefined ? {} : { request: textOf(flags.request) }),
      ...(flags.onBehalfOf === undefined ? {} : { onBehalfOf: flags.onBehalfOf }),
      ...(flags.ttl === undefined ? {} : { ttlSeconds: Number(flags.ttl) }),
      ...(flags.purpose === undefined ? {} : { purpose: flags.purpose }),
      ...(flags.environment === undefined ? {} : { environment: flags.environment }),
    };
    printJson(await adminRequest(flags, 'POST', '/admin/v1/mandates', body));
  });

  const templates = program.command('templates').description('Task templates loaded with the org policy (policy.dir/*.template.yaml).');
  withAdminFlags(templates.command('list').description('List the loaded task templates.').option('--json', 'print JSON')).action(
    async (flags: AdminFlags & { json?: boolean }) => {
      const { items } = (await adminRequest(flags, 'GET', '/admin/v1/templates')) as {
        items: {
          name: string;
          version: number;
          taskType: string;
          params: Record<string, { type: string; required: boolean }>;
          tools: { tool: string }[];
        }[];
      };
      if (flags.json === true) return printJson(items);
      printTable(
        ['NAME', 'VERSION', 'TASK TYPE', 'PARAMETERS', 'TOOLS'],
        items.map((t) => [
          t.name,
          String(t.version),
          t.taskType,
          Object.entries(t.params)
            .map(([n, p]) => `${n}:${p.type}${p.required ? '' : '?'}`)
            .join(' '),
          t.tools.map((g) => g.tool).join(' '),
        ]),
      );
    },
  );
}
