// Acts on what the risk engine decides: every response is first an audit event naming the signals
// behind it (`risk.response`, `risk.cleared`), then revoke the mandate or the whole delegation tree
// (cascading, on every replica through the mandate change feed), quarantine the agent (every
// replica through the agent change feed), or notify the owner (a Standard Webhooks message).
// `require_approval` needs no action: the gateway asks the engine on every call. Responses run one
// at a time in the order they fired; a failure is logged and counted, never thrown into a call.
import type { AuditLog } from '../audit/types.js';
import type { RiskResponse } from './engine.js';

/** What the responder needs of the mandates, agents and webhooks (narrow, so tests pass the real services). */
export interface RiskResponderOptions {
  readonly audit: AuditLog;
  readonly mandates: {
    end(id: string, status: 'revoked', by: { type: 'system'; id: string }, reason?: string): Promise<readonly unknown[]>;
  };
  readonly agents: {
    get(id: string): Promise<{ readonly principal: { readonly status: string; readonly owner?: string | undefined } } | undefined>;
    setStatus(id: string, status: 'quarantined'): Promise<unknown>;
  };
  /** Sends `risk.alert` to the owners' endpoint; undefined when no risk webhook is configured. */
  readonly notify?: { send(eventType: string, data: unknown): Promise<unknown> } | undefined;
  readonly onError: (err: unknown, response: RiskResponse) => void;
  /** After a response was carried out (metrics: detection-to-action latency). */
  readonly onDone?: (response: RiskResponse) => void;
}

const SYSTEM = { type: 'system', id: 'risk' } as const;

export class RiskResponder {
  readonly #o: RiskResponderOptions;
  #queue: Promise<void> = Promise.resolve();

  constructor(options: RiskResponderOptions) {
    this.#o = options;
  }

  /** Queues `r` (the engine's listener: returns at once). */
  handle(r: RiskResponse): void {
    this.#queue = this.#queue.then(() =>
      this.#act(r).then(
        () => this.#o.onDone?.(r),
        (err: unknown) => this.#o.onError(err, r),
      ),
    );
  }

  /** Resolves once every queued response was carried out (tests, shutdown). */
  idle(): Promise<void> {
    return this.#queue;
  }

  async #act(r: RiskResponse): Promise<void> {
    const why = r.signals.map((s) => `${s.signal} ${round(s.value)} (+${round(s.points)})`).join(', ');
    await this.#o.audit.append({
      type: r.kind === 'fired' ? 'risk.response' : 'risk.cleared',
      actors: [SYSTEM, { type: 'agent', id: r.agentId }],
      ...(r.subject === 'agent' ? {} : { mandateId: r.id }),
      data: {
        action: r.action,
        subject: r.subject,
        id: r.id,
        score: r.score,
        signals: r.signals.map((s) => ({ signal: s.signal, value: round(s.value), points: round(s.points) })),
      },
    });
    if (r.kind === 'cleared') return;
    const reason = `risk score ${r.score} of ${r.subject} ${r.id}: ${why}`;
    switch (r.action) {
      case 'revoke':
        // A tree is revoked at its root: every descendant ends with it. Idempotent.
        if (r.subject !== 'agent') await this.#o.mandates.end(r.id, 'revoked', SYSTEM, reason);
        return;
      case 'quarantine': {
        const agent = await this.#o.agents.get(r.agentId);
        if (agent !== undefined && agent.principal.status === 'active') await this.#o.agents.setStatus(r.agentId, 'quarantined');
        return;
      }
      case 'notify_owner': {
        if (this.#o.notify === undefined) return;
        const agent = await this.#o.agents.get(r.agentId);
        await this.#o.notify.send('risk.alert', {
          agent: r.agentId,
          owner: agent?.principal.owner ?? null,
          subject: r.subject,
          id: r.id,
          score: r.score,
          signals: r.signals,
          reason,
        });
        return;
      }
      case 'require_approval':
        return;
    }
  }
}

const round = (n: number) => Math.round(n * 100) / 100;
