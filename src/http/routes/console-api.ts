// Read models the console needs and no domain API serves: who the operator is and what the admin
// API lets them do (so the console hides what the server would refuse), display hints from the
// tool catalog, overview charts, a filtered audit timeline, one event with its inclusion proof
// against the latest signed checkpoint, the Cedar source of the active policies, and the calls,
// budget use and revocation reach of one mandate. All are derived from the audit log and the
// stores; none writes anything.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuditEntry } from '../../audit/event.js';
import { parseEventId } from '../../audit/event.js';
import type { Broker } from '../../broker.js';
import { MandateError } from '../../errors/index.js';
import type { Operator } from '../../identity/operators.js';
import type { Mandate } from '../../mandates/mandate.js';
import { CaseRunner, parseRequest } from '../../policy/cases.js';
import { AMOUNT_KEYWORD, type AmountHint } from '../../upstreams/catalog.js';
import { authorizeOperator, type Permission, permissions } from '../admin-policy.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

const PAGE = 1000;

/** Mandates of one delegation tree read to count what a revoke ends (the mandate list's maximum). */
const TREE_LIMIT = 1000;

/** Reads the log backwards from `before` (exclusive), at most `scan` entries, yielding newest first. */
async function* newestFirst(broker: Broker, before: number, scan: number): AsyncGenerator<AuditEntry> {
  const stop = Math.max(0, before - scan);
  for (let end = before; end > stop; end -= PAGE) {
    const from = Math.max(stop, end - PAGE);
    const page = await broker.audit.entries(from, end);
    for (let i = page.length - 1; i >= 0; i--) {
      const entry = page[i];
      if (entry !== undefined) yield entry;
    }
  }
}

const overviewQuery = z.strictObject({
  hours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(24),
  buckets: z.coerce.number().int().min(1).max(200).default(24),
});

/** Most recent audit entries the overview reads (it is a dashboard, not a report). */
const OVERVIEW_SCAN = 20_000;

export interface OverviewBucket {
  readonly start: string;
  readonly calls: number;
  readonly allowed: number;
  readonly denied: number;
  readonly approvalsRequested: number;
  readonly approvalsDecided: number;
  /** Median seconds from approval request to decision, for decisions in this bucket. */
  readonly approvalLatencyP50: number | null;
  readonly approvalLatencyMax: number | null;
}

export interface Overview {
  readonly from: string;
  readonly to: string;
  readonly bucketSeconds: number;
  readonly scanned: number;
  readonly truncated: boolean;
  /**
   * `approvalRequired` counts decisions with that outcome (every retry of a waiting call is one);
   * `approvalsRequested` counts approval requests, i.e. what was sent to a human.
   */
  readonly totals: {
    calls: number;
    allowed: number;
    denied: number;
    approvalRequired: number;
    approvalsRequested: number;
    approvalsDecided: number;
  };
  readonly buckets: OverviewBucket[];
}

