// Starts scripts/fuzz/broker.ts as a child process and waits for its READY line; keeps the tail of
// its output (error-level JSON logs after READY) and, per request id, the error the broker logged,
// so that each 5xx can be reported with its cause.
import { type ChildProcess, spawn } from 'node:child_process';
import type { BrokerInfo } from './types.js';

const SCRIPT = new URL('./broker.ts', import.meta.url).pathname;
const TAIL = 20_000;
/** Request ids whose logged error is remembered (oldest forgotten first). */
const MAX_CAUSES = 20_000;

export interface BrokerProcess {
  readonly info: BrokerInfo;
  readonly child: ChildProcess;
  /** Exit code or signal once the process has died; undefined while it runs. */
  exited(): string | undefined;
  /** The last lines the broker wrote (logs and stderr). */
  stderr(): string;
  /** The error the broker logged while answering request `reqId`, if any. */
  cause(reqId: string): string | undefined;
  stop(): Promise<void>;
}

export function startBroker(): Promise<BrokerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  let exit: string | undefined;
  const causes = new Map<string, string>();
  const keep = (text: string) => {
    tail = (tail + text).slice(-TAIL);
  };
  child.stderr?.on('data', (c) => keep(String(c)));
  child.once('exit', (code, signal) => {
    exit = signal ?? `exit ${code}`;
  });
  const onLogLine = (line: string) => {
    keep(`${line}\n`);
    try {
      const entry = JSON.parse(line) as { reqId?: string; msg?: string; err?: { code?: string; type?: string; message?: string } | string };
      if (entry.reqId === undefined) return;
      const err = entry.err;
      const what = typeof err === 'string' ? err : `${err?.code ?? err?.type ?? ''}: ${(err?.message ?? entry.msg ?? '').slice(0, 120)}`;
      causes.set(entry.reqId, what);
      if (causes.size > MAX_CAUSES) causes.delete(causes.keys().next().value as string);
    } catch {}
  };
  return new Promise((resolve, reject) => {
    let ready = false;
    let pending = '';
    child.stdout?.on('data', (c) => {
      pending += String(c);
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
        if (ready) {
          onLogLine(line);
          continue;
        }
        if (!line.startsWith('READY ')) continue;
        ready = true;
        resolve({
          info: JSON.parse(line.slice('READY '.length)) as BrokerInfo,
          child,
          exited: () => exit,
          stderr: () => tail,
          cause: (reqId) => causes.get(reqId),
          stop: async () => {
            if (exit !== undefined) return;
            const gone = new Promise((r) => child.once('exit', r));
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
            await gone;
            clearTimeout(t);
          },
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`fuzz broker exited with ${code} before it was ready:\n${tail.slice(-4000)}`)));
  });
}
