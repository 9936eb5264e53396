// Evidence packs: the control map of one framework, computed now, with the signed checkpoint it was
// computed against and an RFC 9162 inclusion proof for every audit event it cites. An auditor checks
// the whole folder offline with only the log's verifier key (`mandate report verify-evidence`), or
// any single proof with `mandate audit verify-proof`.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint, parseVkey } from '../audit/checkpoint.js';
import type { AuditService } from '../audit/log.js';
import { readEntryRows } from '../audit/log.js';
import { hashLeaf } from '../audit/merkle.js';
import { type InclusionBundle, inclusionBundleSchema, verifyProofBundle } from '../audit/proof-bundle.js';
import { MandateError } from '../errors/index.js';
import { type ControlRow, controlsReport } from './controls.js';
import { escapeHtml, htmlPage, htmlTable } from './render.js';
import type { Report, ReportContext, ReportParams } from './types.js';

export interface CitedEvent {
  readonly seq: number;
  /** Hex RFC 9162 leaf hash of the entry bytes. */
  readonly leafHash: string;
  readonly type: string;
}

export interface EvidencePack {
  readonly report: Report<ControlRow>;
  /** The signed checkpoint note every proof is relative to. */
  readonly checkpoint: string;
  readonly checkpointSize: number;
  readonly vkey: string;
  readonly cited: readonly CitedEvent[];
  readonly proofs: readonly InclusionBundle[];
}

/** Computes the control report, signs a checkpoint covering it, and proves every cited event. */
export async function buildEvidencePack(
  ctx: ReportContext,
  audit: AuditService,
  params: ReportParams & { framework: string; evidenceLimit?: number },
): Promise<EvidencePack> {
  const report = await controlsReport(ctx, params);
  // Signed after the report: every event it cites was appended before, so the tree covers it.
  const c = await audit.checkpoint();
  const seqs = [...new Set(report.rows.flatMap((r) => r.evidence.flatMap((e) => e.events)))]
    .filter((s) => s < c.size)
    .sort((a, b) => a - b);
  const proofs: InclusionBundle[] = [];
  const cited: CitedEvent[] = [];
  for (const seq of seqs) {
    const { proof } = await audit.inclusionProof(seq, c.size);
    const [row] = await readEntryRows(audit.db, seq, seq + 1);
    if (row === undefined) throw new MandateError('ERR_AUDIT_RANGE', `no entry ${seq}`);
    proofs.push({ kind: 'inclusion', checkpoint: c.note, index: seq, entry: row.body, proof: proof.map((h) => h.toString('base64')) });
    const type = (JSON.parse(row.body) as { event: { type: string } }).event.type;
    cited.push({ seq, leafHash: Buffer.from(row.leaf_hash).toString('hex'), type });
  }
  return { report, checkpoint: c.note, checkpointSize: c.size, vkey: audit.vkey, cited, proofs };
}

function packHtml(pack: EvidencePack): string {
  const r = pack.report;
  const controls = htmlTable(
    [
      { key: 'control', label: 'Control' },
      { key: 'title', label: 'Title' },
      { key: 'capability', label: 'Mandate capability' },
      { key: 'status', label: 'status' },
      { key: 'checks', label: 'Live checks' },
      { key: 'events', label: 'Cited events' },
    ],
    r.rows.map((row) => ({
      control: row.control,
      title: row.title,
      capability: row.capability,
      status: row.status,
      checks: row.checks.map((c) => `${c.name}: ${c.status} — ${c.reason}`).join('\n'),
      events: row.evidence.map((e) => `${e.query}: ${e.events.length === 0 ? 'none' : e.events.join(', ')}`).join('\n'),
    })),
  );
  const events = htmlTable(
    [
      { key: 'seq', label: 'Event id' },
      { key: 'type', label: 'Type' },
      { key: 'leafHash', label: 'Leaf hash (RFC 9162)' },
      { key: 'proof', label: 'Proof file' },
    ],
    pack.cited.map((c) => ({ ...c, seq: String(c.seq), proof: `proofs/${c.seq}.json` })),
  );
  const summary = Object.entries(r.summary)
    .map(([k, v]) => `${escapeHtml(k)}: ${escapeHtml(String(v))}`)
    .join(' · ');
  return htmlPage(
    `Evidence pack — ${r.title}`,
    `<h1>${escapeHtml(r.title)}</h1><p class="meta">Generated ${escapeHtml(r.generatedAt)} · window ${escapeHtml(r.window.since)} – ${escapeHtml(r.window.until)}<br>${summary}</p>
<h2>Signed checkpoint (tree size ${pack.checkpointSize})</h2><pre>${escapeHtml(pack.checkpoint)}</pre>
<p>Verify offline with the log's verifier key you pinned: <code>mandate report verify-evidence &lt;this folder&gt; --vkey-file &lt;pinned key&gt;</code>, or one proof with <code>mandate audit verify-proof proofs/&lt;id&gt;.json --vkey-file &lt;pinned key&gt;</code>.</p>
<h2>Controls</h2>${controls}<h2>Cited events (${pack.cited.length})</h2>${events}`,
  );
}

