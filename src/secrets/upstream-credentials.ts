// Upstream credentials at rest: sealed with the broker's SecretBox, bound to the upstream id so a
// sealed value cannot be moved to another upstream. Opened only by the gateway when it connects;
// never returned by the API, never logged.
import { z } from 'zod';
import { StoreError } from '../errors/index.js';
import type { SecretBox } from './secret-box.js';

const headerName = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'an HTTP header name');
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'an environment variable name');

/** What the gateway injects when it reaches an upstream: HTTP headers (streamable HTTP) or environment variables (stdio). */
export const upstreamCredentialSchema = z
  .strictObject({
    headers: z.record(headerName, z.string().min(1).max(8192)).optional().describe('sent on every request to an HTTP upstream'),
    env: z.record(envName, z.string().min(1).max(8192)).optional().describe('set in the environment of a stdio upstream'),
  })
  .refine((c) => Object.keys(c.headers ?? {}).length + Object.keys(c.env ?? {}).length > 0, 'at least one header or env entry');

export type UpstreamCredential = z.infer<typeof upstreamCredentialSchema>;

const context = (upstreamId: string): string => `upstream-credential:${upstreamId}`;

/** Seals and opens upstream credentials with the broker's master key. */
export class UpstreamCredentials {
  constructor(private readonly box: SecretBox) {}

  seal(upstreamId: string, credential: UpstreamCredential): string {
    return this.box.seal(JSON.stringify(upstreamCredentialSchema.parse(credential)), context(upstreamId));
  }

  open(upstreamId: string, sealed: string): UpstreamCredential {
    const parsed = upstreamCredentialSchema.safeParse(JSON.parse(this.box.open(sealed, context(upstreamId)).toString('utf8')));
    if (!parsed.success) throw new StoreError('ERR_SECRET_UNDECRYPTABLE', `the credential of upstream ${upstreamId} is malformed`);
    return parsed.data;
  }

  /** Names (never values) of what a credential injects, for the admin API. */
  static describe(credential: UpstreamCredential): { headers: string[]; env: string[] } {
    return { headers: Object.keys(credential.headers ?? {}), env: Object.keys(credential.env ?? {}) };
  }
}
