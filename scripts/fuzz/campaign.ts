// One fuzz campaign: start the broker, prepare the generator context (admin routes from the
// OpenAPI document, MCP sessions, the DPoP key), send `inputs` generated inputs with `concurrency`
// in flight, judge every answer, and return counts per target plus the first examples of each kind.

import { startBroker } from './broker-process.js';
import { Classifier, type Finding } from './classify.js';
import { mutateBytes } from './mutate.js';
import { makePools } from './pools.js';
import { Rng } from './rng.js';
import { Sender, wireForm } from './send.js';
import { adminInput } from './targets/admin.js';
import { authzenInput } from './targets/authzen.js';
import { type GenContext, importDpopKey } from './targets/common.js';
import { mcpInput } from './targets/mcp.js';
import { tokenInput } from './targets/token.js';
import type { FuzzRequest, FuzzResponse, Target } from './types.js';

export interface FuzzOptions {
  readonly inputs: number;
  readonly seed: number;
  readonly concurrency: number;
  /** Progress lines (every few seconds); silent when undefined. */
  readonly progress?: (line: string) => void;
  /** Examples kept per finding kind. */
  readonly examples?: number;
}

export interface Example {
  readonly index: number;
  readonly target: Target;
  reason: string;
  readonly request: string;
  readonly response: string;
}

export interface FuzzSummary {
  readonly inputs: number;
  readonly crashes: number;
  readonly leaks: number;
  readonly allows: number;
  readonly durationS: number;
  /** Per target: inputs, status classes, findings. */
  readonly perTarget: Record<Target, Record<string, number>>;
  readonly examples: Record<Finding['kind'], Example[]>;
  /** Among the first crashes (up to 300): how many per cause the broker logged. */
  readonly crashCauses: Record<string, number>;
  /** Requests that got no answer (socket errors, raw requests closed without one). */
  readonly noAnswer: number;
  readonly brokerDied: string | undefined;
  readonly brokerStderr: string;
}

/** Findings kept for the report (crashes are grouped by cause at the end). */
const MAX_CANDIDATES = 300;

function requestIdOf(res: FuzzResponse): string | undefined {
  const m = /"request_id":"([^"]+)"/.exec(res.body) ?? /"x-request-id":"([^"]+)"/.exec(res.headers);
  return m?.[1];
}

const GENERATORS: readonly (readonly [number, Target, (rng: Rng, ctx: GenContext) => Promise<FuzzRequest>])[] = [
  [30, 'token', tokenInput],
  [20, 'authzen', authzenInput],
  [30, 'mcp', mcpInput],
  [20, 'admin', adminInput],
];

/** Input `index` of `seed`: deterministic apart from the fresh jti/iat of DPoP proofs. */
export async function generate(ctx: GenContext, seed: number, index: number): Promise<FuzzRequest> {
  const rng = Rng.forInput(seed, index);
  const gen = rng.weighted(GENERATORS.map(([w, , g]) => [w, g] as const));
  const req = await gen(rng, ctx);
  if (!rng.chance(0.05)) return req;
  // Byte-level mutation of the whole wire form: request line, headers, framing, body.
  return { ...req, raw: mutateBytes(rng, wireForm(req, ctx.host), ctx.pools), how: `${req.how}, raw bytes mutated` };
}

async function prepare(info: GenContext['info'], seed: number): Promise<GenContext> {
  const openapi = (await (await fetch(`${info.base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const adminRoutes = Object.entries(openapi.paths)
    .filter(([p]) => p.startsWith('/admin/'))
    .flatMap(([p, ops]) => Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path: p.replace(/\{(\w+)\}/g, ':$1') })));
  if (adminRoutes.length === 0) throw new Error('the broker documents no admin routes');
  const mcpSessions: string[] = [];
  for (const token of [info.creds.bearerToken, info.creds.bearerToken]) {
    const res = await fetch(`${info.base}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } },
      }),
    });
    await res.text();
    const sid = res.headers.get('mcp-session-id');
    if (sid !== null) mcpSessions.push(sid);
  }
  return {
    info,
    pools: makePools(seed),
    host: new URL(info.base).host,
    adminRoutes,
    mcpSessions,
    dpopKey: await importDpopKey(info),
  };
}

function describe(req: FuzzRequest): string {
  const text =
    req.raw !== undefined
      ? req.raw.toString('latin1')
      : `${req.method} ${req.path}\n${req.headers.map(([n, v]) => `${n}: ${v}`).join('\n')}\n\n${req.body?.toString('latin1') ?? ''}`;
  return `[${req.how}]\n${text.length > 1200 ? `${text.slice(0, 1200)}… (${text.length} bytes)` : text}`;
}

