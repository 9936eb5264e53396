// The console shell: sign-in gate, navigation, and the page for the current route.
import { type ReactElement, useEffect, useRef, useState } from 'react';
import { Link, PageTitle } from './components/ui';
import { api, onSignedOut } from './lib/api';
import { completeSignIn, currentSession, loadSettings, type Session, signIn, signOut } from './lib/auth';
import { useLiveStatus } from './lib/live';
import { type Me, MeContext } from './lib/me';
import { match, navigate, useLocation } from './lib/router';
import { AgentsPage } from './pages/agents';
import { ApprovalPage, ApprovalsPage } from './pages/approvals';
import { AuditEventPage, AuditPage } from './pages/audit';
import { MandatePage, MandatesPage } from './pages/mandates';
import { OverviewPage } from './pages/overview';
import { PoliciesPage } from './pages/policies';
import { ReportsPage } from './pages/reports';

/** Each page and the admin API permission its data needs: a page the server would refuse is not offered. */
const NAV = [
  ['/', 'Overview', 'console:read'],
  ['/approvals', 'Approvals', 'approvals:read'],
  ['/agents', 'Agents', 'agents:read'],
  ['/mandates', 'Mandates', 'mandates:read'],
  ['/audit', 'Audit', 'audit:read'],
  ['/policies', 'Policies', 'policy:read'],
  ['/reports', 'Reports', 'audit:read'],
] as const;

export function App() {
  const { path } = useLocation();
  const [session, setSession] = useState<Session | undefined>(currentSession);
  const [error, setError] = useState<string>();

  useEffect(() => onSignedOut(() => setSession(undefined)), []);

  useEffect(() => {
    if (path !== '/callback') return;
    completeSignIn().then(
      (returnTo) => {
        setSession(currentSession());
        navigate(returnTo, { replace: true });
      },
      (err: Error) => setError(`Sign-in failed: ${err.message}`),
    );
  }, [path]);

  if (path === '/callback') {
    return (
      <main className="signin">
        {error ? (
          <div className="notice error" role="alert">
            {error}{' '}
            <button type="button" onClick={() => navigate('/', { replace: true })}>
              Back
            </button>
          </div>
        ) : (
          <p aria-live="polite">Signing you in…</p>
        )}
      </main>
    );
  }
  if (session === undefined) return <SignIn />;
  return <Shell session={session} onSignOut={() => setSession(undefined)} />;
}

function SignIn() {
  const [demo, setDemo] = useState(false);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    loadSettings().then(
      (s) => setDemo(s.demo),
      (e: Error) => setError(e.message),
    );
  }, []);
  const start = () => {
    setBusy(true);
    signIn(window.location.pathname.replace(/^\/console/, '') + window.location.search).catch((e: Error) => {
      setBusy(false);
      setError(e.message);
    });
  };
  return (
    <main className="signin">
      <h1>Mandate console</h1>
      <p>Approve agent actions, see which agents hold which authority, and investigate why a call was allowed.</p>
      <button type="button" className="primary" onClick={start} disabled={busy}>
        Sign in
      </button>
      {demo ? <p className="muted">Demo mode: you will pick a seeded human on the development issuer's page.</p> : null}
      {error ? (
        <div className="notice error" role="alert">
          {error}
        </div>
      ) : null}
    </main>
  );
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const { path } = useLocation();
  const live = useLiveStatus();
  const [who, setWho] = useState<Me>();
  const [whoError, setWhoError] = useState<string>();
  useEffect(() => {
    api<Me>('/admin/v1/console/me').then(setWho, (e: Error) => setWhoError(e.message));
  }, []);
  const nav = who === undefined ? [] : NAV.filter(([, , permission]) => who.permissions.includes(permission));
  const firstRender = useRef(true);
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs on every navigation on purpose
  useEffect(() => {
    // After a navigation (not on load, where the skip link must come first), move focus to the
    // new page's heading so screen readers announce it.
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [path]);
  const section = `/${path.split('/')[1] ?? ''}`;
  return (
    <>
      <a className="skip" href="#content">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          Mandate
        </Link>
        <nav aria-label="Main">
          <ul>
            {nav.map(([to, label]) => (
              <li key={to}>
                <Link to={to} current={section === to}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span className={`badge ${live === 'live' ? 'ok' : live === 'connecting' ? 'muted' : 'bad'}`} role="status" title="Live updates">
            {live === 'live' ? 'live' : live === 'connecting' ? 'connecting' : 'offline'}
          </span>
          <span data-testid="signed-in-as">
            {who?.name ?? session.name}
            {who ? <span className="muted"> · {who.roles.join(', ') || 'no roles'}</span> : null}
          </span>
          <button
            type="button"
            onClick={() => {
              signOut();
              onSignOut();
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="content">
        <MeContext.Provider value={who}>
          {who === undefined ? (
            whoError === undefined ? (
              <p className="muted" aria-live="polite">
                Loading your roles…
              </p>
            ) : (
              <div className="notice error" role="alert">
                Could not load who you are: {whoError}.
              </div>
            )
          ) : (
            <Route path={path} me={who} />
          )}
        </MeContext.Provider>
      </main>
    </>
  );
}

/** The page of a path and the permission it needs (undefined: not a console page). */
function pageOf(path: string): { permission: string; render: () => ReactElement } | undefined {
  if (path === '/' || path === '') return { permission: 'console:read', render: () => <OverviewPage /> };
  if (path === '/approvals') return { permission: 'approvals:read', render: () => <ApprovalsPage /> };
  const approval = match('/approvals/:id', path);
  if (approval?.id) {
    const id = approval.id;
    return { permission: 'approvals:read', render: () => <ApprovalPage id={id} /> };
  }
  if (path === '/agents') return { permission: 'agents:read', render: () => <AgentsPage /> };
  if (path === '/mandates') return { permission: 'mandates:read', render: () => <MandatesPage /> };
  const mandate = match('/mandates/:id', path);
  if (mandate?.id) {
    const id = mandate.id;
    return { permission: 'mandates:read', render: () => <MandatePage id={id} /> };
  }
  if (path === '/audit') return { permission: 'audit:read', render: () => <AuditPage /> };
  const event = match('/audit/:id', path);
  if (event?.id) {
    const id = event.id;
    return { permission: 'audit:read', render: () => <AuditEventPage id={id} /> };
  }
  if (path === '/policies') return { permission: 'policy:read', render: () => <PoliciesPage /> };
  if (path === '/reports') return { permission: 'audit:read', render: () => <ReportsPage /> };
  return undefined;
}

function Route({ path, me }: { path: string; me: Me }) {
  const page = pageOf(path);
  if (page !== undefined && me.permissions.includes(page.permission)) return page.render();
  if (page !== undefined) {
    // A typed or bookmarked URL: say so instead of showing a page of "forbidden" errors.
    const first = NAV.find(([, , p]) => me.permissions.includes(p));
    return (
      <>
        <PageTitle>Not available to you</PageTitle>
        <p data-testid="not-permitted">
          This page needs the <code>{page.permission}</code> permission, which your roles ({me.roles.join(', ') || 'none'}) do not grant.{' '}
          {first ? <Link to={first[0]}>Go to {first[1]}</Link> : 'Ask an administrator for a role.'}
        </p>
      </>
    );
  }

  return (
    <>
      <PageTitle>Not found</PageTitle>
      <p>
        There is no console page at <code>{path}</code>. <Link to="/">Go to the overview</Link>.
      </p>
    </>
  );
}
