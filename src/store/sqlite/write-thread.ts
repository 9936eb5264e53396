// The embedded store's writer thread. better-sqlite3 runs statements synchronously, so every INSERT
// of a hot-path write batch (the audit log's group-committed appends, new mandates' rows) and the
// COMMIT that writes its pages to the WAL ran on the event loop: about a fifth of a governed call's CPU. A write batch is
// a fixed list of statements with no reads between them (src/store/write-batch.ts), so it can run
// anywhere: here, on a second connection to the same file in a worker thread, which also fdatasyncs
// the WAL before it answers (the same durability as the event-loop connection's WalSync: a batch is
// reported applied only once it is on stable storage); batches that arrive during a sync are
// committed together after it and share the next one. A batch may ask to hear of its COMMIT too,
// before that fdatasync: it is then safe from a crash of the broker, not yet from a power loss.
//
// SQLite serializes the two connections' writes with its own write lock. The thread waits for the
// lock with the store's busy timeout; that wait blocks only the thread. If the thread cannot start
// or dies, `lost` turns true, its unanswered batches fail with ERR_STORE_UNAVAILABLE (they may or may
// not have committed: a caller treats them like a lost commit acknowledgement), and the store runs
// later batches on the event-loop connection again.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { StoreError } from '../../errors/index.js';
import type { SqlValue } from '../types.js';
import type { WriteStatement } from '../write-batch.js';
import { translate } from './errors.js';

// The worker's source, evaluated as CommonJS in the worker: a string and not a module file, so it
// runs the same from TypeScript sources (tsx) and from the compiled package.
const WORKER_SOURCE = `
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const { openSync, fdatasyncSync, closeSync } = require('node:fs');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('synchronous = NORMAL');
db.pragma('foreign_keys = ON');
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
// The store's checkpoint worker keeps the WAL bounded; 'autocheckpoint' turns SQLite's own back on.
db.pragma('wal_autocheckpoint = 0');
const cache = new Map();
function prepared(sql) {
  let statement = cache.get(sql);
  if (statement === undefined) {
    if (cache.size >= 256) cache.clear();
    statement = db.prepare(sql);
    cache.set(sql, statement);
  }
  return statement;
}
// Durability as in wal-sync.ts: an fdatasync of the WAL that started after a batch's COMMIT makes
// it durable, and one covers every commit before it. This thread does nothing else, so it syncs
// synchronously (no hop to libuv's pool and back): the batches that arrive meanwhile wait in the
// port and are committed together after it, then share the next sync.
let wal;
function syncWal() {
  try {
    if (wal === undefined) wal = openSync(workerData.path + '-wal', 'r');
    fdatasyncSync(wal);
    return undefined;
  } catch (err) {
    if (wal !== undefined) try { closeSync(wal); } catch {}
    wal = undefined;
    return err;
  }
}
function apply(statements) {
  db.exec('BEGIN IMMEDIATE');
  try {
    for (const s of statements) {
      const { changes } = prepared(s.sql).run(s.params);
      if (s.expectChanges !== undefined && changes !== s.expectChanges) {
        db.exec('ROLLBACK');
        return false;
      }
    }
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) {
      try { db.exec('ROLLBACK'); } catch {}
    }
    throw err;
  }
  return true;
}
let closing = false;
let finished = false;
function finish() {
  if (finished) return;
  finished = true;
  try {
    if (wal !== undefined) closeSync(wal);
    wal = undefined;
    db.close();
  } finally {
    parentPort.close();
  }
}
/** Most messages committed before one sync (each is a whole group-committed batch). */
const ROUND = 64;
parentPort.on('message', (first) => {
  if (finished) return;
  const applied = [];
  for (let m = first, n = 0; m !== undefined; n++) {
    if (m.type === 'close') closing = true;
    else if (m.type === 'autocheckpoint') db.pragma('wal_autocheckpoint = 1000');
    else {
      try {
        if (apply(m.statements)) {
          // Committed: visible and safe from a crash of the broker; a batch that asked hears it now.
          if (m.early) parentPort.postMessage({ id: m.id, committed: true });
          applied.push(m.id);
        } else parentPort.postMessage({ id: m.id, applied: false });
      } catch (err) {
        parentPort.postMessage({ id: m.id, error: { code: err && err.code, message: String(err && err.message) } });
      }
    }
    const next = n + 1 < ROUND ? receiveMessageOnPort(parentPort) : undefined;
    m = next === undefined ? undefined : next.message;
  }
  if (applied.length > 0) {
    const err = syncWal();
    for (const id of applied) {
      parentPort.postMessage(err ? { id, error: { code: err.code, message: String(err.message), sync: true } } : { id, applied: true });
    }
  }
  if (closing) finish();
});
`;

