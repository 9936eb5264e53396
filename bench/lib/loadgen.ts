// The gateway benchmarks' load generator, in its own process so it shares no event loop with the
// broker, the upstream or the parent that analyses profiles. Raw HTTP/1.1 over keep-alive
// sockets (node:http, no SDK client), request bodies cut from a template built once per target,
// the same code for the direct and the gateway path. Driven by its parent over IPC; each run
// reports its own CPU time so a reader can tell whether the generator was the bottleneck.
//
//   const gen = await startLoadgen();  await gen.closed(target, { seconds: 5, concurrency: 16 });
import { type ChildProcess, spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { type BodyTemplate, callBody, callTemplate, resultProblem, type Target } from './mcp-wire.js';
import { percentile } from './stats.js';

const SELF = fileURLToPath(import.meta.url);

export interface RunResult {
  /** Successful calls. */
  readonly calls: number;
  /** Calls that failed (HTTP error, refusal, upstream error, socket error). */
  readonly errors: number;
  readonly firstError?: string;
  /** Successful calls per second of wall time. */
  readonly rate: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** Open loop: how late the generator sent (ms, p99); a late generator hides queueing. */
  readonly lagP99?: number;
  /** The generator's own CPU time per successful call (µs, user + system). */
  readonly genCpuUsPerCall: number;
  /** The generator's CPU use over the run, in cores. */
  readonly genCores: number;
  readonly seconds: number;
}

// ── the generator process ──
/** A keep-alive HTTP client sending `tools/call` to `target`; `call` resolves to why it failed, or undefined. */
export function client(target: Target, maxSockets: number) {
  const url = new URL(target.url);
  const agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' });
  const template: BodyTemplate = callTemplate(target);
  const base = { hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent };
  return {
    agent,
    call(id: number): Promise<string | undefined> {
      const body = callBody(template, id);
      return new Promise((resolve) => {
        const req = request({ ...base, headers: { ...target.headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (data += c));
          res.on('end', () => resolve(resultProblem(res.statusCode ?? 0, data)));
        });
        req.on('error', (err) => resolve(`socket: ${err.message}`));
        req.end(body);
      });
    },
  };
}

function finish(lat: number[], errors: number, firstError: string | undefined, t0: number, cpu0: NodeJS.CpuUsage, lag?: number[]) {
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = cpu.user + cpu.system;
  const sorted = lat.sort((a, b) => a - b);
  return {
    calls: lat.length,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    rate: lat.length / secs,
    p50: percentile(sorted, 0.5, true),
    p90: percentile(sorted, 0.9, true),
    p99: percentile(sorted, 0.99, true),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    ...(lag === undefined ? {} : { lagP99: percentile(lag, 0.99) }),
    genCpuUsPerCall: cpuUs / Math.max(1, lat.length),
    genCores: cpuUs / 1e6 / secs,
    seconds: secs,
  } satisfies RunResult;
}

let nextId = 10;

/** Closed loop: `concurrency` callers, each sending its next call when its last one is answered. */
async function closed(target: Target, seconds: number, concurrency: number): Promise<RunResult> {
  const c = client(target, concurrency);
  const lat: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        const problem = await c.call(nextId++);
        if (problem === undefined) lat.push(performance.now() - s);
        else {
          errors++;
          firstError ??= problem;
        }
      }
    }),
  );
  const r = finish(lat, errors, firstError, t0, cpu0);
  c.agent.destroy();
  return r;
}

/**
 * Open loop at a fixed rate: calls are sent on schedule whether or not earlier ones were answered,
 * so a slow gateway shows as latency, not as a lower offered rate. Latency runs from the actual
 * send; the lag of sends behind schedule is reported beside it.
 */
async function open(target: Target, rate: number, seconds: number): Promise<RunResult> {
  const c = client(target, 512);
  const lat: number[] = [];
  const lag: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const total = Math.round(rate * seconds);
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < total; ) {
    const now = performance.now();
    // Send everything due (more than one only if the timer fired late), then sleep to the next.
    while (i < total && t0 + (i * 1000) / rate <= now) {
      lag.push(now - (t0 + (i * 1000) / rate));
      const s = performance.now();
      pending.push(
        c.call(nextId++).then((problem) => {
          if (problem === undefined) lat.push(performance.now() - s);
          else {
            errors++;
            firstError ??= problem;
          }
        }),
      );
      i++;
    }
    if (i < total) await new Promise((r) => setTimeout(r, Math.max(0, t0 + (i * 1000) / rate - performance.now())));
  }
  await Promise.all(pending);
  const r = finish(lat, errors, firstError, t0, cpu0, lag);
  c.agent.destroy();
  return r;
}

type Command =
  | { cmd: 'closed'; id: number; target: Target; seconds: number; concurrency: number }
  | { cmd: 'open'; id: number; target: Target; seconds: number; rate: number };

function serve(): void {
  process.on('message', (m: Command) => {
    const run = m.cmd === 'closed' ? closed(m.target, m.seconds, m.concurrency) : open(m.target, m.rate, m.seconds);
    void run.then((result) => process.send?.({ id: m.id, result }));
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ ready: true });
}

// ── the parent's side ──
export interface Loadgen {
  readonly pid: number;
  closed(target: Target, o: { seconds: number; concurrency: number }): Promise<RunResult>;
  open(target: Target, o: { seconds: number; rate: number }): Promise<RunResult>;
  close(): Promise<void>;
}

export async function startLoadgen(): Promise<Loadgen> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', SELF, 'serve'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`load generator exited with ${code}`)));
  });
  let seq = 0;
  const ask = (command: Record<string, unknown>) =>
    new Promise<RunResult>((resolve) => {
      const id = ++seq;
      const on = (m: { id?: number; result?: RunResult }) => {
        if (m.id !== id || m.result === undefined) return;
        child.off('message', on);
        resolve(m.result);
      };
      child.on('message', on);
      child.send({ ...command, id });
    });
  return {
    pid: child.pid as number,
    closed: (target, o) => ask({ cmd: 'closed', target, ...o }),
    open: (target, o) => ask({ cmd: 'open', target, ...o }),
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

if (process.argv[1] === SELF && process.argv[2] === 'serve') serve();
