// An auditor's client for the tlog-tiles layout: with only the pinned vkey (and, for entry bundles,
// a token with audit:read) it fetches the checkpoint and every entry bundle, re-hashes each entry,
// checks that each names its own index, and rebuilds the signed root. Given a checkpoint saved
// earlier, it also checks that the log only grew since (the older root is recomputed from the
// same entries). This is what `mandate audit verify --url` runs.
import { openCheckpoint, parseVkey } from './checkpoint.js';
import { Frontier, hashLeaf } from './merkle.js';

/** Fetches a path under the log prefix (e.g. `checkpoint`, `tile/entries/000`). */
export type TileFetch = (path: string) => Promise<{ status: number; body: Buffer }>;

export interface RemoteVerifyOptions {
  readonly vkey: string;
  readonly fetch: TileFetch;
  /** A checkpoint note saved earlier: the current log must extend it. */
  readonly previous?: string;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface RemoteVerifyReport {
  readonly ok: boolean;
  readonly size: number;
  /** The checkpoint note that was verified (save it for the next run's `previous`). */
  readonly checkpoint?: string;
  readonly reason?: string;
  readonly index?: number;
}

const WIDTH = 256;

/** tlog-tiles index path elements: 1234067 → x001/x234/067. */
export function tileIndexPath(index: number): string {
  const groups: string[] = [];
  let n = index;
  do {
    groups.unshift(String(n % 1000).padStart(3, '0'));
    n = Math.floor(n / 1000);
  } while (n > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

/** Splits an entry bundle into its entries (16-bit big-endian length prefixes). */
export function splitBundle(bundle: Buffer): Buffer[] | undefined {
  const out: Buffer[] = [];
  for (let at = 0; at < bundle.length; ) {
    if (at + 2 > bundle.length) return undefined;
    const len = bundle.readUInt16BE(at);
    if (at + 2 + len > bundle.length) return undefined;
    out.push(bundle.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return out;
}

/** Verifies a remote log through its tiles. Never throws for a bad log: it reports. */
export async function verifyRemoteLog(options: RemoteVerifyOptions): Promise<RemoteVerifyReport> {
  const key = parseVkey(options.vkey);
  const res = await options.fetch('checkpoint');
  if (res.status !== 200) return { ok: false, size: 0, reason: `checkpoint: HTTP ${res.status}` };
  const note = res.body.toString('utf8');
  const c = openCheckpoint(note, key);
  if (typeof c === 'string') return { ok: false, size: 0, reason: `checkpoint: ${c}` };
  let previous: { size: number; root: Buffer } | undefined;
  if (options.previous !== undefined) {
    const p = openCheckpoint(options.previous, key, c.origin);
    if (typeof p === 'string') return { ok: false, size: c.size, reason: `previous checkpoint: ${p}` };
    if (p.size > c.size) return { ok: false, size: c.size, reason: `the log shrank from ${p.size} to ${c.size} entries` };
    previous = p;
  }
  const frontier = new Frontier();
  const checkPrevious = (): RemoteVerifyReport | undefined =>
    previous !== undefined && frontier.size === previous.size && !frontier.root().equals(previous.root)
      ? { ok: false, size: c.size, index: 0, reason: `the first ${previous.size} entries no longer match the previous checkpoint (a fork)` }
      : undefined;
  const forked = checkPrevious();
  if (forked !== undefined) return forked;
  for (let tile = 0; tile * WIDTH < c.size; tile++) {
    const width = Math.min(WIDTH, c.size - tile * WIDTH);
    const path = `tile/entries/${tileIndexPath(tile)}${width < WIDTH ? `.p/${width}` : ''}`;
    const r = await options.fetch(path);
    if (r.status !== 200) return { ok: false, size: c.size, index: tile * WIDTH, reason: `${path}: HTTP ${r.status}` };
    const entries = splitBundle(r.body);
    if (entries === undefined || entries.length !== width) {
      return { ok: false, size: c.size, index: tile * WIDTH, reason: `${path}: malformed entry bundle` };
    }
    for (const entry of entries) {
      const index = frontier.size;
      if (!entry.toString('utf8').endsWith(`,"seq":${index}}`)) {
        return { ok: false, size: c.size, index, reason: `entry ${index} does not name its own index` };
      }
      frontier.push(hashLeaf(entry));
      const bad = checkPrevious();
      if (bad !== undefined) return bad;
    }
    options.onProgress?.(frontier.size, c.size);
  }
  if (!frontier.root().equals(c.root)) return { ok: false, size: c.size, reason: 'the entries do not produce the signed root' };
  return { ok: true, size: c.size, checkpoint: note };
}
