// The broker's one logger (pino, JSON lines), made once from the configuration and passed down:
// the HTTP server logs requests through it and domain services report what operators need
// (startup, refusals, upstream and store failures, webhook failures). Secrets never reach it.
import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config/load.js';

export type { Logger };

/** Fields pino replaces with `[redacted]` wherever they appear in a log line. */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.dpop',
  'req.headers.cookie',
  'req.headers["x-upstream-authorization"]',
  '*.subject_token',
  '*.actor_token',
  '*.client_secret',
  '*.password',
  '*.token',
];

/** A logger at `log.level`; `destination` (tests) instead of stdout. */
export function createLogger(config: Pick<Config, 'log'>, destination?: DestinationStream): Logger {
  const options = { level: config.log.level, redact: { paths: redactPaths, censor: '[redacted]' } };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** What a log line says about a failure: its registry code and message (bounded), not its stack or cause. */
export function failure(err: unknown): { code?: string; reason: string } {
  const e = err as { code?: unknown; message?: unknown };
  const reason = typeof e?.message === 'string' ? e.message.slice(0, 500) : String(err).slice(0, 500);
  return typeof e?.code === 'string' ? { code: e.code, reason } : { reason };
}
