// `mandate audit …`: verifier key, checkpoints, full verification, proofs (produce and check from
// files), explain and export. Commands that read the log open the store directly (no HTTP server).
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { auditOrigin } from '../../addresses.js';
import { explainEvent, renderExplanation } from '../../audit/explain.js';
import { type ExportFormat, exportLog, verifyExport } from '../../audit/export.js';
import { AuditService } from '../../audit/log.js';
import { type ConsistencyAnswer, consistencyAnswer, type InclusionAnswer, inclusionAnswer } from '../../audit/proof-answers.js';
import { verifyProofBundle } from '../../audit/proof-bundle.js';
import { verifyRemoteLog } from '../../audit/tiles-client.js';
import { verifyLog } from '../../audit/verify.js';
import { ConfigError, MandateError } from '../../errors/index.js';
import { systemClock } from '../../lib/clock.js';
import { resolveSecretBox } from '../../secrets/index.js';
import { openStore } from '../../store/index.js';
import { type ConfigFlags, configFromFlags } from '../config-source.js';
import { fetchBroker } from './admin-request.js';

async function withLog<T>(flags: ConfigFlags, fn: (audit: AuditService, store: ReturnType<typeof openStore>) => Promise<T>): Promise<T> {
  // The log is the one a broker at this address signs: its origin (and vkey name) follows that address.
  const config = configFromFlags({ ...flags, url: undefined }, { followsBrokerUrl: true });
  const { box } = resolveSecretBox(config);
  const store = openStore(config);
  try {
    await store.migrate();
    const audit = await AuditService.open({ store, secrets: box, clock: systemClock, origin: auditOrigin(config) });
    try {
      return await fn(audit, store);
    } finally {
      await audit.close();
    }
  } finally {
    await store.close();
  }
}

function configOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'configuration file (YAML or JSON)')
    .option('--demo', 'use the demo configuration (its public URL: MANDATE_URL, else http://127.0.0.1:8080)')
    .option('--port <port>', 'port the broker serves on (part of the checkpoint origin and the vkey name)')
    .option('--public-url <url>', "the broker's public URL (overrides server.publicUrl; names the checkpoint origin)");
}

function readVkey(flags: { vkey?: string; vkeyFile?: string }): string | undefined {
  if (flags.vkeyFile !== undefined) return readFileSync(flags.vkeyFile, 'utf8').trim();
  return flags.vkey;
}

function intArg(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new ConfigError('ERR_CONFIG_INVALID', `${name} must be a non-negative integer`);
  return Number(value);
}

interface VerifyFlags {
  vkey?: string;
  vkeyFile?: string;
  json?: boolean;
  url?: string;
  token?: string;
  previous?: string;
  save?: string;
}

