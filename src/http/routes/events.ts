// Live updates for the console: a server-sent events stream of the change feed topics a human
// watches (approvals, mandates, agents) and of audit log growth. Events carry ids and statuses only; the console re-reads what it shows
// through the admin API, so the stream never widens what an operator may read.
import type { FastifyInstance } from 'fastify';
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

  /** Adds a stream; resolves once the audit baseline is known, so growth after it is reported. */
  async add(client: Client): Promise<void> {
    this.#clients.add(client);
    // The audit head is read only while someone watches; the log has no in-process hook because
    // appends from other replicas must show up too.
    if (this.#auditTimer === undefined) {
      this.#auditTimer = setInterval(() => void this.#pollAudit(), AUDIT_POLL_MS);
      await this.#pollAudit();
    }
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

export function registerEventRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const hub = new LiveHub(broker);
  // Streams never end on their own: close them before the server waits for connections to drain.
  app.addHook('preClose', async () => hub.close());

  app.get(
    `${ADMIN_PREFIX}events`,
    {
      config: {
        access: { permission: 'console:read' },
        doc: { summary: 'Server-sent events: approval, mandate and agent changes, audit log growth' },
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
      await hub.add(client);
      client.send('ready', { topics: [...LIVE_TOPICS, 'audit'], changeSeq: broker.changes.lastSeq });
    },
  );
}
