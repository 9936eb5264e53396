// Live updates for the console: a server-sent events stream of the change feed topics a human
// watches (approvals, mandates, agents) and of audit log growth, plus the overview statistics
// the console charts. Events carry ids and statuses only; the console re-reads what it shows
// through the admin API, so the stream never widens what an operator may read.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Broker } from '../../broker.js';
import { MandateError } from '../../errors/index.js';
import type { Change } from '../../store/changes.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

/** Change feed topics forwarded to the console. */
export const LIVE_TOPICS = ['approval', 'mandate', 'agent'] as const;

const MAX_CLIENTS = 200;
const KEEPALIVE_MS = 15_000;
const AUDIT_POLL_MS = 1000;

interface Client {
  send(event: string, data: unknown, id?: number): void;
  end(): void;
}

/** Fans one subscription per topic out to every connected stream of this replica. */
class LiveHub {
  readonly #clients = new Set<Client>();
  readonly #unsubscribe: (() => void)[] = [];
  #auditTimer: NodeJS.Timeout | undefined;
  #auditSize = -1;

  constructor(private readonly broker: Broker) {
    for (const topic of LIVE_TOPICS) {
      this.#unsubscribe.push(broker.changes.subscribe(topic, (change) => this.#onChange(change)));
    }
  }

  get size(): number {
    return this.#clients.size;
  }

  add(client: Client): void {
    this.#clients.add(client);
    // The audit head is read only while someone watches; the log has no in-process hook because
    // appends from other replicas must show up too.
    this.#auditTimer ??= setInterval(() => void this.#pollAudit(), AUDIT_POLL_MS);
  }

  remove(client: Client): void {
    this.#clients.delete(client);
    if (this.#clients.size === 0 && this.#auditTimer !== undefined) {
      clearInterval(this.#auditTimer);
      this.#auditTimer = undefined;
    }
  }

  close(): void {
    for (const off of this.#unsubscribe) off();
    for (const client of [...this.#clients]) client.end();
    this.#clients.clear();
    if (this.#auditTimer !== undefined) clearInterval(this.#auditTimer);
  }

  #broadcast(event: string, data: unknown, id?: number): void {
    for (const client of this.#clients) client.send(event, data, id);
  }

  #onChange(change: Change): void {
    const status = typeof change.data.status === 'string' ? change.data.status : undefined;
    this.#broadcast(change.topic, { key: change.key, seq: change.seq, ...(status === undefined ? {} : { status }) }, change.seq);
  }

  async #pollAudit(): Promise<void> {
    try {
      const { size } = await this.broker.audit.head();
      if (size !== this.#auditSize) {
        const first = this.#auditSize < 0;
        this.#auditSize = size;
        if (!first) this.#broadcast('audit', { size });
      }
    } catch {
      // The store is briefly unreachable: the next tick tries again; readiness reports the outage.
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
  readonly totals: { calls: number; allowed: number; denied: number; approvalRequired: number; approvalsDecided: number };
  readonly buckets: OverviewBucket[];
}

/** Counts decisions and approvals per time bucket from the audit log (the one source of truth). */
export async function computeOverview(broker: Broker, hours: number, bucketCount: number): Promise<Overview> {
  const to = broker.clock.now();
  const from = to - hours * 3_600_000;
  const width = (to - from) / bucketCount;
  const { size } = await broker.audit.head();
  const start = Math.max(0, size - OVERVIEW_SCAN);
  const buckets = Array.from({ length: bucketCount }, (_, i) => ({
    start: new Date(from + i * width).toISOString(),
    calls: 0,
    allowed: 0,
    denied: 0,
    approvalsRequested: 0,
    approvalsDecided: 0,
    latencies: [] as number[],
  }));
  const totals = { calls: 0, allowed: 0, denied: 0, approvalRequired: 0, approvalsDecided: 0 };
  const requestedAt = new Map<string, number>();
  for (let at = start; at < size; at += 1000) {
    for (const entry of await broker.audit.entries(at, Math.min(size, at + 1000))) {
      const { event } = entry;
      const time = Date.parse(event.time);
      const approvalId = typeof event.data.approvalId === 'string' ? event.data.approvalId : undefined;
      if (event.type === 'approval.requested' && approvalId !== undefined) requestedAt.set(approvalId, time);
      if (time < from || time > to) continue;
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
      } else if (event.type === 'approval.decided') {
        bucket.approvalsDecided++;
        totals.approvalsDecided++;
        const asked = approvalId === undefined ? undefined : requestedAt.get(approvalId);
        if (asked !== undefined) bucket.latencies.push((time - asked) / 1000);
      }
    }
  }
  return {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    bucketSeconds: Math.round(width / 1000),
    scanned: size - start,
    truncated: start > 0,
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

export function registerEventRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const hub = new LiveHub(broker);
  // Streams never end on their own: close them before the server waits for connections to drain.
  app.addHook('preClose', async () => hub.close());

  app.get(
    `${ADMIN_PREFIX}events`,
    {
      config: {
        doc: { summary: 'Server-sent events: approval, mandate and agent changes, audit log growth', permission: 'console:read' },
      },
    },
    async (req, reply) => {
      if (hub.size >= MAX_CLIENTS) throw new MandateError('ERR_CONSOLE_STREAMS_EXHAUSTED');
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        'x-request-id': req.id,
      });
      let open = true;
      const client: Client = {
        send(event, data, id) {
          if (!open) return;
          res.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        },
        end() {
          if (!open) return;
          open = false;
          res.end();
        },
      };
      const keepalive = setInterval(() => open && res.write(': keepalive\n\n'), KEEPALIVE_MS);
      req.raw.on('close', () => {
        open = false;
        clearInterval(keepalive);
        hub.remove(client);
      });
      hub.add(client);
      client.send('ready', { topics: [...LIVE_TOPICS, 'audit'], changeSeq: broker.changes.lastSeq });
    },
  );

  app.get(
    `${ADMIN_PREFIX}console/overview`,
    {
      config: {
        doc: {
          summary: 'Calls, denies and approvals per time bucket (from the audit log)',
          permission: 'console:read',
          query: overviewQuery,
        },
      },
    },
    async (req) => {
      const q = overviewQuery.parse(req.query);
      return computeOverview(broker, q.hours, q.buckets);
    },
  );
}
