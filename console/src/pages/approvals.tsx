// Approvals inbox: what exactly an agent wants to run, for whom, why and through which chain;
// pending first, updated live, decided with an optional comment.
import { useEffect, useState } from 'react';
import { ArgsTable, Countdown, Empty, ErrorNotice, Link, Loading, PageTitle, StatusBadge, Time } from '../components/ui';
import { ApiError, api, itemsOf, useApi } from '../lib/api';
import { staleReason } from '../lib/approval-state';
import { useLive } from '../lib/live';
import { useCan, useMe, whyNotDecide } from '../lib/me';

export interface Approval {
  id: string;
  mandateId: string;
  tool: string;
  agentId: string;
  onBehalfOf?: string;
  status: string;
  requiredRoles: string[];
  forbiddenApprovers?: string[];
  decisionId: string;
  reasons: string[];
  context: {
    agent: { id: string; displayName?: string; owner?: string; environment?: string };
    onBehalfOf?: string;
    purpose: string;
    taskType: string;
    environment: string;
    chain: { mandateId: string; agentId: string; purpose: string }[];
    tool: { name: string; title?: string; description?: string; actionClass: string; sensitivity: string };
    args: Record<string, unknown>;
    policies: string[];
  };
  decidedBy?: string;
  decidedRole?: string;
  decidedNote?: string;
  createdAt: number;
  expiresAt: number;
  decidedAt?: number;
  consumedAt?: number;
}

