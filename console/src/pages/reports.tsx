// Reports: the governance reports and the framework control map of this broker, as tables (the
// admin API's JSON; every value rendered as React text). Printable HTML and CSV come from the API
// or `mandate report <name> --format html`.
import { useState } from 'react';
import { ErrorNotice, Loading, PageTitle } from '../components/ui';
import { useApi } from '../lib/api';

interface ReportList {
  reports: string[];
  frameworks: { id: string; title: string }[];
}

interface Report {
  title: string;
  generatedAt: string;
  window: { since: string; until: string };
  columns: { key: string; label: string }[];
  rows: Record<string, unknown>[];
  summary: Record<string, unknown>;
  notes: string[];
}

/** Rows shown on screen; the API and the CLI return all of them. */
const MAX_ROWS = 500;

function text(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object' || x === null)) return v.join(', ');
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export function ReportsPage() {
  const list = useApi<ReportList>('/admin/v1/reports');
  const [name, setName] = useState('inventory');
  const [framework, setFramework] = useState('');
  const query = name === 'controls' && framework !== '' ? `?framework=${encodeURIComponent(framework)}` : '';
  const report = useApi<Report>(`/admin/v1/reports/${encodeURIComponent(name)}${query}`);
  return (
    <>
      <PageTitle>Reports</PageTitle>
      <ErrorNotice error={list.error} what="the report list" />
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Report{' '}
          <select value={name} onChange={(e) => setName(e.target.value)} data-testid="report-name">
            {(list.data?.reports ?? ['inventory']).map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        {name === 'controls' && (
          <label>
            Framework{' '}
            <select value={framework} onChange={(e) => setFramework(e.target.value)}>
              <option value="">all</option>
              {(list.data?.frameworks ?? []).map((f) => (
                <option key={f.id} value={f.id}>
                  {f.title}
                </option>
              ))}
            </select>
          </label>
        )}
      </form>
      {report.loading && report.data === undefined && <Loading what="the report" />}
      <ErrorNotice error={report.error} what="the report" />
      {report.data !== undefined && (
        <section aria-label={report.data.title}>
          <h2>{report.data.title}</h2>
          <p>
            Window {report.data.window.since} – {report.data.window.until}; generated {report.data.generatedAt}.
          </p>
          <table data-testid="report-summary">
            <tbody>
              {Object.entries(report.data.summary).map(([k, v]) => (
                <tr key={k}>
                  <th scope="row">{k}</th>
                  <td>{text(v)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <table data-testid="report-rows">
            <thead>
              <tr>
                {report.data.columns.map((c) => (
                  <th key={c.key} scope="col">
                    {c.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {report.data.rows.slice(0, MAX_ROWS).map((row, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: rows have no id in common and never reorder
                <tr key={i}>
                  {report.data?.columns.map((c) => (
                    <td key={c.key}>{text(row[c.key])}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
          {report.data.rows.length > MAX_ROWS && (
            <p>
              Showing {MAX_ROWS} of {report.data.rows.length} rows; <code>mandate report {name} --format csv</code> has them all.
            </p>
          )}
          <ul>
            {report.data.notes.map((n) => (
              <li key={n}>{n}</li>
            ))}
          </ul>
        </section>
      )}
    </>
  );
}
