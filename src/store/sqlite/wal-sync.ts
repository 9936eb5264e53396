// Durability for the embedded store without an fsync on the event loop. better-sqlite3 runs
// statements synchronously, so with `synchronous = FULL` every COMMIT blocks the whole process for
// one fsync of the WAL (the largest part of a governed call's latency on a slow disk). Instead the
// connection runs with `synchronous = NORMAL` — a COMMIT only write()s its frames to the WAL, which
// already survives a process crash — and a caller is told its transaction committed only after an
// fdatasync of the WAL file that started after its COMMIT has finished. The fdatasync runs on libuv's
// thread pool, and one fdatasync covers every commit before it (the WAL is appended in order), so
// concurrent commits share it: power loss loses nothing a caller was told is durable.
//
// Checkpoints keep SQLite's own ordering (with NORMAL it syncs the WAL before copying it into the
// database file, and the database file after). The WAL file keeps its inode while this connection is
// open (SQLite deletes it only when the last connection closes), so one descriptor serves for life.
import { close, fdatasync, open } from 'node:fs';
import { promisify } from 'node:util';

const openFile = promisify(open);
const syncFile = promisify(fdatasync);
const closeFile = promisify(close);

/** Flushes a file descriptor's data to stable storage (fdatasync(2); a test passes its own). */
export type SyncFd = (fd: number) => Promise<void>;

export class WalSync {
  readonly #path: string;
  readonly #syncFd: SyncFd;
  #fd: Promise<number> | undefined;
  /** The fdatasync running now; it may have started before the caller's commit. */
  #running: Promise<void> | undefined;
  /** The fdatasync that starts when the running one ends, shared by everyone who committed meanwhile. */
  #queued: Promise<void> | undefined;

  constructor(walPath: string, syncFd: SyncFd = syncFile) {
    this.#path = walPath;
    this.#syncFd = syncFd;
  }

  /** Resolves once everything committed before this call is on stable storage. */
  durable(): Promise<void> {
    if (this.#running === undefined) return this.#start();
    this.#queued ??= this.#running.then(
      () => this.#start(),
      () => this.#start(),
    );
    return this.#queued;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#running, this.#queued]);
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) await fd.then(closeFile, () => {});
  }

  #start(): Promise<void> {
    this.#queued = undefined;
    const run = this.#sync();
    this.#running = run;
    const settle = () => {
      if (this.#running === run) this.#running = undefined;
    };
    run.then(settle, settle);
    return run;
  }

  async #sync(): Promise<void> {
    // Opened at the first commit: the WAL file exists from then on.
    this.#fd ??= openFile(this.#path, 'r');
    let fd: number;
    try {
      fd = await this.#fd;
    } catch (err) {
      this.#fd = undefined;
      throw err;
    }
    await this.#syncFd(fd);
  }
}
