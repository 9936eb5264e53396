// Sessions of MCP revisions up to 2025-11-25 (`initialize` → `Mcp-Session-Id`). A session holds no
// authority: every HTTP request is verified by its own access token, and a session belongs to the
// mandate that opened it, not to a token, so a client that gets a new token for the same mandate
// continues its session. A session id is `<mandateId>.<random>`: a replica that did not open a
// session serves a request naming it when the id's mandate is the caller's (no load-balancer
// affinity needed); an id naming another mandate is answered like an unknown session (404).
// The only state kept is what cancellation needs: the requests in flight.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import type { JsonRpcId } from './envelope.js';

export interface LegacySession {
  readonly id: string;
  readonly mandateId: string;
  lastUsed: number;
  /** Requests in flight, so `notifications/cancelled` can stop them. */
  readonly inFlight: Map<JsonRpcId, AbortController>;
}

export interface LegacySessionsOptions {
  readonly clock: Clock;
  readonly maxSessions: number;
  readonly idleMs: number;
}

export class LegacySessions {
  readonly #o: LegacySessionsOptions;
  // Insertion order is recency order: a touched session is re-inserted, so the first is the LRU.
  readonly #sessions = new Map<string, LegacySession>();
  /** Sessions the client ended with DELETE on this replica; kept until they would have idled out. */
  readonly #ended = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;

  constructor(options: LegacySessionsOptions) {
    this.#o = options;
    this.#timer = setInterval(() => this.#sweep(), Math.max(1000, Math.min(options.idleMs, 60_000)));
    this.#timer.unref();
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Opens a session for a mandate (after a successful `initialize`). */
  open(mandateId: string): LegacySession {
    const id = `${mandateId}.${randomBytes(16).toString('base64url')}`;
    const session: LegacySession = { id, mandateId, lastUsed: this.#o.clock.now(), inFlight: new Map() };
    this.#sessions.set(id, session);
    while (this.#sessions.size > this.#o.maxSessions) this.#end(this.#sessions.keys().next().value as string);
    return session;
  }

  /**
   * The session a request names, for the calling mandate; undefined when it belongs to another
   * mandate, was ended, or is malformed. A well-formed id of the caller's mandate opened on
   * another replica (or before a restart) is adopted.
   */
  resolve(id: string, mandateId: string): LegacySession | undefined {
    const existing = this.#sessions.get(id);
    if (existing !== undefined) {
      if (existing.mandateId !== mandateId) return undefined;
      this.#sessions.delete(id);
      this.#sessions.set(id, existing);
      existing.lastUsed = this.#o.clock.now();
      return existing;
    }
    if (this.#ended.has(id) || mandateOf(id) !== mandateId || id.length > 512) return undefined;
    const adopted: LegacySession = {
      id,
      mandateId,
      lastUsed: this.#o.clock.now(),
      inFlight: new Map(),
    };
    this.#sessions.set(id, adopted);
    while (this.#sessions.size > this.#o.maxSessions) this.#end(this.#sessions.keys().next().value as string);
    return adopted;
  }

  /** DELETE: the client ends its session; requests in flight are cancelled. */
  end(session: LegacySession): void {
    this.#end(session.id);
    this.#ended.set(session.id, this.#o.clock.now());
  }

  /** Ends every session of a mandate (it ended: its tokens no longer verify either). */
  closeMandate(mandateId: string): void {
    for (const [id, s] of this.#sessions) if (s.mandateId === mandateId) this.#end(id);
  }

  close(): void {
    clearInterval(this.#timer);
    for (const id of [...this.#sessions.keys()]) this.#end(id);
    this.#ended.clear();
  }

  #end(id: string): void {
    const s = this.#sessions.get(id);
    if (s === undefined) return;
    this.#sessions.delete(id);
    for (const ac of s.inFlight.values()) ac.abort();
    s.inFlight.clear();
  }

  #sweep(): void {
    const cutoff = this.#o.clock.now() - this.#o.idleMs;
    for (const [id, s] of this.#sessions) if (s.lastUsed < cutoff && s.inFlight.size === 0) this.#end(id);
    for (const [id, at] of this.#ended) if (at < cutoff) this.#ended.delete(id);
  }
}

/** The mandate a session id was opened under (`<mandateId>.<random>`), or undefined. */
function mandateOf(id: string): string | undefined {
  const dot = id.lastIndexOf('.');
  return dot > 0 ? id.slice(0, dot) : undefined;
}
