// Versioned schema migrations, applied in order at start and by `mandate migrate`.
// Each migration is portable SQL produced per dialect; never edit one that has shipped.
import type { Dialect } from '../types.js';
import { m0001Principals } from './0001_principals.js';
import { m0002Changes } from './0002_changes.js';

export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly up: (sql: SqlTypes) => string;
}

/** Column types that differ between SQLite and PostgreSQL. */
export interface SqlTypes {
  readonly dialect: Dialect;
  readonly bigint: string;
  readonly blob: string;
  /** An auto-incrementing 64-bit primary key column definition. */
  readonly serialPk: string;
}

export function sqlTypes(dialect: Dialect): SqlTypes {
  return dialect === 'sqlite'
    ? { dialect, bigint: 'INTEGER', blob: 'BLOB', serialPk: 'INTEGER PRIMARY KEY AUTOINCREMENT' }
    : { dialect, bigint: 'BIGINT', blob: 'BYTEA', serialPk: 'BIGSERIAL PRIMARY KEY' };
}

export const migrations: readonly Migration[] = [m0001Principals, m0002Changes];