interface Waiting {
  readonly resolve: (applied: boolean) => void;
  readonly reject: (err: unknown) => void;
  readonly onCommitted: (() => void) | undefined;
}

type Reply =
  | { id: number; applied: boolean }
  | { id: number; committed: true }
  | { id: number; error: { code?: string; message: string; sync?: boolean } };

/**
 * Parameters as the thread gets them: booleans as 0/1, and bytes in an ArrayBuffer of their own. A
 * small Buffer is usually a view on Node's shared 8 KiB pool, and postMessage copies a view's whole
 * ArrayBuffer: without the copy, every hash in a batch would carry 8 KiB across.
 */
function bindParam(p: SqlValue): SqlValue {
  if (typeof p === 'boolean') return p ? 1 : 0;
  if (p instanceof Uint8Array && p.byteLength !== p.buffer.byteLength) return new Uint8Array(p);
  return p;
}

function bind(statements: readonly WriteStatement[]): WriteStatement[] {
  return statements.map((s) => ({ ...s, params: s.params.map(bindParam) }));
}

export class WriteThread {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, Waiting>();
  readonly #exited: Promise<void>;
  #next = 0;
  #lost = false;
  #closing = false;

  constructor(path: string, busyTimeoutMs: number) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, driver, busyTimeoutMs } });
    this.#worker.on('message', (reply: Reply) => this.#answer(reply));
    this.#worker.on('error', (err) => this.#lose(err));
    this.#exited = new Promise((resolve) => {
      this.#worker.once('exit', (code) => {
        this.#lose(new Error(`the SQLite writer thread exited (code ${code})`));
        resolve();
      });
    });
    // Referenced only while a batch waits for its answer: an idle thread keeps no process alive.
    this.#worker.unref();
  }

  /** True once the thread failed or stopped: the store writes on its own connection again. */
  get lost(): boolean {
    return this.#lost;
  }

  /** Applies a write batch (see `Store.writeBatch`); `onCommitted` hears of its COMMIT before its fdatasync. */
  write(statements: readonly WriteStatement[], onCommitted?: () => void): Promise<boolean> {
    if (this.#lost) return Promise.reject(new StoreError('ERR_STORE_UNAVAILABLE', 'the SQLite writer thread stopped'));
    return new Promise((resolve, reject) => {
      const id = ++this.#next;
      if (this.#waiting.size === 0) this.#worker.ref();
      this.#waiting.set(id, { resolve, reject, onCommitted });
      this.#worker.postMessage({ type: 'batch', id, statements: bind(statements), early: onCommitted !== undefined });
    });
  }

  /** After a lost checkpoint worker: SQLite checkpoints in COMMIT again, so the WAL stays bounded. */
  checkpointInCommit(): void {
    if (!this.#lost && !this.#closing) this.#worker.postMessage({ type: 'autocheckpoint' });
  }

  /** Answers the batches already sent, then closes the thread's connection. */
  async close(): Promise<void> {
    if (!this.#closing && !this.#lost) {
      this.#closing = true;
      this.#worker.ref();
      this.#worker.postMessage({ type: 'close' });
    }
    await this.#exited;
  }

  #answer(reply: Reply): void {
    const waiting = this.#waiting.get(reply.id);
    if (waiting === undefined) return;
    if ('committed' in reply) {
      waiting.onCommitted?.();
      return;
    }
    this.#waiting.delete(reply.id);
    if (this.#waiting.size === 0 && !this.#closing) this.#worker.unref();
    if (!('error' in reply)) {
      waiting.resolve(reply.applied);
      return;
    }
    const err = Object.assign(new Error(reply.error.message), { code: reply.error.code });
    // A failed fdatasync (EIO, ENOSPC): committed, not durable — the same answer as the event-loop connection's WalSync.
    waiting.reject(
      reply.error.sync
        ? new StoreError('ERR_STORE_UNAVAILABLE', 'the SQLite write-ahead log could not be synced to disk', { cause: err })
        : translate(err),
    );
  }

  #lose(err: unknown): void {
    if (this.#lost) return;
    this.#lost = true;
    for (const waiting of this.#waiting.values()) {
      waiting.reject(new StoreError('ERR_STORE_UNAVAILABLE', 'the SQLite writer thread stopped', { cause: err }));
    }
    this.#waiting.clear();
  }
}
