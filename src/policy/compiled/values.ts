// Cedar values as the compiled engine holds them, Cedar's equality over them, and the two ways an
// evaluation can stop: a Cedar error (the policy does not apply) or "unsupported" (ask cedar-wasm).

/** An entity reference. */
export class Uid {
  readonly type: string;
  readonly id: string;
  #key: string | undefined;
  constructor(type: string, id: string) {
    this.type = type;
    this.id = id;
  }
  /** The key entities are indexed by (computed once). */
  get key(): string {
    this.#key ??= uidKey(this.type, this.id);
    return this.#key;
  }
  /** `Type::"id"`, as Cedar writes it. */
  toString(): string {
    return `${this.type}::${JSON.stringify(this.id)}`;
  }
}

/** An injective key for an entity: type names never contain NUL. */
export function uidKey(type: string, id: string): string {
  return `${type}\u0000${id}`;
}

/** A Cedar set (elements deduplicated by Cedar equality). */
export class CSet {
  readonly items: readonly Value[];
  constructor(items: readonly Value[]) {
    const out: Value[] = [];
    for (const v of items) if (!out.some((o) => equal(o, v))) out.push(v);
    this.items = out;
  }
  has(v: Value): boolean {
    for (const o of this.items) if (equal(o, v)) return true;
    return false;
  }
}

/** A Cedar record. */
export class CRecord {
  readonly attrs: ReadonlyMap<string, Value>;
  constructor(attrs: ReadonlyMap<string, Value>) {
    this.attrs = attrs;
  }
}

/** decimal: a signed 64-bit count of 1/10,000ths. */
export class Decimal {
  readonly v: bigint;
  constructor(v: bigint) {
    this.v = v;
  }
}

/** ipaddr: an address (v4 in 32 bits, v6 in 128) with its prefix length, as written. */
export class IpAddr {
  readonly v6: boolean;
  readonly addr: bigint;
  readonly prefix: number;
  constructor(v6: boolean, addr: bigint, prefix: number) {
    this.v6 = v6;
    this.addr = addr;
    this.prefix = prefix;
  }
}

/** datetime: signed 64-bit milliseconds since the Unix epoch (UTC). */
export class DateTime {
  readonly ms: bigint;
  constructor(ms: bigint) {
    this.ms = ms;
  }
}

/** duration: signed 64-bit milliseconds. */
export class Duration {
  readonly ms: bigint;
  constructor(ms: bigint) {
    this.ms = ms;
  }
}

/** Long is a JS number holding a safe integer; anything beyond ±2^53 goes to cedar-wasm. */
export type Value = boolean | number | string | Uid | CSet | CRecord | Decimal | IpAddr | DateTime | Duration;

/** A Cedar evaluation error: the policy raising it does not apply and is reported as erroring. */
export class CedarError extends Error {}

/**
 * Something this engine does not evaluate exactly (e.g. a Long beyond JavaScript's safe integers):
 * the whole request is evaluated by cedar-wasm instead. Never a guess.
 */
export class Unsupported extends Error {}

export const I64_MIN = -(2n ** 63n);
export const I64_MAX = 2n ** 63n - 1n;

/** Cedar `==`: structural; values of different types are not equal (never an error). */
export function equal(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (a instanceof Uid) return b instanceof Uid && a.type === b.type && a.id === b.id;
  if (a instanceof CSet) {
    if (!(b instanceof CSet) || a.items.length !== b.items.length) return false;
    return a.items.every((x) => b.has(x));
  }
  if (a instanceof CRecord) {
    if (!(b instanceof CRecord) || a.attrs.size !== b.attrs.size) return false;
    for (const [k, v] of a.attrs) {
      const w = b.attrs.get(k);
      if (w === undefined || !equal(v, w)) return false;
    }
    return true;
  }
  if (a instanceof Decimal) return b instanceof Decimal && a.v === b.v;
  if (a instanceof IpAddr) return b instanceof IpAddr && a.v6 === b.v6 && a.addr === b.addr && a.prefix === b.prefix;
  if (a instanceof DateTime) return b instanceof DateTime && a.ms === b.ms;
  if (a instanceof Duration) return b instanceof Duration && a.ms === b.ms;
  return false;
}

/** The Cedar type name of a value, for error messages. */
export function typeName(v: Value): string {
  switch (typeof v) {
    case 'boolean':
      return 'Bool';
    case 'number':
      return 'Long';
    case 'string':
      return 'String';
  }
  if (v instanceof Uid) return `entity ${v.type}`;
  if (v instanceof CSet) return 'Set';
  if (v instanceof CRecord) return 'Record';
  if (v instanceof Decimal) return 'decimal';
  if (v instanceof IpAddr) return 'ipaddr';
  if (v instanceof DateTime) return 'datetime';
  return 'duration';
}

/** A Long from an exact i64 result: a Cedar overflow error outside i64, unsupported outside ±2^53. */
export function long(v: bigint, what: string): number {
  if (v < I64_MIN || v > I64_MAX) throw new CedarError(`integer overflow in ${what}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Unsupported(`${what} leaves the safe integer range`);
  return n;
}
