// Renders a report as JSON, CSV (RFC 4180), Markdown or a standalone HTML page that prints well to
// PDF (inline CSS, no external assets, every value escaped).
import type { Report } from './types.js';

export const formats = ['json', 'csv', 'md', 'html'] as const;
export type Format = (typeof formats)[number];

export const contentTypes: Record<Format, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  html: 'text/html; charset=utf-8',
};

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object' || x === null)) return v.join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** CSV cell: quoted when needed; a text cell starting like a formula is prefixed with ' (spreadsheet injection). */
function csvCell(v: unknown): string {
  let s = cell(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function mdCell(v: unknown): string {
  return cell(v)
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ')
    .replace(/[<>]/g, (c) => (c === '<' ? '&lt;' : '&gt;'));
}

export function escapeHtml(v: string): string {
  return v.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const rowsOf = (r: Report<object>) => r.rows as readonly Record<string, unknown>[];

export function renderCsv(r: Report<object>): string {
  const lines = [r.columns.map((c) => csvCell(c.label)).join(',')];
  for (const row of rowsOf(r)) lines.push(r.columns.map((c) => csvCell(row[c.key])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export function renderMarkdown(r: Report<object>): string {
  const out = [
    `# ${mdCell(r.title)}`,
    '',
    `Generated ${r.generatedAt}; window ${r.window.since} – ${r.window.until}.`,
    '',
    '## Summary',
    '',
  ];
  out.push('| | |', '|---|---|');
  for (const [k, v] of Object.entries(r.summary)) out.push(`| ${mdCell(k)} | ${mdCell(v)} |`);
  out.push('', '## Rows', '');
  out.push(`| ${r.columns.map((c) => mdCell(c.label)).join(' | ')} |`, `|${r.columns.map(() => '---').join('|')}|`);
  for (const row of rowsOf(r)) out.push(`| ${r.columns.map((c) => mdCell(row[c.key])).join(' | ')} |`);
  if (r.notes.length > 0) out.push('', '## How to read it', '', ...r.notes.map((n) => `- ${mdCell(n)}`));
  return `${out.join('\n')}\n`;
}

/** Inline stylesheet: readable on screen, one table per page width in print, headers repeated per page. */
export const PRINT_CSS = `
body{font:13px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111;margin:24px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:20px 0 6px}
.meta{color:#555;margin:0 0 12px}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}
th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top;word-break:break-word}
th{background:#eee}thead{display:table-header-group}tr{break-inside:avoid}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:11px ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap}
.pass{color:#0a6b2b;font-weight:600}.fail{color:#a00;font-weight:600}.na{color:#666}
@page{size:A4 landscape;margin:12mm}
@media print{body{margin:0}a{color:inherit;text-decoration:none}}
`;

export function htmlTable(columns: readonly { key: string; label: string }[], rows: readonly Record<string, unknown>[]): string {
  const head = columns.map((c) => `<th>${escapeHtml(c.label)}</th>`).join('');
  const body = rows
    .map(
      (row) =>
        `<tr>${columns
          .map((c) => {
            const v = row[c.key];
            const text = escapeHtml(cell(v));
            if (typeof v === 'number') return `<td class="num">${text}</td>`;
            if (typeof v === 'object' && v !== null && !Array.isArray(v)) return `<td><code>${text}</code></td>`;
            if (c.key === 'status' && (v === 'pass' || v === 'fail')) return `<td class="${v}">${text}</td>`;
            if (c.key === 'status' && v === 'not_applicable') return `<td class="na">${text}</td>`;
            return `<td>${text}</td>`;
          })
          .join('')}</tr>`,
    )
    .join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export function htmlPage(title: string, body: string): string {
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title><style>${PRINT_CSS}</style></head><body>\n${body}\n</body></html>\n`;
}

export function renderHtml(r: Report<object>): string {
  const summary = htmlTable(
    [
      { key: 'k', label: 'Measure' },
      { key: 'v', label: 'Value' },
    ],
    Object.entries(r.summary).map(([k, v]) => ({ k, v })),
  );
  const notes = r.notes.length === 0 ? '' : `<h2>How to read it</h2><ul>${r.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`;
  return htmlPage(
    r.title,
    `<h1>${escapeHtml(r.title)}</h1><p class="meta">Generated ${escapeHtml(r.generatedAt)} · window ${escapeHtml(r.window.since)} – ${escapeHtml(r.window.until)}</p><h2>Summary</h2>${summary}<h2>Rows (${r.rows.length})</h2>${htmlTable(r.columns, rowsOf(r))}${notes}`,
  );
}

export function render(r: Report<object>, format: Format): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(r, null, 2)}\n`;
    case 'csv':
      return renderCsv(r);
    case 'md':
      return renderMarkdown(r);
    case 'html':
      return renderHtml(r);
  }
}
