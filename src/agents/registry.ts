// The agent registry: agents are principals (actorType 'agent') with a profile binding them to one
// workload identity. Agents are held in memory once read and kept current by the change feed: an
// `agent` change (profile, status, deletion) or a `principal` change (the generic principals API)
// reloads the cached agent in the feed's handler, so a quarantine on one replica takes effect on
// every replica as soon as the change arrives, and the call path never re-reads the store. A
// replica that cannot confirm it applied every change fails closed (ERR_REPLICA_STALE, checked by
// the token verifier before it looks an agent up).
import { MandateError } from '../errors/index.js';
import { identityKey } from '../identity/proofs.js';
import type { Clock } from '../lib/clock.js';
import type { Principal } from '../principals/principal.js';
import { PRINCIPAL_TOPIC, type PrincipalRepository } from '../principals/repository.js';
import type { ChangeFeed } from '../store/changes.js';
import type { SqlExecutor, Store } from '../store/index.js';
import { type Agent, type AgentIdentity, type AgentInput, type AgentPatch, agentInput, agentPatch } from './agent.js';

interface ProfileRow {
  [key: string]: unknown;
  agent_id: string;
  identity_key: string;
  ceiling: string;
  task_types: string;
  max_ttl_seconds: number;
  dpop_required: number | boolean;
  may_receive_delegation: number | boolean;
  templates: string;
}

const COLUMNS = 'agent_id, identity_key, ceiling, task_types, max_ttl_seconds, dpop_required, may_receive_delegation, templates';
export const AGENT_TOPIC = 'agent';
/** Bound of the in-memory agent map (least recently loaded entries are dropped and re-read on demand). */
const MAX_CACHED = 100_000;

export function keyOf(identity: AgentIdentity): string {
  return 'spiffeId' in identity ? identityKey.spiffe(identity.spiffeId) : identityKey.oidc(identity.issuer, identity.subject);
}

function identityOf(key: string): AgentIdentity {
  if (key.startsWith('spiffe:')) return { spiffeId: key.slice('spiffe:'.length) };
  const [issuer = '', subject = ''] = key.slice('oidc:'.length).split(' ');
  return { issuer, subject };
}