/** `audit verify --url`: an auditor's check with only the pinned vkey and HTTP access. */
async function verifyRemote(flags: VerifyFlags): Promise<void> {
  const vkey = readVkey(flags);
  if (vkey === undefined) throw new ConfigError('ERR_CONFIG_INVALID', '--url needs --vkey or --vkey-file (the key you pinned)');
  const base = `${(flags.url ?? '').replace(/\/+$/, '')}/`;
  const token = flags.token ?? process.env.MANDATE_AUDIT_TOKEN;
  const report = await verifyRemoteLog({
    vkey,
    ...(flags.previous === undefined ? {} : { previous: readFileSync(flags.previous, 'utf8') }),
    fetch: async (path) => {
      const res = await fetchBroker(new URL(path, base), { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
    },
    onProgress: (done, total) => {
      if (flags.json !== true && done % 100_000 < 256) process.stderr.write(`verified ${done} / ${total} entries\n`);
    },
  });
  if (flags.json === true) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (!report.ok) {
    const where = report.index === undefined ? '' : ` (first bad index ${report.index})`;
    throw new MandateError('ERR_AUDIT_VERIFY_FAILED', `${report.reason ?? 'verification failed'}${where}`);
  }
  if (flags.save !== undefined && report.checkpoint !== undefined) writeFileSync(flags.save, report.checkpoint);
  if (flags.json !== true) process.stdout.write(`ok: ${report.size} entries reproduce the signed checkpoint\n`);
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('The tamper-evident audit log: keys, checkpoints, verify, proofs, explain, export.');

  configOptions(audit.command('vkey').description('Print the checkpoint verifier key (C2SP signed-note vkey). Pin it out of band.')).action(
    async (flags: ConfigFlags) => {
      await withLog(flags, async (log) => process.stdout.write(`${log.vkey}\n`));
    },
  );

  configOptions(audit.command('checkpoint').description('Sign a checkpoint of the current tree now and print it.')).action(
    async (flags: ConfigFlags) => {
      await withLog(flags, async (log) => process.stdout.write((await log.checkpoint()).note));
    },
  );

  configOptions(
    audit
      .command('verify')
      .description('Recompute the whole tree from stored entries; check every checkpoint signature and their consistency.')
      .option('--vkey <vkey>', 'pinned verifier key (default: the key stored with the log)')
      .option('--vkey-file <file>', 'file holding the pinned verifier key')
      .option('--json', 'print the report as JSON')
      .option('--url <url>', 'verify a remote log through its tiles (…/audit/log/) instead of the store; needs --vkey')
      .option('--token <token>', 'bearer token with audit:read for remote entry bundles (or MANDATE_AUDIT_TOKEN)')
      .option('--previous <file>', 'remote: a checkpoint saved earlier that the log must extend')
      .option('--save <file>', 'remote: write the verified checkpoint here (use it as --previous next time)'),
  ).action(async (flags: ConfigFlags & VerifyFlags) => {
    if (flags.url !== undefined) {
      await verifyRemote(flags);
      return;
    }
    const report = await withLog(flags, async (log, store) => {
      let last = 0;
      return verifyLog(store, {
        vkey: readVkey(flags) ?? log.vkey,
        onProgress: (done, total) => {
          if (flags.json === true || done - last < 100_000) return;
          last = done;
          process.stderr.write(`verified ${done} / ${total} entries\n`);
        },
      });
    });
    if (flags.json === true) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (!report.ok) {
      const where = report.failure?.index === undefined ? '' : ` (first bad index ${report.failure.index})`;
      throw new MandateError('ERR_AUDIT_VERIFY_FAILED', `${report.failure?.reason ?? 'verification failed'}${where}`);
    }
    if (flags.json !== true) {
      process.stdout.write(`ok: ${report.entries} entries, ${report.checkpoints} checkpoints verified; root ${report.root}\n`);
    }
  });

  configOptions(
    audit
      .command('prove')
      .description(
        'Print a proof as the API serves it: --leaf N [--size S] (inclusion) or --from SIZE [--to SIZE] (consistency), with a signed bundle for verify-proof when the ends are signed checkpoints.',
      )
      .option('--leaf <index>', 'entry index to prove')
      .option('--size <size>', 'with --leaf: tree size to prove against (default: the latest checkpoint, with a bundle)')
      .option('--from <size>', 'size of the earlier tree')
      .option('--to <size>', 'size of the later tree (default: the current tree)'),
  ).action(async (flags: ConfigFlags & { leaf?: string; size?: string; from?: string; to?: string }) => {
    const leaf = intArg('--leaf', flags.leaf);
    const from = intArg('--from', flags.from);
    if ((leaf === undefined) === (from === undefined)) throw new ConfigError('ERR_CONFIG_INVALID', 'pass exactly one of --leaf or --from');
    const answer = await withLog<InclusionAnswer | ConsistencyAnswer>(flags, (log) =>
      leaf !== undefined
        ? inclusionAnswer(log, leaf, intArg('--size', flags.size))
        : consistencyAnswer(log, from as number, intArg('--to', flags.to)),
    );
    process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
    if (answer.bundle === undefined && flags.size === undefined) {
      process.stderr.write('note: these sizes are not both signed checkpoints, so there is no signed bundle to check offline\n');
    }
  });

  audit
    .command('verify-proof')
    .argument('<file>', 'proof bundle from `mandate audit prove` or the proof API')
    .description('Check a proof bundle offline with only the pinned verifier key.')
    .option('--vkey <vkey>', 'pinned verifier key')
    .option('--vkey-file <file>', 'file holding the pinned verifier key')
    .action((file: string, flags: { vkey?: string; vkeyFile?: string }) => {
      const vkey = readVkey(flags);
      if (vkey === undefined) throw new ConfigError('ERR_CONFIG_INVALID', 'pass --vkey or --vkey-file (the key you pinned)');
      const text = readFileSync(file, 'utf8');
      let bundle: unknown;
      try {
        bundle = JSON.parse(text);
      } catch {
        bundle = undefined;
      }
      if (bundle === undefined || (typeof bundle === 'object' && bundle !== null && 'proof' in bundle && !('kind' in bundle))) {
        // An export: JSON lines ending with a range proof.
        const check = verifyExport(text.split('\n'), vkey);
        if (!check.ok) {
          const where = check.index === undefined ? '' : ` (first bad index ${check.index})`;
          throw new MandateError('ERR_AUDIT_VERIFY_FAILED', `export: ${check.reason ?? 'invalid'}${where}`);
        }
        process.stdout.write(`ok: ${check.entries} exported entries reproduce the signed checkpoint\n`);
        return;
      }
      // `audit prove` and the proof API answer with the RFC 9162 path and, when signed, the bundle.
      if (typeof bundle === 'object' && bundle !== null && ('leafIndex' in bundle || 'treeSize1' in bundle) && !('kind' in bundle)) {
        const signed = (bundle as { bundle?: unknown }).bundle;
        if (signed === undefined) {
          throw new MandateError(
            'ERR_AUDIT_VERIFY_FAILED',
            'this proof carries no signed bundle (its tree sizes are not signed checkpoints); prove between signed checkpoints to check it offline',
          );
        }
        bundle = signed;
      }
      const result = verifyProofBundle(bundle, vkey);
      if (!result.ok) throw new MandateError('ERR_AUDIT_VERIFY_FAILED', `${result.summary}: ${result.reason ?? 'invalid'}`);
      process.stdout.write(`ok: ${result.summary}\n`);
    });

  configOptions(
    audit
      .command('explain')
      .argument('<event-id>', 'event id (its index in the log)')
      .description('Walk from one event to its chain of authority: decision, policies, mandate, delegation, human, approval, identity.')
      .option('--json', 'print JSON'),
  ).action(async (id: string, flags: ConfigFlags & { json?: boolean }) => {
    const explanation = await withLog(flags, (log) => explainEvent(log, id));
    process.stdout.write(flags.json === true ? `${JSON.stringify(explanation, null, 2)}\n` : renderExplanation(explanation));
  });

  configOptions(
    audit
      .command('export')
      .description('Stream entries as JSONL (or OCSF-shaped JSON lines), followed by a proof bundle line.')
      .option('--from <index>', 'first entry', '0')
      .option('--to <index>', 'end (exclusive; default: the latest checkpoint)')
      .option('--format <format>', 'jsonl or ocsf', 'jsonl')
      .option('--out <file>', 'write here instead of stdout'),
  ).action(async (flags: ConfigFlags & { from: string; to?: string; format: string; out?: string }) => {
    if (flags.format !== 'jsonl' && flags.format !== 'ocsf') throw new ConfigError('ERR_CONFIG_INVALID', '--format must be jsonl or ocsf');
    const out: NodeJS.WritableStream = flags.out === undefined ? process.stdout : createWriteStream(flags.out);
    await withLog(flags, async (log) => {
      for await (const line of exportLog(log, {
        from: intArg('--from', flags.from) ?? 0,
        to: intArg('--to', flags.to),
        format: flags.format as ExportFormat,
      })) {
        if (!out.write(`${line}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
    });
    if (out !== process.stdout) await new Promise<void>((r) => out.end(() => r()));
  });
}
