// Cedar's extension types (decimal, ipaddr, datetime, duration): their string syntax and functions,
// written after Cedar's own rules and checked against cedar-wasm in test/policy/engine-compiled.test.ts.
import { CedarError, DateTime, Decimal, Duration, I64_MAX, I64_MIN, IpAddr, long, typeName, type Value } from './values.js';

const i64 = (v: bigint, what: string): bigint => {
  if (v < I64_MIN || v > I64_MAX) throw new CedarError(`overflow in ${what}`);
  return v;
};

// decimal: `-?digits.digits`, at most 4 fractional digits, within i64 once scaled by 10^4.
export function parseDecimal(s: string): Decimal {
  const m = /^(-?[0-9]+)\.([0-9]+)$/.exec(s);
  if (m === null) throw new CedarError(`"${s}" is not a decimal`);
  const [, l, r] = m as unknown as [string, string, string];
  if (r.length > 4) throw new CedarError(`"${s}" has too many digits after the point`);
  const left = i64(BigInt(l), 'decimal') * 10_000n;
  const right = BigInt(r) * 10n ** BigInt(4 - r.length);
  return new Decimal(i64(s.startsWith('-') ? left - right : left + right, 'decimal'));
}

// ipaddr: IPv4 dotted quad (no leading zeros) or IPv6 (no embedded IPv4), optional /prefix.
export function parseIp(s: string): IpAddr {
  const bad = () => new CedarError(`"${s}" is not an IP address`);
  if (s.includes(':') && s.includes('.')) throw bad();
  const slash = s.indexOf('/');
  const addrText = slash < 0 ? s : s.slice(0, slash);
  const v6 = addrText.includes(':');
  const addr = v6 ? parseV6(addrText) : parseV4(addrText);
  if (addr === undefined) throw bad();
  const max = v6 ? 128 : 32;
  if (slash < 0) return new IpAddr(v6, addr, max);
  const p = s.slice(slash + 1);
  if (p.length === 0 || p.length > (v6 ? 3 : 2) || !/^[0-9]+$/.test(p) || (p.length > 1 && p.startsWith('0'))) throw bad();
  const prefix = Number(p);
  if (prefix > max) throw bad();
  return new IpAddr(v6, addr, prefix);
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let out = 0n;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p) || (p.length > 1 && p.startsWith('0'))) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out = (out << 8n) | BigInt(n);
  }
  return out;
}

