// Where the broker's per-call CPU goes: a V8 sampling profile (`--cpu-prof` format, taken with the
// inspector Profiler over the throughput phase) turned into self time per area of the call path,
// in µs per governed call, and the top functions. Printed, never asserted.
//
// Attribution. Each sample's leaf frame is charged to an area:
//   1. a source line holding `JSON.parse`/`JSON.stringify` (V8 builtins have no frame of their own:
//      their time is the self time of the line that calls them, which the profile records and
//      this file reads from disk) → JSON. Only in JavaScript libraries: tsx runs Mandate's own
//      TypeScript minified to one line per file and Node's modules are built in, so JSON calls
//      there stay in the area of the function making them;
//   2. else the nearest frame, leaf first, whose file belongs to an area (Mandate's folders, the
//      libraries each area uses): native code (SQLite, hashing) counts for the JavaScript that
//      called it, a shared helper (canonicalize, zod) for whoever used it. Node's socket and HTTP
//      code counts for the upstream client under it, and for the HTTP server otherwise (the /mcp
//      code that writes its answer included);
//   3. else by Node's own file (promise machinery), or V8's pseudo-frames (GC, unattributed VM).
// V8 sometimes loses the JavaScript frames above a native call: better-sqlite3's `exec` (BEGIN,
// COMMIT) is then recognized by name.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CpuProfile } from './gateway-rig.js';

/** Areas of the governed call path, in the order the table prints them. */
export const AREAS = [
  'token verify / DPoP',
  'envelope parse',
  'decision (Cedar)',
  'audit append (hash, SQL)',
  'forward (upstream client)',
  'MCP SDK server (legacy sessions)',
  'gateway core (grants, limits)',
  'HTTP server (fastify, node:http)',
  'metrics (prom-client)',
  'JSON parse/stringify',
  'promises / async hooks',
  'GC',
  'VM / native (unattributed)',
  'other',
] as const;
export type Area = (typeof AREAS)[number];

