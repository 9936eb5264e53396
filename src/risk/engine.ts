// The risk engine: behaviour signals kept in memory per mandate, per delegation tree (a child's
// behaviour counts against its root) and per agent over sliding windows, an explainable 0–100 score
// per subject, and automatic responses with hysteresis. Pure domain code: it sees observations the
// gateway, token endpoint and approvals report, and tells a listener what to do; the wiring
// (src/risk/responder.ts) revokes, quarantines, notifies and audits. Cheap on the hot path: one
// observation updates three subjects' fixed-size counters and re-scores them (bench/risk.bench.ts
// measures the cost per call).
import { LRUCache } from 'lru-cache';
import type { Clock } from '../lib/clock.js';
import type { ResponseAction, ResponseRule, RiskSettings, SignalName, Subject } from './settings.js';
import { SIGNALS } from './settings.js';
import { SlidingCount } from './window.js';

export type ActionClass = 'read' | 'propose' | 'execute' | 'destructive';
export type Sensitivity = 'public' | 'internal' | 'confidential' | 'restricted';

/** Where a call sits: its mandate, that mandate's delegation root, the agent making it. */
export interface RiskPath {
  readonly mandateId: string;
  /** The root mandate of the delegation tree (the mandate itself when it has no parent). */
  readonly rootId: string;
  readonly agentId: string;
}

export interface CallObservation extends RiskPath {
  readonly tool: string;
  /** The decision: refused calls count towards `deny_rate`; `scope` refusals also towards `scope_probe`. */
  readonly outcome: 'allow' | 'deny' | 'approval_required';
  /** Why a refused call was refused: outside the mandate's scope or constraints, or something else. */
  readonly refusal?: 'scope' | 'other' | undefined;
  readonly action: ActionClass;
  readonly sensitivity: Sensitivity;
  /** The call can carry data out (sends, posts, writes to a target the call names). */
  readonly sendsOut: boolean;
  /** The DPoP key thumbprint or client address the token was used from. */
  readonly client?: string | undefined;
}

export interface SignalValue {
  readonly signal: SignalName;
  /** What was measured (a count, a ratio, bytes …; docs/risk.md says which). */
  readonly value: number;
  /** Its contribution to the score. */
  readonly points: number;
}

export interface RiskScore {
  readonly subject: Subject;
  readonly id: string;
  /** 0–100. */
  readonly score: number;
  /** The signals that contribute, largest first. */
  readonly signals: readonly SignalValue[];
}

/** What the engine asks its listener to do (`fired`) or to lift (`cleared`). */
export interface RiskResponse {
  readonly kind: 'fired' | 'cleared';
  readonly action: ResponseAction;
  readonly subject: Subject;
  readonly id: string;
  /** The agent behind the subject (for `quarantine` and `notify_owner`, the agent to act on). */
  readonly agentId: string;
  readonly score: number;
  readonly signals: readonly SignalValue[];
  readonly at: number;
}

/** The scores Cedar sees as `context.risk`. */
export interface RiskContext {
  readonly mandate: number;
  readonly tree: number;
  readonly agent: number;
}

/** The counters every subject keeps over the window (indexes into State.counts). */
const C = { calls: 0, denies: 1, probes: 2, approvalsDenied: 3, firstUses: 4, readThenSend: 5, resultBytes: 6, newClients: 7 } as const;
const COUNTERS = 8;
type Counter = (typeof C)[keyof typeof C];

class State {
  readonly counts: SlidingCount[];
  /** Counts not yet shared with the other replicas (only when sharing is on). */
  pending: Float64Array | undefined;
  /** Mandate: its own children. Tree: the most children any mandate in it has. */
  fanout = 0;
  /** Mandate: its depth below the root. Tree: the deepest mandate in it. */
  depth = 0;
  /** Tree: when a confidential or restricted read last happened in it. */
  lastSensitiveRead = Number.NEGATIVE_INFINITY;
  /** Mandate: the clients its tokens were used from (bounded; the first one is expected). */
  clients: Set<string> | undefined;
  /** Responses in force, by rule index. */
  readonly latched = new Map<number, { since: number }>();
  /** The last computed score, when, and whether something notable happened since. */
  score = 0;
  scoredAt = Number.NEGATIVE_INFINITY;
  dirty = true;

