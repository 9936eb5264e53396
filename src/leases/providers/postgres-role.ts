// PostgreSQL dynamic roles: per mandate a LOGIN role with a generated password and VALID UNTIL the
// mandate's expiry, granted from the upstream's templates, handed over as a connection string. At
// the end: LOGIN withdrawn, its sessions terminated, owned objects dropped or reassigned, role dropped.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { LeaseProvider, LeaseRequest, ObtainedLease, RevokeRequest } from '../provider.js';
import { injectSecret } from './inject.js';

type Config = Extract<import('../lease.js').LeaseConfig, { type: 'postgres-role' }>;

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

  async revoke(request: RevokeRequest): Promise<void> {
    const role = roleOf(request.handle);
    const client = await this.#pool.connect();
    try {
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      if (exists.rowCount === 0) return; // never created (crash before commit) or already dropped
      const ident = client.escapeIdentifier(role);
      // No new sessions from here on, then end the existing ones.
      await client.query(`ALTER ROLE ${ident} NOLOGIN`);
      await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()', [role]);
      await client.query('BEGIN');
      if (this.#c.ownedObjects === 'reassign' && this.#c.reassignTo !== undefined) {
        await client.query(`REASSIGN OWNED BY ${ident} TO ${client.escapeIdentifier(this.#c.reassignTo)}`);
      }
      // Drops what is left (objects, or after a reassign just its privileges) in this database.
      await client.query(`DROP OWNED BY ${ident}`);
      await client.query(`DROP ROLE IF EXISTS ${ident}`);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw new Error(`dropping role ${role} failed: ${pgMessage(err)}`);
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
