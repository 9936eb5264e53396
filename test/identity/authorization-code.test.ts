// The authorization code flow of interactive clients, attacked over raw HTTP on both stores: the
// whole flow is driven as a browser would (cookies, redirects, the consent form), then each step is
// bent: wrong or missing PKCE verifier, code replay (refused, and the mandate issued from it
// revoked), redirect_uri mismatch and open-redirect attempts, CSRF and cross-browser use of the
// consent form, an unknown resource, client registration rules, and Client ID Metadata Documents
// pointing at loopback, link-local or oversized content.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair } from 'jose';
import type { Clock } from '../../src/lib/clock.js';
import { type DocumentHost, documentHost, registerAssistant } from '../clients/interactive-helpers.js';
import { type GatewayHarness, startGateway } from '../gateway/harness.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { freePort } from '../helpers/ports.js';
import { storeFactories } from '../helpers/stores.js';
import { tokenRequest } from './grant-helpers.js';

const REDIRECT = 'http://127.0.0.1:9/callback';
/** The pages escape every character that HTML could interpret. */
const textOf = (html: string) => html.replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n)));
const verifier = () => randomBytes(32).toString('base64url');
const challenge = (v: string) => createHash('sha256').update(v).digest('base64url');
const form = (o: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(o),
  redirect: 'manual' as const,
});