  constructor(
    readonly subject: Subject,
    readonly id: string,
    readonly agentId: string,
    windowMs: number,
  ) {
    this.counts = Array.from({ length: COUNTERS }, () => new SlidingCount(windowMs, 12));
  }

  sum(counter: Counter, now: number): number {
    return (this.counts[counter] as SlidingCount).sum(now);
  }
}

class AgentState extends State {
  /** Calls over the baseline span, for the agent's own rate. */
  readonly longCalls: SlidingCount;
  totalCalls = 0;
  readonly toolsSeen = new Set<string>();

  constructor(id: string, windowMs: number, baselineMs: number) {
    super('agent', id, id, windowMs);
    this.longCalls = new SlidingCount(baselineMs, 60);
  }
}

/**
 * What one replica tells the others (src/risk/sharing.ts carries it over the change feed): the
 * counts it observed since its last message, per subject, and the responses it latched. Counts
 * add up on every replica; latches are taken over without firing again.
 */
export interface SharedRisk {
  readonly subjects: readonly {
    readonly subject: Subject;
    readonly id: string;
    readonly agentId: string;
    /** Counts in counter order (calls, denies, probes, approvals denied, first uses, read-then-send, result bytes, new clients). */
    readonly counts: readonly number[];
    readonly fanout: number;
    readonly depth: number;
  }[];
  readonly latches: readonly { readonly subject: Subject; readonly id: string; readonly agentId: string; readonly rule: number }[];
}

const MAX_CLIENTS_PER_MANDATE = 16;
/**
 * A plain allowed call changes only slow signals (rates, volume), so a subject's score is
 * recomputed at most this often (ms) unless something notable (a refusal, a probe, a new client …)
 * marks it dirty: the hot path then costs a few counter increments.
 */
const RESCORE_MS = 250;
/** A result this large marks its subjects for rescoring at once. */
const NOTABLE_RESULT_BYTES = 64 * 1024;
const MAX_TOOLS_PER_AGENT = 10_000;

export type RiskListener = (response: RiskResponse) => void;

export class RiskEngine {
  readonly #s: RiskSettings;
  readonly #clock: Clock;
  readonly #mandates: LRUCache<string, State>;
  readonly #trees: LRUCache<string, State>;
  /** Holds AgentState values (typed as State so the three maps share one type). */
  readonly #agents: LRUCache<string, State>;
  readonly #listeners: RiskListener[] = [];
  /** Rules by subject, with their index (the latch key). */
  readonly #rules: Readonly<Record<Subject, readonly (readonly [number, ResponseRule])[]>>;
  /** Per signal, in SIGNALS order: thresholds and weight (0 points when disabled). */
  readonly #warn: Float64Array;
  readonly #max: Float64Array;
  readonly #weight: Float64Array;
  readonly #values = new Float64Array(SIGNALS.length);
  /** Below these counts in the window, call_rate and result_volume add no points. */
  readonly #quietCalls: number;
  readonly #quietBytes: number;
  /** Sharing with other replicas: subjects with unshared counts, latches not yet told. */
  #sharing = false;
  readonly #unshared = new Set<State>();
  #latchesToShare: SharedRisk['latches'][number][] = [];

