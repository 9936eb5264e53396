// Mutations: byte-level (flip, insert, delete, duplicate, splice hostile bytes), JSON-structural
// (replace any node with a value of another type, deepen, widen) and JWT-aware (tamper a segment,
// re-encode a changed header or payload without re-signing, strip or truncate the signature).
import type { Pools } from './pools.js';
import type { Rng } from './rng.js';

const INTERESTING_BYTES = [0x00, 0x0a, 0x0d, 0x20, 0x22, 0x25, 0x2e, 0x2f, 0x3a, 0x3b, 0x5c, 0x7b, 0x7d, 0x7f, 0x80, 0xc0, 0xff];

/** One to four byte-level edits of `input`. */
export function mutateBytes(rng: Rng, input: Buffer, pools: Pools): Buffer {
  let buf = input;
  const edits = 1 + rng.int(4);
  for (let e = 0; e < edits; e++) {
    const at = buf.length === 0 ? 0 : rng.int(buf.length);
    switch (rng.int(7)) {
      case 0: {
        if (buf.length === 0) break;
        buf = Buffer.from(buf);
        buf[at] = (buf[at] as number) ^ (1 << rng.int(8));
        break;
      }
      case 1:
        buf = Buffer.concat([buf.subarray(0, at), Buffer.of(rng.pick(INTERESTING_BYTES)), buf.subarray(at)]);
        break;
      case 2:
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + 1 + rng.int(16)))]);
        break;
      case 3: {
        const len = 1 + rng.int(32);
        const chunk = buf.subarray(at, at + len);
        buf = Buffer.concat([buf.subarray(0, at), chunk, chunk, buf.subarray(at)]);
        break;
      }
      case 4:
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from(rng.pick(pools.nasty)), buf.subarray(at)]);
        break;
      case 5:
        buf = buf.subarray(0, at);
        break;
      default: {
        if (buf.length === 0) break;
        buf = Buffer.from(buf);
        buf[at] = rng.int(256);
      }
    }
  }
  return buf;
}

export function mutateString(rng: Rng, input: string, pools: Pools): string {
  return mutateBytes(rng, Buffer.from(input), pools).toString('latin1');
}

/** Text of any pool value (null-prototype objects have no toString). */
export function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v) ?? 'undefined';
  } catch {
    return 'null';
  }
}

/** A value of any type from the pools, sometimes huge or deeply nested. */
export function hostileValue(rng: Rng, pools: Pools): unknown {
  switch (rng.int(8)) {
    case 0:
      return rng.pick(pools.strings);
    case 1:
      return rng.pick(pools.nasty);
    case 2: {
      let v: unknown = rng.pick(pools.json);
      for (let d = rng.int(300); d > 0; d--) v = rng.chance(0.5) ? [v] : { a: v };
      return v;
    }
    case 3:
      return Array.from({ length: rng.pick([0, 1, 2, 100, 1000, 5000]) }, () => rng.pick(pools.json));
    case 4:
      return rng.pick([0, -1, 1.5, 2 ** 53 + 1, -(2 ** 63), Number.MAX_VALUE, Number.MIN_VALUE, true, false, null]);
    default:
      return rng.pick(pools.json);
  }
}