/** Files (by URL) owned by an area, most specific first. */
const OWNED: readonly [RegExp, Area][] = [
  [/\/src\/(tokens|identity)\/|\/src\/http\/presented-token\.ts|\/node_modules\/jose\//, 'token verify / DPoP'],
  [/\/src\/gateway\/(envelope|protocol)\.ts|\/src\/lib\/unicode\.ts/, 'envelope parse'],
  [/\/src\/policy\/|\/@cedar-policy\/|^wasm:\/\//, 'decision (Cedar)'],
  [/\/src\/(audit|store)\/|\/src\/lib\/hash\.ts|\/node_modules\/(better-sqlite3|pg|pg-protocol|pg-pool)\//, 'audit append (hash, SQL)'],
  [
    /\/src\/upstreams\/|\/src\/gateway\/upstream-pool\.ts|\/@modelcontextprotocol\/sdk\/dist\/\w+\/client\/|node:internal\/deps\/undici|^node:_http_client$|\/eventsource-parser\//,
    'forward (upstream client)',
  ],
  [/\/@modelcontextprotocol\/(sdk|server)\/|\/@hono\/|\/src\/gateway\/(sessions|legacy-sessions)\.ts/, 'MCP SDK server (legacy sessions)'],
  [/\/src\/(gateway|mandates|agents|approvals|principals|tasks|errors)\//, 'gateway core (grants, limits)'],
  [/\/node_modules\/(prom-client|bintrees|tdigest)\/|\/src\/http\/metrics\.ts/, 'metrics (prom-client)'],
  [
    /\/node_modules\/(fastify|@fastify|find-my-way|avvio|fast-json-stringify|light-my-request|pino|pino-std-serializers|sonic-boom|thread-stream|secure-json-parse|fast-querystring|process-warning|abstract-logging|toad-cache|rfdc|fast-uri|ajv)\/|\/src\/http\//,
    'HTTP server (fastify, node:http)',
  ],
];

/** Node's sockets and HTTP: charged to the client or server side that drives them. */
const NET = /^node:(_http_|net$|internal\/(stream_base_commons|streams\/|js_stream_socket|http))/;
/** Owners whose socket writes are the /mcp answer (the HTTP server's work). */
const ANSWERS: ReadonlySet<Area> = new Set(['gateway core (grants, limits)', 'envelope parse', 'token verify / DPoP']);
const ASYNC = /^node:(internal\/(async_hooks|process\/task_queues|process\/promises|promise_hooks|timers)|async_hooks$|timers$)/;

const JSON_LINE = /JSON\.(parse|stringify)\s*\(/;

/** Source lines of a script by URL, read from disk (file: URLs only; Node's own modules are built in). */
function sourceLines(): (url: string) => readonly string[] | undefined {
  const cache = new Map<string, readonly string[] | undefined>();
  return (url) => {
    if (!cache.has(url)) {
      let lines: readonly string[] | undefined;
      // Mandate's TypeScript runs minified by tsx (one line per file): its lines on disk are not the
      // ones V8 reports, so only JavaScript files as they run (libraries) are read.
      if (url.startsWith('file:') && /\.(c|m)?js$/.test(url)) {
        try {
          lines = readFileSync(fileURLToPath(url), 'utf8').split('\n');
        } catch {
          lines = undefined;
        }
      }
      cache.set(url, lines);
    }
    return cache.get(url);
  };
}

interface Row {
  readonly area: Area;
  readonly fn: string;
  readonly where: string;
  us: number;
}

export interface Breakdown {
  /** Sampled wall time of the main thread that was not idle (µs). */
  readonly busyUs: number;
  readonly idleUs: number;
  /** The profiler's own work (inspector dispatch), left out of everything. */
  readonly profilerUs: number;
  readonly byArea: Map<Area, number>;
  readonly top: Row[];
}

function shortUrl(url: string): string {
  const m = /\/node_modules\/(.*)$/.exec(url) ?? /\/(src\/.*)$/.exec(url);
  return m === null ? url : (m[1] as string);
}

export function analyse(profile: CpuProfile): Breakdown {
  const linesOf = sourceLines();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const owner = (url: string) => OWNED.find(([re]) => re.test(url))?.[1];
  const classify = (id: number): Area => {
    let sawNet = false;
    let firstUrl = '';
    for (let q: number | undefined = id; q !== undefined; q = parent.get(q)) {
      const url = byId.get(q)?.callFrame.url ?? '';
      const own = owner(url);
      if (own !== undefined) return sawNet && ANSWERS.has(own) ? 'HTTP server (fastify, node:http)' : own;
      if (NET.test(url)) sawNet = true;
      if (firstUrl === '') firstUrl = url;
    }
    if (byId.get(id)?.callFrame.functionName === 'exec') return 'audit append (hash, SQL)';
    if (sawNet) return 'HTTP server (fastify, node:http)';
    if (firstUrl === '') return 'VM / native (unattributed)';
    return ASYNC.test(firstUrl) ? 'promises / async hooks' : 'other';
  };
  // Per node: self time, and the share of it on JSON lines.
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byArea = new Map<Area, number>();
  const rows = new Map<string, Row>();
  let idleUs = 0;
  let profilerUs = 0;
  const charge = (area: Area, fn: string, where: string, us: number) => {
    byArea.set(area, (byArea.get(area) ?? 0) + us);
    const key = `${area}|${fn}|${where}`;
    const row = rows.get(key) ?? { area, fn, where, us: 0 };
    row.us += us;
    rows.set(key, row);
  };
  for (const [id, us] of self) {
    const node = byId.get(id) as CpuProfile['nodes'][number] & { positionTicks?: { line: number; ticks: number }[] };
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    if (url === 'node:inspector' || functionName === '(root)' || stackHas(id, parent, byId, 'node:inspector')) {
      profilerUs += us;
      continue;
    }
    if (functionName === '(garbage collector)') {
      charge('GC', functionName, '', us);
      continue;
    }
    if (functionName === '(program)') {
      charge('VM / native (unattributed)', functionName, '', us);
      continue;
    }
    const fn = functionName === '' ? '(anonymous)' : functionName;
    // Line 1 of a minified file (tsx) says nothing: the file alone then.
    const line = node.callFrame.lineNumber > 0 ? `:${node.callFrame.lineNumber + 1}` : '';
    const where = url === '' ? `native, called from ${callerOf(id, parent, byId)}` : `${shortUrl(url)}${line}`;
    // JSON builtins: the share of this node's ticks on lines that call them.
    let jsonUs = 0;
    const lines = linesOf(url);
    if (lines !== undefined && node.positionTicks !== undefined) {
      const total = node.positionTicks.reduce((s, t) => s + t.ticks, 0);
      const onJson = node.positionTicks.filter((t) => JSON_LINE.test(lines[t.line - 1] ?? '')).reduce((s, t) => s + t.ticks, 0);
      if (total > 0) jsonUs = (us * onJson) / total;
    }
    if (jsonUs > 0) charge('JSON parse/stringify', fn, where, jsonUs);
    const rest = us - jsonUs;
    if (rest <= 0) continue;
    const area = classify(id);
    charge(area, fn, where, rest);
  }
  let busyUs = 0;
  for (const us of byArea.values()) busyUs += us;
  return { busyUs, idleUs, profilerUs, byArea, top: [...rows.values()].sort((a, b) => b.us - a.us) };
}

function stackHas(id: number, parent: Map<number, number>, byId: Map<number, CpuProfile['nodes'][number]>, url: string): boolean {
  for (let q: number | undefined = id; q !== undefined; q = parent.get(q)) if (byId.get(q)?.callFrame.url === url) return true;
  return false;
}

function callerOf(id: number, parent: Map<number, number>, byId: Map<number, CpuProfile['nodes'][number]>): string {
  for (let q = parent.get(id); q !== undefined; q = parent.get(q)) {
    const f = byId.get(q)?.callFrame;
    if (f !== undefined && f.url !== '') return `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}`;
  }
  return '?';
}

/** The printed table: µs per call by area, then the top functions. */
export function formatBreakdown(b: Breakdown, calls: number, topN = 15): string {
  const per = (us: number) => (us / calls).toFixed(1).padStart(8);
  const pct = (us: number) => `${((100 * us) / b.busyUs).toFixed(1).padStart(5)} %`;
  const out: string[] = [];
  out.push(`    ${'area'.padEnd(34)} µs/call   share`);
  for (const area of AREAS) {
    const us = b.byArea.get(area) ?? 0;
    if (us === 0) continue;
    out.push(`    ${area.padEnd(34)}${per(us)}  ${pct(us)}`);
  }
  out.push(`    ${'total (main thread, sampled)'.padEnd(34)}${per(b.busyUs)}`);
  out.push(`    top ${topN} functions by self time (µs/call, area, function, file or caller):`);
  for (const r of b.top.slice(0, topN)) {
    out.push(`    ${per(r.us)}  ${r.area.padEnd(26).slice(0, 26)}  ${r.fn.slice(0, 32).padEnd(32)}  ${r.where.slice(0, 80)}`);
  }
  return out.join('\n');
}
