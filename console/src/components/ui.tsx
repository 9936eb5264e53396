// Small shared pieces: links that stay in the SPA, status badges, honest loading/empty/error states.
import { type MouseEvent, type ReactNode, useEffect, useState } from 'react';
import { formatAmount, useAmountArgs } from '../lib/amounts';
import { ApiError } from '../lib/api';
import { navigate } from '../lib/router';

export function Link({ to, children, className, current }: { to: string; children: ReactNode; className?: string; current?: boolean }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={`/console${to}`} onClick={onClick} className={className} aria-current={current ? 'page' : undefined}>
      {children}
    </a>
  );
}

const TONE: Record<string, string> = {
  active: 'ok',
  allow: 'ok',
  approved: 'ok',
  completed: 'info',
  consumed: 'info',
  pending: 'warn',
  approval_required: 'warn',
  quarantined: 'warn',
  expired: 'muted',
  withdrawn: 'muted',
  disabled: 'bad',
  deny: 'bad',
  denied: 'bad',
  revoked: 'bad',
  failed: 'bad',
};

export function StatusBadge({ status }: { status: string | undefined }) {
  const s = status ?? 'unknown';
  return <span className={`badge ${TONE[s] ?? 'muted'}`}>{s.replace('_', ' ')}</span>;
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function ErrorNotice({ error, what }: { error: Error | undefined; what: string }) {
  if (error === undefined) return null;
  const api = error instanceof ApiError ? error : undefined;
  let hint = '';
  if (api?.status === 403) hint = ' Your roles do not include this view; ask an administrator.';
  if (api?.status === 404 && api.code === 'ERR_NOT_FOUND' && api.message.startsWith('no route')) {
    hint = ' This broker does not serve this API yet.';
  }
  return (
    <div className="notice error" role="alert">
      <strong>Could not load {what}.</strong> {api ? `${api.code}: ` : ''}
      {error.message}.{hint}
      {api?.requestId ? <span className="muted"> (request id {api.requestId})</span> : null}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

function toMs(t: number | string | undefined): number | undefined {
  if (t === undefined) return undefined;
  return typeof t === 'number' ? t : Date.parse(t);
}

export function relative(ms: number, now: number = Date.now()): string {
  const d = Math.round((ms - now) / 1000);
  const abs = Math.abs(d);
  if (abs < 5) return 'just now';
  const fmt =
    abs < 60
      ? `${abs}s`
      : abs < 3600
        ? `${Math.round(abs / 60)}m`
        : abs < 86400
          ? `${Math.round(abs / 3600)}h`
          : `${Math.round(abs / 86400)}d`;
  return d < 0 ? `${fmt} ago` : `in ${fmt}`;
}

/** A time with its exact value in a tooltip and a machine-readable datetime. */
export function Time({ at }: { at: number | string | undefined }) {
  const ms = toMs(at);
  if (ms === undefined || Number.isNaN(ms)) return <span className="muted">—</span>;
  const iso = new Date(ms).toISOString();
  return (
    <time dateTime={iso} title={iso}>
      {relative(ms)}
    </time>
  );
}

/** Time left until `at`, ticking every second. */
export function Countdown({ at }: { at: number | string | undefined }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  const ms = toMs(at);
  if (ms === undefined) return <span className="muted">—</span>;
  const left = Math.max(0, Math.round((ms - now) / 1000));
  if (left === 0) return <span className="badge bad">expired</span>;
  const m = Math.floor(left / 60);
  const s = left % 60;
  return (
    <span className={`badge ${left < 60 ? 'bad' : 'warn'}`} title={new Date(ms).toISOString()}>
      {m}m {String(s).padStart(2, '0')}s left
    </span>
  );
}

const MASK = '[masked]';

/**
 * Arguments of a call, one row each; values the broker masked stay masked. Amount arguments the
 * catalog marks (`x-mandate-amount`) read as money, with the raw minor units beside them.
 */
export function ArgsTable({
  args,
  tool,
  sensitive = [],
}: {
  args: Record<string, unknown> | undefined;
  tool?: string;
  sensitive?: readonly string[];
}) {
  const amounts = useAmountArgs(tool);
  const entries = Object.entries(args ?? {});
  if (entries.length === 0) return <p className="muted">No arguments.</p>;
  return (
    <table className="args">
      <caption className="muted" style={{ textAlign: 'left' }}>
        Arguments
      </caption>
      <tbody>
        {entries.map(([k, v]) => {
          const hint = amounts[k];
          const money = hint === undefined ? undefined : formatAmount(v, hint);
          return (
            <tr key={k}>
              <td>
                <code>{k}</code>
              </td>
              <td>
                {v === MASK || sensitive.includes(k) ? (
                  <span className="masked">masked (sensitive)</span>
                ) : money !== undefined && hint !== undefined ? (
                  <span data-testid={`amount-${k}`}>
                    <strong className="amount">{money}</strong>{' '}
                    <span className="muted">
                      ({String(v)} minor units, {hint.currency})
                    </span>
                  </span>
                ) : (
                  <code>{typeof v === 'string' ? v : JSON.stringify(v)}</code>
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function PageTitle({ children, live }: { children: ReactNode; live?: boolean }) {
  useEffect(() => {
    document.title = `${typeof children === 'string' ? children : 'Mandate'} · Mandate console`;
  }, [children]);
  return (
    <h1 tabIndex={-1}>
      {children}
      {live ? (
        <span className="badge info live" style={{ marginLeft: '.75rem', verticalAlign: 'middle' }}>
          live
        </span>
      ) : null}
    </h1>
  );
}
