// The risk module's composition: the engine from configuration, the responder listening to it,
// and (on a store shared by several replicas) the sharing of counts between replicas.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { AuditLog } from '../audit/types.js';
import type { Clock } from '../lib/clock.js';
import type { MandateService } from '../mandates/service.js';
import type { ChangeFeed } from '../store/changes.js';
import { isNotifying, type Store } from '../store/types.js';
import { RiskEngine, type RiskResponse } from './engine.js';
import { RiskResponder, type RiskResponderOptions } from './responder.js';
import { type RiskConfig, riskSettings } from './settings.js';
import { RiskSharing } from './sharing.js';

export interface RiskOptions {
  readonly config: RiskConfig & { readonly shareIntervalMs: number };
  readonly clock: Clock;
  readonly store: Store;
  readonly changes: ChangeFeed;
  readonly audit: AuditLog;
  readonly mandates: RiskResponderOptions['mandates'] & Pick<MandateService, 'get' | 'chain' | 'onOpened' | 'onCeilingRefused'>;
  readonly agents: RiskResponderOptions['agents'];
  readonly notify: RiskResponderOptions['notify'];
  readonly log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** After a response was carried out: how long after it fired (ms). */
  readonly onDone?: (response: RiskResponse, latencyMs: number) => void;
}

export interface Risk {
  readonly engine: RiskEngine;
  readonly responder: RiskResponder;
  /** A human decided an approval on this replica (a denial is a signal). */
  approvalDecided(approval: { readonly mandateId: string; readonly agentId: string; readonly status: string }): void;
  close(): Promise<void>;
}

export function createRisk(o: RiskOptions): Risk {
  const engine = new RiskEngine(riskSettings(o.config), o.clock);
  const responder = new RiskResponder({
    audit: o.audit,
    mandates: o.mandates,
    agents: o.agents,
    notify: o.notify,
    onError: (err, r) =>
      o.log.warn(
        { err, action: r.action, subject: r.subject, id: r.id },
        'risk response failed (the score stays; it fires again once lifted)',
      ),
    onDone: (r) => {
      o.log.info(
        { action: r.action, kind: r.kind, subject: r.subject, id: r.id, score: r.score, signals: r.signals.map((s) => s.signal) },
        r.kind === 'fired' ? 'risk response' : 'risk response lifted',
      );
      o.onDone?.(r, o.clock.now() - r.at);
    },
  });
  engine.onResponse((r) => responder.handle(r));
  // The token endpoint's part: ceiling refusals are probing; delegation shapes the tree.
  const offs = [
    o.mandates.onCeilingRefused((agentId) => engine.observeCeilingRefusal(agentId)),
    o.mandates.onOpened((m) => {
      if (m.parentId === undefined) return;
      const parentId = m.parentId;
      void o.mandates
        .get(parentId)
        .then((parent) =>
          engine.observeDelegation({
            mandateId: m.id,
            rootId: m.rootId,
            agentId: m.agentId,
            parentId,
            parentAgentId: parent?.agentId ?? m.agentId,
            depth: m.depth,
          }),
        )
        .catch((err: unknown) => o.log.warn({ err, mandateId: m.id }, 'risk: a delegation could not be counted'));
    }),
  ];
  const sharing =
    o.config.enabled && isNotifying(o.store)
      ? new RiskSharing({
          engine,
          store: o.store,
          changes: o.changes,
          replicaId: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
          intervalMs: o.config.shareIntervalMs,
          now: () => o.clock.now(),
          onError: (err) => o.log.warn({ err }, 'risk counts could not be shared with the other replicas'),
        })
      : undefined;
  return {
    engine,
    responder,
    approvalDecided(a) {
      if (a.status !== 'denied') return;
      void (async () => {
        const m = await o.mandates.get(a.mandateId);
        if (m === undefined) return;
        const root = (await o.mandates.chain(m))[0]?.id ?? a.mandateId;
        engine.observeApproval({ mandateId: a.mandateId, rootId: root, agentId: a.agentId }, false);
      })().catch((err: unknown) => o.log.warn({ err, mandateId: a.mandateId }, 'risk: an approval denial could not be counted'));
    },
    async close() {
      for (const off of offs) off();
      await sharing?.close();
      await responder.idle();
    },
  };
}
