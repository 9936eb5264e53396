// A running broker (demo mode, listening on 127.0.0.1) with oauth4webapi as the unmodified OAuth
// client, and builders for identity proofs and DPoP proofs that tests can corrupt on purpose.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, importJWK, type JWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import type { ConfigInput } from '../../src/config/load.js';
import type { Clock } from '../../src/lib/clock.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import type { Logger } from '../../src/observability/log.js';
import type { Store } from '../../src/store/types.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

export const TRIAGE = 'spiffe://demo.mandate.local/agent/support-triage';
export const REMEDIATION = 'spiffe://demo.mandate.local/agent/remediation';
export const insecure = { [oauth.allowInsecureRequests]: true } as const;

/** RFC 9449 §4.2 `ath`: the base64url SHA-256 of the access token a DPoP proof is bound to. */
export const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

import { freePort } from '../helpers/ports.js';

export { freePort };

export function mandateRequest(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'mandate',
    purpose: 'Resolve ticket T-4821: customer reports a double charge',
    taskType: 'support.refund',
    environment: 'production',
    ttlSeconds: 900,
    tools: [
      { tool: 'helpdesk.search_tickets' },
      { tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } }, maxCalls: 3 },
    ],
    delegable: true,
    ...over,
  };
}

export interface Running extends TestApp {
  readonly base: string;
  readonly as: oauth.AuthorizationServer;
  readonly client: oauth.Client;
  /** A JWT-SVID from the development trust domain for our audience. */
  svid(spiffeId: string, options?: { audience?: string | string[]; ttlSeconds?: number }): Promise<string>;
  /** Signs arbitrary claims/header with the development trust domain key (for attack cases). */
  signWithDevKey(header: Record<string, unknown>, claims: Record<string, unknown>): Promise<string>;
  /** Token exchange through oauth4webapi; resolves to the token response or rejects with its error. */
  exchange(params: Record<string, string>, dpop?: oauth.DPoPHandle): Promise<oauth.TokenEndpointResponse>;
  /** Opens a root mandate for a SPIFFE ID. */
  open(spiffeId: string, request?: Record<string, unknown>, dpop?: oauth.DPoPHandle): Promise<oauth.TokenEndpointResponse>;
  /** Delegates from `parentToken` to the agent `spiffeId`. */
  delegate(
    parentToken: string,
    spiffeId: string,
    request: Record<string, unknown>,
    dpop?: oauth.DPoPHandle,
  ): Promise<oauth.TokenEndpointResponse>;
}

export async function startBroker(
  options: { store?: Store; config?: ConfigInput; clock?: Clock; logger?: Logger; env?: Record<string, string> } = {},
): Promise<Running> {
  const port = await freePort();
  const t = await buildTestApp({
    config: { ...options.config, server: { port, ...(options.config?.server ?? {}) } },
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.store === undefined ? {} : { store: options.store }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  await t.app.listen({ host: '127.0.0.1', port });
  const base = `http://127.0.0.1:${port}`;
  const issuer = new URL(base);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
  const client: oauth.Client = { client_id: 'agent' };
  const dev = t.broker.identity.devSpiffe;
  if (dev === undefined) throw new Error('demo mode expected');
  const devKey = JSON.parse(readFileSync(join(t.dataDir, 'dev-spiffe.jwk.json'), 'utf8')) as JWK;

  const exchange = async (params: Record<string, string>, dpop?: oauth.DPoPHandle) => {
    const call = () =>
      oauth.genericTokenEndpointRequest(as, client, oauth.None(), GRANT_TOKEN_EXCHANGE, params, {
        ...(dpop === undefined ? {} : { DPoP: dpop }),
        ...insecure,
      });
    try {
      return await oauth.processGenericTokenEndpointResponse(as, client, await call());
    } catch (err) {
      // RFC 9449 §8: retry once with the server-provided nonce (oauth4webapi caches it).
      if (dpop !== undefined && oauth.isDPoPNonceError(err)) return oauth.processGenericTokenEndpointResponse(as, client, await call());
      throw err;
    }
  };
  const svid = (spiffeId: string, o: { audience?: string | string[]; ttlSeconds?: number } = {}) =>
    dev.mint({ spiffeId, audience: o.audience ?? base, ...(o.ttlSeconds === undefined ? {} : { ttlSeconds: o.ttlSeconds }) });
  return {
    ...t,
    base,
    as,
    client,
    svid,
    async signWithDevKey(header, claims) {
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: devKey.kid ?? '', ...header })
        .sign(await importJWK(devKey, 'ES256'));
    },
    exchange,
    async open(spiffeId, request = mandateRequest(), dpop) {
      return exchange(
        { subject_token: await svid(spiffeId), subject_token_type: TOKEN_TYPE.jwt, authorization_details: JSON.stringify([request]) },
        dpop,
      );
    },
    async delegate(parentToken, spiffeId, request, dpop) {
      return exchange(
        {
          subject_token: parentToken,
          subject_token_type: TOKEN_TYPE.accessToken,
          actor_token: await svid(spiffeId),
          actor_token_type: TOKEN_TYPE.jwt,
          authorization_details: JSON.stringify([request]),
        },
        dpop,
      );
    },
  };
}

/** The OAuth `error` of a rejected oauth4webapi call (ResponseBodyError), or a description. */
export async function oauthError(promise: Promise<unknown>): Promise<{ error: string; description: string }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) return { error: err.error, description: err.error_description ?? '' };
    throw err;
  }
  throw new Error('expected the call to fail');
}

/** A DPoP proof built by hand so tests can get each claim wrong on purpose. */
export async function handDpopProof(
  keyPair: CryptoKeyPair,
  claims: { htm: string; htu: string; ath?: string; jti?: string; iat?: number; nonce?: string },
): Promise<string> {
  const jwk = await exportJWK(keyPair.publicKey);
  return new SignJWT({
    jti: claims.jti ?? randomUUID(),
    htm: claims.htm,
    htu: claims.htu,
    ...(claims.ath ? { ath: claims.ath } : {}),
    ...(claims.nonce ? { nonce: claims.nonce } : {}),
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
    .setIssuedAt(claims.iat ?? Math.floor(Date.now() / 1000))
    .sign(keyPair.privateKey);
}

export async function thumbprint(keyPair: CryptoKeyPair): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
}
