// Builds a ReportContext from the parts a broker or the CLI holds: the store, configuration, the
// catalog, the active policy set, and the sealed upstream credentials (fingerprinted with the audit
// log's salted HMAC, so equal values are found without ever being shown).
import type { Config } from '../config/load.js';
import type { LoadedPolicySet } from '../policy/engine.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { UpstreamCredentials } from '../secrets/upstream-credentials.js';
import type { Store } from '../store/types.js';
import { readCatalog } from '../upstreams/catalog.js';
import type { ReportContext } from './types.js';

export interface ContextParts {
  readonly store: Store;
  readonly config: Config;
  readonly now: number;
  readonly policySet: LoadedPolicySet | undefined;
  readonly secrets: SecretBox;
  /** Salted HMAC (the audit log's `redact`). */
  readonly fingerprint: (secret: string) => string;
}

export async function buildReportContext(parts: ContextParts): Promise<ReportContext> {
  const catalog = await readCatalog(parts.store);
  const creds = new UpstreamCredentials(parts.secrets);
  const prints = new Map<string, string[]>();
  for (const u of await parts.store.query<{ id: string; credential_sealed: string }>(
    'SELECT id, credential_sealed FROM upstreams WHERE credential_sealed IS NOT NULL',
  )) {
    try {
      const c = creds.open(u.id, u.credential_sealed);
      prints.set(
        u.id,
        [...Object.values(c.headers ?? {}), ...Object.values(c.env ?? {})].map((v) => parts.fingerprint(v)),
      );
    } catch {
      // Undecryptable (another master key): no fingerprints, so it can never count as shared.
    }
  }
  return {
    db: parts.store,
    config: parts.config,
    now: parts.now,
    catalog,
    policySet: parts.policySet,
    credentialFingerprints: (id) => prints.get(id),
  };
}
