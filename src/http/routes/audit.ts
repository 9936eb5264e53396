// The audit log over HTTP: the C2SP tlog-tiles read-only layout under /audit/log/ (checkpoint, hash
// tiles, entry bundles) plus the vkey, and the admin JSON API for heads, entries, proofs and explain.
// Hash tiles and checkpoints reveal only hashes and are public; entry bundles carry event bodies
// and need `audit:read` unless audit.publicEntries is set.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseEventId } from '../../audit/event.js';
import { explainEvent } from '../../audit/explain.js';
import { exportLog } from '../../audit/export.js';
import { TILE_WIDTH } from '../../audit/log.js';
import { consistencyAnswer, inclusionAnswer } from '../../audit/proof-answers.js';
import { MandateError } from '../../errors/index.js';
import { authorizeOperator } from '../admin-policy.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';
import { PUBLIC } from '../route-access.js';

export const AUDIT_LOG_PREFIX = '/audit/log/';
/** A read of /audit/log/checkpoint signs a new checkpoint only when the latest is older than this. */
const CHECKPOINT_ON_READ_MS = 1000;

/** A parsed tlog-tiles path: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`. */
export interface TilePath {
  readonly level: number | 'entries';
  readonly index: number;
  readonly width: number;
}

/** Parses the part after `tile/`; undefined when it is not a valid tile path. */
export function parseTilePath(path: string): TilePath | undefined {
  const m = /^(entries|\d{1,2})\/((?:x\d{3}\/)*)(\d{3})(?:\.p\/(\d{1,3}))?$/.exec(path);
  if (m === null) return undefined;
  const [, levelText, prefix, last, widthText] = m as unknown as [string, string, string, string, string | undefined];
  const digits = `${prefix.replace(/x|\//g, '')}${last}`;
  if (digits.length > 15) return undefined;
  const width = widthText === undefined ? TILE_WIDTH : Number(widthText);
  if (!(width >= 1 && width <= TILE_WIDTH) || (widthText !== undefined && width === TILE_WIDTH)) return undefined;
  const level = levelText === 'entries' ? 'entries' : Number(levelText);
  if (level !== 'entries' && level > 63) return undefined;
  return { level, index: Number(digits), width };
}

const sizeParam = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const inclusionQuery = z.strictObject({ index: sizeParam, size: sizeParam.optional() });
const consistencyQuery = z.strictObject({ from: sizeParam, to: sizeParam.optional() });
const entriesQuery = z.strictObject({ from: sizeParam.default(0), limit: z.coerce.number().int().min(1).max(1000).default(100) });
const exportQuery = z.strictObject({
  from: sizeParam.default(0),
  to: sizeParam.optional(),
  format: z.enum(['jsonl', 'ocsf']).default('jsonl'),
});
const b64 = (h: Buffer) => h.toString('base64');

