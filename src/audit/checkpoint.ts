// Checkpoints (signed tree heads) in the C2SP tlog-checkpoint format, signed as a C2SP signed note
// with Ed25519, and the note verifier key (`vkey`) an auditor pins out of band.
// Formats: https://c2sp.org/tlog-checkpoint and https://c2sp.org/signed-note.
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

const ED25519_ALG = 0x01;
/** U+2014 EM DASH opens every signature line of a signed note. */
const SIG_PREFIX = '\u2014 ';

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Buffer;
}

/** The checkpoint body: origin, decimal size, base64 root hash, each on its own line. */
export function checkpointBody(c: Checkpoint): string {
  return `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n`;
}

function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' }) as { x?: string };
  return Buffer.from(jwk.x ?? '', 'base64url');
}

/** signed-note key hash: the first 4 bytes of SHA-256(name || "\n" || 0x01 || public key). */
export function noteKeyHash(name: string, publicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(`${name}\n`)
    .update(Buffer.from([ED25519_ALG]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

/** A checkpoint signer holding the Ed25519 private key. */
export class NoteSigner {
  readonly name: string;
  readonly #key: KeyObject;
  readonly publicKey: Buffer;
  readonly #keyHash: Buffer;

  constructor(name: string, pkcs8Der: Buffer) {
    this.name = name;
    this.#key = createPrivateKey({ key: pkcs8Der, format: 'der', type: 'pkcs8' });
    this.publicKey = rawPublicKey(createPublicKey(this.#key));
    this.#keyHash = noteKeyHash(name, this.publicKey);
  }

  /** `<name>+<hex key hash>+<base64(0x01 || public key)>` */
  get vkey(): string {
    return `${this.name}+${this.#keyHash.toString('hex')}+${Buffer.concat([Buffer.from([ED25519_ALG]), this.publicKey]).toString('base64')}`;
  }

  /** Signs a checkpoint and returns the full signed note text. */
  sign(c: Checkpoint): string {
    const body = checkpointBody(c);
    const sig = sign(null, Buffer.from(body), this.#key);
    return `${body}\n${SIG_PREFIX}${this.name} ${Buffer.concat([this.#keyHash, sig]).toString('base64')}\n`;
  }
}

export interface VerifierKey {
  readonly name: string;
  readonly keyHash: Buffer;
  readonly publicKey: KeyObject;
}

/** Parses a vkey; throws a plain Error with the reason when malformed. */
export function parseVkey(vkey: string): VerifierKey {
  // The base64 key may itself contain '+': split at the first two only.
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(vkey.trim());
  if (m === null) throw new Error('a vkey has the form name+hash+key');
  const [, name, hash, key] = m as unknown as [string, string, string, string];
  const raw = Buffer.from(key, 'base64');
  if (!/^[0-9a-f]{8}$/.test(hash) || raw.length !== 33 || raw[0] !== ED25519_ALG) throw new Error('the vkey is not an Ed25519 note key');
  const publicBytes = raw.subarray(1);
  if (!noteKeyHash(name, publicBytes).equals(Buffer.from(hash, 'hex'))) throw new Error('the vkey hash does not match its name and key');
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicBytes.toString('base64url') }, format: 'jwk' });
  return { name, keyHash: Buffer.from(hash, 'hex'), publicKey };
}

/**
 * Opens a signed checkpoint note with the pinned verifier key. Returns the checkpoint, or a reason
 * string when the note is malformed or no valid signature by that key is on it.
 */
export function openCheckpoint(note: string, key: VerifierKey, expectedOrigin?: string): Checkpoint | string {
  const split = note.indexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) return 'not a signed note';
  const body = note.slice(0, split + 1);
  const sigLines = note.slice(split + 2, -1).split('\n');
  let signed = false;
  const signers: string[] = [];
  for (const line of sigLines) {
    if (!line.startsWith(SIG_PREFIX)) return 'malformed signature line';
    const [name, b64, ...rest] = line.slice(SIG_PREFIX.length).split(' ');
    if (rest.length > 0 || name === undefined || b64 === undefined) return 'malformed signature line';
    signers.push(name);
    if (name !== key.name) continue;
    const blob = Buffer.from(b64, 'base64');
    if (blob.length !== 4 + 64 || !blob.subarray(0, 4).equals(key.keyHash)) continue;
    if (verify(null, Buffer.from(body), key.publicKey, blob.subarray(4))) signed = true;
  }
  // A key of another name is a configuration mistake (a vkey printed for another address), not tampering.
  if (!signed && !signers.includes(key.name)) {
    return `signed by key "${signers.join('", "')}", not by the verifier key "${key.name}" (a vkey for another origin: print it with the broker's address)`;
  }
  if (!signed) return 'no valid signature by the verifier key';
  const lines = body.slice(0, -1).split('\n');
  const [origin, sizeText, rootText] = lines;
  if (origin === undefined || sizeText === undefined || rootText === undefined || !/^(0|[1-9]\d*)$/.test(sizeText)) {
    return 'malformed checkpoint body';
  }
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootText) return 'malformed checkpoint root hash';
  if (expectedOrigin !== undefined && origin !== expectedOrigin) return `checkpoint origin "${origin}" is not "${expectedOrigin}"`;
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) return 'checkpoint size is too large';
  return { origin, size, root };
}
