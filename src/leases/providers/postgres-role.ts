// PostgreSQL dynamic roles: per mandate a LOGIN role with a generated password and VALID UNTIL the
// mandate's expiry, granted from the upstream's templates, handed over as a connection string. At
// the end: LOGIN withdrawn, its sessions terminated, owned objects dropped or reassigned, role dropped.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { LeaseProvider, LeaseRequest, ObtainedLease, RevokeRequest } from '../provider.js';
import { injectSecret } from './inject.js';

type Config = Extract<import('../lease.js').LeaseConfig, { type: 'postgres-role' }>;

/** Most roles dropped in one transaction. */
const MAX_BATCH = 100;
/** Advisory lock key serializing lease grants and drops (catalog ACL rows) across replicas: 'mlea'. */
const ACL_LOCK = 0x6d6c6561;

/** Role names are ours (prefix + random lowercase), so quoting is belt and braces, never the only defence. */
const ROLE = /^[a-z][a-z0-9_]{1,62}$/;

export class PostgresRoleProvider implements LeaseProvider {
  readonly type = 'postgres-role' as const;
  readonly #c: Config;
  readonly #pool: pg.Pool;

  constructor(config: Config) {
    this.#c = config;
    this.#pool = new pg.Pool({ connectionString: config.adminUrl, max: 4, connectionTimeoutMillis: 5000, idleTimeoutMillis: 10_000 });
    // An idle admin connection that dies (server restart) must not crash the broker.
    this.#pool.on('error', () => {});
  }

  prepare(): Readonly<Record<string, string>> {
    // 20 random base32 characters (100 bits): unguessable and a valid unquoted identifier.
    const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
    const suffix = [...randomBytes(20)].map((b) => alphabet[b & 31]).join('');
    return { role: `${this.#c.rolePrefix}${suffix}` };
  }

  async obtain(request: LeaseRequest): Promise<ObtainedLease> {
    const role = roleOf(request.handle);
    const password = randomBytes(24).toString('base64url');
    const validUntil = new Date(request.notAfter).toISOString();
    const client = await this.#pool.connect();
    try {
      const ident = client.escapeIdentifier(role);
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [ACL_LOCK]);
      // DDL takes no bind parameters: the password and timestamp are escaped literals, the name a quoted identifier.
      await client.query(
        `CREATE ROLE ${ident} LOGIN NOINHERIT CONNECTION LIMIT ${this.#c.connectionLimit} PASSWORD ${client.escapeLiteral(password)} VALID UNTIL ${client.escapeLiteral(validUntil)}`,
      );
      // Templates are operator configuration; the only substitution is our own, quoted role name.
      for (const grant of this.#c.grants) await client.query(grant.replaceAll('{{role}}', ident));
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw new Error(`creating role ${role} failed: ${pgMessage(err).replaceAll(password, '[redacted]')}`);
    } finally {
      client.release();
    }
    const url = this.#c.connectionUrl
      .replaceAll('{{role}}', encodeURIComponent(role))
      .replaceAll('{{password}}', encodeURIComponent(password));
    return {
      credential: injectSecret(this.#c.inject, url),
      secrets: [password, url],
      details: { role, validUntil },
      expiresAt: request.notAfter,
    };
  }

  /**
   * Queued and dropped in batches: when many mandates end together (a cascade, a burst), one
   * transaction drops them all. Grants and drops rewrite the same catalog rows (the ACL of a shared
   * schema), which concurrent transactions would fail on ("tuple concurrently updated"), so they
   * are also serialized across replicas by a transaction-scoped advisory lock.
   */
  revoke(request: RevokeRequest): Promise<void> {
    const role = roleOf(request.handle);
    return new Promise((resolve, reject) => {
      this.#queue.push({ role, resolve, reject });
      void this.#drain();
    });
  }

  readonly #queue: { role: string; resolve: () => void; reject: (err: Error) => void }[] = [];
  #draining = false;

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      // One turn of the event loop first, so revocations arriving together (mandates ending in one
      // burst) start as one batch rather than a batch of one that the rest then waits behind.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        try {
          await this.#dropAll(batch.map((b) => b.role));
          for (const b of batch) b.resolve();
        } catch {
          // One role's failure must not fail the others: each alone, with its own outcome.
          for (const b of batch) {
            await this.#dropAll([b.role]).then(b.resolve, (err: unknown) => b.reject(err instanceof Error ? err : new Error(String(err))));
          }
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  async #dropAll(roles: readonly string[]): Promise<void> {
    const client = await this.#pool.connect();
    try {
      const existing = (await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [roles])).rows.map(
        (r) => r.rolname,
      );
      if (existing.length === 0) return; // never created (crash before commit) or already dropped
      const idents = existing.map((r) => client.escapeIdentifier(r));
      // No new sessions from here on (one round trip, one commit for the batch), then end the existing ones.
      await client.query(`BEGIN; ${idents.map((i) => `ALTER ROLE ${i} NOLOGIN;`).join(' ')} COMMIT;`);
      await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1) AND pid <> pg_backend_pid()', [
        existing,
      ]);
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [ACL_LOCK]);
      const list = idents.join(', ');
      if (this.#c.ownedObjects === 'reassign' && this.#c.reassignTo !== undefined) {
        await client.query(`REASSIGN OWNED BY ${list} TO ${client.escapeIdentifier(this.#c.reassignTo)}`);
      }
      // Drops what is left (objects, or after a reassign just their privileges) in this database.
      await client.query(`DROP OWNED BY ${list}`);
      await client.query(`DROP ROLE IF EXISTS ${list}`);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw new Error(`dropping ${roles.length === 1 ? `role ${roles[0]}` : `${roles.length} roles`} failed: ${pgMessage(err)}`);
    } finally {
      client.release();
    }
  }

  /** Whether the role still exists (benchmarks and tests). */
  async roleExists(role: string): Promise<boolean> {
    return ((await this.#pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount ?? 0) > 0;
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => {});
  }
}

function roleOf(handle: Readonly<Record<string, string>>): string {
  const role = handle.role;
  if (role === undefined || !ROLE.test(role)) throw new Error('the lease handle names no valid role');
  return role;
}

/** PostgreSQL's message and SQLSTATE, never the statement (it may hold the password literal). */
function pgMessage(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? ` (${e.code})` : '';
  return `${typeof e.message === 'string' ? e.message.slice(0, 200) : 'error'}${code}`;
}
