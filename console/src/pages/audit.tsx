// Audit: a filtered timeline of the tamper-evident log, and an event page that renders `explain`
// (the chain of authority, step by step) and checks the event's inclusion proof in the browser
// against the latest signed checkpoint.
import { useEffect, useState } from 'react';
import { ArgsTable, Empty, ErrorNotice, Link, Loading, PageTitle, StatusBadge, Time } from '../components/ui';
import { useApi } from '../lib/api';
import { useLive } from '../lib/live';
import { checkInclusion, type InclusionResult, parseCheckpoint, verifyCheckpointSignature } from '../lib/merkle';
import { navigate, useLocation } from '../lib/router';

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export interface AuditEntry {
  seq: number;
  id: string;
  event: {
    v: number;
    time: string;
    type: string;
    actors: { type: string; id: string }[];
    mandateId?: string;
    environment?: string;
    data: Record<string, unknown>;
  };
}

const FILTERS = [
  ['agent', 'Agent', 'agent id'],
  ['mandate', 'Mandate', 'mandate id'],
  ['human', 'Human', 'on behalf of / operator'],
  ['tool', 'Tool', 'upstream.tool'],
  ['type', 'Event type', 'e.g. decision, approval.'],
] as const;

export function AuditPage() {
  const { search } = useLocation();
  const params = new URLSearchParams();
  for (const k of ['agent', 'mandate', 'human', 'outcome', 'tool', 'type', 'from', 'to']) {
    const v = search.get(k);
    if (v) params.set(k, k === 'from' || k === 'to' ? new Date(v).toISOString() : v);
  }
  params.set('limit', '100');
  const before = search.get('before');
  if (before !== null && /^\d+$/.test(before)) params.set('before', before);
  const timeline = useApi<{ items: AuditEntry[]; size: number; next?: number }>(`/admin/v1/console/audit?${params}`, []);
  // A filtered timeline may scan many events: refresh at most every 2 s while the log grows.
  useLive(['audit'], timeline.reload, 2000);
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(search);
    if (v) next.set(k, v);
    else next.delete(k);
    navigate(`/audit${next.size > 0 ? `?${next}` : ''}`, { replace: true });
  };
  const items = timeline.data?.items ?? [];
  return (
    <>
      <PageTitle live>Audit</PageTitle>
      <form
        className="filters"
        aria-label="Filter audit events"
        onSubmit={(e) => {
          e.preventDefault();
          const form = new FormData(e.currentTarget);
          const next = new URLSearchParams();
          for (const [k, v] of form) if (typeof v === 'string' && v.trim() !== '') next.set(k, v.trim());
          navigate(`/audit${next.size > 0 ? `?${next}` : ''}`, { replace: true });
        }}
      >
        {FILTERS.map(([k, label, hint]) => (
          <label key={k}>
            <span>{label}</span>
            <input name={k} defaultValue={search.get(k) ?? ''} placeholder={hint} />
          </label>
        ))}
        <label>
          <span>Decision</span>
          <select name="outcome" defaultValue={search.get('outcome') ?? ''} onChange={(e) => set('outcome', e.target.value)}>
            <option value="">any</option>
            <option value="allow">allow</option>
            <option value="deny">deny</option>
            <option value="approval_required">approval required</option>
          </select>
        </label>
        <label>
          <span>From</span>
          <input type="datetime-local" name="from" defaultValue={search.get('from') ?? ''} />
        </label>
        <label>
          <span>To</span>
          <input type="datetime-local" name="to" defaultValue={search.get('to') ?? ''} />
        </label>
        <button type="submit" className="primary">
          Apply
        </button>
        <button type="button" onClick={() => navigate('/audit', { replace: true })}>
          Clear
        </button>
      </form>
      <ErrorNotice error={timeline.error} what="the audit timeline" />
      {timeline.data === undefined && timeline.loading ? <Loading what="audit events" /> : null}
      {timeline.data !== undefined && items.length === 0 ? (
        <Empty>
          No audit events match{params.size > 1 ? ' these filters' : ''}. The log holds {timeline.data.size} events.
        </Empty>
      ) : null}
      {items.length > 0 ? (
        <table data-testid="audit-timeline">
          <caption className="muted" style={{ textAlign: 'left' }}>
            Newest first · {items.length} shown of {timeline.data?.size ?? 0} in the log
          </caption>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Time</th>
              <th scope="col">Event</th>
              <th scope="col">Actors</th>
              <th scope="col">Tool</th>
              <th scope="col">Mandate</th>
            </tr>
          </thead>
          <tbody>
            {items.map((e) => (
              <tr key={e.seq} data-type={e.event.type}>
                <td>
                  <Link to={`/audit/${e.id}`}>{e.seq}</Link>
                </td>
                <td>
                  <Time at={e.event.time} />
                </td>
                <td>
                  <Link to={`/audit/${e.id}`}>{e.event.type}</Link>{' '}
                  {typeof e.event.data.outcome === 'string' ? <StatusBadge status={e.event.data.outcome} /> : null}
                </td>
                <td className="mono">{e.event.actors.map((a) => `${a.type}:${a.id}`).join(' → ')}</td>
                <td>{typeof e.event.data.tool === 'string' ? <code>{e.event.data.tool}</code> : '—'}</td>
                <td>
                  {e.event.mandateId ? <Link to={`/mandates/${encodeURIComponent(e.event.mandateId)}`}>{e.event.mandateId}</Link> : '—'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <div className="actions">
        {before !== null ? (
          <button type="button" onClick={() => set('before', '')}>
            Newest events
          </button>
        ) : null}
        {timeline.data?.next !== undefined ? (
          <button type="button" onClick={() => set('before', String(timeline.data?.next))}>
            Older events
          </button>
        ) : null}
      </div>
    </>
  );
}

interface EventWithProof {
  entry: AuditEntry;
  proof: { treeSize: number; leafHash: string; hashes: string[] };
  checkpoint: { size: number; note: string; createdAt: number };
  vkey?: string;
}

export function AuditEventPage({ id }: { id: string }) {
  const data = useApi<EventWithProof>(`/admin/v1/console/audit/${encodeURIComponent(id)}`, [id]);
  const explain = useApi<Explanation>(`/admin/v1/audit/events/${encodeURIComponent(id)}/explain`, [id]);
  const entry = data.data?.entry;
  return (
    <>
      <PageTitle>Audit event</PageTitle>
      <p>
        <Link to="/audit">← Timeline</Link>
      </p>
      <ErrorNotice error={data.error} what="the event" />
      {data.loading && entry === undefined ? <Loading what="the event" /> : null}
      {entry ? (
        <>
          <h2>
            #{entry.seq} {entry.event.type}{' '}
            {typeof entry.event.data.outcome === 'string' ? <StatusBadge status={entry.event.data.outcome} /> : null}
          </h2>
          <dl className="grid2">
            <dt>Time</dt>
            <dd>
              {entry.event.time} (<Time at={entry.event.time} />)
            </dd>
            <dt>Actors</dt>
            <dd>{entry.event.actors.map((a) => `${a.type}:${a.id}`).join(' → ') || '—'}</dd>
            <dt>Mandate</dt>
            <dd>
              {entry.event.mandateId ? (
                <Link to={`/mandates/${encodeURIComponent(entry.event.mandateId)}`}>{entry.event.mandateId}</Link>
              ) : (
                '—'
              )}
            </dd>
            <dt>Environment</dt>
            <dd>{entry.event.environment ?? '—'}</dd>
          </dl>
          <div className="split">
            <section aria-labelledby="explain-h">
              <h2 id="explain-h">Why: explain</h2>
              <Explain result={explain} />
            </section>
            <section aria-labelledby="proof-h">
              <h2 id="proof-h">Inclusion proof</h2>
              {data.data ? <ProofCheck data={data.data} /> : null}
            </section>
          </div>
          {typeof entry.event.data.tool === 'string' && isRecord(entry.event.data.args) ? (
            <ArgsTable args={entry.event.data.args} tool={entry.event.data.tool} />
          ) : null}
          <h2>Event data</h2>
          <pre>{JSON.stringify(entry.event.data, null, 2)}</pre>
        </>
      ) : null}
    </>
  );
}

function ProofCheck({ data }: { data: EventWithProof }) {
  const [result, setResult] = useState<InclusionResult & { signature?: boolean | 'unknown' }>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let cancelled = false;
    (async () => {
      const checkpoint = parseCheckpoint(data.checkpoint.note);
      const inclusion = await checkInclusion({
        event: data.entry.event,
        seq: data.entry.seq,
        proof: data.proof.hashes,
        treeSize: data.proof.treeSize,
        checkpoint,
        leafHashFromServer: data.proof.leafHash,
      });
      let signature: boolean | 'unknown' = 'unknown';
      if (data.vkey) {
        try {
          signature = await verifyCheckpointSignature(checkpoint, data.vkey);
        } catch {
          signature = 'unknown';
        }
      }
      if (!cancelled) setResult({ ...inclusion, signature });
    })().catch((err: Error) => !cancelled && setError(err.message));
    return () => {
      cancelled = true;
    };
  }, [data]);
  if (error) {
    return (
      <div className="notice error" role="alert">
        The proof could not be checked: {error}
      </div>
    );
  }
  if (result === undefined) return <Loading what="the proof check" />;
  return (
    <div data-testid="inclusion-result">
      <p role="status" className={`notice ${result.ok ? 'ok' : 'error'}`}>
        {result.ok
          ? `Verified in this browser: event #${data.entry.seq} is in the log of ${data.checkpoint.size} events.`
          : 'NOT verified: the proof does not lead to the signed checkpoint.'}
      </p>
      <ol className="steps">
        {result.steps.map((s) => (
          <li key={s} className="mono" style={{ wordBreak: 'break-all' }}>
            {s}
          </li>
        ))}
        <li>
          Checkpoint signature (Ed25519, C2SP signed note):{' '}
          {result.signature === true ? (
            <span className="badge ok">valid for the log key</span>
          ) : result.signature === false ? (
            <span className="badge bad">invalid</span>
          ) : (
            <span className="badge muted">not checked (no WebCrypto Ed25519 or no key)</span>
          )}
          {data.vkey ? (
            <div className="muted mono" style={{ wordBreak: 'break-all' }}>
              key {data.vkey} — compare with the key you pinned out of band
            </div>
          ) : null}
        </li>
      </ol>
      <details>
        <summary>Checkpoint</summary>
        <pre>{data.checkpoint.note}</pre>
      </details>
    </div>
  );
}

interface Explanation {
  event: AuditEntry;
  decision?: AuditEntry;
  policies: string[];
  grant?: unknown;
  outcome?: unknown;
  reasons: string[];
  mandates: {
    mandateId: string;
    opened?: AuditEntry;
    purpose?: unknown;
    taskType?: unknown;
    environment?: string;
    agent?: string;
    ended?: AuditEntry;
    identity?: AuditEntry;
    identityRef?: unknown;
  }[];
  onBehalfOf?: string;
  approvals: AuditEntry[];
  actors: { type: string; id: string }[];
}

function EventRef({ entry }: { entry: AuditEntry | undefined }) {
  if (entry === undefined) return <span className="muted">not in the log</span>;
  return (
    <Link to={`/audit/${entry.id}`}>
      #{entry.seq} {entry.event.type}
    </Link>
  );
}

/** The chain of authority behind an event, from the human down to the call, one step per line. */
function Explain({ result }: { result: { data: Explanation | undefined; error: Error | undefined; loading: boolean } }) {
  if (result.error) return <ErrorNotice error={result.error} what="the explanation" />;
  const x = result.data;
  if (x === undefined) return <Loading what="the explanation" />;
  const chain = [...x.mandates].reverse(); // root first
  return (
    <ol className="steps" data-testid="explain-steps">
      <li>
        <strong>Human</strong>:{' '}
        {x.onBehalfOf ? (
          <>
            the task ran on behalf of <strong>{x.onBehalfOf}</strong>
          </>
        ) : (
          <span className="muted">no on-behalf-of human (the agent's own task)</span>
        )}
      </li>
      {chain.map((m, i) => (
        <li key={m.mandateId} data-testid="explain-mandate">
          <strong>{i === 0 ? 'Mandate' : 'Delegated mandate'}</strong>{' '}
          <Link to={`/mandates/${encodeURIComponent(m.mandateId)}`}>{m.mandateId}</Link> held by <strong>{m.agent ?? '?'}</strong>
          <div>
            {typeof m.purpose === 'string' ? m.purpose : ''}{' '}
            {typeof m.taskType === 'string' ? <span className="muted">({m.taskType})</span> : null}
            {m.environment ? <span className="muted"> · {m.environment}</span> : null}
          </div>
          <div className="muted">
            opened by <EventRef entry={m.opened} />
            {m.identity ? (
              <>
                {' '}
                · identity verified by <EventRef entry={m.identity} />
              </>
            ) : null}
            {m.ended ? (
              <>
                {' '}
                · ended by <EventRef entry={m.ended} />
              </>
            ) : null}
          </div>
        </li>
      ))}
      <li>
        <strong>Decision</strong>:{' '}
        {typeof x.outcome === 'string' ? <StatusBadge status={x.outcome} /> : <span className="muted">none recorded</span>}{' '}
        {x.decision ? <EventRef entry={x.decision} /> : null}
        {x.policies.length > 0 ? (
          <div>
            determining policies:{' '}
            {x.policies.map((p) => (
              <code key={p} style={{ marginRight: '.5rem' }}>
                {p}
              </code>
            ))}
          </div>
        ) : null}
        {x.reasons.length > 0 ? <div>reasons: {x.reasons.join('; ')}</div> : null}
        {x.grant !== undefined ? (
          <div>
            matched grant: <code style={{ wordBreak: 'break-all' }}>{JSON.stringify(x.grant)}</code>
          </div>
        ) : null}
      </li>
      {x.approvals.length > 0 ? (
        <li>
          <strong>Approval</strong>
          <ul>
            {x.approvals.map((a) => (
              <li key={a.seq}>
                <EventRef entry={a} /> by {a.event.actors.map((act) => `${act.type}:${act.id}`).join(', ') || '?'}{' '}
                {typeof a.event.data.outcome === 'string' ? a.event.data.outcome : ''}
                {typeof a.event.data.role === 'string' ? ` as ${a.event.data.role}` : ''} <Time at={a.event.time} />
              </li>
            ))}
          </ul>
        </li>
      ) : null}
      <li>
        <strong>This event</strong>: <EventRef entry={x.event} /> by {x.actors.map((a) => `${a.type}:${a.id}`).join(' → ') || '—'}
      </li>
    </ol>
  );
}
