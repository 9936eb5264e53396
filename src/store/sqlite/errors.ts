// SQLite errors as the store's error codes, for the event-loop connection and the writer thread alike.
import { StoreError } from '../../errors/index.js';

const UNAVAILABLE = [
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_IOERR',
  'SQLITE_FULL',
  'SQLITE_CANTOPEN',
  'SQLITE_READONLY',
  'SQLITE_PROTOCOL',
];

export function translate(err: unknown): unknown {
  const code = (err as { code?: string }).code ?? '';
  if (code.startsWith('SQLITE_CONSTRAINT_PRIMARYKEY') || code.startsWith('SQLITE_CONSTRAINT_UNIQUE')) {
    return new StoreError('ERR_STORE_CONFLICT', undefined, { cause: err });
  }
  // better-sqlite3 reports extended result codes (SQLITE_IOERR_WRITE when the file cannot be
  // written, SQLITE_READONLY_DBMOVED, SQLITE_BUSY_SNAPSHOT ...), so match the primary code prefix.
  if (UNAVAILABLE.some((primary) => code === primary || code.startsWith(`${primary}_`))) {
    return new StoreError('ERR_STORE_UNAVAILABLE', undefined, { cause: err });
  }
  return err;
}

/** SQLITE_BUSY (the write lock is held elsewhere), raw or as the StoreError it was translated to. */
export function isBusy(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } }).cause?.code ?? (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

export function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw translate(err);
  }
}
