// Random identifiers and secrets from a pool of CSPRNG bytes: one randomFillSync of POOL bytes
// serves many calls. On the token endpoint's path every exchange draws three values (mandate id,
// access token jti, refresh token), and a randomBytes call each cost more than the rest of the
// mint in the profile (OpenSSL's RAND_bytes per call). Node's own randomUUID caches entropy the
// same way. Each byte is handed out once; the pool is refilled when it runs out, never reused.
import { randomFillSync } from 'node:crypto';

const POOL = 4096;
const pool = Buffer.allocUnsafe(POOL);
let offset = POOL;

/** `n` fresh random bytes (at most 256) as unpadded base64url. */
export function randomBase64url(n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new RangeError('randomBase64url takes 1 to 256 bytes');
  if (offset + n > POOL) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = pool.toString('base64url', offset, offset + n);
  // Wiped as it is handed out: a later heap dump does not hold what was already used.
  pool.fill(0, offset, offset + n);
  offset += n;
  return out;
}
