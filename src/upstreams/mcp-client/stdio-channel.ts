// MCP over a child process's stdin/stdout: newline-delimited JSON-RPC, responses matched to
// requests by id (many in flight at once), cancellation by `notifications/cancelled`. A hostile
// or broken upstream cannot hurt the gateway through this channel: garbage lines are skipped,
// an oversized line is dropped without being buffered, and a dead process fails every pending
// request at once.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  abortedError,
  answerServerRequest,
  asResponse,
  asServerRequest,
  CALLER_ABORTED,
  type Channel,
  type RequestOptions,
  rpcErrorOf,
  TIMED_OUT,
  timeoutError,
} from './channel.js';
import { encodeNotification } from './era.js';
import { UpstreamCallError } from './errors.js';

export interface StdioSpec {
  readonly command: string;
  readonly args: readonly string[];
  /** The complete environment of the child (see safeEnvironment). */
  readonly env: Record<string, string>;
  readonly cwd?: string;
  readonly maxMessageBytes: number;
}

// The variables a stdio upstream inherits from the gateway (the same list as the MCP SDK's
// getDefaultEnvironment, after sudo's): nothing else of the gateway's environment leaks.
const INHERITED = ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER'];

/** The minimal safe inherited environment, then the upstream's own env, then its credential env. */
export function safeEnvironment(...layers: (Record<string, string> | undefined)[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of INHERITED) {
    const v = process.env[key];
    // A value starting with "()" is an exported shell function: never inherited.
    if (v !== undefined && !v.startsWith('()')) env[key] = v;
  }
  for (const layer of layers) Object.assign(env, layer);
  return env;
}

interface Pending {
  readonly resolve: (result: unknown) => void;
  readonly reject: (err: UpstreamCallError) => void;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

/** Most bytes written to a child and not yet read by it before the child is given up. */
const MAX_UNREAD_BYTES = 16 * 1024 * 1024;

/** Head and tail kept of an oversized line, to find which request it answered. */
const KEEP = 96;

export class StdioChannel implements Channel {
  onclose: (() => void) | undefined;
  readonly #child: ChildProcess;
  readonly #max: number;
  readonly #pending = new Map<number, Pending>();
  #buf = '';
  // Oversized-line state: while skipping, only the line's head, tail and length are kept.
  #skipping = false;
  #skipHead = '';
  #skipTail = '';
  #skipLength = 0;
  #closed = false;
  #terminating: Promise<void> | undefined;
  readonly #exit: Promise<void>;

