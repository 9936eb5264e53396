// `explain`: from any event to its chain of authority, following the event conventions
// (`mandateId` on the event; `decisionId`, `approvalId`, `parentMandateId`, `proofId`/`identity`,
// `onBehalfOf` in `data`). Every step it reports is an entry of the log, so it can be proven.
import { MandateError } from '../errors/index.js';
import { type AuditEntry, parseEventId } from './event.js';
import type { AuditService } from './log.js';

/** How deep a delegation chain explain follows before it stops (cycles are impossible but guarded). */
const MAX_CHAIN = 32;

const MANDATE_START = ['mandate.opened', 'mandate.delegated'];
const APPROVAL_TYPES = ['approval.requested', 'approval.decided', 'approval.consumed', 'approval.expired', 'approval.withdrawn'];
const MANDATE_END = ['mandate.completed', 'mandate.failed', 'mandate.revoked', 'mandate.expired'];
/** Per-mandate upstream credentials (src/leases): what was issued under the mandate and how it ended. */
const LEASE_TYPES = ['lease.issued', 'lease.revoked', 'lease.revoke_failed', 'lease.failed'];
/** Automatic risk responses on this mandate or its tree (src/risk), with the signals behind each. */
const RISK_TYPES = ['risk.response', 'risk.cleared'];

export interface MandateLink {
  readonly mandateId: string;
  /** The entry that opened (or delegated) this mandate, when it is in the log. */
  readonly opened?: AuditEntry;
  /** Purpose, task type and environment as recorded when it was opened. */
  readonly purpose?: unknown;
  readonly taskType?: unknown;
  readonly environment?: string;
  /** The agent that held it (last agent actor of the opening event). */
  readonly agent?: string;
  /** How the mandate ended, if it did (revocation included). */
  readonly ended?: AuditEntry;
  /** The identity verification that authenticated the agent (see `identityMatch`). */
  readonly identity?: AuditEntry;
  /**
   * How `identity` was found: logged against this mandate, the same `proofId` as the opening
   * event, or (weakest) the agent's nearest verification before the mandate opened.
   */
  readonly identityMatch?: 'mandate' | 'proofId' | 'agent';
  /** Identity proof reference recorded on the opening event (`proofId` / `identity`), never the token. */
  readonly identityRef?: unknown;
  /** Leases issued under this mandate and their revocation (secrets only as HMACs), oldest first. */
  readonly leases?: readonly AuditEntry[];
  /** Risk responses that fired (or lifted) on this mandate or the tree it roots, oldest first. */
  readonly risk?: readonly AuditEntry[];
}

export interface Explanation {
  readonly event: AuditEntry;
  readonly decision?: AuditEntry;
  /** Determining policies and the matched grant, from the decision. */
  readonly policies: readonly string[];
  readonly grant?: unknown;
  readonly outcome?: unknown;
  readonly reasons: readonly string[];
  /** The mandate of the event, then its parents up to the root. */
  readonly mandates: readonly MandateLink[];
  /** The human on whose behalf the root mandate ran, if any. */
  readonly onBehalfOf?: string;
  readonly approvals: readonly AuditEntry[];
  /** The approval behind the event, summarized from `approvals` (absent when none is referenced). */
  readonly approval?: ApprovalSummary;
  /** The actor chain as recorded on the event (human → agent → delegated agents). */
  readonly actors: AuditEntry['event']['actors'];
  /** Which argument values of the decided call the human named and which came from tool output. */
  readonly intent?: IntentExplanation;
}

/**
 * Intent binding of a decision (src/intent/): the human's request as the root mandate recorded it,
 * the task template, and per argument its value (as audited: sensitive ones only as HMACs) and
 * whether it was named by the human or first appeared in a tool result.
 */
export interface IntentExplanation {
  readonly request?: string;
  readonly template?: unknown;
  readonly args: Readonly<Record<string, { value?: unknown; named: boolean; fromToolOutput: boolean; target: boolean }>>;
  /** Arguments whose value the human named. */
  readonly named: readonly string[];
  /** Arguments whose value first appeared in tool output (untrusted data). */
  readonly fromToolOutput: readonly string[];
  /** Target arguments (recipient, url, path, …) whose value the human did not name. */
  readonly unnamedTargets: readonly string[];
}

