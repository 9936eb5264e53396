// Encryption of secrets at rest (signing keys, upstream credentials) with AES-256-GCM under a
// master key. Key ids make rotation possible: the first key seals, every listed key can open.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ConfigError, StoreError } from '../errors/index.js';

export interface MasterKey {
  readonly kid: string;
  readonly key: Buffer;
}

const KID = /^[A-Za-z0-9_-]{1,32}$/;
const FORMAT = 'v1';

/** Parses `kid:base64(32 bytes)[,kid:base64...]`. The message never contains key material. */
export function parseMasterKeys(spec: string): MasterKey[] {
  const keys = spec.split(',').map((part, i) => {
    const sep = part.indexOf(':');
    const kid = part.slice(0, sep).trim();
    const key = Buffer.from(part.slice(sep + 1).trim(), 'base64');
    if (sep < 1 || !KID.test(kid) || key.length !== 32) {
      throw new ConfigError(
        'ERR_MASTER_KEY_MALFORMED',
        `MANDATE_MASTER_KEY entry ${i + 1} must be kid:base64 of 32 bytes (kid: letters, digits, _ or -)`,
      );
    }
    return { kid, key };
  });
  if (new Set(keys.map((k) => k.kid)).size !== keys.length) {
    throw new ConfigError('ERR_MASTER_KEY_MALFORMED', 'MANDATE_MASTER_KEY has duplicate key ids');
  }
  return keys;
}

export function generateMasterKeySpec(kid = 'k1'): string {
  return `${kid}:${randomBytes(32).toString('base64')}`;
}

export class SecretBox {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly #active: MasterKey;

  constructor(keys: readonly MasterKey[]) {
    const [active] = keys;
    if (active === undefined) throw new ConfigError('ERR_MASTER_KEY_MISSING');
    this.#active = active;
    this.#keys = new Map(keys.map((k) => [k.kid, k.key]));
  }

  get activeKid(): string {
    return this.#active.kid;
  }

  /** Seals `plaintext`; `context` (e.g. the row id) is bound as AAD so sealed values cannot be swapped. */
  seal(plaintext: Uint8Array | string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#active.key, iv);
    cipher.setAAD(Buffer.from(context));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return [FORMAT, this.#active.kid, iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join(
      '.',
    );
  }

  open(sealed: string, context: string): Buffer {
    const [format, kid, iv, ct, tag, ...rest] = sealed.split('.');
    const key = kid === undefined ? undefined : this.#keys.get(kid);
    if (format !== FORMAT || rest.length > 0 || key === undefined || iv === undefined || ct === undefined || tag === undefined) {
      throw new StoreError('ERR_SECRET_UNDECRYPTABLE', `sealed secret uses an unknown format or key id "${kid ?? ''}"`);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]);
    } catch (err) {
      throw new StoreError('ERR_SECRET_UNDECRYPTABLE', 'sealed secret failed authentication', { cause: err });
    }
  }

  /** True when `sealed` was sealed with a key other than the active one (re-seal after rotation). */
  needsReseal(sealed: string): boolean {
    return sealed.split('.')[1] !== this.#active.kid;
  }
}