  private constructor(child: ChildProcess, maxMessageBytes: number) {
    this.#child = child;
    this.#max = maxMessageBytes;
    this.#exit = new Promise((resolve) => child.once('close', () => resolve()));
    child.once('close', (code, signal) => this.#dead(`the upstream process exited (${signal ?? `code ${code}`})`));
    child.on('error', () => this.#dead('the upstream process failed'));
    child.stdin?.on('error', () => this.#dead('the upstream process closed its input'));
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => this.#onData(chunk));
    child.stdout?.on('error', () => this.#dead('the upstream process output failed'));
  }

  /** Starts the process; rejects (kind 'unavailable') when it cannot be started. */
  static async spawn(spec: StdioSpec): Promise<StdioChannel> {
    const child = spawn(spec.command, [...spec.args], {
      env: spec.env,
      // Upstream stderr may echo its secrets; it never reaches our logs.
      stdio: ['pipe', 'pipe', 'ignore'],
      shell: false,
      windowsHide: true,
      ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(new UpstreamCallError('unavailable', `the upstream process could not be started (${err.code ?? 'error'})`, { cause: err })),
      );
    });
    return new StdioChannel(child, spec.maxMessageBytes);
  }

  exchange(id: number, _method: string, _name: string | undefined, body: string, opts: RequestOptions): Promise<unknown> {
    if (this.#closed) return Promise.reject(new UpstreamCallError('unavailable', 'the upstream process is gone'));
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(abortedError());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#abandon(id, TIMED_OUT, opts.timeoutMs), opts.timeoutMs);
      let onAbort: (() => void) | undefined;
      if (signal !== undefined) {
        onAbort = () => this.#abandon(id, CALLER_ABORTED, opts.timeoutMs);
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.#pending.set(id, { resolve, reject, timer, signal, onAbort });
      this.#write(`${body}\n`);
    });
  }

  async notify(body: string): Promise<void> {
    if (!this.#closed) this.#write(`${body}\n`);
  }

  async close(): Promise<void> {
    this.#dead('the upstream connection was closed');
    await this.#terminate();
  }

  /** Ends the process (once): close its input, wait, then SIGTERM, then SIGKILL (spec, stdio Shutdown). */
  #terminate(): Promise<void> {
    this.#terminating ??= (async () => {
      const child = this.#child;
      const running = (): boolean => child.exitCode === null && child.signalCode === null;
      child.stdin?.end();
      if (running() && !(await exitsWithin(this.#exit, 2000))) {
        child.kill('SIGTERM');
        if (running() && !(await exitsWithin(this.#exit, 2000))) child.kill('SIGKILL');
      }
    })();
    return this.#terminating;
  }

  #write(line: string): void {
    const stdin = this.#child.stdin;
    if (stdin === null) return;
    // A process that stops reading would make us buffer every request for it without end.
    if (stdin.writableLength > MAX_UNREAD_BYTES) {
      this.#dead('the upstream process stopped reading its input');
      return;
    }
    try {
      stdin.write(line);
    } catch {
      this.#dead('the upstream process closed its input');
    }
  }

  /** Stops waiting for `id`; the upstream is told, as the stdio binding requires. */
  #abandon(id: number, why: typeof TIMED_OUT | typeof CALLER_ABORTED, timeoutMs: number): void {
    const p = this.#settle(id);
    if (p === undefined) return;
    const reason = why === TIMED_OUT ? `no answer within ${timeoutMs} ms` : 'cancelled by the caller';
    this.#write(`${encodeNotification('notifications/cancelled', { requestId: id, reason })}\n`);
    p.reject(why === TIMED_OUT ? timeoutError(timeoutMs) : abortedError());
  }

  #settle(id: number): Pending | undefined {
    const p = this.#pending.get(id);
    if (p === undefined) return undefined;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort);
    return p;
  }

  #dead(why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of [...this.#pending.keys()]) this.#settle(id)?.reject(new UpstreamCallError('unavailable', why));
    const cb = this.onclose;
    this.onclose = undefined;
    cb?.();
    // A process that broke the channel but still runs (closed its input, stopped reading) is ended too.
    void this.#terminate();
  }

  #onData(chunk: string): void {
    let start = 0;
    let nl = chunk.indexOf('\n');
    while (nl !== -1) {
      const piece = chunk.slice(start, nl);
      if (this.#skipping) {
        this.#skipLength += piece.length;
        this.#oversized(this.#skipHead, (this.#skipTail + piece).slice(-KEEP), this.#skipLength);
        this.#skipping = false;
      } else if (this.#buf.length > 0) {
        const line = this.#buf + piece;
        this.#buf = '';
        this.#line(line);
      } else {
        this.#line(piece);
      }
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
    }
    if (start < chunk.length) this.#append(start === 0 ? chunk : chunk.slice(start));
  }

  #append(s: string): void {
    if (this.#skipping) {
      this.#skipLength += s.length;
      this.#skipTail = (this.#skipTail + s).slice(-KEEP);
    } else if (this.#buf.length + s.length > this.#max) {
      const partial = this.#buf + s;
      this.#buf = '';
      this.#skipping = true;
      this.#skipHead = partial.slice(0, KEEP);
      this.#skipTail = partial.slice(-KEEP);
      this.#skipLength = partial.length;
    } else {
      this.#buf += s;
    }
  }

  #line(raw: string): void {
    if (raw.length > this.#max) {
      this.#oversized(raw.slice(0, KEEP), raw.slice(-KEEP), raw.length);
      return;
    }
    // Anything that is not a JSON object is noise from a broken server: skipped, never fatal.
    const line = raw.trim();
    if (line.charCodeAt(0) !== 123 /* { */) return;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    const res = asResponse(msg);
    if (res !== undefined) {
      if (typeof res.id !== 'number') return;
      const p = this.#settle(res.id);
      if (p === undefined) return; // late answer to a cancelled or timed-out request
      if ('error' in res) p.reject(rpcErrorOf(res.error));
      else p.resolve(res.result);
      return;
    }
    const req = asServerRequest(msg);
    if (req !== undefined) this.#write(`${answerServerRequest(req)}\n`);
    // Notifications (progress, logging, list changes) are not used by the gateway.
  }

  /** An over-limit line is never parsed; if its id is recognisable, that request fails now. */
  #oversized(head: string, tail: string, length: number): void {
    const m = /^\s*\{\s*"jsonrpc"\s*:\s*"2\.0"\s*,\s*"id"\s*:\s*(\d{1,15})\s*,/.exec(head) ?? /"id"\s*:\s*(\d{1,15})\s*\}\s*$/.exec(tail);
    if (m?.[1] === undefined) return;
    this.#settle(Number(m[1]))?.reject(
      new UpstreamCallError('rpc', `the upstream answered with a ${length}-character message, over the ${this.#max}-byte limit`),
    );
  }
}

async function exitsWithin(exit: Promise<void>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    t = setTimeout(() => resolve(false), ms);
    t.unref();
  });
  const r = await Promise.race([exit.then(() => true as const), timedOut]);
  clearTimeout(t);
  return r;
}
