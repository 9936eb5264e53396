// CPU time of processes and of the whole machine, from Linux /proc: what each part of the rig
// (upstream, broker, load generator) and everything else on the machine used during a run; and
// how long the disk takes to make a write durable, which bounds every durably audited call.
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { percentile } from './stats.js';

/** Clock ticks per second of /proc's utime/stime (USER_HZ; 100 on every Linux this runs on). */
const HZ = 100;

/**
 * CPU seconds (user + system) a process has used so far, all threads; with `mainThread`, only its
 * main thread (the event loop; its thread id is the pid). NaN when unreadable.
 */
export function processCpuSeconds(pid: number, mainThread = false): number {
  try {
    const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may hold spaces): utime is the 14th field.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / HZ;
  } catch {
    return Number.NaN;
  }
}

/** Busy CPU seconds of the whole machine so far (all cores; idle and iowait excluded). */
export function machineBusySeconds(): number {
  try {
    const cpu = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
    return (user + nice + system + irq + softirq + steal) / HZ;
  } catch {
    return Number.NaN;
  }
}

/** Measures CPU use of the named processes, of the main thread of the one named `broker`, and of the machine over `during`. */
export async function cpuOver<T>(
  pids: Record<string, number>,
  during: () => Promise<T>,
): Promise<{ result: T; seconds: number; cpu: Record<string, number>; brokerMain: number; machine: number }> {
  const mainPid = pids.broker;
  const main0 = mainPid === undefined ? Number.NaN : processCpuSeconds(mainPid, true);
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processCpuSeconds(pid)]));
  const m0 = machineBusySeconds();
  const t0 = performance.now();
  const result = await during();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processCpuSeconds(pid) - (before[k] as number)]));
  const brokerMain = mainPid === undefined ? Number.NaN : processCpuSeconds(mainPid, true) - main0;
  return { result, seconds, cpu, brokerMain, machine: machineBusySeconds() - m0 };
}

/** fsync latency (ms) of 4 KiB appends in a fresh folder under `dir`: what one durable COMMIT waits for at least. */
export function fsyncLatency(dir: string, n = 40): { p50: number; p99: number } {
  const folder = mkdtempSync(join(dir, 'mandate-bench-fsync-'));
  const fd = openSync(join(folder, 'probe'), 'w');
  const page = Buffer.alloc(4096, 1);
  const lat: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      writeSync(fd, page);
      const t = performance.now();
      fsyncSync(fd);
      lat.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(folder, { recursive: true, force: true });
  }
  return { p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) };
}