  constructor(settings: RiskSettings, clock: Clock) {
    this.#s = settings;
    this.#warn = Float64Array.from(SIGNALS, (n) => settings.signals[n].warn);
    this.#max = Float64Array.from(SIGNALS, (n) => settings.signals[n].max);
    this.#weight = Float64Array.from(SIGNALS, (n) => (settings.signals[n].enabled ? settings.signals[n].points : 0));
    this.#quietCalls = settings.signals.call_rate.warn * settings.baselineFloor;
    this.#quietBytes = settings.signals.result_volume.warn;
    this.#clock = clock;
    const max = settings.maxSubjects;
    this.#mandates = new LRUCache({ max });
    this.#trees = new LRUCache({ max });
    this.#agents = new LRUCache({ max });
    const rules = settings.responses.map((r, i) => [i, r] as const);
    this.#rules = {
      mandate: rules.filter(([, r]) => r.subject === 'mandate'),
      tree: rules.filter(([, r]) => r.subject === 'tree'),
      agent: rules.filter(([, r]) => r.subject === 'agent'),
    };
  }

  get enabled(): boolean {
    return this.#s.enabled;
  }

  /** Registers who acts on responses (the responder; tests). */
  onResponse(listener: RiskListener): void {
    this.#listeners.push(listener);
  }

  /** Turns on collecting what `takeShared` hands to the other replicas. */
  shareWithReplicas(): void {
    this.#sharing = true;
  }

  /** A tools/call decided by the gateway. */
  observeCall(o: CallObservation): void {
    if (!this.#s.enabled) return;
    const now = this.#clock.now();
    const m = this.#mandate(o);
    const t = this.#tree(o);
    const a = this.#agent(o.agentId);
    this.#add3(m, t, a, C.calls, now, 1, false);
    if (o.outcome === 'deny') {
      this.#add3(m, t, a, C.denies, now, 1, true);
      if (o.refusal === 'scope') this.#add3(m, t, a, C.probes, now, 1, true);
    }
    a.longCalls.add(now);
    a.totalCalls++;
    if (!a.toolsSeen.has(o.tool) && a.toolsSeen.size < MAX_TOOLS_PER_AGENT) {
      a.toolsSeen.add(o.tool);
      if (a.totalCalls > this.#s.firstToolUseAfterCalls) this.#add3(m, t, a, C.firstUses, now, 1, true);
    }
    if (o.outcome === 'allow') {
      if (o.sensitivity === 'confidential' || o.sensitivity === 'restricted') t.lastSensitiveRead = now;
      else if (o.sendsOut && now - t.lastSensitiveRead < this.#s.windowMs) this.#add3(m, t, a, C.readThenSend, now, 1, true);
    }
    if (o.client !== undefined) this.#client(m, t, a, o.client, now);
    this.#evaluate(now, m, t, a);
  }

  /** Bytes of a tool result the gateway relayed. */
  observeResult(path: RiskPath, bytes: number): void {
    if (!this.#s.enabled || !(bytes > 0)) return;
    const now = this.#clock.now();
    const m = this.#mandate(path);
    const t = this.#tree(path);
    const a = this.#agent(path.agentId);
    this.#add3(m, t, a, C.resultBytes, now, bytes, bytes >= NOTABLE_RESULT_BYTES);
    this.#evaluate(now, m, t, a);
  }

  /** The token endpoint refused a scope beyond the agent's ceiling: probing, at the agent. */
  observeCeilingRefusal(agentId: string): void {
    if (!this.#s.enabled) return;
    const now = this.#clock.now();
    const a = this.#agent(agentId);
    this.#add(a, C.probes, now, 1, true);
    this.#evaluate(now, a);
  }

  /** A human decided an approval this mandate asked for. */
  observeApproval(path: RiskPath, approved: boolean): void {
    if (!this.#s.enabled || approved) return;
    const now = this.#clock.now();
    const m = this.#mandate(path);
    const t = this.#tree(path);
    const a = this.#agent(path.agentId);
    this.#add3(m, t, a, C.approvalsDenied, now, 1, true);
    this.#evaluate(now, m, t, a);
  }

  /** A child mandate was delegated from `parentId` (at `depth` below the root, 1 for a root's child). */
  observeDelegation(child: RiskPath & { readonly parentId: string; readonly parentAgentId: string; readonly depth: number }): void {
    if (!this.#s.enabled) return;
    const now = this.#clock.now();
    const parent = this.#mandate({ mandateId: child.parentId, rootId: child.rootId, agentId: child.parentAgentId });
    const m = this.#mandate(child);
    const t = this.#tree(child);
    parent.fanout++;
    m.depth = Math.max(m.depth, child.depth);
    t.fanout = Math.max(t.fanout, parent.fanout);
    t.depth = Math.max(t.depth, child.depth);
    for (const s of [parent, m, t]) this.#touched(s);
    this.#evaluate(now, parent, m, t);
  }

  /** A mandate's tokens were used from a client (DPoP key or address) outside a tools/call. */
  observeClient(path: RiskPath, client: string): void {
    if (!this.#s.enabled) return;
    const now = this.#clock.now();
    const m = this.#mandate(path);
    const t = this.#tree(path);
    const a = this.#agent(path.agentId);
    this.#client(m, t, a, client, now);
    this.#evaluate(now, m, t, a);
  }

  /** What this replica observed since the last call, for the other replicas; undefined when nothing. */
  takeShared(): SharedRisk | undefined {
    if (this.#unshared.size === 0 && this.#latchesToShare.length === 0) return undefined;
    const subjects: SharedRisk['subjects'][number][] = [];
    for (const s of this.#unshared) {
      subjects.push({
        subject: s.subject,
        id: s.id,
        agentId: s.agentId,
        counts: Array.from(s.pending ?? []),
        fanout: s.fanout,
        depth: s.depth,
      });
      s.pending = undefined;
    }
    this.#unshared.clear();
    const latches = this.#latchesToShare;
    this.#latchesToShare = [];
    return { subjects, latches };
  }

  /** Adds another replica's counts; takes over its latched responses (without firing them again). */
  merge(shared: SharedRisk): void {
    if (!this.#s.enabled) return;
    const now = this.#clock.now();
    for (const r of shared.subjects) {
      const s =
        r.subject === 'agent'
          ? this.#agent(r.id)
          : r.subject === 'tree'
            ? this.#tree({ mandateId: r.id, rootId: r.id, agentId: r.agentId })
            : this.#mandate({ mandateId: r.id, rootId: r.id, agentId: r.agentId });
      for (let i = 0; i < COUNTERS; i++) {
        const n = Number(r.counts[i] ?? 0);
        if (Number.isFinite(n) && n > 0) (s.counts[i] as SlidingCount).add(now, n);
      }
      const calls = Number(r.counts[C.calls] ?? 0);
      if (s instanceof AgentState && Number.isFinite(calls) && calls > 0) s.longCalls.add(now, calls);
      s.fanout = Math.max(s.fanout, Number(r.fanout) || 0);
      s.depth = Math.max(s.depth, Number(r.depth) || 0);
      s.dirty = true;
    }
    for (const l of shared.latches) {
      const rule = this.#s.responses[l.rule];
      if (rule === undefined || rule.subject !== l.subject) continue;
      const s =
        l.subject === 'agent'
          ? this.#agent(l.id)
          : l.subject === 'tree'
            ? this.#tree({ mandateId: l.id, rootId: l.id, agentId: l.agentId })
            : this.#mandate({ mandateId: l.id, rootId: l.id, agentId: l.agentId });
      if (!s.latched.has(l.rule)) s.latched.set(l.rule, { since: now });
    }
  }

  /** The scores for `context.risk` (0 for a subject never seen). */
  context(path: RiskPath): RiskContext {
    if (!this.#s.enabled) return { mandate: 0, tree: 0, agent: 0 };
    const now = this.#clock.now();
    const m = this.#mandates.peek(path.mandateId);
    const t = this.#trees.peek(path.rootId);
    const a = this.#agents.peek(path.agentId);
    return {
      mandate: m === undefined ? 0 : this.#scoreOf(m, now),
      tree: t === undefined ? 0 : this.#scoreOf(t, now),
      agent: a === undefined ? 0 : this.#scoreOf(a, now),
    };
  }

  /** One subject's score with every signal's contribution (explain, console, API). */
  score(subject: Subject, id: string): RiskScore {
    const state = this.#states(subject).peek(id);
    if (state === undefined) return { subject, id, score: 0, signals: [] };
    const now = this.#clock.now();
    const signals = this.#signals(state, now);
    return { subject, id, score: sumPoints(signals), signals };
  }

  /** Subjects of one kind with a score above 0, highest first (at most `limit`). */
  scores(subject: Subject, limit = 100): RiskScore[] {
    const now = this.#clock.now();
    const out: RiskScore[] = [];
    for (const state of this.#states(subject).values()) {
      if (this.#scoreOf(state, now) === 0) continue;
      const signals = this.#signals(state, now);
      out.push({ subject, id: state.id, score: sumPoints(signals), signals });
    }
    return out.sort((x, y) => y.score - x.score).slice(0, limit);
  }

  /** The `require_approval` response in force for this call's mandate, tree or agent, if any. */
  approvalRequired(path: RiskPath): { readonly subject: Subject; readonly id: string } | undefined {
    // Unrolled (no arrays per call): this runs on every governed call.
    if (this.#holds('mandate', path.mandateId)) return { subject: 'mandate', id: path.mandateId };
    if (this.#holds('tree', path.rootId)) return { subject: 'tree', id: path.rootId };
    if (this.#holds('agent', path.agentId)) return { subject: 'agent', id: path.agentId };
    return undefined;
  }

  /** Whether a `require_approval` response is latched on this subject. */
  #holds(subject: Subject, id: string): boolean {
    const state = this.#states(subject).peek(id);
    if (state === undefined || state.latched.size === 0) return false;
    for (const [i, rule] of this.#rules[subject]) if (rule.action === 'require_approval' && state.latched.has(i)) return true;
    return false;
  }

  /** Responses in force (the console's and the API's view). */
  active(): RiskResponse[] {
    const now = this.#clock.now();
    const out: RiskResponse[] = [];
    for (const subject of ['mandate', 'tree', 'agent'] as const) {
      for (const state of this.#states(subject).values()) {
        for (const [i, { since }] of state.latched) {
          const rule = this.#s.responses[i] as ResponseRule;
          const signals = this.#signals(state, now);
          out.push({
            kind: 'fired',
            action: rule.action,
            subject,
            id: state.id,
            agentId: state.agentId,
            score: sumPoints(signals),
            signals,
            at: since,
          });
        }
      }
    }
    return out;
  }

  /** Lifts a latched response without a `cleared` event (its action failed: it may fire again). */
  release(r: Pick<RiskResponse, 'action' | 'subject' | 'id'>): void {
    const state = this.#states(r.subject).peek(r.id);
    if (state === undefined) return;
    for (const [i, rule] of this.#rules[r.subject]) if (rule.action === r.action) state.latched.delete(i);
    state.dirty = true;
  }

  /** Drops what is kept about ended mandates (their trees stay while other mandates in them live). */
  forget(mandateIds: readonly string[]): void {
    for (const id of mandateIds) {
      this.#mandates.delete(id);
      this.#trees.delete(id);
    }
  }

  #add(s: State, counter: Counter, now: number, n: number, notable: boolean): void {
    (s.counts[counter] as SlidingCount).add(now, n);
    if (notable) s.dirty = true;
    if (this.#sharing) {
      s.pending ??= new Float64Array(COUNTERS);
      s.pending[counter] = (s.pending[counter] as number) + n;
      this.#unshared.add(s);
    }
  }

  #add3(m: State, t: State, a: State, counter: Counter, now: number, n: number, notable: boolean): void {
    this.#add(m, counter, now, n, notable);
    this.#add(t, counter, now, n, notable);
    this.#add(a, counter, now, n, notable);
  }

  #client(m: State, t: State, a: State, client: string, now: number): void {
    m.clients ??= new Set();
    if (m.clients.has(client) || m.clients.size >= MAX_CLIENTS_PER_MANDATE) return;
    m.clients.add(client);
    if (m.clients.size > 1) this.#add3(m, t, a, C.newClients, now, 1, true);
  }

  /** A gauge (fanout, depth) changed: rescore, and share it. */
  #touched(s: State): void {
    s.dirty = true;
    if (this.#sharing) {
      s.pending ??= new Float64Array(COUNTERS);
      this.#unshared.add(s);
    }
  }

  #states(subject: Subject): LRUCache<string, State> {
    return subject === 'mandate' ? this.#mandates : subject === 'tree' ? this.#trees : this.#agents;
  }

  #mandate(p: RiskPath): State {
    let s = this.#mandates.get(p.mandateId);
    if (s === undefined) {
      s = new State('mandate', p.mandateId, p.agentId, this.#s.windowMs);
      this.#mandates.set(p.mandateId, s);
    }
    return s;
  }

  #tree(p: RiskPath): State {
    let s = this.#trees.get(p.rootId);
    if (s === undefined) {
      s = new State('tree', p.rootId, p.agentId, this.#s.windowMs);
      this.#trees.set(p.rootId, s);
    }
    return s;
  }

  #agent(id: string): AgentState {
    let s = this.#agents.get(id) as AgentState | undefined;
    if (s === undefined) {
      s = new AgentState(id, this.#s.windowMs, this.#s.baselineMs);
      this.#agents.set(id, s);
    }
    return s;
  }

  /** Measures every signal of `s` into #values (SIGNALS order). */
  #measure(s: State, now: number): Float64Array {
    const v = this.#values;
    const calls = s.sum(C.calls, now);
    const agent = (s instanceof AgentState ? s : this.#agents.peek(s.agentId)) as AgentState | undefined;
    const perWindow = agent === undefined ? 0 : (agent.longCalls.sum(now) * this.#s.windowMs) / this.#s.baselineMs;
    v[0] = calls / Math.max(this.#s.baselineFloor, perWindow);
    v[1] = calls >= this.#s.denyRateMinCalls ? s.sum(C.denies, now) / calls : 0;
    v[2] = s.sum(C.probes, now);
    v[3] = s.sum(C.approvalsDenied, now);
    v[4] = s.sum(C.firstUses, now);
    v[5] = s.sum(C.readThenSend, now);
    v[6] = s.sum(C.resultBytes, now);
    v[7] = s.sum(C.newClients, now);
    v[8] = s.fanout;
    v[9] = s.depth;
    return v;
  }

  #signals(s: State, now: number): SignalValue[] {
    const values = this.#measure(s, now);
    const out: SignalValue[] = [];
    for (let i = 0; i < SIGNALS.length; i++) {
      const value = values[i] as number;
      const points = this.#points(i, value);
      if (points > 0) out.push({ signal: SIGNALS[i] as SignalName, value, points });
    }
    return out.sort((x, y) => y.points - x.points);
  }

  /** The score of `s`, recomputed when dirty or older than RESCORE_MS. */
  #scoreOf(s: State, now: number): number {
    this.#rescore(s, now);
    return s.score;
  }

  /** Recomputes the score of `s` if it is dirty or stale; true if it did. */
  #rescore(s: State, now: number): boolean {
    if (!s.dirty && now - s.scoredAt < RESCORE_MS && now >= s.scoredAt) return false;
    // A quiet subject stays at 0 without measuring: only the rates can move without a notable
    // observation, and neither can reach its warn level below these counts (call_rate's baseline is
    // never under baselineFloor).
    if (!s.dirty && s.score === 0 && s.sum(C.calls, now) <= this.#quietCalls && s.sum(C.resultBytes, now) <= this.#quietBytes) {
      s.scoredAt = now;
      return false;
    }
    const values = this.#measure(s, now);
    let total = 0;
    for (let i = 0; i < SIGNALS.length; i++) total += this.#points(i, values[i] as number);
    s.score = Math.min(100, Math.round(total));
    s.scoredAt = now;
    s.dirty = false;
    return true;
  }

  #points(i: number, value: number): number {
    const weight = this.#weight[i] as number;
    const warn = this.#warn[i] as number;
    if (weight === 0 || !(value > warn)) return 0;
    const max = this.#max[i] as number;
    if (value >= max) return weight;
    return (weight * (value - warn)) / (max - warn);
  }

  /** Re-scores the subjects an observation touched and fires or lifts their responses (no rest array: hot path). */
  #evaluate(now: number, a: State, b?: State, c?: State): void {
    this.#evaluateOne(now, a);
    if (b !== undefined) this.#evaluateOne(now, b);
    if (c !== undefined) this.#evaluateOne(now, c);
  }

  #evaluateOne(now: number, s: State): void {
    const rules = this.#rules[s.subject];
    if (rules.length === 0 || !this.#rescore(s, now)) return;
    const score = s.score;
    for (const [i, rule] of rules) {
      const latched = s.latched.get(i);
      if (latched === undefined) {
        if (score >= rule.at) {
          s.latched.set(i, { since: now });
          if (this.#sharing) this.#latchesToShare.push({ subject: s.subject, id: s.id, agentId: s.agentId, rule: i });
          this.#emit('fired', rule, s, now);
        }
      } else if (rule.clearBelow > 0 && score < rule.clearBelow && now - latched.since >= rule.holdMs) {
        s.latched.delete(i);
        this.#emit('cleared', rule, s, now);
      }
    }
  }

  #emit(kind: RiskResponse['kind'], rule: ResponseRule, s: State, now: number): void {
    const signals = this.#signals(s, now);
    const response: RiskResponse = {
      kind,
      action: rule.action,
      subject: s.subject,
      id: s.id,
      agentId: s.agentId,
      score: sumPoints(signals),
      signals,
      at: now,
    };
    for (const listener of this.#listeners) {
      try {
        listener(response);
      } catch {
        // A listener's failure is its own (the responder audits and retries); the call goes on.
      }
    }
  }
}

function sumPoints(signals: readonly SignalValue[]): number {
  return Math.min(100, Math.round(signals.reduce((n, s) => n + s.points, 0)));
}
