// `mandate report …`: governance reports computed straight from the store (no running broker):
// `report <name> --format json|csv|md|html`, `report controls --framework`, `report evidence` (a
// self-contained evidence pack folder) and `report verify-evidence` (offline, with the pinned vkey).
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { auditOrigin } from '../../addresses.js';
import { AuditService } from '../../audit/log.js';
import { ConfigError, MandateError } from '../../errors/index.js';
import { systemClock } from '../../lib/clock.js';
import { loadPolicyStore } from '../../policy/wiring.js';
import { buildReportContext } from '../../reports/context.js';
import { controlsReport, frameworkIds } from '../../reports/controls.js';
import { buildEvidencePack, verifyEvidencePack, writeEvidencePack } from '../../reports/evidence.js';
import { type ReportName, reportNames, runReport } from '../../reports/index.js';
import { type Format, formats, render } from '../../reports/render.js';
import type { ReportContext, ReportParams } from '../../reports/types.js';
import { resolveSecretBox } from '../../secrets/index.js';
import { openStore } from '../../store/index.js';
import { type ConfigFlags, configFromFlags } from '../config-source.js';

interface ReportFlags extends ConfigFlags {
  format?: string;
  since?: string;
  dormantDays?: string;
  framework?: string;
  agent?: string;
  out?: string;
}

function withConfig(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'configuration file (YAML or JSON)')
    .option('--demo', 'use the demo configuration')
    .option('--port <port>', 'port the broker serves on (part of the checkpoint origin)')
    .option('--public-url <url>', "the broker's public URL (names the checkpoint origin)")
    .option('--since <time>', 'start of the window: ISO 8601 time, epoch ms, or a number of days like 30d (default 30d)')
    .option('--dormant-days <n>', 'days without activity that make an agent dormant (default 30)')
    .option('--agent <id>', 'one agent (over-privilege: its argument ranges and suggested ceiling)');
}

/** `--since`: an ISO time, epoch milliseconds, or `<n>d` (days before now). */
export function parseSince(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const days = /^(\d{1,5})d$/.exec(value);
  if (days !== null) return now - Number(days[1]) * 86_400_000;
  const t = /^\d{1,16}$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(t)) throw new ConfigError('ERR_CONFIG_INVALID', '--since must be an ISO 8601 time, epoch milliseconds or <n>d');
  return t;
}

function paramsOf(flags: ReportFlags, now: number): ReportParams {
  const since = parseSince(flags.since, now);
  let dormantDays: number | undefined;
  if (flags.dormantDays !== undefined) {
    if (!/^\d{1,4}$/.test(flags.dormantDays) || Number(flags.dormantDays) < 1) {
      throw new ConfigError('ERR_CONFIG_INVALID', '--dormant-days must be a positive integer');
    }
    dormantDays = Number(flags.dormantDays);
  }
  return {
    ...(since === undefined ? {} : { since }),
    ...(dormantDays === undefined ? {} : { dormantDays }),
    ...(flags.agent === undefined ? {} : { agentId: flags.agent }),
  };
}

async function withReports<T>(flags: ReportFlags, fn: (ctx: ReportContext, audit: AuditService) => Promise<T>): Promise<T> {
  const config = configFromFlags({ ...flags, url: undefined }, { followsBrokerUrl: true });
  const { box } = resolveSecretBox(config);
  const store = openStore(config);
  try {
    await store.migrate();
    const audit = await AuditService.open({ store, secrets: box, clock: systemClock, origin: auditOrigin(config) });
    try {
      const policies = await loadPolicyStore(config, systemClock);
      const ctx = await buildReportContext({
        store,
        config,
        now: systemClock.now(),
        policySet: policies.current?.set,
        secrets: box,
        fingerprint: (v) => audit.redact(v),
      });
      policies.close();
      return await fn(ctx, audit);
    } finally {
      await audit.close();
    }
  } finally {
    await store.close();
  }
}

function formatOf(value: string | undefined): Format {
  const f = value ?? 'json';
  if (!(formats as readonly string[]).includes(f))
    throw new ConfigError('ERR_CONFIG_INVALID', `--format must be one of ${formats.join(', ')}`);
  return f as Format;
}

function emit(text: string, out: string | undefined): void {
  if (out === undefined) process.stdout.write(text);
  else writeFileSync(out, text);
}

export function registerReportCommands(program: Command): void {
  const report = program.command('report').description('Governance reports, the framework control map and evidence packs.');
  for (const name of reportNames) {
    withConfig(report.command(name).description(`The ${name} report.`))
      .option('--format <format>', `one of ${formats.join(', ')}`, 'json')
      .option('--out <file>', 'write to a file instead of stdout')
      .action(async (flags: ReportFlags) => {
        const format = formatOf(flags.format);
        const text = await withReports(flags, async (ctx) =>
          render(await runReport(name as ReportName, ctx, paramsOf(flags, ctx.now)), format),
        );
        emit(text, flags.out);
      });
  }
  withConfig(report.command('controls').description('The framework control map with live checks and evidence event ids.'))
    .option('--framework <id>', `one of ${frameworkIds().join(', ')} (default: all)`)
    .option('--format <format>', `one of ${formats.join(', ')}`, 'json')
    .option('--out <file>', 'write to a file instead of stdout')
    .action(async (flags: ReportFlags) => {
      const format = formatOf(flags.format);
      const text = await withReports(flags, async (ctx) =>
        render(
          await controlsReport(ctx, {
            ...paramsOf(flags, ctx.now),
            ...(flags.framework === undefined ? {} : { framework: flags.framework }),
          }),
          format,
        ),
      );
      emit(text, flags.out);
    });
  withConfig(
    report
      .command('evidence')
      .description('Write an evidence pack: report (JSON, HTML), signed checkpoint, inclusion proofs of every cited event.'),
  )
    .requiredOption('--framework <id>', `one of ${frameworkIds().join(', ')}`)
    .requiredOption('--out <dir>', 'folder to write the pack to')
    .action(async (flags: ReportFlags & { framework: string; out: string }) => {
      const files = await withReports(flags, async (ctx, audit) =>
        writeEvidencePack(flags.out, await buildEvidencePack(ctx, audit, { ...paramsOf(flags, ctx.now), framework: flags.framework })),
      );
      process.stdout.write(
        `wrote ${files.length} files to ${flags.out} (verify: mandate report verify-evidence ${flags.out} --vkey-file <pinned key>)\n`,
      );
    });
  report
    .command('verify-evidence')
    .argument('<dir>', 'evidence pack folder')
    .description('Check an evidence pack offline with only the pinned verifier key.')
    .option('--vkey <vkey>', 'pinned verifier key')
    .option('--vkey-file <file>', 'file holding the pinned verifier key')
    .action((dir: string, flags: { vkey?: string; vkeyFile?: string }) => {
      const vkey = flags.vkeyFile !== undefined ? readFileSync(flags.vkeyFile, 'utf8').trim() : flags.vkey;
      if (vkey === undefined)
        throw new ConfigError('ERR_CONFIG_INVALID', "pass --vkey or --vkey-file (the key you pinned, not the pack's vkey.txt)");
      const r = verifyEvidencePack(dir, vkey);
      if (!r.ok)
        throw new MandateError(
          'ERR_AUDIT_VERIFY_FAILED',
          `evidence pack: ${r.failures.slice(0, 5).join('; ')}${r.failures.length > 5 ? ` (+${r.failures.length - 5} more)` : ''}`,
        );
      process.stdout.write(`ok: ${r.checked} cited events are in the signed log\n`);
    });
}
