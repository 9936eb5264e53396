// The byte form of an audit event. An event is canonicalized once (RFC 8785, `canonicalize`) when it
// is appended; the leaf the Merkle tree hashes is the canonical envelope `{"event":E,"seq":N}`, so
// every leaf names its own position and rows that are swapped or renumbered are caught by verify.
import canonicalize from 'canonicalize';
import { MandateError } from '../errors/index.js';
import { sha256Hex } from '../lib/hash.js';
import type { AuditActor, AuditEventInput } from './types.js';

/** Event format version, part of every leaf. */
export const EVENT_VERSION = 1;

/**
 * tlog-tiles entry bundles prefix each entry with a 16-bit length, so no leaf may exceed 65,535
 * bytes. Events above this budget get their largest `data` fields replaced by their hash.
 */
export const MAX_EVENT_BYTES = 65_000;

/** An event as stored and hashed. */
export interface AuditEvent {
  readonly v: number;
  /** ISO 8601 time the log accepted the event. */
  readonly time: string;
  readonly type: string;
  readonly actors: readonly AuditActor[];
  readonly mandateId?: string;
  readonly environment?: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** One log entry: its position, its id and the event. */
export interface AuditEntry {
  readonly seq: number;
  readonly id: string;
  readonly event: AuditEvent;
}

/** What `data` field replaced by its hash looks like, so an auditor can still match the original. */
export interface ElidedField {
  readonly $elided: { readonly sha256: string; readonly bytes: number };
}

const TYPE = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;

/** An event id is its decimal sequence number: stable, and it locates the leaf without an index. */
export function eventId(seq: number): string {
  return String(seq);
}

export function parseEventId(id: string): number | undefined {
  const trimmed = id.startsWith('ae_') ? id.slice(3) : id;
  if (!/^(0|[1-9]\d{0,15})$/.test(trimmed)) return undefined;
  const seq = Number(trimmed);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

function canonical(value: unknown): string {
  let out: string | undefined;
  try {
    out = canonicalize(value);
  } catch (err) {
    throw new MandateError('ERR_AUDIT_EVENT_INVALID', `audit event is not canonical JSON: ${(err as Error).message}`);
  }
  if (out === undefined) throw new MandateError('ERR_AUDIT_EVENT_INVALID');
  return out;
}

/** Prefix of every redacted value (salted HMAC), so a value is never redacted twice. */
export const REDACTED_PREFIX = 'hmac-sha256:';

// Keys whose values are secrets whatever the caller remembered to do: `subjectToken`,
// `access_token`, `clientSecret`, `upstreamCredential`, `authorization`… (but not `tokenId`).
const SECRET_KEY = /(token|secret|password|passwd|credentials?|authorization|apikey|cookie|privatekey|assertion|dpop|bearer)$/;

/**
 * Replaces string values under secret-looking keys (at any depth) with `redact(value)`. Returns the
 * input itself when nothing needed redaction (the common case costs no copies).
 */
export function redactSecrets(value: unknown, redact: (secret: string) => string, key = ''): unknown {
  if (typeof value === 'string') {
    return key !== '' && SECRET_KEY.test(key.toLowerCase().replace(/[_-]/g, '')) && !value.startsWith(REDACTED_PREFIX)
      ? redact(value)
      : value;
  }
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = redactSecrets(value[i], redact, key);
      if (v !== value[i]) {
        out ??= [...value];
        out[i] = v;
      }
    }
    return out ?? value;
  }
  if (value !== null && typeof value === 'object') {
    let out: Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(value)) {
      const r = redactSecrets(v, redact, k);
      if (r !== v) {
        out ??= { ...value };
        out[k] = r;
      }
    }
    return out ?? value;
  }
  return value;
}

/**
 * Validates an input event, stamps it and returns its canonical bytes (as a string). Values under
 * secret-looking keys are redacted as a safety net. Fields too large for an entry bundle are
 * hashed, never truncated silently.
 */
export function encodeEvent(
  input: AuditEventInput,
  nowMs: number,
  redact?: (secret: string) => string,
): { event: AuditEvent; canonical: string } {
  if (typeof input.type !== 'string' || !TYPE.test(input.type)) {
    throw new MandateError('ERR_AUDIT_EVENT_INVALID', 'audit event type must be dotted lowercase words');
  }
  if (!Array.isArray(input.actors)) throw new MandateError('ERR_AUDIT_EVENT_INVALID', 'audit event actors must be an array');
  let data: Record<string, unknown> =
    redact === undefined ? { ...(input.data ?? {}) } : (redactSecrets(input.data ?? {}, redact) as Record<string, unknown>);
  const event = (d: Record<string, unknown>): AuditEvent => ({
    v: EVENT_VERSION,
    time: new Date(nowMs).toISOString(),
    type: input.type,
    actors: input.actors.map((a) => ({ type: a.type, id: a.id })),
    ...(input.mandateId === undefined ? {} : { mandateId: input.mandateId }),
    ...(input.environment === undefined ? {} : { environment: input.environment }),
    data: d,
  });
  let bytes = canonical(event(data));
  if (Buffer.byteLength(bytes) > MAX_EVENT_BYTES) {
    const sized = Object.entries(data)
      .map(([k, v]) => [k, canonical(v)] as const)
      .sort((a, b) => Buffer.byteLength(b[1]) - Buffer.byteLength(a[1]));
    data = { ...data };
    for (const [key, value] of sized) {
      data[key] = { $elided: { sha256: sha256Hex(value), bytes: Buffer.byteLength(value) } } satisfies ElidedField;
      bytes = canonical(event(data));
      if (Buffer.byteLength(bytes) <= MAX_EVENT_BYTES) break;
    }
    if (Buffer.byteLength(bytes) > MAX_EVENT_BYTES) {
      throw new MandateError('ERR_AUDIT_EVENT_INVALID', 'audit event is too large even with its data fields hashed');
    }
  }
  return { event: event(data), canonical: bytes };
}

/** The leaf bytes: canonical JSON of `{ event, seq }` built without re-canonicalizing the event. */
export function leafBytes(canonicalEvent: string, seq: number): string {
  return `{"event":${canonicalEvent},"seq":${seq}}`;
}

/** Parses stored leaf bytes back into an entry; throws when they are not a well-formed leaf. */
export function decodeLeaf(body: string): AuditEntry {
  const parsed = JSON.parse(body) as { event?: AuditEvent; seq?: number };
  if (parsed === null || typeof parsed !== 'object' || typeof parsed.seq !== 'number' || typeof parsed.event !== 'object') {
    throw new Error('not an audit leaf');
  }
  return { seq: parsed.seq, id: eventId(parsed.seq), event: parsed.event };
}

/** Ids that explain follows, pulled out of an event so they can be indexed. */
export function refsOf(input: AuditEventInput): { decisionId?: string; approvalId?: string } {
  const d = input.data ?? {};
  const str = (v: unknown) => (typeof v === 'string' && v.length <= 255 ? v : undefined);
  const decisionId = str(d.decisionId);
  const approvalId = str(d.approvalId);
  return { ...(decisionId === undefined ? {} : { decisionId }), ...(approvalId === undefined ? {} : { approvalId }) };
}