/** Replaces, removes or adds one node somewhere in a JSON value (type confusion, missing fields). */
export function mutateJson(rng: Rng, value: unknown, pools: Pools): unknown {
  if (value === null || typeof value !== 'object' || rng.chance(0.15)) return hostileValue(rng, pools);
  if (Array.isArray(value)) {
    const copy = [...value];
    const op = rng.int(4);
    if (op === 0 || copy.length === 0) copy.push(hostileValue(rng, pools));
    else if (op === 1) copy.splice(rng.int(copy.length), 1);
    else if (op === 2) for (let n = rng.pick([1, 50, 600]); n > 0; n--) copy.push(copy[rng.int(copy.length)]);
    else {
      const i = rng.int(copy.length);
      copy[i] = mutateJson(rng, copy[i], pools);
    }
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const op = rng.int(5);
  if (op === 0 || keys.length === 0) copy[rng.chance(0.3) ? rng.pick(pools.nasty) : rng.pick(pools.strings)] = hostileValue(rng, pools);
  else if (op === 1) delete copy[rng.pick(keys)];
  else {
    const k = rng.pick(keys);
    copy[k] = mutateJson(rng, copy[k], pools);
  }
  return copy;
}

/** Whether serializing `v` would visit more than `budget` nodes (shared references count each time). */
function tooBig(v: unknown, budget = 40_000): boolean {
  const stack: unknown[] = [v];
  let seen = 0;
  while (stack.length > 0) {
    const x = stack.pop();
    if (++seen > budget) return true;
    if (x !== null && typeof x === 'object') for (const child of Object.values(x)) stack.push(child);
  }
  return false;
}

/** JSON text of a mutated value, sometimes with a raw oddity spliced in, sometimes byte-mutated. */
export function mutatedJsonText(rng: Rng, value: unknown, pools: Pools): string {
  const r = rng.int(10);
  if (r === 0) return rng.pick(pools.rawJson);
  if (r === 1) {
    const text = JSON.stringify(value) ?? 'null';
    const at = rng.int(text.length + 1);
    return `${text.slice(0, at)}${rng.pick(pools.rawJson)}${text.slice(at)}`;
  }
  let v = value;
  for (let n = 1 + rng.int(3); n > 0; n--) {
    // Widening shared references grows exponentially when serialized: keep bodies near the limits.
    const next = mutateJson(rng, v, pools);
    if (!tooBig(next)) v = next;
  }
  const text = JSON.stringify(v) ?? 'null';
  return rng.chance(0.2) ? mutateString(rng, text, pools) : text;
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');

/** A tampered JWT: never carries a valid signature over its own content (except by rare accident). */
export function mutateJwt(rng: Rng, jwt: string, pools: Pools): string {
  const parts = jwt.split('.');
  const [h = '', p = '', s = ''] = parts;
  switch (rng.int(9)) {
    case 0:
      return mutateString(rng, jwt, pools);
    case 1: {
      // one character of one segment changed to another base64url character
      const seg = rng.int(3);
      const text = parts[seg] ?? '';
      const at = rng.int(Math.max(1, text.length));
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const copy = [...parts];
      copy[seg] = `${text.slice(0, at)}${rng.pick([...alphabet])}${text.slice(at + 1)}`;
      return copy.join('.');
    }
    case 2:
      return `${b64(JSON.stringify({ alg: rng.pick(['none', 'HS256', 'None', 'nOnE', 'EdDSA', 'ES256', 'RS256']), typ: 'JWT' }))}.${p}.${rng.chance(0.5) ? '' : s}`;
    case 3: {
      // change a claim, keep the old signature
      let payload: Record<string, unknown> = {};
      try {
        payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
      } catch {}
      const mutated = mutateJson(rng, payload, pools);
      return `${h}.${b64(JSON.stringify(mutated) ?? 'null')}.${s}`;
    }
    case 4: {
      let header: Record<string, unknown> = {};
      try {
        header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
      } catch {}
      const mutated = rng.chance(0.5)
        ? { ...header, kid: rng.pick(pools.nasty), jku: 'http://127.0.0.1:1/jwks', x5u: 'http://127.0.0.1:1/x' }
        : mutateJson(rng, header, pools);
      return `${b64(JSON.stringify(mutated) ?? 'null')}.${p}.${s}`;
    }
    case 5:
      return rng.pick([
        `${h}.${p}`,
        `${h}.${p}.`,
        `${h}.${p}.${s}.${s}`,
        `${h}..${s}`,
        `.${p}.${s}`,
        `${jwt}.`,
        `${h}.${p}.${s.slice(0, rng.int(s.length))}`,
      ]);
    case 6:
      return `${h}.${p}.${b64(rng.pick(pools.strings))}`;
    case 7:
      return rng.pick([` ${jwt}`, `${jwt} `, jwt.toLowerCase(), jwt.toUpperCase(), `${jwt}\u0000`, jwt.replaceAll('.', '%2e')]);
    default:
      return rng.pick(pools.strings);
  }
}
