// The console shell: sign-in gate, navigation, and the page for the current route.
import { useEffect, useRef, useState } from 'react';
import { Link, PageTitle } from './components/ui';
import { api, onSignedOut } from './lib/api';
import { completeSignIn, currentSession, loadSettings, type Session, signIn, signOut } from './lib/auth';
import { useLiveStatus } from './lib/live';
import { match, navigate, useLocation } from './lib/router';
import { AgentsPage } from './pages/agents';
import { ApprovalPage, ApprovalsPage } from './pages/approvals';
import { AuditEventPage, AuditPage } from './pages/audit';
import { MandatePage, MandatesPage } from './pages/mandates';
import { OverviewPage } from './pages/overview';
import { PoliciesPage } from './pages/policies';

const NAV = [
  ['/', 'Overview'],
  ['/approvals', 'Approvals'],
  ['/agents', 'Agents'],
  ['/mandates', 'Mandates'],
  ['/audit', 'Audit'],
  ['/policies', 'Policies'],
] as const;

interface WhoAmI {
  id: string;
  name: string;
  roles: string[];
}

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
  const [who, setWho] = useState<WhoAmI>();
  useEffect(() => {
    api<WhoAmI>('/admin/v1/whoami').then(setWho, () => {});
  }, []);
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
            {NAV.map(([to, label]) => (
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
        <Route path={path} />
      </main>
    </>
  );
}

function Route({ path }: { path: string }) {
  if (path === '/' || path === '') return <OverviewPage />;
  if (path === '/approvals') return <ApprovalsPage />;
  const approval = match('/approvals/:id', path);
  if (approval?.id) return <ApprovalPage id={approval.id} />;
  if (path === '/agents') return <AgentsPage />;
  if (path === '/mandates') return <MandatesPage />;
  const mandate = match('/mandates/:id', path);
  if (mandate?.id) return <MandatePage id={mandate.id} />;
  if (path === '/audit') return <AuditPage />;
  const event = match('/audit/:id', path);
  if (event?.id) return <AuditEventPage id={event.id} />;
  if (path === '/policies') return <PoliciesPage />;
  return (
    <>
      <PageTitle>Not found</PageTitle>
      <p>
        There is no console page at <code>{path}</code>. <Link to="/">Go to the overview</Link>.
      </p>
    </>
  );
}
