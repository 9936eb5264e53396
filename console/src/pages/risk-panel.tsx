// The risk section of a mandate page (docs/risk.md): the mandate's and its delegation tree's scores
// with each signal's contribution, and the timeline of automatic responses (from the audit log).
import { ErrorNotice, Time } from '../components/ui';
import { useApi } from '../lib/api';
import { useLive } from '../lib/live';

interface Signal {
  signal: string;
  value: number;
  points: number;
}

interface RiskView {
  score: number;
  signals: Signal[];
  timeline: { seq: number; type: string; time: string; data: { action?: string; subject?: string; score?: number; signals?: Signal[] } }[];
}

const round = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));

export function RiskPanel({ mandateId, rootId }: { mandateId: string; rootId: string }) {
  const mandate = useApi<RiskView>(`/admin/v1/risk/mandate/${encodeURIComponent(mandateId)}`, [mandateId]);
  const tree = useApi<RiskView>(`/admin/v1/risk/tree/${encodeURIComponent(rootId)}`, [rootId]);
  useLive(['mandate', 'audit'], () => {
    mandate.reload();
    tree.reload();
  });
  const signals = tree.data?.signals ?? [];
  const timeline = tree.data?.timeline ?? [];
  return (
    <section aria-labelledby="m-risk">
      <h2 id="m-risk">Risk</h2>
      <ErrorNotice error={mandate.error ?? tree.error} what="the risk scores" />
      <p data-testid="risk-scores">
        Mandate score <strong>{mandate.data?.score ?? 0}</strong> · delegation tree score <strong>{tree.data?.score ?? 0}</strong> (0–100;
        this replica's view)
      </p>
      {signals.length === 0 ? (
        <p className="muted">No risk signal on this delegation tree in the current window.</p>
      ) : (
        <table data-testid="risk-signals">
          <thead>
            <tr>
              <th scope="col">Signal</th>
              <th scope="col">Measured</th>
              <th scope="col">Points</th>
            </tr>
          </thead>
          <tbody>
            {signals.map((s) => (
              <tr key={s.signal}>
                <td>
                  <code>{s.signal}</code>
                </td>
                <td>{round(s.value)}</td>
                <td>+{round(s.points)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {timeline.length > 0 ? (
        <ol data-testid="risk-timeline">
          {timeline.map((e) => (
            <li key={e.seq}>
              <Time at={e.time} /> {e.type === 'risk.cleared' ? 'lifted' : 'fired'} <strong>{e.data.action}</strong> on the {e.data.subject}{' '}
              at score {e.data.score}: {(e.data.signals ?? []).map((s) => `${s.signal} +${round(s.points)}`).join(', ')}
            </li>
          ))}
        </ol>
      ) : null}
    </section>
  );
}
