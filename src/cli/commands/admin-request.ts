// A minimal admin API client for CLI commands that act on a running broker: base URL from --url
// (or MANDATE_URL), operator token from --token (or MANDATE_TOKEN). Error bodies become one-line
// MandateErrors with the server's code; the token never appears in messages.
import type { Command } from 'commander';
import { isErrorCode, MandateError } from '../../errors/index.js';

export interface AdminFlags {
  readonly url?: string;
  readonly token?: string;
}

/** Adds --url and --token to a command. */
export function withAdminFlags(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'broker base URL (or MANDATE_URL)', process.env.MANDATE_URL ?? 'http://127.0.0.1:8080')
    .option('--token <token>', 'operator bearer token (prefer MANDATE_TOKEN)');
}

export async function adminRequest(flags: AdminFlags, method: string, path: string, body?: unknown): Promise<unknown> {
  const token = flags.token ?? process.env.MANDATE_TOKEN;
  if (token === undefined || token === '') throw new MandateError('ERR_AUTH_MISSING', 'pass --token or set MANDATE_TOKEN');
  const base = (flags.url ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const parsed: unknown = text === '' ? undefined : JSON.parse(text);
  if (!res.ok) {
    const e = (parsed ?? {}) as { error?: string; message?: string; error_description?: string };
    const code = typeof e.error === 'string' && isErrorCode(e.error) ? e.error : 'ERR_INTERNAL';
    throw new MandateError(code, e.message ?? e.error_description ?? `HTTP ${res.status}`);
  }
  return parsed;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