/** A browser's cookie jar, reduced to what the flow needs. */
class Browser {
  readonly jar = new Map<string, string>();
  async get(url: string, init: RequestInit = {}): Promise<Response> {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as object), cookie: this.cookie() } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = (pair ?? '').indexOf('=');
      this.jar.set((pair ?? '').slice(0, i), (pair ?? '').slice(i + 1));
    }
    return res;
  }
  cookie(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

for (const factory of await storeFactories()) {
  describe(`authorization code + PKCE (${factory.name})`, { skip: factory.skip }, () => {
    let h: GatewayHarness;
    let host: DocumentHost;
    let clientId: string;
    let offsetMs = 0;
    const clock: Clock = { now: () => Date.now() + offsetMs };
    before(async () => {
      host = await documentHost();
      h = await startGateway({
        store: await factory.open(),
        clock,
        config: { interactiveClients: { metadataDocuments: { maxBytes: 2048, caFile: host.caFile } } },
      });
      await registerAssistant(h);
      const res = await fetch(`${h.base}/oauth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'raw client', redirect_uris: [REDIRECT] }),
      });
      assert.equal(res.status, 201);
      clientId = ((await res.json()) as { client_id: string }).client_id;
    });
    after(async () => {
      await h?.close();
      await host?.close();
      await factory.cleanup();
    });

    const authorizeUrl = (o: Record<string, string>) => `${h.base}/oauth/authorize?${new URLSearchParams(o)}`;

    /** Runs the flow up to the consent form; returns the browser, the request id and the CSRF token. */
    async function toConsent(v: string, extra: Record<string, string> = {}) {
      const b = new Browser();
      const start = await b.get(
        authorizeUrl({
          response_type: 'code',
          client_id: clientId,
          redirect_uri: REDIRECT,
          code_challenge: challenge(v),
          code_challenge_method: 'S256',
          state: 'xyz',
          ...extra,
        }),
      );
      assert.equal(start.status, 303);
      const signIn = new URL(start.headers.get('location') ?? '');
      assert.equal(signIn.pathname, '/dev/oidc/authorize');
      signIn.searchParams.set('user', 'alice');
      const back = await b.get(signIn.toString());
      const consentAt = await b.get(back.headers.get('location') ?? '');
      assert.equal(consentAt.status, 303, await consentAt.text());
      const page = await b.get(new URL(consentAt.headers.get('location') ?? '', h.base).toString());
      const html = await page.text();
      assert.equal(page.status, 200, html);
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
      const request = /name="request" value="([^"]+)"/.exec(html)?.[1] ?? '';
      return { b, csrf, request, html };
    }

    const approval = (request: string, csrf: string, over: Record<string, string> = {}) => ({
      request,
      csrf,
      decision: 'approve',
      agent: 'alice-assistant',
      purpose: 'raw test',
      taskType: 'support.triage',
      environment: 'production',
      ttlSeconds: '600',
      tools: JSON.stringify([{ tool: 'everything.echo' }]),
      ...over,
    });

    async function code(v: string): Promise<string> {
      const { b, csrf, request } = await toConsent(v);
      const res = await b.get(`${h.base}/oauth/consent`, form(approval(request, csrf)));
      assert.equal(res.status, 303);
      const to = new URL(res.headers.get('location') ?? '');
      assert.equal(`${to.origin}${to.pathname}`, REDIRECT);
      assert.equal(to.searchParams.get('iss'), h.base);
      assert.equal(to.searchParams.get('state'), 'xyz');
      return to.searchParams.get('code') ?? '';
    }

    const redeem = (c: string, v: string, over: Record<string, string> = {}) =>
      fetch(
        `${h.base}/oauth/token`,
        form({ grant_type: 'authorization_code', code: c, redirect_uri: REDIRECT, client_id: clientId, code_verifier: v, ...over }),
      );

    test('the flow issues a mandate on alice’s behalf; the code works once and its replay revokes the mandate', async () => {
      const v = verifier();
      const c = await code(v);
      const res = await redeem(c, v);
      assert.equal(res.status, 200);
      const t = (await res.json()) as { access_token: string; refresh_token: string; token_type: string };
      assert.equal(t.token_type, 'Bearer');
      const client = await h.connect(t.access_token);
      assert.deepEqual(
        (await client.listTools()).tools.map((x) => x.name),
        ['everything.echo'],
      );
      const replay = await redeem(c, v);
      assert.equal(replay.status, 400);
      assert.equal(((await replay.json()) as { error: string }).error, 'invalid_grant');
      const claims = JSON.parse(Buffer.from(t.access_token.split('.')[1] ?? '', 'base64url').toString()) as {
        mandate: string;
        sub: string;
      };
      assert.equal(claims.sub, 'alice');
      assert.equal(
        (await h.broker.mandates.get(claims.mandate))?.status,
        'revoked',
        'RFC 6749 §4.1.2: tokens from a replayed code are revoked',
      );
      // The refresh token of that mandate is dead too.
      const refreshed = await fetch(
        `${h.base}/oauth/token`,
        form({ grant_type: 'refresh_token', refresh_token: t.refresh_token, client_id: clientId }),
      );
      assert.equal(refreshed.status, 400);
    });

    test('two concurrent redemptions of one code: at most one answers, and no mandate from it stays live', async () => {
      const v = verifier();
      const c = await code(v);
      const replies = await Promise.all([redeem(c, v), redeem(c, v)]);
      assert.ok(replies.filter((r) => r.status === 200).length <= 1);
      assert.ok(
        replies.some((r) => r.status === 400),
        'the second presentation is refused',
      );
      // When the replay lands while the first is opening its mandate, the first is refused too.
      const [row] = await h.broker.store.query<{ mandate_id: string | null; status: string }>(
        'SELECT mandate_id, status FROM oauth_authorizations WHERE code_hash = ?',
        [createHash('sha256').update(c).digest('base64url')],
      );
      assert.equal(row?.status, 'replayed');
      const opened = await h.broker.mandates.list({ agentId: 'alice-assistant', status: 'active' });
      for (const r of replies.filter((x) => x.status === 200)) {
        const t = (await r.json()) as { access_token: string };
        const id = JSON.parse(Buffer.from(t.access_token.split('.')[1] ?? '', 'base64url').toString()).mandate as string;
        assert.equal((await h.broker.mandates.get(id))?.status, 'revoked');
        assert.ok(!opened.some((m) => m.id === id));
      }
    });

    test('a code expires after interactiveClients.codeTtlSeconds', async () => {
      const v = verifier();
      const c = await code(v);
      offsetMs = 61_000;
      try {
        const res = await redeem(c, v);
        assert.equal(res.status, 400);
        assert.match(((await res.json()) as { error_description: string }).error_description, /unknown or expired/);
      } finally {
        offsetMs = 0;
      }
    });

    test('with a DPoP proof at the token endpoint, tokens and refresh are bound to that key', async () => {
      const key = await generateKeyPair('ES256');
      const v = verifier();
      const c = await code(v);
      const r = await tokenRequest(
        h.base,
        { grant_type: 'authorization_code', code: c, redirect_uri: REDIRECT, client_id: clientId, code_verifier: v },
        key,
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.token_type, 'DPoP');
      const refresh = String(r.body.refresh_token);
      const params = { grant_type: 'refresh_token', refresh_token: refresh, client_id: clientId };
      assert.equal((await tokenRequest(h.base, params)).status, 400, 'the client_id alone is not enough');
      assert.equal((await tokenRequest(h.base, params, await generateKeyPair('ES256'))).status, 400, 'another key');
      const ok = await tokenRequest(h.base, params, key);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.token_type, 'DPoP');
    });

    test('a client secret or another grant’s parameters are refused at the token endpoint', async () => {
      const v = verifier();
      const c = await code(v);
      const secret = await redeem(c, v, { client_secret: 'guess' });
      assert.equal(secret.status, 401);
      assert.equal(((await secret.json()) as { error: string }).error, 'invalid_client');
      const mixed = await redeem(c, v, { subject_token: 'x' });
      assert.equal(mixed.status, 400);
    });

    test('a wrong, missing or malformed PKCE verifier is refused, and the code is spent', async () => {
      // A request without code_verifier is malformed (invalid_request) and presents no code.
      const v0 = verifier();
      const c0 = await code(v0);
      const missing = await redeem(c0, '');
      assert.equal(missing.status, 400);
      assert.equal(((await missing.json()) as { error: string }).error, 'invalid_request');
      for (const bad of [verifier(), 'short', `${v0}x`]) {
        const v = verifier();
        const c = await code(v);
        const res = await redeem(c, bad);
        assert.equal(res.status, 400, bad);
        // The right verifier afterwards: the code was consumed by the failed attempt.
        const again = await redeem(c, v);
        assert.equal(again.status, 400);
      }
    });

    test('redirect_uri, client_id and resource must match the authorization', async () => {
      for (const over of [
        { redirect_uri: 'http://127.0.0.1:9/other' },
        { client_id: 'mcl_aaaaaaaaaaaaaaaaaaaaaaaa' },
        { resource: 'https://elsewhere.example/mcp' },
      ] as Record<string, string>[]) {
        const v = verifier();
        const res = await redeem(await code(v), v, over);
        assert.equal(res.status, 400, JSON.stringify(over));
      }
    });

    test('no redirect to an unregistered or unvalidated redirect_uri (open redirect attempts)', async () => {
      const v = verifier();
      for (const uri of [
        'https://evil.example/cb',
        'http://127.0.0.1:9/callback/../evil',
        'http://127.0.0.1:9/callback#x',
        `${REDIRECT}?extra=1`,
      ]) {
        const res = await fetch(
          authorizeUrl({
            response_type: 'code',
            client_id: clientId,
            redirect_uri: uri,
            code_challenge: challenge(v),
            code_challenge_method: 'S256',
          }),
          { redirect: 'manual' },
        );
        assert.equal(res.status, 400, uri);
        assert.equal(res.headers.get('location'), null, uri);
      }
      // Unknown client: an error page, never a redirect.
      const unknown = await fetch(
        authorizeUrl({ response_type: 'code', client_id: 'mcl_nobodyatallxxxxxxxxxxx', redirect_uri: REDIRECT }),
        { redirect: 'manual' },
      );
      assert.equal(unknown.status, 400);
      assert.equal(unknown.headers.get('location'), null);
    });

    test('after the client and redirect URI are valid, errors go to the client with state and iss (RFC 6749 §4.1.2.1, RFC 9207)', async () => {
      const v = verifier();
      const base = { client_id: clientId, redirect_uri: REDIRECT, state: 's1' };
      for (const [over, error] of [
        [{ response_type: 'token', code_challenge: challenge(v), code_challenge_method: 'S256' }, 'unsupported_response_type'],
        [{ response_type: 'code' }, 'invalid_request'],
        [{ response_type: 'code', code_challenge: challenge(v), code_challenge_method: 'plain' }, 'invalid_request'],
        [
          { response_type: 'code', code_challenge: challenge(v), code_challenge_method: 'S256', resource: 'https://other.example' },
          'invalid_target',
        ],
      ] as const) {
        const res = await fetch(authorizeUrl({ ...base, ...over }), { redirect: 'manual' });
        assert.equal(res.status, 303, JSON.stringify(over));
        const to = new URL(res.headers.get('location') ?? '');
        assert.equal(`${to.origin}${to.pathname}`, REDIRECT);
        assert.equal(to.searchParams.get('error'), error);
        assert.equal(to.searchParams.get('state'), 's1');
        assert.equal(to.searchParams.get('iss'), h.base);
        assert.equal(to.searchParams.get('code'), null);
      }
    });

    test('CSRF: the consent form needs its token and the browser that started the request', async () => {
      const { b, csrf, request } = await toConsent(verifier());
      const noToken = await b.get(`${h.base}/oauth/consent`, form(approval(request, '')));
      assert.equal(noToken.status, 403);
      const forged = await b.get(`${h.base}/oauth/consent`, form(approval(request, 'A'.repeat(43))));
      assert.equal(forged.status, 403);
      // Another browser (an attacker's page posting with the victim's token but no cookie, or the attacker's own cookie).
      const other = new Browser();
      const cross = await other.get(`${h.base}/oauth/consent`, form(approval(request, csrf)));
      assert.equal(cross.status, 400);
      assert.equal(cross.headers.get('location'), null);
      const page = await other.get(`${h.base}/oauth/consent?request=${request}`);
      assert.equal(page.status, 400, 'the consent page is not shown to another browser');
      // The real form still works afterwards.
      const ok = await b.get(`${h.base}/oauth/consent`, form(approval(request, csrf)));
      assert.equal(ok.status, 303);
      const consentPage = await b.get(`${h.base}/oauth/consent?request=${request}`);
      assert.equal(consentPage.status, 400, 'a decided request cannot be decided again');
    });

    test('consent to tools beyond the ceiling, another environment or a longer life is refused with the reason', async () => {
      const { b, csrf, request } = await toConsent(verifier());
      for (const [over, reason] of [
        [{ tools: JSON.stringify([{ tool: 'helpdesk.delete_customer' }]) }, /ceiling/],
        [{ environment: 'staging' }, /runs in "production"/],
        [{ ttlSeconds: '999999' }, /ttlSeconds/],
        [{ tools: 'not json' }, /not valid JSON/],
        [{ agent: 'gateway-tester' }, /no active agent/],
      ] as const) {
        const res = await b.get(`${h.base}/oauth/consent`, form(approval(request, csrf, over)));
        assert.notEqual(res.status, 303, JSON.stringify(over));
        assert.match(textOf(await res.text()), reason);
      }
      const deny = await b.get(`${h.base}/oauth/consent`, form({ request, csrf, decision: 'deny' }));
      assert.equal(deny.status, 303);
      assert.equal(new URL(deny.headers.get('location') ?? '').searchParams.get('error'), 'access_denied');
    });

    test('the sign-in answer: an issuer error, a foreign iss or a replayed callback ends in access_denied or an error page', async () => {
      const start = async () => {
        const b = new Browser();
        const v = verifier();
        const res = await b.get(
          authorizeUrl({
            response_type: 'code',
            client_id: clientId,
            redirect_uri: REDIRECT,
            code_challenge: challenge(v),
            code_challenge_method: 'S256',
            state: 'cb',
          }),
        );
        return { b, signIn: new URL(res.headers.get('location') ?? '') };
      };
      const denied = (res: Response) => {
        assert.equal(res.status, 303);
        const to = new URL(res.headers.get('location') ?? '');
        assert.equal(`${to.origin}${to.pathname}`, REDIRECT);
        assert.equal(to.searchParams.get('error'), 'access_denied');
        assert.equal(to.searchParams.get('state'), 'cb');
      };
      // The issuer answered with an error (no code).
      const one = await start();
      denied(await one.b.get(`${h.base}/oauth/authorize/callback?state=${one.signIn.searchParams.get('state')}&error=access_denied`));
      // A code from the development issuer, but the answer claims another issuer.
      const two = await start();
      two.signIn.searchParams.set('user', 'alice');
      const back = new URL((await two.b.get(two.signIn.toString())).headers.get('location') ?? '');
      back.searchParams.set('iss', 'https://evil.example');
      denied(await two.b.get(back.toString()));
      // The same callback again: the request is no longer pending.
      assert.equal((await two.b.get(back.toString())).status, 400);
    });

    test('the form is prefilled from the task template named in scope, else the default one', async () => {
      const { html } = await toConsent(verifier(), { scope: 'default' });
      assert.match(html, /answer support questions/);
      assert.match(html, /support\.triage/);
      assert.match(textOf(html), /"maxCalls": 50/);
    });

    test('a human who owns no interactive agent cannot grant anything', async () => {
      const b = new Browser();
      const v = verifier();
      const start = await b.get(
        authorizeUrl({
          response_type: 'code',
          client_id: clientId,
          redirect_uri: REDIRECT,
          code_challenge: challenge(v),
          code_challenge_method: 'S256',
        }),
      );
      const signIn = new URL(start.headers.get('location') ?? '');
      signIn.searchParams.set('user', 'carol');
      const back = await b.get(signIn.toString());
      const consentAt = await b.get(back.headers.get('location') ?? '');
      const page = await b.get(new URL(consentAt.headers.get('location') ?? '', h.base).toString());
      assert.equal(page.status, 403);
      assert.match(await page.text(), /no active agent/);
    });

    test('registration: public clients with https or loopback redirect URIs only', async () => {
      const register = (body: unknown) =>
        fetch(`${h.base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      for (const [body, error] of [
        [{ redirect_uris: ['http://evil.example/cb'] }, 'invalid_redirect_uri'],
        [{ redirect_uris: ['https://app.example/cb#frag'] }, 'invalid_redirect_uri'],
        [{ redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
        [{ redirect_uris: [] }, 'invalid_redirect_uri'],
        [{ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_basic' }, 'invalid_client_metadata'],
        [{ redirect_uris: ['https://app.example/cb'], grant_types: ['client_credentials'] }, 'invalid_client_metadata'],
      ] as const) {
        const res = await register(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(((await res.json()) as { error: string }).error, error);
      }
      const ok = await register({ redirect_uris: ['https://app.example/cb', 'http://[::1]:7777/cb'], client_name: 'ok' });
      assert.equal(ok.status, 201);
      const m = (await ok.json()) as Record<string, unknown>;
      assert.equal(m.token_endpoint_auth_method, 'none');
      assert.equal(m.client_secret, undefined);
    });

    test('Client ID Metadata Documents: loopback, link-local and oversized documents are refused', async () => {
      const refused = async (docUrl: string) => {
        const res = await fetch(authorizeUrl({ response_type: 'code', client_id: docUrl, redirect_uri: REDIRECT }), { redirect: 'manual' });
        assert.equal(res.status, 400, docUrl);
        assert.equal(res.headers.get('location'), null);
        return textOf(await res.text());
      };
      const hits = host.hits();
      // This broker does not allow private networks: the loopback host is never contacted.
      assert.match(await refused(`${host.origin}/a.json`), /not a public address/);
      assert.match(await refused(`https://localhost:${new URL(host.origin).port}/a.json`), /resolves to/);
      assert.match(await refused('https://169.254.169.254/latest/meta-data/client.json'), /link-local/);
      assert.match(await refused('https://[::ffff:7f00:1]/c.json'), /not a public address/);
      assert.match(await refused('http://app.example/client.json'), /unknown client_id/);
      assert.equal(host.hits(), hits, 'no request reached the private host');
    });
  });
}

describe('Client ID Metadata Documents on a broker that allows private networks (tests, labs)', () => {
  let h: GatewayHarness;
  let host: DocumentHost;
  before(async () => {
    host = await documentHost();
    h = await startGateway({
      config: { interactiveClients: { metadataDocuments: { allowPrivateNetworks: true, maxBytes: 2048, caFile: host.caFile } } },
    });
  });
  after(async () => {
    await h?.close();
    await host?.close();
  });
  const get = (docUrl: string, redirect = REDIRECT) =>
    fetch(`${h.base}/oauth/authorize?${new URLSearchParams({ response_type: 'code', client_id: docUrl, redirect_uri: redirect })}`, {
      redirect: 'manual',
    });

  test('oversized, mismatched, non-JSON and confidential-client documents are refused; link-local still is', async () => {
    const doc = (path: string, over: Record<string, unknown> = {}) =>
      JSON.stringify({ client_id: `${host.origin}${path}`, client_name: 'x', redirect_uris: [REDIRECT], ...over });
    host.set('/big.json', doc('/big.json', { padding: 'x'.repeat(4096) }));
    host.set('/other.json', doc('/elsewhere.json'));
    host.set('/html.json', '<html></html>', 'text/html');
    host.set('/secret.json', doc('/secret.json', { token_endpoint_auth_method: 'client_secret_basic' }));
    host.set('/evil-redirect.json', doc('/evil-redirect.json', { redirect_uris: ['http://evil.example/cb'] }));
    for (const [path, reason] of [
      ['/big.json', /larger than 2048 bytes/],
      ['/other.json', /another client_id/],
      ['/html.json', /not JSON/],
      ['/secret.json', /public clients/],
      ['/evil-redirect.json', /must be https/],
      ['/missing.json', /HTTP 404/],
    ] as const) {
      const res = await get(`${host.origin}${path}`);
      assert.equal(res.status, 400, path);
      assert.equal(res.headers.get('location'), null);
      assert.match(textOf(await res.text()), reason, path);
    }
    const link = await get('https://169.254.169.254/client.json');
    assert.match(await link.text(), /link-local/);
    // A good document: a redirect_uri it does not list is still refused, without a redirect.
    host.set('/good.json', doc('/good.json'));
    const wrong = await get(`${host.origin}/good.json`, 'http://127.0.0.1:9/not-listed');
    assert.equal(wrong.status, 400);
    assert.equal(wrong.headers.get('location'), null);
  });
});

describe('interactive endpoints are rate-limited per address', () => {
  let h: GatewayHarness;
  before(async () => {
    h = await startGateway({ config: { interactiveClients: { authorizePerWindow: 3, registration: { perWindow: 2 } } } });
  });
  after(async () => {
    await h?.close();
  });

  test('registration: the third in a window is slow_down with Retry-After', async () => {
    const register = () =>
      fetch(`${h.base}/oauth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: [REDIRECT] }),
      });
    assert.equal((await register()).status, 201);
    assert.equal((await register()).status, 201);
    const third = await register();
    assert.equal(third.status, 429);
    assert.equal(((await third.json()) as { error: string }).error, 'slow_down');
    assert.ok(Number(third.headers.get('retry-after')) >= 1);
  });

  test('authorization requests: past the limit a 429 page, no redirect, no stored request', async () => {
    const before = await h.broker.store.query<{ n: number }>('SELECT COUNT(*) AS n FROM oauth_authorizations');
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${h.base}/oauth/authorize?client_id=mcl_nobodyatallxxxxxxxxxxx`, { redirect: 'manual' });
      assert.equal(r.status, 400);
    }
    const over = await fetch(`${h.base}/oauth/authorize?client_id=mcl_nobodyatallxxxxxxxxxxx`, { redirect: 'manual' });
    assert.equal(over.status, 429);
    assert.equal(over.headers.get('location'), null);
    const after_ = await h.broker.store.query<{ n: number }>('SELECT COUNT(*) AS n FROM oauth_authorizations');
    assert.equal(Number(after_[0]?.n), Number(before[0]?.n));
  });
});

describe('a configured operator issuer is reached by discovery and its token endpoint', () => {
  let h: { base: string; broker: TestApp['broker']; close(): Promise<void> };
  before(async () => {
    // The development issuer configured as if it were an external one: the broker must discover
    // its endpoints and redeem the sign-in code over HTTP, then verify the token with its JWKS.
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}/dev/oidc`;
    const t = await buildTestApp({
      config: { server: { port }, operators: { issuer: { issuer, audience: 'mandate-admin', jwksUri: `${issuer}/jwks` } } },
    });
    await t.app.listen({ host: '127.0.0.1', port });
    h = { base: `http://127.0.0.1:${port}`, broker: t.broker, close: () => t.close() };
    await registerAssistant(h as unknown as GatewayHarness);
  });
  after(async () => {
    await h?.close();
  });

  test('sign-in through the discovered endpoints reaches the consent page; a code from elsewhere does not', async () => {
    const reg = await fetch(`${h.base}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [REDIRECT] }),
    });
    const { client_id } = (await reg.json()) as { client_id: string };
    const start = async () => {
      const b = new Browser();
      const v = verifier();
      const res = await b.get(
        `${h.base}/oauth/authorize?${new URLSearchParams({ response_type: 'code', client_id, redirect_uri: REDIRECT, code_challenge: challenge(v), code_challenge_method: 'S256', state: 'd' })}`,
      );
      assert.equal(res.status, 303);
      const signIn = new URL(res.headers.get('location') ?? '');
      assert.equal(signIn.href.split('?')[0], `${h.base}/dev/oidc/authorize`, 'the discovered authorization endpoint');
      return { b, signIn };
    };
    const { b, signIn } = await start();
    signIn.searchParams.set('user', 'alice');
    const back = await b.get(signIn.toString());
    const consentAt = await b.get(back.headers.get('location') ?? '');
    assert.equal(consentAt.status, 303);
    const page = await b.get(new URL(consentAt.headers.get('location') ?? '', h.base).toString());
    assert.equal(page.status, 200);
    assert.match(await page.text(), /alice-assistant/);
    // A forged code for a started request: the issuer's token endpoint refuses it, the client gets access_denied.
    const other = await start();
    const forged = await other.b.get(`${h.base}/oauth/authorize/callback?state=${other.signIn.searchParams.get('state')}&code=forged`);
    assert.equal(forged.status, 303);
    assert.equal(new URL(forged.headers.get('location') ?? '').searchParams.get('error'), 'access_denied');
  });
});
