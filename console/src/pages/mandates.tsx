// Mandates: the list (active first), and a mandate page with scope, budgets used, calls made and
// the delegation tree; revoking shows the cascade as it happens.
import { useEffect, useRef, useState } from 'react';
import { DelegationTree } from '../components/delegation-tree';
import { Empty, ErrorNotice, Link, Loading, PageTitle, StatusBadge, Time } from '../components/ui';
import { type AmountHint, formatAmount, useAmountArgs } from '../lib/amounts';
import { ApiError, api, itemsOf, useApi } from '../lib/api';
import { useLive } from '../lib/live';
import { navigate, useLocation } from '../lib/router';
import { MandateLeases } from './mandate-leases';
import { RiskPanel } from './risk-panel';

export interface ToolGrant {
  tool: string;
  args?: Record<string, Record<string, unknown>>;
  maxCalls?: number;
  sum?: { arg: string; max: number };
}

export interface Mandate {
  id: string;
  agentId: string;
  parentId?: string;
  rootId: string;
  onBehalfOf?: string;
  purpose: string;
  taskType: string;
  environment: string;
  scope: { tools: ToolGrant[]; delegable: boolean };
  depth: number;
  status: string;
  expiresAt: number;
  createdAt: number;
  endedAt?: number;
  endedBy?: string;
  endReason?: string;
  chain?: string[];
}

interface Activity {
  grants: {
    index: number;
    tool: string;
    /** Consumed and reported by every replica (at most policy.budgets.flushIntervalMs behind). */
    calls: number;
    total: number;
    /** Leased to replicas and not yet reported: reserved, possibly already used. */
    leasedCalls?: number;
    leasedTotal?: number;
    allowed: number;
    maxCalls?: number;
    sumMax?: number;
    sumArg?: string;
  }[];
  calls: { total: number; allow: number; deny: number; approval_required: number };
  recent: { seq: number; id: string; event: { time: string; type: string; data: Record<string, unknown> } }[];
  /** Whether the caller may revoke, and the active descendants a revoke would end (server-computed). */
  revoke: { allowed: boolean; activeDescendants: string[]; complete: boolean };
}

/** A number as money when the catalog marks the argument as an amount. */
function shown(value: unknown, hint: AmountHint | undefined): string {
  const money = hint === undefined ? undefined : formatAmount(value, hint);
  return money ?? JSON.stringify(value);
}

function GrantRow({ grant: g, use }: { grant: ToolGrant; use: Activity['grants'][number] | undefined }) {
  const amounts = useAmountArgs(g.tool);
  return (
    <tr>
      <td>
        <code>{g.tool}</code>
      </td>
      <td>
        {g.args && Object.keys(g.args).length > 0 ? (
          Object.entries(g.args).map(([arg, c]) => (
            <div key={arg}>
              <code>{arg}</code>{' '}
              {Object.entries(c)
                .map(
                  ([op, v]) =>
                    `${op} ${Array.isArray(v) ? `[${v.map((x) => shown(x, amounts[arg])).join(', ')}]` : shown(v, amounts[arg])}`,
                )
                .join(', ')}
            </div>
          ))
        ) : (
          <span className="muted">any arguments</span>
        )}
      </td>
      <td>
        {g.maxCalls !== undefined ? `${use?.calls ?? 0} / ${g.maxCalls}` : `${use?.allowed ?? 0} (no limit)`}
        {g.maxCalls !== undefined && (use?.leasedCalls ?? 0) > 0 ? ` (+${use?.leasedCalls} reserved by replicas)` : ''}
      </td>
      <td>
        {g.sum !== undefined ? `${shown(use?.total ?? 0, amounts[g.sum.arg])} / ${shown(g.sum.max, amounts[g.sum.arg])} ${g.sum.arg}` : '—'}
        {g.sum !== undefined && (use?.leasedTotal ?? 0) > 0 ? ` (+${shown(use?.leasedTotal, amounts[g.sum.arg])} reserved)` : ''}
      </td>
    </tr>
  );
}