/** Counts decisions and approvals per time bucket from the audit log (the one source of truth). */
export async function computeOverview(broker: Broker, hours: number, bucketCount: number): Promise<Overview> {
  const to = broker.clock.now();
  const from = to - hours * 3_600_000;
  const width = (to - from) / bucketCount;
  const { size } = await broker.audit.head();
  const buckets = Array.from({ length: bucketCount }, (_, i) => ({
    start: new Date(from + i * width).toISOString(),
    calls: 0,
    allowed: 0,
    denied: 0,
    approvalsRequested: 0,
    approvalsDecided: 0,
    latencies: [] as number[],
  }));
  const totals = { calls: 0, allowed: 0, denied: 0, approvalRequired: 0, approvalsRequested: 0, approvalsDecided: 0 };
  // Newest first: decisions are seen before the requests they answer.
  const decidedAt = new Map<string, { time: number; bucket: (typeof buckets)[number] }>();
  let scanned = 0;
  for await (const { event } of newestFirst(broker, size, OVERVIEW_SCAN)) {
    scanned++;
    const time = Date.parse(event.time);
    const approvalId = typeof event.data.approvalId === 'string' ? event.data.approvalId : undefined;
    if (event.type === 'approval.requested' && approvalId !== undefined) {
      const decided = decidedAt.get(approvalId);
      if (decided !== undefined) decided.bucket.latencies.push((decided.time - time) / 1000);
    }
    if (time < from) break;
    if (time > to) continue;
    const bucket = buckets[Math.min(bucketCount - 1, Math.floor((time - from) / width))];
    if (bucket === undefined) continue;
    if (event.type === 'decision') {
      const outcome = event.data.outcome;
      bucket.calls++;
      totals.calls++;
      if (outcome === 'allow') {
        bucket.allowed++;
        totals.allowed++;
      } else if (outcome === 'deny') {
        bucket.denied++;
        totals.denied++;
      } else if (outcome === 'approval_required') totals.approvalRequired++;
    } else if (event.type === 'approval.requested') {
      bucket.approvalsRequested++;
      totals.approvalsRequested++;
    } else if (event.type === 'approval.decided') {
      bucket.approvalsDecided++;
      totals.approvalsDecided++;
      if (approvalId !== undefined) decidedAt.set(approvalId, { time, bucket });
    }
  }
  return {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    bucketSeconds: Math.round(width / 1000),
    scanned,
    truncated: scanned >= OVERVIEW_SCAN,
    totals,
    buckets: buckets.map(({ latencies, ...b }) => {
      const sorted = latencies.sort((x, y) => x - y);
      return {
        ...b,
        approvalLatencyP50: sorted.length === 0 ? null : (sorted[Math.floor((sorted.length - 1) / 2)] ?? null),
        approvalLatencyMax: sorted.length === 0 ? null : (sorted[sorted.length - 1] ?? null),
      };
    }),
  };
}

