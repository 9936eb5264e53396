// Operator sign-in: OAuth 2.0 authorization code flow with PKCE (RFC 7636) against the configured
// operator issuer (the development issuer in demo mode), with oauth4webapi. The access token is
// kept in sessionStorage: it dies with the tab and is never written to a cookie.
import * as oauth from 'oauth4webapi';

export interface ConsoleSettings {
  readonly issuer?: string;
  readonly clientId: string;
  readonly scope: string;
  readonly resource?: string;
  readonly redirectUri: string;
  readonly consoleUrl: string;
  readonly demo: boolean;
}

export interface Session {
  readonly accessToken: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  readonly subject: string;
  readonly name: string;
}

const SESSION_KEY = 'mandate.session';
const PENDING_KEY = 'mandate.signin';

let settingsPromise: Promise<ConsoleSettings> | undefined;

export function loadSettings(): Promise<ConsoleSettings> {
  settingsPromise ??= fetch('/console/config.json', { cache: 'no-store' }).then(async (res) => {
    if (!res.ok) throw new Error(`console settings unavailable (HTTP ${res.status})`);
    return (await res.json()) as ConsoleSettings;
  });
  return settingsPromise;
}

function insecure(url: URL) {
  // Plain HTTP is only tolerated for a loopback issuer (the local demo).
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  return { [oauth.allowInsecureRequests]: url.protocol === 'http:' && loopback };
}

async function authorizationServer(settings: ConsoleSettings): Promise<oauth.AuthorizationServer> {
  if (settings.issuer === undefined) throw new Error('no operator issuer is configured (operators.issuer)');
  const issuer = new URL(settings.issuer);
  const response = await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure(issuer) });
  return oauth.processDiscoveryResponse(issuer, response);
}

export function currentSession(): Session | undefined {
  const raw = sessionStorage.getItem(SESSION_KEY);
  if (raw === null) return undefined;
  try {
    const session = JSON.parse(raw) as Session;
    if (session.expiresAt > Date.now() + 5000) return session;
  } catch {
    // fall through: a corrupt session is no session
  }
  sessionStorage.removeItem(SESSION_KEY);
  return undefined;
}

export function signOut(): void {
  sessionStorage.removeItem(SESSION_KEY);
}

/** Starts sign-in: redirects the browser to the issuer's authorization endpoint. */
export async function signIn(returnTo: string): Promise<void> {
  const settings = await loadSettings();
  // The PKCE verifier lives in this origin's sessionStorage, so sign-in must start on the origin
  // the callback returns to.
  if (new URL(settings.consoleUrl).origin !== window.location.origin) {
    window.location.assign(settings.consoleUrl);
    return;
  }
  const as = await authorizationServer(settings);
  if (as.authorization_endpoint === undefined) throw new Error('the issuer has no authorization endpoint');
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ codeVerifier, state, nonce, returnTo }));
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', settings.clientId);
  url.searchParams.set('redirect_uri', settings.redirectUri);
  url.searchParams.set('scope', settings.scope);
  url.searchParams.set('state', state);
  url.searchParams.set('nonce', nonce);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set('code_challenge_method', 'S256');
  if (settings.resource !== undefined) url.searchParams.set('resource', settings.resource);
  window.location.assign(url.toString());
}

/** Completes sign-in on /console/callback; returns the console path to go back to. */
export async function completeSignIn(): Promise<string> {
  const settings = await loadSettings();
  const pendingRaw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  if (pendingRaw === null) throw new Error('no sign-in is in progress in this tab; start again');
  const pending = JSON.parse(pendingRaw) as { codeVerifier: string; state: string; nonce: string; returnTo: string };
  const as = await authorizationServer(settings);
  const client: oauth.Client = { client_id: settings.clientId };
  const params = oauth.validateAuthResponse(as, client, new URL(window.location.href), pending.state);
  const issuer = new URL(as.issuer);
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, settings.redirectUri, pending.codeVerifier, {
    ...insecure(issuer),
    ...(settings.resource === undefined ? {} : { additionalParameters: { resource: settings.resource } }),
  });
  const result = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: pending.nonce, requireIdToken: true });
  const claims = oauth.getValidatedIdTokenClaims(result);
  const session: Session = {
    accessToken: result.access_token,
    expiresAt: Date.now() + (result.expires_in ?? 3600) * 1000,
    subject: claims?.sub ?? 'unknown',
    name: typeof claims?.name === 'string' ? claims.name : (claims?.sub ?? 'operator'),
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return pending.returnTo.startsWith('/') ? pending.returnTo : '/';
}
