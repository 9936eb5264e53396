// Starts scripts/fuzz/broker.ts as a child process and waits for its READY line; keeps the tail of its
// stderr for the report and tells whether it is still alive.
import { type ChildProcess, spawn } from 'node:child_process';
import type { BrokerInfo } from './types.js';

const SCRIPT = new URL('./broker.ts', import.meta.url).pathname;

export interface BrokerProcess {
  readonly info: BrokerInfo;
  readonly child: ChildProcess;
  /** Exit code or signal once the process has died; undefined while it runs. */
  exited(): string | undefined;
  stderr(): string;
  stop(): Promise<void>;
}

export function startBroker(): Promise<BrokerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let exit: string | undefined;
  child.stderr?.on('data', (c) => {
    err = (err + c).slice(-20_000);
  });
  child.once('exit', (code, signal) => {
    exit = signal ?? `exit ${code}`;
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c) => {
      // After READY, stdout carries the broker's JSON log lines (errors only): keep their tail too.
      if (out.includes('\n')) err = (err + c).slice(-20_000);
      out += c;
      const m = /READY (.*)\n/.exec(out);
      if (m === null) return;
      resolve({
        info: JSON.parse(m[1] as string) as BrokerInfo,
        child,
        exited: () => exit,
        stderr: () => err,
        stop: async () => {
          if (exit !== undefined) return;
          const gone = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await gone;
          clearTimeout(t);
        },
      });
    });
    child.once('exit', (code) => reject(new Error(`fuzz broker exited with ${code} before it was ready:\n${err.slice(-4000)}`)));
  });
}