const timelineQuery = z.strictObject({
  agent: z.string().max(255).optional(),
  mandate: z.string().max(255).optional(),
  human: z.string().max(255).optional(),
  outcome: z.enum(['allow', 'deny', 'approval_required']).optional(),
  tool: z.string().max(255).optional(),
  type: z.string().max(128).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  /** Return entries with seq below this (paging backwards). */
  before: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

/** How far back one timeline request searches, so a filter that matches nothing stays cheap. */
const TIMELINE_SCAN = 50_000;

export type TimelineFilter = z.infer<typeof timelineQuery>;

/** True when an entry matches every given filter. Actors carry agents and humans (DESIGN: outermost first). */
export function matchesTimeline(entry: AuditEntry, f: TimelineFilter): boolean {
  const e = entry.event;
  const d = e.data;
  if (f.type !== undefined && !e.type.startsWith(f.type)) return false;
  if (f.mandate !== undefined && e.mandateId !== f.mandate && d.parentMandateId !== f.mandate) return false;
  if (f.agent !== undefined && !e.actors.some((a) => a.type === 'agent' && a.id === f.agent) && d.agentId !== f.agent) return false;
  if (
    f.human !== undefined &&
    !e.actors.some((a) => (a.type === 'human' || a.type === 'operator') && a.id === f.human) &&
    d.onBehalfOf !== f.human
  )
    return false;
  if (f.outcome !== undefined && d.outcome !== f.outcome) return false;
  if (f.tool !== undefined && d.tool !== f.tool) return false;
  const time = Date.parse(e.time);
  if (f.from !== undefined && time < Date.parse(f.from)) return false;
  if (f.to !== undefined && time > Date.parse(f.to)) return false;
  return true;
}

/**
 * The admin API permissions `operator` holds, decided by the very function that guards every
 * admin route (authorizeOperator), so the console can never show more or less than the API allows.
 */
export function permissionsOf(operator: Operator): Permission[] {
  return (Object.keys(permissions) as Permission[]).filter((p) => {
    try {
      authorizeOperator(operator, p);
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether `operator` may revoke a mandate of an agent owned by `owner` (the rule of POST /admin/v1/mandates/:id/revoke). */
export function mayRevoke(operator: Operator, owner: string | undefined): boolean {
  return operator.roles.includes('admin') || (owner !== undefined && owner === operator.subject);
}

/** The active mandates revoking `target` would end besides itself: every active descendant. */
export function activeDescendants(target: Mandate, tree: readonly Mandate[]): Mandate[] {
  const children = new Map<string, Mandate[]>();
  for (const m of tree) {
    if (m.parentId === undefined) continue;
    const list = children.get(m.parentId) ?? [];
    list.push(m);
    children.set(m.parentId, list);
  }
  const out: Mandate[] = [];
  const walk = (id: string) => {
    for (const c of children.get(id) ?? []) {
      if (c.status === 'active') out.push(c);
      walk(c.id);
    }
  };
  walk(target.id);
  return out;
}

export function registerConsoleApiRoutes(app: FastifyInstance, { broker }: AppContext): void {
  // Usage as the store holds it: consumed (reported by every replica) and leased (not yet reported).
  const budgets = broker.budgets;

  app.get(
    `${ADMIN_PREFIX}console/me`,
    {
      config: {
        access: { permission: 'self:read' },
        doc: { summary: 'The signed-in operator, their roles and the admin API permissions they hold' },
      },
    },
    async (req) => {
      const operator = req.operator;
      if (operator === undefined) throw new MandateError('ERR_AUTH_MISSING');
      return { id: operator.id, name: operator.name, roles: operator.roles, via: operator.via, permissions: permissionsOf(operator) };
    },
  );

  // Display hints only (how to show an argument), for every console user: an approver must see
  // the refund as $249.00 without the catalog read permission.
  app.get(
    `${ADMIN_PREFIX}console/hints`,
    {
      config: {
        access: { permission: 'console:read' },
        doc: { summary: `How to display tool arguments: amounts (${AMOUNT_KEYWORD}) per tool and argument` },
      },
    },
    async () => {
      const tools: Record<string, { amountArgs: Record<string, AmountHint> }> = {};
      for (const t of broker.upstreams.catalog.list())
        if (Object.keys(t.amountArgs).length > 0) tools[t.name] = { amountArgs: { ...t.amountArgs } };
      return { tools };
    },
  );

  app.get(
    `${ADMIN_PREFIX}console/policies`,
    { config: { access: { permission: 'policy:read' }, doc: { summary: 'The Cedar source of every policy in the active set' } } },
    async () => {
      const set = broker.policies.current?.set;
      return {
        version: set?.version,
        policies: set?.policies.map(({ id, file, line, effect, text }) => ({ id, file, line, effect, text })) ?? [],
      };
    },
  );

  app.get(
    `${ADMIN_PREFIX}console/overview`,
    {
      config: {
        access: { permission: 'console:read' },
        doc: {
          summary: 'Calls, denies and approvals per time bucket (from the audit log)',
          query: overviewQuery,
        },
      },
    },
    async (req) => {
      const q = overviewQuery.parse(req.query);
      return computeOverview(broker, q.hours, q.buckets);
    },
  );

  app.get(
    `${ADMIN_PREFIX}console/audit`,
    {
      config: {
        access: { permission: 'audit:read' },
        doc: { summary: 'Audit timeline, newest first, with filters', query: timelineQuery },
      },
    },
    async (req) => {
      const f = timelineQuery.parse(req.query);
      const { size } = await broker.audit.head();
      const before = Math.min(size, f.before ?? size);
      const items: AuditEntry[] = [];
      let lowest = before;
      for await (const entry of newestFirst(broker, before, TIMELINE_SCAN)) {
        lowest = entry.seq;
        if (f.from !== undefined && Date.parse(entry.event.time) < Date.parse(f.from)) {
          lowest = 0;
          break;
        }
        if (matchesTimeline(entry, f)) items.push(entry);
        if (items.length >= f.limit) break;
      }
      return { items, size, next: lowest > 0 ? lowest : undefined };
    },
  );

  app.get(
    `${ADMIN_PREFIX}console/audit/:id`,
    {
      config: {
        access: { permission: 'audit:read' },
        doc: {
          summary: 'One audit event with its RFC 9162 inclusion proof against the latest signed checkpoint',
        },
      },
    },
    async (req) => {
      const id = (req.params as { id: string }).id;
      const seq = parseEventId(id);
      const entry = seq === undefined ? undefined : await broker.audit.entry(seq);
      if (seq === undefined || entry === undefined) throw new MandateError('ERR_NOT_FOUND', `no audit event "${id}"`);
      // Prove against a signed checkpoint, never the moving head: the browser checks the root it
      // reaches equals the root the log signed. A fresh event may need a checkpoint first.
      let checkpoint = await broker.audit.latestCheckpoint();
      if (checkpoint === undefined || checkpoint.size <= seq) checkpoint = await broker.audit.checkpoint();
      const proof = await broker.audit.inclusionProof(seq, checkpoint.size);
      return {
        entry,
        proof: { treeSize: proof.size, leafHash: proof.leafHash.toString('hex'), hashes: proof.proof.map((h) => h.toString('hex')) },
        checkpoint: { size: checkpoint.size, note: checkpoint.note, createdAt: checkpoint.createdAt },
        vkey: broker.audit.vkey,
      };
    },
  );

  // "What if": the same evaluation as `mandate policy explain`, against the set this replica serves.
  // Budgets are not counted and nothing is recorded: it is a question, not a call.
  app.post(
    `${ADMIN_PREFIX}console/policy/explain`,
    {
      config: { access: { permission: 'policy:read' }, doc: { summary: 'Explain the decision org policy would give a hand-written call' } },
    },
    async (req) => {
      const request = parseRequest(req.body ?? {});
      if (request.call === undefined) throw new MandateError('ERR_VALIDATION', 'call: a call to explain is required');
      const { policy } = broker.config;
      const run = new CaseRunner({
        policies: broker.policies,
        approverRoles: policy.approverRoles,
        namespace: policy.authzen.namespace,
        types: policy.authzen.types,
        now: broker.clock.now(),
      });
      const { decision, grants, request: cedar } = run.explainCall(request.call);
      const byId = new Map(broker.policies.current?.set.policies.map((p) => [p.id, p]));
      return {
        outcome: decision.outcome,
        reasons: decision.reasons,
        policies: decision.policies.map((id) => {
          const p = byId.get(id);
          return { id, ...(p === undefined ? {} : { at: `${p.file}:${p.line}`, effect: p.effect }) };
        }),
        grants: grants.map((g) => ({ mandateId: g.mandateId, index: g.index, grant: g.grant })),
        approvalRoles: decision.approvalRoles,
        errors: decision.errors,
        cedar,
      };
    },
  );

  app.get(
    `${ADMIN_PREFIX}console/mandates/:id/activity`,
    { config: { access: { permission: 'mandates:read' }, doc: { summary: 'Calls made and budgets used by one mandate' } } },
    async (req) => {
      const m = await broker.mandates.require((req.params as { id: string }).id);
      const tree = await broker.mandates.list({ rootId: m.rootId, limit: TREE_LIMIT });
      const ends = m.status === 'active' ? activeDescendants(m, tree).map((d) => d.id) : [];
      const owner = (await broker.agents.get(m.agentId))?.principal.owner;
      const grants = await Promise.all(
        m.scope.tools.map(async (g, index) => ({
          index,
          tool: g.tool,
          ...(await budgets.usage(m.id, index)),
          ...(g.maxCalls === undefined ? {} : { maxCalls: g.maxCalls }),
          ...(g.sum === undefined ? {} : { sumMax: g.sum.max, sumArg: g.sum.arg }),
        })),
      );
      const events = await broker.audit.entriesBy('mandate_id', m.id, { limit: 5000 });
      const calls = { total: 0, allow: 0, deny: 0, approval_required: 0 };
      // Budget counters exist only for budgeted grants; allowed calls per grant come from the log.
      const allowedByGrant = new Map<number, number>();
      for (const e of events) {
        if (e.event.type !== 'decision') continue;
        calls.total++;
        const outcome = e.event.data.outcome;
        if (outcome === 'allow' || outcome === 'deny' || outcome === 'approval_required') calls[outcome]++;
        const grant = e.event.data.grant as { mandateId?: unknown; index?: unknown } | undefined;
        if (outcome === 'allow' && grant?.mandateId === m.id && typeof grant.index === 'number') {
          allowedByGrant.set(grant.index, (allowedByGrant.get(grant.index) ?? 0) + 1);
        }
      }
      return {
        grants: grants.map((g) => ({ ...g, allowed: allowedByGrant.get(g.index) ?? 0 })),
        calls,
        recent: events.slice(-50).reverse(),
        // What revoking would do, and whether this caller may: the console confirms with the count.
        // `complete: false` when the tree is larger than one read: the count is then a lower bound.
        revoke: {
          allowed: req.operator !== undefined && mayRevoke(req.operator, owner),
          activeDescendants: ends,
          complete: tree.length < TREE_LIMIT,
        },
      };
    },
  );
}
