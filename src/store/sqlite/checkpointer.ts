// WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside the COMMIT that
// crosses the threshold, on the committing connection: it copies the WAL into the database file and
// fsyncs both, stalling the event loop for milliseconds every few thousand commits (the tail of a
// governed call's latency). The store turns the automatic checkpoint off on its own connection and
// this worker thread, with a second connection to the same file, runs PASSIVE checkpoints instead
// (they never wait for or block readers and writers). If the worker cannot start or dies, the store
// turns the automatic checkpoint back on: the WAL never grows without bound.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Checkpoints every this many milliseconds (PASSIVE: a no-op when the WAL holds nothing new). */
const INTERVAL_MS = 1000;

// The worker's source, evaluated as CommonJS in the worker: a string and not a module file, so it
// runs the same from TypeScript sources (tsx) and from the compiled package.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    // SQLITE_BUSY and friends: the next tick tries again. Anything persistent surfaces as the
    // WAL growing, which the owner sees.
  }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'close') return;
  clearInterval(timer);
  try { db.close(); } finally { parentPort.close(); }
});
`;

export interface Checkpointer {
  /** Stops the worker (its connection closes before the store's own, which runs the last checkpoint). */
  close(): Promise<void>;
}

/**
 * Starts the checkpoint worker for the database at `path`. `onLost` runs once if the worker fails
 * or exits unasked (the store then turns the automatic checkpoint back on).
 */
export function startCheckpointer(path: string, onLost: (err: unknown) => void): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, driver, intervalMs: INTERVAL_MS } });
  let closing = false;
  let lost = false;
  const lose = (err: unknown) => {
    if (closing || lost) return;
    lost = true;
    onLost(err);
  };
  worker.on('error', lose);
  const exited = new Promise<void>((resolve) => {
    worker.once('exit', (code) => {
      lose(new Error(`the WAL checkpoint worker exited (code ${code})`));
      resolve();
    });
  });
  // The worker must not keep a process alive that has nothing else to do.
  worker.unref();
  return {
    async close() {
      if (closing) return exited;
      closing = true;
      // Referenced again while it winds down, so the process waits for its connection to close.
      worker.ref();
      worker.postMessage('close');
      await exited;
    },
  };
}