export function registerAuditRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const { audit } = broker;

  const text = (reply: FastifyReply, body: string, cache: string) =>
    reply.type('text/plain; charset=utf-8').header('cache-control', cache).send(body);

  app.get(`${AUDIT_LOG_PREFIX}checkpoint`, PUBLIC, async (_req, reply) => {
    // Fresh enough: serve the latest. Otherwise sign one if the log grew — at most about once a
    // second however often this public endpoint is polled.
    const latest = await audit.latestCheckpoint();
    const fresh = latest !== undefined && broker.clock.now() - latest.createdAt < CHECKPOINT_ON_READ_MS;
    const checkpoint = fresh ? latest : ((await audit.checkpointIfGrown()) ?? latest ?? (await audit.checkpoint()));
    return text(reply, checkpoint.note, 'no-cache');
  });

  app.get(`${AUDIT_LOG_PREFIX}vkey`, PUBLIC, async (_req, reply) => text(reply, `${audit.vkey}\n`, 'public, max-age=300'));

  app.get(`${AUDIT_LOG_PREFIX}tile/*`, PUBLIC, async (req: FastifyRequest, reply) => {
    const tile = parseTilePath((req.params as { '*': string })['*']);
    if (tile === undefined) throw new MandateError('ERR_NOT_FOUND', 'not a tlog-tiles path');
    if (tile.level === 'entries' && !broker.config.audit.publicEntries) {
      req.operator = await broker.authenticateOperator(req.headers.authorization);
      authorizeOperator(req.operator, 'audit:read');
    }
    let body: Buffer;
    try {
      body =
        tile.level === 'entries' ? await audit.entryBundle(tile.index, tile.width) : await audit.tile(tile.level, tile.index, tile.width);
    } catch (err) {
      if (err instanceof MandateError && err.code === 'ERR_AUDIT_RANGE') throw new MandateError('ERR_NOT_FOUND', err.message);
      throw err;
    }
    // Full tiles never change; partial ones are superseded as the log grows.
    const cache = tile.width === TILE_WIDTH ? 'public, max-age=31536000, immutable' : 'public, max-age=5';
    return reply.type('application/octet-stream').header('cache-control', cache).send(body);
  });

  const base = `${ADMIN_PREFIX}audit`;

  app.get(
    `${base}/head`,
    { config: { access: { permission: 'audit:read' }, doc: { summary: 'Current audit tree head and latest checkpoint' } } },
    async () => {
      const head = await audit.head();
      const checkpoint = await audit.latestCheckpoint();
      return { size: head.size, rootHash: b64(head.root), origin: audit.origin, vkey: audit.vkey, checkpoint: checkpoint?.note };
    },
  );

  app.post(
    `${base}/checkpoint`,
    { config: { access: { permission: 'audit:write' }, doc: { summary: 'Sign a checkpoint now' } } },
    async () => {
      const c = await audit.checkpoint();
      return { size: c.size, rootHash: b64(c.root), note: c.note };
    },
  );

  app.get(
    `${base}/entries`,
    { config: { access: { permission: 'audit:read' }, doc: { summary: 'A range of audit entries', query: entriesQuery } } },
    async (req) => {
      const q = entriesQuery.parse(req.query);
      const items = await audit.entries(q.from, q.from + q.limit);
      const { size } = await audit.head();
      const lastSeq = items[items.length - 1]?.seq;
      return { items, size, next: lastSeq === undefined || lastSeq + 1 >= size ? undefined : lastSeq + 1 };
    },
  );

  app.get(
    `${base}/export`,
    {
      config: {
        access: { permission: 'audit:read' },
        doc: {
          summary: 'Stream entries as JSON lines (JSONL or OCSF) ending with a range proof',
          query: exportQuery,
        },
      },
    },
    async (req, reply) => {
      const q = exportQuery.parse(req.query);
      const lines = exportLog(audit, { from: q.from, ...(q.to === undefined ? {} : { to: q.to }), format: q.format });
      // Pull the first line before answering, so a bad range is a clean 400 instead of a broken stream.
      const first = await lines.next();
      async function* rest() {
        if (!first.done) yield `${first.value}\n`;
        for await (const line of lines) yield `${line}\n`;
      }
      return reply.type('application/x-ndjson').send(Readable.from(rest()));
    },
  );

  app.get(`${base}/events/:id`, { config: { access: { permission: 'audit:read' }, doc: { summary: 'One audit event' } } }, async (req) => {
    const id = (req.params as { id: string }).id;
    const seq = parseEventId(id);
    const entry = seq === undefined ? undefined : await audit.entry(seq);
    if (entry === undefined) throw new MandateError('ERR_NOT_FOUND', `no audit event "${id}"`);
    return entry;
  });

  app.get(
    `${base}/events/:id/explain`,
    { config: { access: { permission: 'audit:read' }, doc: { summary: 'Chain of authority behind one audit event' } } },
    async (req) => explainEvent(audit, (req.params as { id: string }).id),
  );

  app.get(
    `${base}/proofs/inclusion`,
    {
      config: {
        access: { permission: 'audit:read' },
        doc: { summary: 'RFC 9162 inclusion proof (and a signed bundle)', query: inclusionQuery },
      },
    },
    async (req) => {
      const q = inclusionQuery.parse(req.query);
      return inclusionAnswer(audit, q.index, q.size);
    },
  );

  app.get(
    `${base}/proofs/consistency`,
    {
      config: {
        access: { permission: 'audit:read' },
        doc: { summary: 'RFC 9162 consistency proof between two tree sizes', query: consistencyQuery },
      },
    },
    async (req) => {
      const q = consistencyQuery.parse(req.query);
      return consistencyAnswer(audit, q.from, q.to);
    },
  );
}