/** Regenerates input `index` of `seed` against a fresh broker, sends it, and describes both sides. */
export async function replay(seed: number, index: number): Promise<string> {
  const broker = await startBroker();
  const sender = new Sender(broker.info.base, 1, 30_000);
  try {
    const ctx = await prepare(broker.info, seed);
    const req = await generate(ctx, seed, index);
    const result = await sender.send(req);
    const findings = result.ok ? new Classifier(broker.info).judge(req, result.res) : [];
    await new Promise((r) => setTimeout(r, 300));
    return `${describe(req)}\n→ ${result.ok ? `HTTP ${result.res.status}\n${result.res.headers}\n${result.res.body.slice(0, 2000)}` : result.error}\nfindings: ${JSON.stringify(findings)}\nbroker log:\n${broker.stderr().slice(-4000)}`;
  } finally {
    sender.close();
    await broker.stop();
  }
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const broker = await startBroker();
  const keep = options.examples ?? 3;
  const perTarget = Object.fromEntries(
    (['token', 'authzen', 'mcp', 'admin'] as const).map((t) => [t, {} as Record<string, number>]),
  ) as Record<Target, Record<string, number>>;
  const candidates: Record<Finding['kind'], (Example & { requestId?: string })[]> = { crash: [], leak: [], allow: [] };
  const counts = { crash: 0, leak: 0, allow: 0 };
  let noAnswer = 0;
  const bump = (t: Target, k: string) => {
    perTarget[t][k] = (perTarget[t][k] ?? 0) + 1;
  };
  const t0 = performance.now();
  const sender = new Sender(broker.info.base, options.concurrency, 30_000);
  try {
    const ctx = await prepare(broker.info, options.seed);
    const classifier = new Classifier(broker.info);
    let next = 0;
    let done = 0;
    const inflight = new Map<number, { at: number; what: string }>();
    const timer = setInterval(() => {
      const s = (performance.now() - t0) / 1000;
      const stuck = [...inflight].filter(([, v]) => performance.now() - v.at > 10_000).map(([i, v]) => `#${i} ${v.what}`);
      options.progress?.(
        `  ${done}/${options.inputs} inputs, ${Math.round(done / s)}/s, crashes ${counts.crash} leaks ${counts.leak} allows ${counts.allow}` +
          (stuck.length === 0 ? '' : `; waiting > 10 s on ${stuck.slice(0, 3).join(' | ')}`),
      );
    }, 10_000);
    try {
      await Promise.all(
        Array.from({ length: options.concurrency }, async () => {
          while (next < options.inputs && broker.exited() === undefined) {
            const index = next++;
            inflight.set(index, { at: performance.now(), what: 'generating' });
            const req = await generate(ctx, options.seed, index);
            inflight.set(index, { at: performance.now(), what: req.how });
            const result = await sender.send(req);
            inflight.delete(index);
            done++;
            bump(req.target, 'inputs');
            const findings: Finding[] = [];
            if (result.ok) {
              bump(req.target, `${Math.floor(result.res.status / 100)}xx`);
              if (req.kept !== undefined) bump(req.target, `valid-${req.kept}-${Math.floor(result.res.status / 100)}xx`);
              findings.push(...classifier.judge(req, result.res));
            } else if (result.timeout && req.raw === undefined) {
              findings.push({ kind: 'crash', reason: `no answer within 30 s (${result.error})` });
            } else {
              noAnswer++;
              bump(req.target, 'no answer');
            }
            for (const kind of new Set(findings.map((f) => f.kind))) {
              counts[kind]++;
              bump(req.target, kind);
            }
            for (const f of findings) {
              // Several examples per distinct reason would hide the other reasons: one each, up to a bound.
              const list = candidates[f.kind];
              if (list.length >= MAX_CANDIDATES || (f.kind !== 'crash' && list.some((e) => e.reason === f.reason))) continue;
              list.push({
                index,
                target: req.target,
                reason: f.reason,
                request: describe(req),
                response: result.ok ? `HTTP ${result.res.status}\n${result.res.body.slice(0, 800)}` : result.error,
                ...(result.ok ? { requestId: requestIdOf(result.res) } : {}),
              });
            }
          }
        }),
      );
    } finally {
      clearInterval(timer);
    }
    // A broker that is alive but no longer answers is a crash too.
    const alive = await fetch(`${broker.info.base}/healthz`, { signal: AbortSignal.timeout(10_000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (!alive && broker.exited() === undefined) {
      counts.crash++;
      candidates.crash.push({
        index: next,
        target: 'token',
        reason: 'broker does not answer /healthz after the run',
        request: '',
        response: '',
      });
    }
    // Crashes are grouped by the error the broker logged for them (matched by request id).
    await new Promise((r) => setTimeout(r, 500));
    const causes = new Map<string, number>();
    const firstOf = new Map<string, Example>();
    for (const c of candidates.crash) {
      const logged = c.requestId === undefined ? undefined : broker.cause(c.requestId);
      // Grouped by error code when there is one (messages carry the request's own bytes).
      const cause = logged === undefined ? c.reason : (/^([A-Z][A-Z0-9_]+):/.exec(logged)?.[1] ?? logged.slice(0, 100));
      if (logged !== undefined) c.reason = `${c.reason}; the broker logged ${logged}`;
      causes.set(cause, (causes.get(cause) ?? 0) + 1);
      if (!firstOf.has(cause)) firstOf.set(cause, c);
    }
    const examples: FuzzSummary['examples'] = {
      // One example per cause: a rare cause must not hide behind a frequent one.
      crash: [...firstOf.values()].slice(0, Math.max(keep, 10)),
      leak: candidates.leak.slice(0, keep),
      allow: candidates.allow.slice(0, keep),
    };
    const died = broker.exited();
    if (died !== undefined) {
      counts.crash++;
      examples.crash.push({
        index: next,
        target: 'token',
        reason: `broker process died (${died})`,
        request: '',
        response: broker.stderr().slice(-2000),
      });
    }
    return {
      inputs: done,
      crashes: counts.crash,
      leaks: counts.leak,
      allows: counts.allow,
      durationS: (performance.now() - t0) / 1000,
      perTarget,
      examples,
      crashCauses: Object.fromEntries(causes),
      noAnswer,
      brokerDied: died,
      brokerStderr: broker.stderr(),
    };
  } finally {
    sender.close();
    await broker.stop();
  }
}
