// Overview: calls, denies and approvals over time, and how long humans take to decide.
import { useState } from 'react';
import { GroupedBars, LineChart, StackedBars } from '../components/charts';
import { ErrorNotice, Link, Loading, PageTitle } from '../components/ui';
import { itemsOf, useApi } from '../lib/api';
import { useLive } from '../lib/live';
import { useCan } from '../lib/me';
import { humanDuration } from '../lib/scale';

interface Overview {
  from: string;
  to: string;
  bucketSeconds: number;
  scanned: number;
  truncated: boolean;
  totals: {
    calls: number;
    allowed: number;
    denied: number;
    approvalRequired: number;
    approvalsRequested: number;
    approvalsDecided: number;
  };
  buckets: {
    start: string;
    calls: number;
    allowed: number;
    denied: number;
    approvalsRequested: number;
    approvalsDecided: number;
    approvalLatencyP50: number | null;
    approvalLatencyMax: number | null;
  }[];
}

const WINDOWS = [
  [1, 12, 'last hour'],
  [24, 24, 'last 24 hours'],
  [24 * 7, 28, 'last 7 days'],
] as const;

export function OverviewPage() {
  const [win, setWin] = useState(0);
  const canAudit = useCan('audit:read');
  const [hours, buckets, label] = WINDOWS[win] ?? WINDOWS[0];
  const overview = useApi<Overview>(`/admin/v1/console/overview?hours=${hours}&buckets=${buckets}`, []);
  const pending = useApi<unknown>('/admin/v1/approvals?status=pending');
  // The overview scans up to 20,000 audit events: refresh it at most every 10 s.
  useLive(
    ['audit', 'approval'],
    () => {
      overview.reload();
      pending.reload();
    },
    10_000,
  );
  const o = overview.data;
  const fmt = (iso: string) => {
    const d = new Date(iso);
    return hours <= 24 ? d.toTimeString().slice(0, 5) : `${d.getMonth() + 1}/${d.getDate()}`;
  };
  const labels = o?.buckets.map((b) => fmt(b.start)) ?? [];
  const pendingCount = pending.data === undefined ? undefined : itemsOf(pending.data).length;
  return (
    <>
      <PageTitle live>Overview</PageTitle>
      <div className="filters">
        <label>
          <span>Window</span>
          <select value={win} onChange={(e) => setWin(Number(e.target.value))}>
            {WINDOWS.map(([, , l], i) => (
              <option key={l} value={i}>
                {l}
              </option>
            ))}
          </select>
        </label>
        {o?.truncated ? <span className="muted">Counting the most recent {o.scanned} events only.</span> : null}
      </div>
      <ErrorNotice error={overview.error} what="the overview" />
      {o === undefined && overview.loading ? <Loading what="the overview" /> : null}
      <div className="kpis">
        <div className="kpi">
          <div className="muted">Waiting for approval</div>
          <div className="value">{pendingCount ?? '—'}</div>
          <Link to="/approvals">Open the inbox</Link>
        </div>
        {o ? (
          <>
            <div className="kpi">
              <div className="muted">Tool calls decided ({label})</div>
              <div className="value">{o.totals.calls}</div>
            </div>
            <div className="kpi">
              <div className="muted">Allowed</div>
              <div className="value">{o.totals.allowed}</div>
            </div>
            <div className="kpi">
              <div className="muted">Denied</div>
              <div className="value">{o.totals.denied}</div>
              {canAudit ? <Link to="/audit?outcome=deny">See denies</Link> : null}
            </div>
            <div className="kpi">
              {/* Approval requests, not decisions: retries of a waiting call ask nobody again. */}
              <div className="muted">Sent to a human</div>
              <div className="value">{o.totals.approvalsRequested}</div>
            </div>
          </>
        ) : null}
      </div>
      {o ? (
        o.totals.calls === 0 && o.totals.approvalsDecided === 0 ? (
          <div className="empty">
            No tool calls in the {label}. Start the demo agent (<code>npm run demo:agent</code>) and watch this page fill in.
          </div>
        ) : (
          <div className="charts">
            <StackedBars
              title={`Calls per ${humanDuration(o.bucketSeconds)}`}
              labels={labels}
              series={[
                { label: 'allowed', color: '#1a7f37', values: o.buckets.map((b) => b.allowed) },
                { label: 'denied', color: '#cf222e', values: o.buckets.map((b) => b.denied) },
                { label: 'approval required', color: '#bf8700', values: o.buckets.map((b) => b.calls - b.allowed - b.denied) },
              ]}
            />
            {/* Requested and decided are separate counts (one request is decided later, maybe in
                another bucket): side by side, never stacked into a meaningless total. */}
            <GroupedBars
              title={`Approvals requested and decided per ${humanDuration(o.bucketSeconds)}`}
              labels={labels}
              series={[
                { label: 'requested', color: '#bf8700', values: o.buckets.map((b) => b.approvalsRequested) },
                { label: 'decided', color: '#0969da', values: o.buckets.map((b) => b.approvalsDecided) },
              ]}
            />
            <LineChart
              title="Approval latency (seconds from request to decision)"
              labels={labels}
              unit="s"
              series={[
                { label: 'median', color: '#0969da', values: o.buckets.map((b) => b.approvalLatencyP50) },
                { label: 'slowest', color: '#8250df', values: o.buckets.map((b) => b.approvalLatencyMax) },
              ]}
            />
          </div>
        )
      ) : null}
    </>
  );
}