/** Writes the pack as a folder: report.json, report.html, checkpoint.txt, vkey.txt, proofs/<seq>.json. */
export function writeEvidencePack(dir: string, pack: EvidencePack): string[] {
  mkdirSync(join(dir, 'proofs'), { recursive: true });
  const files: string[] = [];
  const put = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    files.push(name);
  };
  put(
    'report.json',
    `${JSON.stringify({ report: pack.report, checkpoint: { size: pack.checkpointSize, note: pack.checkpoint }, cited: pack.cited }, null, 2)}\n`,
  );
  put('report.html', packHtml(pack));
  put('checkpoint.txt', pack.checkpoint);
  put('vkey.txt', `${pack.vkey}\n`);
  for (const p of pack.proofs) put(`proofs/${p.index}.json`, `${JSON.stringify(p, null, 2)}\n`);
  return files;
}

export interface PackCheck {
  readonly ok: boolean;
  readonly checked: number;
  readonly failures: readonly string[];
}

/**
 * Checks a pack folder with only a pinned vkey: the checkpoint's signature, and for every cited
 * event its proof file (signature, inclusion in that checkpoint, and that the entry bytes hash to
 * the leaf hash the report cites). Never throws on bad input: it reports.
 */
export function verifyEvidencePack(dir: string, vkey: string): PackCheck {
  const failures: string[] = [];
  let doc: { checkpoint?: { note?: unknown }; cited?: unknown };
  let note: string;
  try {
    doc = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    note = readFileSync(join(dir, 'checkpoint.txt'), 'utf8');
  } catch (err) {
    return { ok: false, checked: 0, failures: [`unreadable pack: ${(err as Error).message}`] };
  }
  let key: ReturnType<typeof parseVkey>;
  try {
    key = parseVkey(vkey);
  } catch (err) {
    return { ok: false, checked: 0, failures: [`unusable verifier key: ${(err as Error).message}`] };
  }
  const c = openCheckpoint(note, key);
  if (typeof c === 'string') return { ok: false, checked: 0, failures: [`checkpoint.txt: ${c}`] };
  if (doc.checkpoint?.note !== note) failures.push('report.json names another checkpoint than checkpoint.txt');
  const cited = Array.isArray(doc.cited) ? (doc.cited as { seq?: unknown; leafHash?: unknown }[]) : [];
  if (!Array.isArray(doc.cited)) failures.push('report.json lists no cited events');
  let checked = 0;
  for (const e of cited) {
    const seq = e.seq;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0 || typeof e.leafHash !== 'string') {
      failures.push('a cited event is malformed');
      continue;
    }
    let bundle: InclusionBundle;
    try {
      bundle = inclusionBundleSchema.parse(JSON.parse(readFileSync(join(dir, 'proofs', `${seq}.json`), 'utf8')));
    } catch {
      failures.push(`event ${seq}: proof file missing or malformed`);
      continue;
    }
    checked++;
    if (bundle.index !== seq) failures.push(`event ${seq}: the proof is for entry ${bundle.index}`);
    if (bundle.checkpoint !== note) failures.push(`event ${seq}: the proof is relative to another checkpoint`);
    if (hashLeaf(bundle.entry).toString('hex') !== e.leafHash)
      failures.push(`event ${seq}: the entry does not hash to the cited leaf hash`);
    const r = verifyProofBundle(bundle, vkey);
    if (!r.ok) failures.push(`event ${seq}: ${r.reason ?? 'proof invalid'}`);
  }
  return { ok: failures.length === 0, checked, failures };
}