function parseV6(s: string): bigint | undefined {
  const groups = (t: string): number[] | undefined => {
    if (t === '') return [];
    const out: number[] = [];
    for (const g of t.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const dbl = s.indexOf('::');
  let all: number[];
  if (dbl < 0) {
    const g = groups(s);
    if (g === undefined || g.length !== 8) return undefined;
    all = g;
  } else {
    if (s.indexOf('::', dbl + 1) >= 0) return undefined;
    const head = groups(s.slice(0, dbl));
    const tail = groups(s.slice(dbl + 2));
    // `::` stands for at least one group of zeros.
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
    all = [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  let out = 0n;
  for (const g of all) out = (out << 16n) | BigInt(g);
  return out;
}

/** Whether `inner`'s whole range lies within `outer`'s (same IP version only). */
export function ipInRange(inner: IpAddr, outer: IpAddr): boolean {
  if (inner.v6 !== outer.v6) return false;
  if (inner.prefix < outer.prefix) return false;
  const bits = BigInt(inner.v6 ? 128 : 32);
  const shift = bits - BigInt(outer.prefix);
  return inner.addr >> shift === outer.addr >> shift;
}

function ipIsLoopback(ip: IpAddr): boolean {
  return ip.v6 ? ip.addr === 1n && ip.prefix >= 128 : ip.addr >> 24n === 127n && ip.prefix >= 8;
}

function ipIsMulticast(ip: IpAddr): boolean {
  return ip.v6 ? ip.addr >> 120n === 0xffn && ip.prefix >= 8 : ip.addr >> 28n === 0xen && ip.prefix >= 4;
}

const MS_PER_DAY = 86_400_000n;

// datetime: YYYY-MM-DD, optionally Thh:mm:ss, optional .SSS, then Z or ±hhmm.
export function parseDateTime(s: string): DateTime {
  const bad = () => new CedarError(`"${s}" is not a datetime`);
  const m =
    /^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{3}))?(?:(Z)|([+-])([0-9]{2})([0-9]{2})))?$/.exec(s);
  if (m === null) throw bad();
  const [, y, mo, d, hh, mm, ss, ms, , sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) throw bad();
  const h = Number(hh ?? 0);
  const mi = Number(mm ?? 0);
  const se = Number(ss ?? 0);
  if (h > 23 || mi > 59 || se > 59) throw bad();
  const offH = Number(oh ?? 0);
  const offM = Number(om ?? 0);
  if (offH > 23 || offM > 59) throw bad();
  const days = BigInt(daysFromCivil(year, month, day));
  const local = days * MS_PER_DAY + BigInt(((h * 60 + mi) * 60 + se) * 1000 + Number(ms ?? 0));
  const offset = BigInt((offH * 60 + offM) * 60_000);
  return new DateTime(sign === '+' ? local - offset : sign === '-' ? local + offset : local);
}

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
function daysFromCivil(y0: number, m: number, d: number): number {
  const y = m <= 2 ? y0 - 1 : y0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

// duration: optional `-`, then one or more of <n>d <n>h <n>m <n>s <n>ms, in that order.
export function parseDuration(s: string): Duration {
  const bad = () => new CedarError(`"${s}" is not a duration`);
  const m = /^(-?)(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m(?!s))?(?:([0-9]+)s)?(?:([0-9]+)ms)?$/.exec(s);
  if (m === null || m.slice(2).every((x) => x === undefined)) throw bad();
  const units = [86_400_000n, 3_600_000n, 60_000n, 1000n, 1n];
  let total = 0n;
  for (let i = 0; i < 5; i++) {
    const part = m[i + 2];
    if (part === undefined) continue;
    const n = BigInt(part);
    const signed = m[1] === '-' ? -n : n;
    if (signed < I64_MIN || signed > I64_MAX) throw bad();
    total = i64(total + i64(signed * (units[i] as bigint), 'duration'), 'duration');
  }
  return new Duration(total);
}

type Fn = (args: Value[]) => Value;

const need = <T>(v: Value, cls: abstract new (...a: never[]) => T, name: string): T => {
  if (!(v instanceof cls)) throw new CedarError(`expected ${name}, got ${typeName(v)}`);
  return v;
};
const str = (v: Value): string => {
  if (typeof v !== 'string') throw new CedarError(`expected String, got ${typeName(v)}`);
  return v;
};
const dec = (v: Value) => need(v, Decimal, 'decimal');
const ip = (v: Value) => need(v, IpAddr, 'ipaddr');
const dt = (v: Value) => need(v, DateTime, 'datetime');
const dur = (v: Value) => need(v, Duration, 'duration');
const a0 = (a: Value[]) => a[0] as Value;
const a1 = (a: Value[]) => a[1] as Value;
const trunc = (v: bigint, unit: bigint, what: string) => long(v / unit, what);

/** Every extension function this engine evaluates, by its EST name, with its arity. */
export const EXTENSION_FUNCTIONS: ReadonlyMap<string, { arity: number; fn: Fn }> = new Map<string, { arity: number; fn: Fn }>([
  ['decimal', { arity: 1, fn: (a) => parseDecimal(str(a0(a))) }],
  ['lessThan', { arity: 2, fn: (a) => dec(a0(a)).v < dec(a1(a)).v }],
  ['lessThanOrEqual', { arity: 2, fn: (a) => dec(a0(a)).v <= dec(a1(a)).v }],
  ['greaterThan', { arity: 2, fn: (a) => dec(a0(a)).v > dec(a1(a)).v }],
  ['greaterThanOrEqual', { arity: 2, fn: (a) => dec(a0(a)).v >= dec(a1(a)).v }],
  ['ip', { arity: 1, fn: (a) => parseIp(str(a0(a))) }],
  ['isIpv4', { arity: 1, fn: (a) => !ip(a0(a)).v6 }],
  ['isIpv6', { arity: 1, fn: (a) => ip(a0(a)).v6 }],
  ['isLoopback', { arity: 1, fn: (a) => ipIsLoopback(ip(a0(a))) }],
  ['isMulticast', { arity: 1, fn: (a) => ipIsMulticast(ip(a0(a))) }],
  ['isInRange', { arity: 2, fn: (a) => ipInRange(ip(a0(a)), ip(a1(a))) }],
  ['datetime', { arity: 1, fn: (a) => parseDateTime(str(a0(a))) }],
  ['duration', { arity: 1, fn: (a) => parseDuration(str(a0(a))) }],
  ['offset', { arity: 2, fn: (a) => new DateTime(i64(dt(a0(a)).ms + dur(a1(a)).ms, 'offset')) }],
  ['durationSince', { arity: 2, fn: (a) => new Duration(i64(dt(a0(a)).ms - dt(a1(a)).ms, 'durationSince')) }],
  [
    'toDate',
    {
      arity: 1,
      fn: (a) => {
        const ms = dt(a0(a)).ms;
        const r = ((ms % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY;
        return new DateTime(i64(ms - r, 'toDate'));
      },
    },
  ],
  ['toTime', { arity: 1, fn: (a) => new Duration(((dt(a0(a)).ms % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY) }],
  ['toMilliseconds', { arity: 1, fn: (a) => trunc(dur(a0(a)).ms, 1n, 'toMilliseconds') }],
  ['toSeconds', { arity: 1, fn: (a) => trunc(dur(a0(a)).ms, 1000n, 'toSeconds') }],
  ['toMinutes', { arity: 1, fn: (a) => trunc(dur(a0(a)).ms, 60_000n, 'toMinutes') }],
  ['toHours', { arity: 1, fn: (a) => trunc(dur(a0(a)).ms, 3_600_000n, 'toHours') }],
  ['toDays', { arity: 1, fn: (a) => trunc(dur(a0(a)).ms, MS_PER_DAY, 'toDays') }],
]);

/** Extension types a schema may declare, and the constructor a string of that type goes through. */
export const EXTENSION_TYPES: ReadonlyMap<string, (s: string) => Value> = new Map<string, (s: string) => Value>([
  ['decimal', parseDecimal],
  ['ipaddr', parseIp],
  ['datetime', parseDateTime],
  ['duration', parseDuration],
]);

/** Constructor name (`__extn.fn`) → the extension type it makes. */
export const CONSTRUCTORS: ReadonlyMap<string, string> = new Map([
  ['decimal', 'decimal'],
  ['ip', 'ipaddr'],
  ['datetime', 'datetime'],
  ['duration', 'duration'],
]);