/** Where an approval stands according to the log, and who decided it with what words. */
export interface ApprovalSummary {
  readonly id: string;
  /** `approved` or `denied` once decided; `pending`, `expired` or `withdrawn` otherwise. */
  readonly outcome: 'pending' | 'approved' | 'denied' | 'expired' | 'withdrawn';
  /** The human who decided (never the human the task ran for: they may not approve it). */
  readonly decidedBy?: string;
  readonly role?: string;
  /** The approver's comment. */
  readonly note?: string;
  /** The approved call ran (the approval was used once). */
  readonly consumed: boolean;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/** Builds the explanation of event `id`. Throws ERR_NOT_FOUND when there is no such event. */
export async function explainEvent(log: AuditService, id: string): Promise<Explanation> {
  const seq = parseEventId(id);
  const event = seq === undefined ? undefined : await log.entry(seq);
  if (event === undefined) throw new MandateError('ERR_NOT_FOUND', `no audit event "${id}"`);
  const data = event.event.data;

  const decisionId = str(data.decisionId);
  const decision =
    event.event.type === 'decision'
      ? event
      : decisionId === undefined
        ? undefined
        : (await log.entriesBy('decision_id', decisionId, { types: ['decision'], limit: 1 }))[0];
  const d = decision?.event.data ?? {};
  const approval = (d.approval ?? {}) as Record<string, unknown>;
  const approvalId = str(data.approvalId) ?? str(d.approvalId) ?? str(approval.id);
  const approvals = approvalId === undefined ? [] : await log.entriesBy('approval_id', approvalId, { types: APPROVAL_TYPES, limit: 50 });

  const mandates: MandateLink[] = [];
  const seen = new Set<string>();
  let mandateId = event.event.mandateId ?? decision?.event.mandateId;
  while (mandateId !== undefined && !seen.has(mandateId) && mandates.length < MAX_CHAIN) {
    seen.add(mandateId);
    const link = await mandateLink(log, mandateId);
    mandates.push(link);
    mandateId = str(link.opened?.event.data.parentMandateId);
  }
  const root = mandates[mandates.length - 1]?.opened;
  // The human of the task is recorded where the root mandate opened. A human actor on the event
  // itself counts only when no mandate opening is known and that human is not an approver: on
  // approval events the human actor is the one who decided, not the one the task ran for.
  const onBehalfOf =
    str(root?.event.data.onBehalfOf) ??
    root?.event.actors.find((a) => a.type === 'human')?.id ??
    (root === undefined && !APPROVAL_TYPES.includes(event.event.type) ? event.event.actors.find((a) => a.type === 'human')?.id : undefined);
  const approvalSummary = approvalId === undefined ? undefined : summarizeApproval(approvalId, approvals);
  const intent = intentOf(d, root);

  return {
    event,
    ...(decision === undefined ? {} : { decision }),
    policies: Array.isArray(d.policies) ? d.policies.filter((p): p is string => typeof p === 'string') : [],
    ...(d.grant === undefined ? {} : { grant: d.grant }),
    ...(d.outcome === undefined ? {} : { outcome: d.outcome }),
    reasons: Array.isArray(d.reasons) ? d.reasons.filter((r): r is string => typeof r === 'string') : [],
    mandates,
    ...(onBehalfOf === undefined ? {} : { onBehalfOf }),
    approvals,
    ...(approvalSummary === undefined ? {} : { approval: approvalSummary }),
    actors: event.event.actors,
    ...(intent === undefined ? {} : { intent }),
  };
}

/** The intent recorded on a decision, with the request and template its root mandate was opened with. */
function intentOf(d: Record<string, unknown>, root: AuditEntry | undefined): IntentExplanation | undefined {
  const recorded = d.intent as { args?: unknown; unnamedTargets?: unknown } | undefined;
  if (recorded === null || typeof recorded !== 'object' || recorded.args === null || typeof recorded.args !== 'object') return undefined;
  const values = d.args !== null && typeof d.args === 'object' ? (d.args as Record<string, unknown>) : {};
  const args: Record<string, { value?: unknown; named: boolean; fromToolOutput: boolean; target: boolean }> = {};
  for (const [name, a] of Object.entries(recorded.args as Record<string, Record<string, unknown>>)) {
    if (a === null || typeof a !== 'object') continue;
    args[name] = {
      ...(Object.hasOwn(values, name) ? { value: values[name] } : {}),
      named: a.named === true,
      fromToolOutput: a.fromToolOutput === true,
      target: a.target === true,
    };
  }
  const od = root?.event.data ?? {};
  const names = (f: (a: { named: boolean; fromToolOutput: boolean; target: boolean }) => boolean) =>
    Object.entries(args)
      .filter(([, a]) => f(a))
      .map(([n]) => n);
  return {
    ...(str(od.request) === undefined ? {} : { request: str(od.request) }),
    ...(od.template === undefined ? {} : { template: od.template }),
    args,
    named: names((a) => a.named),
    fromToolOutput: names((a) => a.fromToolOutput),
    unnamedTargets: names((a) => a.target && !a.named),
  };
}

function summarizeApproval(id: string, entries: readonly AuditEntry[]): ApprovalSummary {
  const decided = entries.find((e) => e.event.type === 'approval.decided');
  const d = decided?.event.data ?? {};
  const recorded = str(d.outcome) ?? str(d.decision);
  const outcome: ApprovalSummary['outcome'] =
    recorded === 'approved' || recorded === 'denied'
      ? recorded
      : entries.some((e) => e.event.type === 'approval.withdrawn')
        ? 'withdrawn'
        : entries.some((e) => e.event.type === 'approval.expired')
          ? 'expired'
          : 'pending';
  const decidedBy = str(d.approverId) ?? decided?.event.actors.find((a) => a.type === 'human')?.id;
  return {
    id,
    outcome,
    ...(decidedBy === undefined ? {} : { decidedBy }),
    ...(str(d.role) === undefined ? {} : { role: str(d.role) }),
    ...(str(d.note) === undefined ? {} : { note: str(d.note) }),
    consumed: entries.some((e) => e.event.type === 'approval.consumed'),
  };
}

async function mandateLink(log: AuditService, mandateId: string): Promise<MandateLink> {
  const entries = await log.entriesBy('mandate_id', mandateId, {
    types: [...MANDATE_START, ...MANDATE_END, 'identity.verified'],
    limit: 20,
  });
  const opened = entries.find((e) => MANDATE_START.includes(e.event.type));
  const ended = entries.find((e) => MANDATE_END.includes(e.event.type));
  const od = opened?.event.data ?? {};
  const agent = [...(opened?.event.actors ?? [])].reverse().find((a) => a.type === 'agent')?.id ?? str(od.agentId);
  const identityRef = od.proofId ?? od.identity;
  let identity = entries.find((e) => e.event.type === 'identity.verified');
  let identityMatch: MandateLink['identityMatch'] = identity === undefined ? undefined : 'mandate';
  if (identity === undefined && opened !== undefined) {
    // Verification happens before the mandate exists, so it usually carries no mandateId.
    const found = await nearestVerification(log, opened.seq, str(od.proofId), agent);
    identity = found?.entry;
    identityMatch = found?.match;
  }
  const leases = await log.entriesBy('mandate_id', mandateId, { types: LEASE_TYPES, limit: 50 });
  const risk = await log.entriesBy('mandate_id', mandateId, { types: RISK_TYPES, limit: 50 });
  return {
    mandateId,
    ...(opened === undefined ? {} : { opened }),
    ...(leases.length === 0 ? {} : { leases }),
    ...(risk.length === 0 ? {} : { risk }),
    ...(od.purpose === undefined ? {} : { purpose: od.purpose }),
    ...(od.taskType === undefined ? {} : { taskType: od.taskType }),
    ...(opened?.event.environment === undefined ? {} : { environment: opened.event.environment }),
    ...(agent === undefined ? {} : { agent }),
    ...(ended === undefined ? {} : { ended }),
    ...(identity === undefined ? {} : { identity, identityMatch }),
    ...(identityRef === undefined ? {} : { identityRef }),
  };
}

/** How far back explain looks for the identity verification behind a mandate. */
const IDENTITY_LOOKBACK = 2000;

async function nearestVerification(
  log: AuditService,
  before: number,
  proofId: string | undefined,
  agent: string | undefined,
): Promise<{ entry: AuditEntry; match: 'proofId' | 'agent' } | undefined> {
  const stop = Math.max(0, before - IDENTITY_LOOKBACK);
  for (let end = before; end > stop; end -= 500) {
    const window = await log.entries(Math.max(stop, end - 500), end);
    for (const e of window.reverse()) {
      if (e.event.type !== 'identity.verified') continue;
      if (proofId !== undefined) {
        if (e.event.data.proofId === proofId) return { entry: e, match: 'proofId' };
      } else if (agent !== undefined && e.event.actors.some((a) => a.type === 'agent' && a.id === agent)) {
        return { entry: e, match: 'agent' };
      }
    }
  }
  return undefined;
}

/** Human-readable rendering for the CLI. */
export function renderExplanation(x: Explanation): string {
  const lines: string[] = [];
  const at = (e: AuditEntry) => `#${e.id} ${e.event.time}`;
  lines.push(`event ${at(x.event)}  ${x.event.event.type}`);
  lines.push(`  actors: ${x.actors.map((a) => `${a.type}:${a.id}`).join(' → ') || '(none)'}`);
  if (x.decision !== undefined) {
    lines.push(`decision ${at(x.decision)}  outcome ${String(x.outcome ?? '?')}`);
    if (x.policies.length > 0) lines.push(`  determining policies: ${x.policies.join(', ')}`);
    if (x.grant !== undefined) lines.push(`  matched grant: ${JSON.stringify(x.grant)}`);
    for (const r of x.reasons) lines.push(`  reason: ${r}`);
  } else {
    lines.push('decision: none referenced');
  }
  if (x.intent !== undefined) {
    const i = x.intent;
    lines.push(
      `intent: ${i.request === undefined ? 'no request text recorded (nothing is named)' : `request ${JSON.stringify(i.request.slice(0, 300))}`}`,
    );
    if (i.template !== undefined) lines.push(`  template: ${JSON.stringify(i.template)}`);
    for (const [name, a] of Object.entries(i.args)) {
      const where = a.named
        ? 'named by the human'
        : a.fromToolOutput
          ? 'from tool output (not named by the human)'
          : 'not named by the human';
      const value = a.value === undefined ? '' : ` = ${JSON.stringify(a.value)?.slice(0, 120)}`;
      lines.push(`  ${a.target ? 'target ' : ''}${name}${value}: ${where}`);
    }
  }
  if (x.approval !== undefined) {
    const p = x.approval;
    const by = p.decidedBy === undefined ? '' : ` by ${p.decidedBy}${p.role === undefined ? '' : ` as ${p.role}`}`;
    lines.push(`approval ${p.id}: ${p.outcome}${by}${p.consumed ? ', used by the call' : ''}`);
    if (p.note !== undefined) lines.push(`  comment: ${JSON.stringify(p.note)}`);
  }
  for (const a of x.approvals) {
    const d = a.event.data;
    const who = str(d.approverId) ?? a.event.actors.find((z) => z.type === 'human' || z.type === 'operator')?.id;
    const how = str(d.outcome) ?? str(d.decision);
    const decider = a.event.type === 'approval.decided' && who !== undefined ? ` by ${who}` : '';
    lines.push(`approval ${at(a)}  ${a.event.type}${decider}${how === undefined ? '' : ` (${how})`}`);
  }
  x.mandates.forEach((m, i) => {
    const label = i === 0 ? 'mandate' : `  delegated from`;
    lines.push(
      `${label} ${m.mandateId}${m.agent === undefined ? '' : ` held by agent ${m.agent}`}${m.opened === undefined ? ' (opening not in log)' : ` opened ${at(m.opened)}`}`,
    );
    if (m.purpose !== undefined) lines.push(`  purpose: ${String(m.purpose)}${m.taskType === undefined ? '' : ` [${String(m.taskType)}]`}`);
    if (m.environment !== undefined) lines.push(`  environment: ${m.environment}`);
    if (m.identity !== undefined) {
      const how = m.identityMatch === 'agent' ? ' (nearest verification of this agent before it opened)' : '';
      const ref = m.identity.event.data.identity ?? m.identity.event.data.proofId;
      lines.push(`  identity verified ${at(m.identity)}${ref === undefined ? '' : ` ${JSON.stringify(ref)}`}${how}`);
    } else if (m.identityRef !== undefined) lines.push(`  identity proof: ${JSON.stringify(m.identityRef)}`);
    for (const r of m.risk ?? []) {
      const d = r.event.data as {
        action?: unknown;
        subject?: unknown;
        score?: unknown;
        signals?: { signal?: unknown; points?: unknown }[];
      };
      const why = (d.signals ?? []).map((g) => `${String(g.signal)} +${String(g.points)}`).join(', ');
      lines.push(`  ${r.event.type} ${at(r)}: ${String(d.action)} (${String(d.subject)} score ${String(d.score)}: ${why})`);
    }
    if (m.ended !== undefined) lines.push(`  ended ${at(m.ended)}: ${m.ended.event.type}`);
  });
  lines.push(`on behalf of: ${x.onBehalfOf ?? '(no human recorded)'}`);
  return `${lines.join('\n')}\n`;
}