/** Now, every second while `active`: a pending approval turns stale on screen the moment it expires. */
function useNow(active: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

const ORDER: Record<string, number> = { pending: 0, approved: 1, consumed: 2, denied: 3, expired: 4, withdrawn: 5 };

export function ApprovalsPage() {
  const [filter, setFilter] = useState<'pending' | 'all'>('pending');
  const list = useApi<unknown>(`/admin/v1/approvals${filter === 'pending' ? '?status=pending' : '?limit=200'}`, []);
  useLive(['approval'], list.reload);
  const items = itemsOf<Approval>(list.data).sort((a, b) => (ORDER[a.status] ?? 9) - (ORDER[b.status] ?? 9) || b.createdAt - a.createdAt);
  return (
    <>
      <PageTitle live>Approvals</PageTitle>
      <div className="filters">
        <label>
          <span>Show</span>
          <select value={filter} onChange={(e) => setFilter(e.target.value as 'pending' | 'all')}>
            <option value="pending">Pending only</option>
            <option value="all">All recent</option>
          </select>
        </label>
        <span className="muted" aria-live="polite">
          {list.data === undefined ? '' : `${items.length} ${filter === 'pending' ? 'pending' : 'shown'}`}
        </span>
      </div>
      <ErrorNotice error={list.error} what="approvals" />
      {list.data === undefined && list.loading ? <Loading what="approvals" /> : null}
      {list.data !== undefined && items.length === 0 ? (
        <Empty>
          {filter === 'pending'
            ? 'Nothing waits for you. When an agent hits a call that policy sends to a human, it appears here at once.'
            : 'No approvals yet.'}
        </Empty>
      ) : null}
      <div>
        {items.map((a) => (
          <ApprovalCard key={a.id} approval={a} onDecided={list.reload} />
        ))}
      </div>
    </>
  );
}

/** One approval, as linked from the agent's tool error and notifications (/console/approvals/:id). */
export function ApprovalPage({ id }: { id: string }) {
  const one = useApi<Approval>(`/admin/v1/approvals/${encodeURIComponent(id)}`, [id]);
  useLive(['approval'], one.reload);
  return (
    <>
      <PageTitle live>Approval</PageTitle>
      <p>
        <Link to="/approvals">← All approvals</Link>
      </p>
      <ErrorNotice error={one.error} what="the approval" />
      {one.data === undefined && one.loading ? <Loading what="the approval" /> : null}
      {one.data ? <ApprovalCard approval={one.data} onDecided={one.reload} /> : null}
    </>
  );
}

function ApprovalCard({ approval: a, onDecided }: { approval: Approval; onDecided: () => void }) {
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const ctx = a.context;
  const me = useMe();
  const canReadMandates = useCan('mandates:read');
  const now = useNow(a.status === 'pending' || a.status === 'approved');
  const stale = staleReason(a, now);
  const live = stale === undefined;
  const refusal = whyNotDecide(me, a);
  const decide = async (approve: boolean) => {
    setBusy(true);
    setError(undefined);
    try {
      await api(`/admin/v1/approvals/${encodeURIComponent(a.id)}/${approve ? 'approve' : 'deny'}`, {
        method: 'POST',
        body: note.trim() === '' ? {} : { note: note.trim() },
      });
      onDecided();
    } catch (err) {
      setError(err instanceof ApiError ? `${err.code}: ${err.message}` : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const titleId = `approval-${a.id}`;
  return (
    <article
      className={`card ${live ? 'pending' : 'stale'}`}
      aria-labelledby={titleId}
      data-testid="approval"
      data-state={live ? 'live' : 'stale'}
    >
      <header>
        <h2 id={titleId} style={{ margin: 0 }}>
          <code>{a.tool}</code> <StatusBadge status={a.status === 'pending' && !live ? 'expired' : a.status} />
        </h2>
        {live ? <Countdown at={a.expiresAt} /> : <Time at={a.decidedAt ?? a.expiresAt} />}
      </header>
      <p className={`state ${live ? 'live' : 'stale'}`} data-testid="approval-state">
        {live ? (
          <>
            <strong>Live</strong>: waiting for a decision.
          </>
        ) : (
          <>
            <strong>Closed</strong>: {stale}
          </>
        )}
      </p>
      <div className="split">
        <div>
          <dl className="grid2">
            <dt>Agent</dt>
            <dd>
              {ctx.agent.displayName ?? ctx.agent.id} <span className="muted">({ctx.agent.id})</span>
            </dd>
            <dt>Owner</dt>
            <dd>{ctx.agent.owner ?? <span className="badge bad">no owner</span>}</dd>
            <dt>On behalf of</dt>
            <dd>{ctx.onBehalfOf ?? a.onBehalfOf ?? <span className="muted">nobody (agent's own task)</span>}</dd>
            <dt>Purpose</dt>
            <dd>
              {ctx.purpose} <span className="muted">({ctx.taskType})</span>
            </dd>
            <dt>Environment</dt>
            <dd>{ctx.environment}</dd>
            <dt>Action</dt>
            <dd>
              {ctx.tool.actionClass} · {ctx.tool.sensitivity}
              {ctx.tool.description ? <div className="muted">{ctx.tool.description}</div> : null}
            </dd>
            <dt>Why a human</dt>
            <dd>
              {a.reasons.join('; ') || 'policy requires approval'}
              {ctx.policies.length > 0 ? <div className="muted">policies: {ctx.policies.join(', ')}</div> : null}
            </dd>
            <dt>Who may decide</dt>
            <dd>{a.requiredRoles.join(' or ')}</dd>
          </dl>
        </div>
        <div>
          <ArgsTable args={ctx.args} tool={a.tool} />
          <h3>Delegation chain</h3>
          <ol>
            {ctx.chain.map((c) => (
              <li key={c.mandateId}>
                {canReadMandates ? <Link to={`/mandates/${encodeURIComponent(c.mandateId)}`}>{c.agentId}</Link> : c.agentId}{' '}
                <span className="muted">— {c.purpose}</span>
              </li>
            ))}
          </ol>
        </div>
      </div>
      {live && refusal !== undefined ? (
        <p className="muted" data-testid="cannot-decide">
          You cannot decide this approval: {refusal}.
        </p>
      ) : null}
      {live && refusal === undefined ? (
        <div className="actions">
          <label style={{ flex: 1 }}>
            <span>Comment (optional)</span>
            <textarea rows={2} value={note} onChange={(e) => setNote(e.target.value)} maxLength={1000} />
          </label>
          <button type="button" className="approve" disabled={busy} onClick={() => void decide(true)}>
            Approve
          </button>
          <button type="button" className="danger" disabled={busy} onClick={() => void decide(false)}>
            Deny
          </button>
        </div>
      ) : null}
      {!live && a.decidedNote ? <p className="muted">Comment: “{a.decidedNote}”</p> : null}
      {error ? (
        <div className="notice error" role="alert">
          {error}
        </div>
      ) : null}
    </article>
  );
}
