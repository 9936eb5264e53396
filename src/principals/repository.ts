// Persistence of principals on any Store. Updates and deletions publish a `principal` change in the
// same transaction, so replicas holding a principal in memory (the agent registry) follow it.
import { MandateError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeFeed } from '../store/changes.js';
import type { Store } from '../store/index.js';
import { type ActorType, type Principal, type PrincipalInput, type PrincipalPatch, principalInput } from './principal.js';

interface PrincipalRow {
  [key: string]: unknown;
  id: string;
  actor_type: ActorType;
  display_name: string;
  owner: string | null;
  environment: string | null;
  status: Principal['status'];
  roles: string;
  attributes: string;
  created_at: number;
  updated_at: number;
}

const COLUMNS = 'id, actor_type, display_name, owner, environment, status, roles, attributes, created_at, updated_at';

function fromRow(r: PrincipalRow): Principal {
  return {
    id: r.id,
    actorType: r.actor_type,
    displayName: r.display_name,
    owner: r.owner ?? undefined,
    environment: r.environment ?? undefined,
    status: r.status,
    roles: JSON.parse(r.roles) as string[],
    attributes: JSON.parse(r.attributes) as Record<string, unknown>,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

export interface ListPrincipalsOptions {
  readonly actorType?: ActorType;
  /** Return principals with id greater than this (keyset paging). */
  readonly after?: string;
  readonly limit?: number;
}

/** Change topic of principal updates and deletions (key: the principal id). */
export const PRINCIPAL_TOPIC = 'principal';

export class PrincipalRepository {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** Without a feed nothing is published (tools and tests that hold no principal in memory). */
    private readonly changes?: ChangeFeed,
  ) {}

  async create(input: PrincipalInput): Promise<Principal> {
    const p = principalInput.parse(input);
    const now = this.clock.now();
    await this.store.run(`INSERT INTO principals (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      p.id,
      p.actorType,
      p.displayName,
      p.owner ?? null,
      p.environment ?? null,
      p.status,
      JSON.stringify(p.roles),
      JSON.stringify(p.attributes),
      now,
      now,
    ]);
    return { ...p, owner: p.owner, environment: p.environment, createdAt: now, updatedAt: now };
  }

  async get(id: string): Promise<Principal | undefined> {
    const [row] = await this.store.query<PrincipalRow>(`SELECT ${COLUMNS} FROM principals WHERE id = ?`, [id]);
    return row === undefined ? undefined : fromRow(row);
  }

  async require(id: string): Promise<Principal> {
    const p = await this.get(id);
    if (p === undefined) throw new MandateError('ERR_NOT_FOUND', `no principal "${id}"`);
    return p;
  }

  async list(options: ListPrincipalsOptions = {}): Promise<Principal[]> {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), 1000);
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (options.actorType !== undefined) {
      where.push('actor_type = ?');
      params.push(options.actorType);
    }
    if (options.after !== undefined) {
      where.push('id > ?');
      params.push(options.after);
    }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const rows = await this.store.query<PrincipalRow>(`SELECT ${COLUMNS} FROM principals ${clause} ORDER BY id LIMIT ?`, [
      ...params,
      limit,
    ]);
    return rows.map(fromRow);
  }

  async update(id: string, patch: PrincipalPatch): Promise<Principal> {
    const updated = await this.store.transaction(async (tx) => {
      const [row] = await tx.query<PrincipalRow>(`SELECT ${COLUMNS} FROM principals WHERE id = ?`, [id]);
      if (row === undefined) throw new MandateError('ERR_NOT_FOUND', `no principal "${id}"`);
      const current = fromRow(row);
      const next = { ...current, ...stripUndefined(patch), updatedAt: this.clock.now() };
      if (next.actorType === 'agent' && next.owner === undefined) {
        throw new MandateError('ERR_VALIDATION', 'an agent must have an owner');
      }
      await tx.run(
        'UPDATE principals SET display_name = ?, owner = ?, environment = ?, status = ?, roles = ?, attributes = ?, updated_at = ? WHERE id = ?',
        [
          next.displayName,
          next.owner ?? null,
          next.environment ?? null,
          next.status,
          JSON.stringify(next.roles),
          JSON.stringify(next.attributes),
          next.updatedAt,
          id,
        ],
      );
      await this.changes?.publish(tx, PRINCIPAL_TOPIC, id, { op: 'updated' });
      return next;
    });
    await this.changes?.catchUp();
    return updated;
  }

  async delete(id: string): Promise<boolean> {
    const deleted = await this.store.transaction(async (tx) => {
      const { changes } = await tx.run('DELETE FROM principals WHERE id = ?', [id]);
      if (changes > 0) await this.changes?.publish(tx, PRINCIPAL_TOPIC, id, { op: 'deleted' });
      return changes > 0;
    });
    if (deleted) await this.changes?.catchUp();
    return deleted;
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
