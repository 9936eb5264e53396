// Agent inventory: owner, environment, status, last seen, active mandates; quarantine or disable;
// agents whose owner is unknown or that were not used for N days are highlighted.
import { useState } from 'react';
import { Empty, ErrorNotice, Link, Loading, PageTitle, StatusBadge, Time } from '../components/ui';
import { ApiError, api, itemsOf, useApi } from '../lib/api';
import { useLive } from '../lib/live';
import { useCan } from '../lib/me';
import type { Mandate } from './mandates';

interface Agent {
  principal: { id: string; displayName: string; owner?: string; environment?: string; status: string; createdAt: number };
  identity: { spiffeId?: string; issuer?: string; subject?: string };
  mayReceiveDelegation?: boolean;
}

interface Principal {
  id: string;
  status: string;
  actorType: string;
}

const DAY = 86_400_000;

export function AgentsPage() {
  const [staleDays, setStaleDays] = useState(30);
  const canWrite = useCan('agents:write');
  const canReadMandates = useCan('mandates:read');
  const agents = useApi<unknown>('/admin/v1/agents?limit=1000');
  const mandates = useApi<unknown>(canReadMandates ? '/admin/v1/mandates?limit=1000' : undefined);
  const humans = useApi<unknown>('/admin/v1/principals?limit=1000');
  // Risk scores above 0 (docs/risk.md), with the signals behind each.
  const risk = useApi<unknown>('/admin/v1/risk/scores?subject=agent&limit=1000');
  const riskOf = new Map(itemsOf<{ id: string; score: number; signals: { signal: string }[] }>(risk.data).map((r) => [r.id, r] as const));
  const [message, setMessage] = useState<{ ok: boolean; text: string }>();
  useLive(['agent', 'mandate', 'audit'], () => {
    agents.reload();
    mandates.reload();
    risk.reload();
  });

  const known = new Set(
    itemsOf<Principal>(humans.data)
      .filter((p) => p.status === 'active')
      .map((p) => p.id),
  );
  const byAgent = new Map<string, { last: number; active: number }>();
  const now = Date.now();
  for (const m of itemsOf<Mandate>(mandates.data)) {
    const s = byAgent.get(m.agentId) ?? { last: 0, active: 0 };
    s.last = Math.max(s.last, m.createdAt);
    if (m.status === 'active' && m.expiresAt > now) s.active++;
    byAgent.set(m.agentId, s);
  }
  const list = itemsOf<Agent>(agents.data);

  const act = async (id: string, verb: 'quarantine' | 'disable' | 'activate') => {
    setMessage(undefined);
    try {
      await api(`/admin/v1/agents/${encodeURIComponent(id)}/${verb}`, { method: 'POST', body: {} });
      setMessage({ ok: true, text: `${id}: ${verb === 'activate' ? 'activated' : `${verb}d`}.` });
      agents.reload();
    } catch (err) {
      setMessage({ ok: false, text: err instanceof ApiError ? `${err.code}: ${err.message}` : (err as Error).message });
    }
  };

  return (
    <>
      <PageTitle live>Agents</PageTitle>
      <div className="filters">
        <label>
          <span>Unused after (days)</span>
          <input
            type="number"
            min={1}
            max={365}
            value={staleDays}
            onChange={(e) => setStaleDays(Math.max(1, Number(e.target.value) || 1))}
          />
        </label>
        <p className="muted" style={{ margin: 0 }}>
          Highlighted rows: the owner is not an active known principal, or the agent opened no mandate in {staleDays} days.
          {humans.error ? ' (Owners cannot be checked: principals are not readable with your roles.)' : ''}
        </p>
      </div>
      {message ? (
        <div className={`notice ${message.ok ? 'ok' : 'error'}`} role={message.ok ? 'status' : 'alert'}>
          {message.text}
        </div>
      ) : null}
      <ErrorNotice error={agents.error} what="agents" />
      {agents.data === undefined && agents.loading ? <Loading what="agents" /> : null}
      {agents.data !== undefined && list.length === 0 ? (
        <Empty>No agents are registered. Register one with the admin API or CLI.</Empty>
      ) : null}
      {list.length > 0 ? (
        <table>
          <caption className="muted" style={{ textAlign: 'left' }}>
            {list.length} registered agents
          </caption>
          <thead>
            <tr>
              <th scope="col">Agent</th>
              <th scope="col">Owner</th>
              <th scope="col">Environment</th>
              <th scope="col">Status</th>
              <th scope="col">Last seen</th>
              <th scope="col">Active mandates</th>
              <th scope="col">Risk</th>
              {canWrite ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {list.map((a) => {
              const p = a.principal;
              const usage = byAgent.get(p.id);
              const unowned = p.owner === undefined || (humans.data !== undefined && !known.has(p.owner));
              const stale = usage === undefined || usage.last < now - staleDays * DAY;
              const flags = [unowned ? 'no known owner' : '', stale ? `unused ${staleDays}+ days` : ''].filter(Boolean);
              return (
                <tr key={p.id} className={flags.length > 0 ? 'highlight' : ''} data-testid={`agent-${p.id}`}>
                  <th scope="row">
                    {p.displayName}
                    <div className="muted mono">{p.id}</div>
                    <div className="muted mono" style={{ fontSize: '.8em' }}>
                      {a.identity.spiffeId ?? `${a.identity.issuer ?? ''} ${a.identity.subject ?? ''}`}
                    </div>
                    {flags.map((f) => (
                      <span key={f} className="badge warn" style={{ marginRight: '.25rem' }}>
                        {f}
                      </span>
                    ))}
                  </th>
                  <td>{p.owner ?? <span className="badge bad">none</span>}</td>
                  <td>{p.environment ?? '—'}</td>
                  <td>
                    <StatusBadge status={p.status} />
                  </td>
                  <td>{usage ? <Time at={usage.last} /> : <span className="muted">never</span>}</td>
                  <td>
                    {usage?.active ? <Link to={`/mandates?agentId=${encodeURIComponent(p.id)}&status=active`}>{usage.active}</Link> : 0}
                  </td>
                  <td data-testid={`risk-${p.id}`}>
                    {riskOf.get(p.id) ? (
                      <span
                        title={riskOf
                          .get(p.id)
                          ?.signals.map((g) => g.signal)
                          .join(', ')}
                      >
                        <span className={`badge ${(riskOf.get(p.id)?.score ?? 0) >= 50 ? 'bad' : 'warn'}`}>{riskOf.get(p.id)?.score}</span>{' '}
                        {riskOf.get(p.id)?.signals[0]?.signal}
                      </span>
                    ) : (
                      <span className="muted">0</span>
                    )}
                  </td>
                  {canWrite ? (
                    <td>
                      <div className="actions" style={{ marginTop: 0 }}>
                        {p.status !== 'quarantined' ? (
                          <button type="button" onClick={() => void act(p.id, 'quarantine')} aria-label={`Quarantine ${p.id}`}>
                            Quarantine
                          </button>
                        ) : null}
                        {p.status !== 'disabled' ? (
                          <button type="button" className="danger" onClick={() => void act(p.id, 'disable')} aria-label={`Disable ${p.id}`}>
                            Disable
                          </button>
                        ) : null}
                        {p.status !== 'active' ? (
                          <button type="button" onClick={() => void act(p.id, 'activate')} aria-label={`Activate ${p.id}`}>
                            Activate
                          </button>
                        ) : null}
                      </div>
                    </td>
                  ) : null}
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}
    </>
  );
}