/** Asks before revoking, with what the server says will end: this mandate and its active descendants. */
function RevokeDialog({
  mandateId,
  descendants,
  complete,
  onConfirm,
  onClose,
}: {
  mandateId: string;
  descendants: readonly string[];
  /** False when the tree was too large to read at once: the count is a lower bound. */
  complete: boolean;
  onConfirm: () => void;
  onClose: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d !== null && !d.open) d.showModal();
  }, []);
  const n = descendants.length;
  return (
    <dialog ref={ref} className="confirm" aria-labelledby="revoke-h" onClose={onClose} data-testid="revoke-dialog">
      <h2 id="revoke-h" style={{ marginTop: 0 }}>
        Revoke this mandate?
      </h2>
      <p data-testid="revoke-count">
        This ends <code>{mandateId}</code>{' '}
        {n === 0 ? (
          <>and no other mandate (nothing was delegated from it that is still active).</>
        ) : (
          <>
            and{' '}
            <strong>
              {complete ? '' : 'at least '}
              {n} delegated mandate{n === 1 ? '' : 's'}
            </strong>{' '}
            under it: {descendants.join(', ')}.
          </>
        )}
      </p>
      <p className="muted">Every replica refuses their tokens at once. This cannot be undone: the agent must open a new mandate.</p>
      <div className="actions">
        <button type="button" className="danger" onClick={onConfirm}>
          Revoke {n + 1} mandate{n === 0 ? '' : 's'}
        </button>
        <button type="button" onClick={() => ref.current?.close()}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}

const STATUSES = ['', 'active', 'completed', 'failed', 'revoked', 'expired'];