export class AgentRegistry {
  /** Agents by id; `undefined` remembers an id that is not a registered agent (until a change says otherwise). */
  readonly #byId = new Map<string, Agent | undefined>();
  readonly #idByKey = new Map<string, string>();
  /**
   * Bumped by every change of an id: a load that started before a change must not cache what it
   * read (it may be the state from before the change).
   */
  readonly #generation = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly principals: PrincipalRepository,
    private readonly changes: ChangeFeed,
    private readonly clock: Clock,
  ) {
    const onChange = (change: { key: string }) => this.#changed(change.key);
    changes.subscribe(AGENT_TOPIC, onChange);
    changes.subscribe(PRINCIPAL_TOPIC, onChange);
  }

  /** Registers an agent (principal + profile). The identity must not be bound to another agent. */
  async register(input: AgentInput): Promise<Agent> {
    const a = agentInput.parse(input);
    const key = keyOf(a.identity);
    if ((await this.#profileByKey(key)) !== undefined) {
      throw new MandateError('ERR_STORE_CONFLICT', 'this workload identity is already bound to an agent');
    }
    const principal = await this.principals.create({
      id: a.id,
      actorType: 'agent',
      displayName: a.displayName,
      owner: a.owner,
      environment: a.environment,
      status: a.status,
      attributes: a.attributes,
    });
    try {
      await this.store.transaction(async (tx) => {
        await tx.run(`INSERT INTO agent_profiles (${COLUMNS}, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
          a.id,
          key,
          JSON.stringify(a.ceiling),
          JSON.stringify(a.taskTypes),
          a.maxTtlSeconds,
          a.dpopRequired ? 1 : 0,
          a.mayReceiveDelegation ? 1 : 0,
          JSON.stringify(a.templates),
          principal.createdAt,
          principal.createdAt,
        ]);
        await this.changes.publish(tx, AGENT_TOPIC, a.id, { op: 'registered' });
      });
    } catch (err) {
      // Compensate: the principal without its profile would be an agent nobody can authenticate as.
      await this.principals.delete(a.id).catch(() => {});
      throw err;
    }
    await this.changes.catchUp();
    return this.require(a.id);
  }

  async update(id: string, input: AgentPatch): Promise<Agent> {
    const patch = agentPatch.parse(input);
    const current = await this.require(id);
    const { identity, ceiling, taskTypes, maxTtlSeconds, dpopRequired, mayReceiveDelegation, templates, ...principalFields } = patch;
    if (Object.values(principalFields).some((v) => v !== undefined)) await this.principals.update(id, principalFields);
    await this.store.transaction(async (tx) => {
      const key = identity === undefined ? current.identityKey : keyOf(identity);
      await tx.run(
        'UPDATE agent_profiles SET identity_key = ?, ceiling = ?, task_types = ?, max_ttl_seconds = ?, dpop_required = ?, may_receive_delegation = ?, templates = ?, updated_at = ? WHERE agent_id = ?',
        [
          key,
          JSON.stringify(ceiling ?? current.ceiling),
          JSON.stringify(taskTypes ?? current.taskTypes),
          maxTtlSeconds ?? current.maxTtlSeconds,
          (dpopRequired ?? current.dpopRequired) ? 1 : 0,
          (mayReceiveDelegation ?? current.mayReceiveDelegation) ? 1 : 0,
          JSON.stringify(templates ?? current.templates),
          this.clock.now(),
          id,
        ],
      );
      await this.changes.publish(tx, AGENT_TOPIC, id, { op: 'updated', status: patch.status });
    });
    await this.changes.catchUp();
    return this.require(id);
  }

  /** Sets the status (active, quarantined, disabled). */
  setStatus(id: string, status: Principal['status']): Promise<Agent> {
    return this.update(id, { status });
  }

  async delete(id: string): Promise<boolean> {
    const existed = await this.store.transaction(async (tx) => {
      const { changes } = await tx.run('DELETE FROM agent_profiles WHERE agent_id = ?', [id]);
      if (changes > 0) await this.changes.publish(tx, AGENT_TOPIC, id, { op: 'deleted' });
      return changes > 0;
    });
    if (!existed) return false;
    await this.principals.delete(id);
    await this.changes.catchUp();
    return true;
  }

  /**
   * The agent, from memory once this replica has read it (the first lookup of an id reads the
   * store; changes keep it current after that). Undefined when not registered.
   */
  async get(id: string): Promise<Agent | undefined> {
    if (this.#byId.has(id)) return this.#byId.get(id);
    return this.#load(id);
  }

  /** Reads one agent and caches it, unless a change of the same id arrived meanwhile. */
  async #load(id: string): Promise<Agent | undefined> {
    const generation = this.#generation.get(id) ?? 0;
    const [row] = await this.store.query<ProfileRow>(`SELECT ${COLUMNS} FROM agent_profiles WHERE agent_id = ?`, [id]);
    const principal = row === undefined ? undefined : await this.principals.get(id);
    const agent = row === undefined || principal === undefined || principal.actorType !== 'agent' ? undefined : fromRow(row, principal);
    if ((this.#generation.get(id) ?? 0) === generation) this.#remember(id, agent);
    return agent;
  }

  #remember(id: string, agent: Agent | undefined): void {
    const previous = this.#byId.get(id);
    if (previous !== undefined) this.#idByKey.delete(previous.identityKey);
    this.#byId.delete(id);
    if (this.#byId.size >= MAX_CACHED) {
      const oldest = this.#byId.keys().next().value as string;
      const dropped = this.#byId.get(oldest);
      if (dropped !== undefined) this.#idByKey.delete(dropped.identityKey);
      this.#byId.delete(oldest);
    }
    this.#byId.set(id, agent);
    if (agent !== undefined) this.#idByKey.set(agent.identityKey, id);
  }

  async require(id: string): Promise<Agent> {
    const agent = await this.get(id);
    if (agent === undefined) throw new MandateError('ERR_NOT_FOUND', `no agent "${id}"`);
    return agent;
  }

  /** The agent bound to a verified workload identity key, if any. */
  async byIdentity(key: string): Promise<Agent | undefined> {
    const id = this.#idByKey.get(key) ?? (await this.#profileByKey(key))?.agent_id;
    return id === undefined ? undefined : this.get(id);
  }

  async list(options: { after?: string; limit?: number } = {}): Promise<Agent[]> {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), 1000);
    const rows = await this.store.query<ProfileRow>(`SELECT ${COLUMNS} FROM agent_profiles WHERE agent_id > ? ORDER BY agent_id LIMIT ?`, [
      options.after ?? '',
      limit,
    ]);
    const out: Agent[] = [];
    for (const row of rows) {
      const principal = await this.principals.get(row.agent_id);
      if (principal !== undefined) out.push(fromRow(row, principal));
    }
    return out;
  }

  async #profileByKey(key: string, tx: SqlExecutor = this.store): Promise<ProfileRow | undefined> {
    const [row] = await tx.query<ProfileRow>(`SELECT ${COLUMNS} FROM agent_profiles WHERE identity_key = ?`, [key]);
    return row;
  }

  /**
   * A change of agent `id` arrived (from this replica or another one). A cached agent is reloaded
   * here, in the feed's handler, so the next call sees the new status without reading the store;
   * if the reload fails the entry is dropped and the next lookup reads the store (or fails).
   */
  async #changed(id: string): Promise<void> {
    this.#generation.set(id, (this.#generation.get(id) ?? 0) + 1);
    if (this.#generation.size > MAX_CACHED) this.#generation.delete(this.#generation.keys().next().value as string);
    if (!this.#byId.has(id)) return;
    const previous = this.#byId.get(id);
    if (previous !== undefined) this.#idByKey.delete(previous.identityKey);
    this.#byId.delete(id);
    try {
      await this.#load(id);
    } catch {
      // Dropped above: the next lookup reads the store again, and fails if it still cannot.
    }
  }
}

function fromRow(row: ProfileRow, principal: Principal): Agent {
  return {
    principal,
    identity: identityOf(row.identity_key),
    identityKey: row.identity_key,
    ceiling: JSON.parse(row.ceiling),
    taskTypes: JSON.parse(row.task_types) as string[],
    maxTtlSeconds: Number(row.max_ttl_seconds),
    dpopRequired: Boolean(Number(row.dpop_required)),
    mayReceiveDelegation: Boolean(Number(row.may_receive_delegation)),
    templates: JSON.parse(row.templates ?? '{}') as Agent['templates'],
  };
}
