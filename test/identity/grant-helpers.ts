// Raw token-endpoint requests for the client-credentials and refresh-token tests: form posts with
// exactly the parameters a test chooses (so each can be wrong on purpose), the OAuth error body
// and status as the server sent them, and a DPoP proof made fresh per request.
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { CLIENT_ASSERTION_TYPE } from '../../src/oauth/client-credentials.js';
import { handDpopProof } from './helpers.js';

export interface TokenReply {
  readonly status: number;
  readonly body: Record<string, unknown> & { error?: string; error_description?: string };
  readonly headers: Headers;
}

/** POSTs a form to `<base>/oauth/token`; with `dpopKey`, a fresh DPoP proof for it (retried once with a server nonce). */
export async function tokenRequest(base: string, form: Record<string, string>, dpopKey?: CryptoKeyPair): Promise<TokenReply> {
  const url = `${base}/oauth/token`;
  let nonce: string | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (dpopKey !== undefined) headers.dpop = await handDpopProof(dpopKey, { htm: 'POST', htu: url, ...(nonce ? { nonce } : {}) });
    const res = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(form) });
    const body = (await res.json().catch(() => ({}))) as TokenReply['body'];
    if (body.error === 'use_dpop_nonce' && attempt === 0) {
      nonce = res.headers.get('dpop-nonce') ?? undefined;
      continue;
    }
    return { status: res.status, body, headers: res.headers };
  }
  throw new Error('unreachable');
}

/** The client-authentication parameters of RFC 7523 §2.2 with `assertion`. */
export const assertionParams = (assertion: string): Record<string, string> => ({
  client_assertion_type: CLIENT_ASSERTION_TYPE,
  client_assertion: assertion,
});

/** The mandate id claim of an access token (read without verifying: tests only). */
export const mandateOf = (token: unknown): string => String(decodeJwt(String(token)).mandate);

export const sha256b64u = (value: string) => createHash('sha256').update(value).digest('base64url');
