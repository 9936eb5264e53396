// Policies: the org policy set this broker serves (read-only) with each policy's Cedar source,
// whether the last reload was refused, and a "what if" form that explains the decision for a
// hand-written call.
import { useMemo, useState } from 'react';
import { Empty, ErrorNotice, Loading, PageTitle, StatusBadge, Time } from '../components/ui';
import { ApiError, api, useApi } from '../lib/api';
import { tokenizeCedar } from '../lib/cedar-highlight';

interface PolicySet {
  version?: string;
  loadedAt?: string;
  policies: { id: string; file: string; line: number; effect: string }[];
  entities: number;
  lastProblems?: { file?: string; line?: number; column?: number; message: string }[];
}

interface PolicySource {
  version?: string;
  policies: { id: string; file: string; line: number; effect: string; text: string }[];
}

/** Highlighted Cedar: every token is a React text node (escaped), so markup in a policy stays text. */
export function CedarSource({ text }: { text: string }) {
  const tokens = useMemo(() => tokenizeCedar(text), [text]);
  return (
    <pre className="cedar">
      <code>
        {tokens.map((t, i) =>
          t.type === 'text' ? (
            t.text
          ) : (
            // biome-ignore lint/suspicious/noArrayIndexKey: tokens are positional and the list never reorders
            <span key={i} className={`tok-${t.type}`}>
              {t.text}
            </span>
          ),
        )}
      </code>
    </pre>
  );
}

interface Explanation {
  outcome: string;
  reasons: string[];
  policies: { id: string; at?: string; effect?: string }[];
  grants: { mandateId: string; index: number; grant: unknown }[];
  approvalRoles?: string[];
  errors?: string[];
}

const EXAMPLE = {
  tool: { name: 'helpdesk.execute_refund', actionClass: 'execute', sensitivity: 'confidential' },
  args: { customerId: 'C-1009', amountCents: 25000 },
  mandate: { environment: 'production', purpose: 'Resolve a double charge', taskType: 'support.refund' },
  agent: { id: 'support-triage', owner: 'bob' },
};

export function PoliciesPage() {
  const set = useApi<PolicySet>('/admin/v1/policies');
  const source = useApi<PolicySource>('/admin/v1/console/policies');
  const s = set.data;
  const problems = s?.lastProblems ?? [];
  return (
    <>
      <PageTitle>Policies</PageTitle>
      <ErrorNotice error={set.error} what="the policy set" />
      {s === undefined && set.loading ? <Loading what="the policy set" /> : null}
      {s !== undefined ? (
        <>
          <p role="status" className={`notice ${problems.length === 0 && s.version ? 'ok' : 'error'}`}>
            {s.version === undefined
              ? 'No valid policy set is loaded: every call is denied (fail closed).'
              : problems.length === 0
                ? `Valid: ${s.policies.length} policies validated against the schema (version ${s.version.slice(0, 12)}).`
                : `Serving version ${s.version.slice(0, 12)}; the last reload was refused (${problems.length} problems below).`}{' '}
            {s.loadedAt ? (
              <span>
                Loaded <Time at={s.loadedAt} />.
              </span>
            ) : null}
          </p>
          {problems.length > 0 ? (
            <ul>
              {problems.map((p) => (
                <li key={`${p.file}:${p.line}:${p.message}`} className="mono">
                  {p.file}:{p.line ?? 0}:{p.column ?? 0}: {p.message}
                </li>
              ))}
            </ul>
          ) : null}
          {s.policies.length === 0 ? (
            <Empty>No policies.</Empty>
          ) : (
            <section aria-labelledby="policies-h">
              <h2 id="policies-h">Active set</h2>
              <p className="muted">Read-only: edit the .cedar files under version control and reload.</p>
              <ErrorNotice error={source.error} what="the policy source" />
              {s.policies.map((p) => {
                const text = source.data?.policies.find((q) => q.id === p.id)?.text;
                return (
                  <details key={p.id} open data-testid={`policy-${p.id}`} className="card">
                    <summary>
                      <code>{p.id}</code> <span className={`badge ${p.effect === 'forbid' ? 'bad' : 'ok'}`}>{p.effect}</span>{' '}
                      <span className="muted mono">
                        {p.file}:{p.line}
                      </span>
                    </summary>
                    {text === undefined ? source.loading ? <Loading what="the source" /> : null : <CedarSource text={text} />}
                  </details>
                );
              })}
            </section>
          )}
        </>
      ) : null}
      <WhatIf />
    </>
  );
}

function WhatIf() {
  const [text, setText] = useState(JSON.stringify(EXAMPLE, null, 2));
  const [result, setResult] = useState<Explanation>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setError(undefined);
    setResult(undefined);
    let call: unknown;
    try {
      call = JSON.parse(text);
    } catch (err) {
      setError(`The request is not valid JSON: ${(err as Error).message}`);
      return;
    }
    setBusy(true);
    try {
      setResult(await api<Explanation>('/admin/v1/console/policy/explain', { method: 'POST', body: { call } }));
    } catch (err) {
      setError(err instanceof ApiError ? `${err.code}: ${err.message}` : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="whatif-h">
      <h2 id="whatif-h">What if…</h2>
      <p className="muted">
        Write a call (tool, arguments, mandate, agent, optional <code>approval</code> and <code>risk</code>) and see what org policy would
        decide and why. Nothing is recorded and no budget is used.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <label style={{ display: 'flex' }}>
          <span>Request (JSON)</span>
          <textarea rows={12} className="mono" value={text} onChange={(e) => setText(e.target.value)} spellCheck={false} />
        </label>
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            Explain
          </button>
          <button
            type="button"
            onClick={() => setText(JSON.stringify({ ...EXAMPLE, approval: { approverId: 'carol', approverRole: 'finance' } }, null, 2))}
          >
            Example with a finance approval
          </button>
        </div>
      </form>
      {error ? (
        <div className="notice error" role="alert">
          {error}
        </div>
      ) : null}
      {result ? (
        <div className="card" data-testid="whatif-result" aria-live="polite">
          <h3 style={{ marginTop: 0 }}>
            Outcome: <StatusBadge status={result.outcome} />
          </h3>
          <ol className="steps">
            <li>
              <strong>Mandate scope</strong>:{' '}
              {result.grants.length > 0
                ? result.grants.map((g) => `grant #${g.index} of ${g.mandateId}: ${JSON.stringify(g.grant)}`).join('; ')
                : 'no grant matched'}
            </li>
            <li>
              <strong>Determining policies</strong>:{' '}
              {result.policies.length > 0
                ? result.policies.map((p) => (
                    <span key={p.id} style={{ marginRight: '.75rem' }}>
                      <code>{p.id}</code> {p.effect ? `(${p.effect}${p.at ? `, ${p.at}` : ''})` : ''}
                    </span>
                  ))
                : 'none'}
            </li>
            <li>
              <strong>Reasons</strong>: {result.reasons.join('; ') || '—'}
            </li>
            {result.approvalRoles && result.approvalRoles.length > 0 ? (
              <li>
                <strong>Would be allowed with an approval by</strong>: {result.approvalRoles.join(' or ')}
              </li>
            ) : null}
            {result.errors && result.errors.length > 0 ? (
              <li>
                <strong>Errors</strong>: {result.errors.join('; ')}
              </li>
            ) : null}
          </ol>
        </div>
      ) : null}
    </section>
  );
}
