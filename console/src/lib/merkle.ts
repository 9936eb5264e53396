// In-browser verification of an audit event's inclusion in the log: RFC 9162 leaf hashing of the
// event as displayed (RFC 8785 canonical JSON, the same leaf bytes the broker hashes), the
// inclusion proof walk of RFC 9162 §2.1.3.2 with WebCrypto SHA-256, and the C2SP checkpoint the
// root must match (its Ed25519 signature is checked too when the verifier key is known).
import canonicalize from 'canonicalize';

const encoder = new TextEncoder();

/** Bytes backed by a plain ArrayBuffer, as WebCrypto wants them. */
type Bytes = Uint8Array<ArrayBuffer>;

async function sha256(...parts: Bytes[]): Promise<Bytes> {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    buf.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

export function fromBase64(b64: string): Bytes {
  const bin = atob(b64.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function fromHex(hex: string): Bytes {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error('not hex');
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => Number.parseInt(h, 16));
}

export function toHex(bytes: Bytes): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Hash given as hex or base64, as the API may serve either. */
export function decodeHash(value: string): Bytes {
  return /^[0-9a-f]{64}$/i.test(value) ? fromHex(value) : fromBase64(value);
}

/** The leaf bytes the log hashes: `{"event":<RFC 8785 event>,"seq":N}` (src/audit/event.ts). */
export function leafBytes(event: unknown, seq: number): string {
  const canonical = canonicalize(event);
  if (canonical === undefined) throw new Error('the event is not canonical JSON');
  return `{"event":${canonical},"seq":${seq}}`;
}

/** RFC 9162 §2.1.1: leaf hash = SHA-256(0x00 || leaf). */
export function leafHash(leaf: string): Promise<Bytes> {
  return sha256(new Uint8Array([0]), encoder.encode(leaf));
}

function equal(a: Bytes, b: Bytes): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or an error naming why it cannot. */
export async function rootFromInclusionProof(index: number, size: number, leaf: Bytes, proof: readonly Bytes[]): Promise<Bytes> {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size)
    throw new Error('leaf index outside the tree');
  if (leaf.length !== 32 || proof.some((p) => p.length !== 32)) throw new Error('hashes must be 32 bytes (SHA-256)');
  // Halving instead of >>: tree sizes may exceed 2^31.
  const half = (n: number) => Math.floor(n / 2);
  const odd = (n: number) => n % 2 === 1;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  const one = new Uint8Array([1]);
  for (const p of proof) {
    if (sn === 0) throw new Error('the proof is longer than the tree is deep');
    if (odd(fn) || fn === sn) {
      r = await sha256(one, p, r);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = await sha256(one, r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new Error('the proof is shorter than the tree is deep');
  return r;
}

export interface ParsedCheckpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Bytes;
  readonly body: string;
  readonly signatures: readonly { name: string; keyHash: Bytes; signature: Bytes }[];
}

/** Parses a C2SP signed-note checkpoint: origin, size, base64 root, blank line, `— name sig` lines. */
export function parseCheckpoint(note: string): ParsedCheckpoint {
  const split = note.indexOf('\n\n');
  if (split < 0) throw new Error('the checkpoint has no signature block');
  const body = note.slice(0, split + 1);
  const [origin, sizeLine, rootLine] = body.split('\n');
  if (origin === undefined || sizeLine === undefined || rootLine === undefined || !/^\d+$/.test(sizeLine)) {
    throw new Error('the checkpoint body is malformed');
  }
  const signatures = note
    .slice(split + 2)
    .split('\n')
    .filter((l) => l.startsWith('— '))
    .map((line) => {
      const [, name = '', sig = ''] = line.split(' ');
      const raw = fromBase64(sig);
      return { name, keyHash: raw.slice(0, 4), signature: raw.slice(4) };
    });
  return { origin, size: Number(sizeLine), root: fromBase64(rootLine), body, signatures };
}

/** Verifies the checkpoint's Ed25519 note signature against a C2SP vkey (`name+hash+base64(0x01||key)`). */
export async function verifyCheckpointSignature(checkpoint: ParsedCheckpoint, vkey: string): Promise<boolean> {
  // The key is standard base64 and may itself contain '+': split on the first two only.
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(vkey.trim());
  if (m === null) return false;
  const [, name = '', hashHex = '', keyB64 = ''] = m;
  const keyBytes = fromBase64(keyB64);
  if (keyBytes[0] !== 0x01) return false;
  const sig = checkpoint.signatures.find((s) => s.name === name && toHex(s.keyHash) === hashHex.toLowerCase());
  if (sig === undefined) return false;
  const key = await crypto.subtle.importKey('raw', keyBytes.slice(1), { name: 'Ed25519' }, false, ['verify']);
  return crypto.subtle.verify({ name: 'Ed25519' }, key, sig.signature, encoder.encode(checkpoint.body));
}

export interface InclusionResult {
  readonly ok: boolean;
  readonly steps: readonly string[];
}

/** Checks that `event` (as displayed) is leaf `seq` of the tree the checkpoint commits to. */
export async function checkInclusion(input: {
  event: unknown;
  seq: number;
  proof: readonly string[];
  treeSize: number;
  checkpoint: ParsedCheckpoint;
  leafHashFromServer?: string;
}): Promise<InclusionResult> {
  const steps: string[] = [];
  const leaf = await leafHash(leafBytes(input.event, input.seq));
  steps.push(`leaf hash of the displayed event (RFC 8785 + RFC 9162 0x00 prefix): ${toHex(leaf)}`);
  if (input.leafHashFromServer !== undefined && !equal(leaf, decodeHash(input.leafHashFromServer))) {
    steps.push('the server reports a different leaf hash: the displayed event is not what the log holds');
    return { ok: false, steps };
  }
  if (input.treeSize !== input.checkpoint.size) {
    steps.push(`the proof is for tree size ${input.treeSize} but the checkpoint commits to ${input.checkpoint.size}`);
    return { ok: false, steps };
  }
  let root: Bytes;
  try {
    root = await rootFromInclusionProof(input.seq, input.treeSize, leaf, input.proof.map(decodeHash));
  } catch (err) {
    steps.push(`the proof does not verify: ${(err as Error).message}`);
    return { ok: false, steps };
  }
  steps.push(`${input.proof.length} proof hashes lead to root ${toHex(root)}`);
  const ok = equal(root, input.checkpoint.root);
  steps.push(
    ok
      ? `matches the signed checkpoint root of tree size ${input.checkpoint.size}`
      : `does NOT match the checkpoint root ${toHex(input.checkpoint.root)}`,
  );
  return { ok, steps };
}
