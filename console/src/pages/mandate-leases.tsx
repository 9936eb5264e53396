// The leases section of a mandate page: the per-mandate upstream credentials the gateway obtained
// (dynamic database roles, upstream tokens, OAuth tokens), their status and revocation. Never a secret:
// the API shows what identifies a lease at its provider and salted HMACs of its secret values.
import { ErrorNotice, StatusBadge, Time } from '../components/ui';
import { itemsOf, useApi } from '../lib/api';
import { useLive } from '../lib/live';

interface Lease {
  id: string;
  upstream: string;
  provider: string;
  status: string;
  details: Record<string, unknown>;
  expiresAt: number;
  createdAt: number;
  revokedAt?: number;
  revokeReason?: string;
  attempts: number;
  lastError?: string;
}

/** What identifies a lease at its provider, in a few words. */
function identifies(l: Lease): string {
  const d = l.details;
  const parts = [d.role, d.audience, d.scope, d.issuer].filter((v): v is string => typeof v === 'string' && v !== '');
  return parts.join(' · ');
}

export function MandateLeases({ id }: { id: string }) {
  const leases = useApi<unknown>(`/admin/v1/mandates/${encodeURIComponent(id)}/leases`, [id]);
  useLive(['mandate', 'audit'], () => leases.reload());
  const items = itemsOf<Lease>(leases.data);
  return (
    <section aria-labelledby="m-leases">
      <h2 id="m-leases">Leases</h2>
      <ErrorNotice error={leases.error} what="the leases" />
      {items.length === 0 && !leases.loading ? (
        <p className="muted">No upstream credential was leased for this mandate.</p>
      ) : (
        <table data-testid="leases">
          <thead>
            <tr>
              <th scope="col">Upstream</th>
              <th scope="col">Kind</th>
              <th scope="col">At the provider</th>
              <th scope="col">Status</th>
              <th scope="col">Issued</th>
              <th scope="col">Expires / revoked</th>
            </tr>
          </thead>
          <tbody>
            {items.map((l) => (
              <tr key={l.id}>
                <td>
                  <code>{l.upstream}</code>
                </td>
                <td>{l.provider}</td>
                <td>
                  <code>{identifies(l)}</code>
                </td>
                <td>
                  <StatusBadge status={l.status} />
                  {l.lastError ? <div className="muted">{`retrying (${l.attempts}): ${l.lastError}`}</div> : null}
                </td>
                <td>
                  <Time at={l.createdAt} />
                </td>
                <td>
                  {l.revokedAt ? (
                    <>
                      <Time at={l.revokedAt} />
                      {l.revokeReason ? ` — ${l.revokeReason}` : ''}
                    </>
                  ) : (
                    <Time at={l.expiresAt} />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