export function MandatesPage() {
  const { search } = useLocation();
  const agentId = search.get('agentId') ?? '';
  const status = search.get('status') ?? '';
  const q = new URLSearchParams({ limit: '500', ...(agentId ? { agentId } : {}), ...(status ? { status } : {}) });
  const list = useApi<unknown>(`/admin/v1/mandates?${q}`);
  useLive(['mandate'], list.reload);
  const setFilter = (k: string, v: string) => {
    const next = new URLSearchParams(search);
    if (v) next.set(k, v);
    else next.delete(k);
    navigate(`/mandates${next.size > 0 ? `?${next}` : ''}`, { replace: true });
  };
  const now = Date.now();
  const items = itemsOf<Mandate>(list.data).sort(
    (a, b) =>
      Number(b.status === 'active' && b.expiresAt > now) - Number(a.status === 'active' && a.expiresAt > now) || b.createdAt - a.createdAt,
  );
  return (
    <>
      <PageTitle live>Mandates</PageTitle>
      <form
        className="filters"
        aria-label="Filter mandates"
        onSubmit={(e) => {
          e.preventDefault();
          const value = new FormData(e.currentTarget).get('agentId');
          setFilter('agentId', typeof value === 'string' ? value.trim() : '');
        }}
      >
        <label>
          <span>Agent</span>
          <input name="agentId" defaultValue={agentId} placeholder="agent id" onBlur={(e) => setFilter('agentId', e.target.value.trim())} />
        </label>
        <label>
          <span>Status</span>
          <select value={status} onChange={(e) => setFilter('status', e.target.value)}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s || 'any'}
              </option>
            ))}
          </select>
        </label>
      </form>
      <ErrorNotice error={list.error} what="mandates" />
      {list.data === undefined && list.loading ? <Loading what="mandates" /> : null}
      {list.data !== undefined && items.length === 0 ? (
        <Empty>No mandates match. Agents open mandates at the token endpoint; run `npm run demo:agent` to see one.</Empty>
      ) : null}
      {items.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th scope="col">Mandate</th>
              <th scope="col">Agent</th>
              <th scope="col">On behalf of</th>
              <th scope="col">Purpose</th>
              <th scope="col">Status</th>
              <th scope="col">Depth</th>
              <th scope="col">Opened</th>
              <th scope="col">Expires</th>
            </tr>
          </thead>
          <tbody>
            {items.map((m) => (
              <tr key={m.id} data-testid={`mandate-row-${m.id}`}>
                <td>
                  <Link to={`/mandates/${encodeURIComponent(m.id)}`}>
                    <code>{m.id}</code>
                  </Link>
                </td>
                <td>{m.agentId}</td>
                <td>{m.onBehalfOf ?? '—'}</td>
                <td>
                  {m.purpose} <span className="muted">({m.taskType})</span>
                </td>
                <td>
                  <StatusBadge status={m.status === 'active' && m.expiresAt <= now ? 'expired' : m.status} />
                </td>
                <td>{m.depth}</td>
                <td>
                  <Time at={m.createdAt} />
                </td>
                <td>
                  <Time at={m.expiresAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </>
  );
}

export function MandatePage({ id }: { id: string }) {
  const mandate = useApi<Mandate>(`/admin/v1/mandates/${encodeURIComponent(id)}`, [id]);
  const rootId = mandate.data?.rootId;
  const tree = useApi<unknown>(rootId === undefined ? undefined : `/admin/v1/mandates?rootId=${encodeURIComponent(rootId)}&limit=1000`, [
    rootId,
  ]);
  const activity = useApi<Activity>(`/admin/v1/console/mandates/${encodeURIComponent(id)}/activity`, [id]);
  const [reason, setReason] = useState('');
  const [result, setResult] = useState<{ ok: boolean; text: string }>();
  const [confirming, setConfirming] = useState(false);
  useLive(['mandate', 'audit'], () => {
    mandate.reload();
    tree.reload();
    activity.reload();
  });
  const m = mandate.data;
  const revoke = async () => {
    if (m === undefined) return;
    setConfirming(false);
    setResult(undefined);
    try {
      const r = await api<{ ended: string[] }>(`/admin/v1/mandates/${encodeURIComponent(m.id)}/revoke`, {
        method: 'POST',
        body: reason.trim() === '' ? {} : { reason: reason.trim() },
      });
      setResult({ ok: true, text: `Revoked ${r.ended.length} mandate${r.ended.length === 1 ? '' : 's'}: ${r.ended.join(', ')}` });
      mandate.reload();
      tree.reload();
      activity.reload();
    } catch (err) {
      setResult({ ok: false, text: err instanceof ApiError ? `${err.code}: ${err.message}` : (err as Error).message });
    }
  };
  const nodes = itemsOf<Mandate>(tree.data);
  return (
    <>
      <PageTitle live>Mandate</PageTitle>
      <p>
        <Link to="/mandates">← All mandates</Link>
      </p>
      <ErrorNotice error={mandate.error} what="the mandate" />
      {m === undefined && mandate.loading ? <Loading what="the mandate" /> : null}
      {m !== undefined ? (
        <>
          <div className="split">
            <section aria-labelledby="m-summary">
              <h2 id="m-summary">
                <code>{m.id}</code> <StatusBadge status={m.status} />
              </h2>
              <dl className="grid2">
                <dt>Agent</dt>
                <dd>{m.agentId}</dd>
                <dt>On behalf of</dt>
                <dd>{m.onBehalfOf ?? '—'}</dd>
                <dt>Purpose</dt>
                <dd>
                  {m.purpose} <span className="muted">({m.taskType})</span>
                </dd>
                <dt>Environment</dt>
                <dd>{m.environment}</dd>
                <dt>Delegation depth</dt>
                <dd>
                  {m.depth}
                  {m.parentId ? (
                    <>
                      {' '}
                      · parent <Link to={`/mandates/${encodeURIComponent(m.parentId)}`}>{m.parentId}</Link>
                    </>
                  ) : null}
                </dd>
                <dt>Delegable</dt>
                <dd>{m.scope.delegable ? 'yes' : 'no'}</dd>
                <dt>Opened</dt>
                <dd>
                  <Time at={m.createdAt} />
                </dd>
                <dt>Expires</dt>
                <dd>
                  <Time at={m.expiresAt} />
                </dd>
                {m.endedAt ? (
                  <>
                    <dt>Ended</dt>
                    <dd>
                      <Time at={m.endedAt} /> by {m.endedBy ?? '?'}
                      {m.endReason ? ` — ${m.endReason}` : ''}
                    </dd>
                  </>
                ) : null}
              </dl>
              <p>
                <Link to={`/audit?mandate=${encodeURIComponent(m.id)}`}>Audit events of this mandate</Link>
              </p>
            </section>
            <section aria-labelledby="m-calls">
              <h2 id="m-calls">Calls made</h2>
              <ErrorNotice error={activity.error} what="calls and budgets" />
              {activity.data ? (
                <p data-testid="calls-made">
                  {activity.data.calls.total} decisions: {activity.data.calls.allow} allowed, {activity.data.calls.deny} denied,{' '}
                  {activity.data.calls.approval_required} sent for approval
                </p>
              ) : null}
              {m.status === 'active' && activity.data?.revoke.allowed ? (
                <div className="card">
                  <h3 style={{ marginTop: 0 }}>Revoke</h3>
                  <p className="muted">
                    Revoking ends this mandate and every mandate delegated from it, on every replica, at once
                    {activity.data.revoke.activeDescendants.length > 0
                      ? ` (${activity.data.revoke.activeDescendants.length} active delegated now)`
                      : ''}
                    .
                  </p>
                  <div className="actions">
                    <label style={{ flex: 1 }}>
                      <span>Reason (optional)</span>
                      <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} />
                    </label>
                    <button type="button" className="danger" onClick={() => setConfirming(true)}>
                      Revoke mandate…
                    </button>
                  </div>
                  {confirming ? (
                    <RevokeDialog
                      mandateId={m.id}
                      descendants={activity.data.revoke.activeDescendants}
                      complete={activity.data.revoke.complete}
                      onConfirm={() => void revoke()}
                      onClose={() => setConfirming(false)}
                    />
                  ) : null}
                </div>
              ) : null}
              {result ? (
                <div className={`notice ${result.ok ? 'ok' : 'error'}`} role={result.ok ? 'status' : 'alert'}>
                  {result.text}
                </div>
              ) : null}
            </section>
          </div>
          <h2>Delegation tree</h2>
          <ErrorNotice error={tree.error} what="the delegation tree" />
          {nodes.length > 0 ? <DelegationTree nodes={nodes} current={m.id} /> : tree.loading ? <Loading what="the tree" /> : null}
          <h2>Scope and budgets</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Tool</th>
                <th scope="col">Argument constraints</th>
                <th scope="col">Calls used</th>
                <th scope="col">Sum used</th>
              </tr>
            </thead>
            <tbody>
              {m.scope.tools.map((g, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: the grant index is the grant's identity (budgets are counted by it)
                <GrantRow key={`${g.tool}-${i}`} grant={g} use={activity.data?.grants.find((u) => u.index === i)} />
              ))}
            </tbody>
          </table>
          <MandateLeases id={m.id} />
          <RiskPanel mandateId={m.id} rootId={m.rootId} />
          {activity.data && activity.data.recent.length > 0 ? (
            <>
              <h2>Recent events</h2>
              <ul>
                {activity.data.recent.map((e) => (
                  <li key={e.seq}>
                    <Link to={`/audit/${e.id}`}>
                      #{e.seq} {e.event.type}
                    </Link>{' '}
                    {typeof e.event.data.tool === 'string' ? <code>{e.event.data.tool}</code> : null}{' '}
                    {typeof e.event.data.outcome === 'string' ? <StatusBadge status={e.event.data.outcome} /> : null}{' '}
                    <Time at={e.event.time} />
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </>
      ) : null}
    </>
  );
}
