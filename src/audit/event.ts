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
  const time = new Date(nowMs).toISOString();
  const actors: AuditActor[] = [];
  for (const a of input.actors) actors.push({ type: a.type, id: a.id });
  // A plain literal, optional keys set only when present (canonical JSON sorts keys, so the bytes
  // do not depend on the order they are set in).
  const event = (d: Record<string, unknown>): AuditEvent => {
    const e: { -readonly [K in keyof AuditEvent]: AuditEvent[K] } = { v: EVENT_VERSION, time, type: input.type, actors, data: d };
    if (input.mandateId !== undefined) e.mandateId = input.mandateId;
    if (input.environment !== undefined) e.environment = input.environment;
    return e;
  };
  let built = event(data);
  let bytes = canonical(built);
  if (Buffer.byteLength(bytes) > MAX_EVENT_BYTES) {
    const sized = Object.entries(data)
      .map(([k, v]) => [k, canonical(v)] as const)
      .sort((a, b) => Buffer.byteLength(b[1]) - Buffer.byteLength(a[1]));
    data = { ...data };
    built = event(data);
    for (const [key, value] of sized) {
      data[key] = { $elided: { sha256: sha256Hex(value), bytes: Buffer.byteLength(value) } } satisfies ElidedField;
      bytes = canonical(built);
      if (Buffer.byteLength(bytes) <= MAX_EVENT_BYTES) break;
    }
    if (Buffer.byteLength(bytes) > MAX_EVENT_BYTES) {
      throw new MandateError('ERR_AUDIT_EVENT_INVALID', 'audit event is too large even with its data fields hashed');
    }
  }
  return { event: built, canonical: bytes };
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

/**
 * The columns stored beside a leaf, derived from the built event (after redaction and elision, so
 * they say what the leaf says). They are not part of the leaf: the Merkle tree hashes the canonical
 * body only, and every column can be recomputed from it (migration 0063 did so for older rows).
 * `decisionId`/`approvalId`: the ids explain follows (any event type). The rest only for `decision`
 * events, for the governance reports: outcome, tool, action class, environment, and the determining
 * policies as JSON text (canonical, as in the body).
 */
export interface EventColumns {
  readonly decisionId: string | null;
  readonly approvalId: string | null;
  readonly outcome: string | null;
  readonly tool: string | null;
  readonly actionClass: string | null;
  readonly environment: string | null;
  readonly policies: string | null;
}

/** An id column value: a string of at most 255 characters, else NULL. */
function idText(v: unknown): string | null {
  return typeof v === 'string' && v.length <= 255 ? v : null;
}

function text(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** A list of policy ids as the body holds it (canonical JSON); NULL when it is not a list. */
function policiesText(v: unknown): string | null {
  if (!Array.isArray(v)) return null;
  for (const id of v) if (typeof id !== 'string') return canonical(v);
  // For an array of strings JSON.stringify is the RFC 8785 form (same string escaping, no spaces).
  return JSON.stringify(v);
}

/** Reads the derived columns from a built event: a few property reads, no parsing. */
export function columnsOf(event: AuditEvent): EventColumns {
  const d = event.data;
  if (event.type !== 'decision') {
    return {
      decisionId: idText(d.decisionId),
      approvalId: idText(d.approvalId),
      outcome: null,
      tool: null,
      actionClass: null,
      environment: null,
      policies: null,
    };
  }
  return {
    decisionId: idText(d.decisionId),
    approvalId: idText(d.approvalId),
    outcome: text(d.outcome),
    tool: text(d.tool),
    actionClass: text(d.actionClass),
    environment: event.environment ?? null,
    policies: policiesText(d.policies),
  };
}
