// A minimal admin API client for CLI commands that act on a running broker: base URL from --url
// (or MANDATE_URL), operator token from --token (or MANDATE_TOKEN). Error bodies become one-line
// MandateErrors with the server's code; the token never appears in messages.
import type { Command } from 'commander';
import { isErrorCode, MandateError } from '../../errors/index.js';

export interface AdminFlags {
  readonly url?: string;
  readonly token?: string;
}

/** Where client commands find the broker when no --url is given. */
export const DEFAULT_BROKER_URL = 'http://127.0.0.1:8080';

/** The broker URL client commands use: --url, else MANDATE_URL, else the demo default. */
export function brokerUrl(flag?: string): string {
  const env = process.env.MANDATE_URL;
  return (flag ?? (env === undefined || env === '' ? DEFAULT_BROKER_URL : env)).replace(/\/+$/, '');
}

/** Adds --url and --token to a command. */
export function withAdminFlags(cmd: Command): Command {
  return cmd
    .option('--url <url>', `broker base URL (default: MANDATE_URL, else ${DEFAULT_BROKER_URL})`)
    .option('--token <token>', 'operator bearer token (prefer MANDATE_TOKEN)');
}

/** fetch, with a network failure named by the URL it was for (never the token). */
export async function fetchBroker(url: string | URL, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    const { origin } = new URL(url);
    throw new MandateError(
      'ERR_BROKER_UNREACHABLE',
      `cannot reach the broker at ${origin} (${why}); is it running? Set --url or MANDATE_URL to its address`,
    );
  }
}

export async function adminRequest(flags: AdminFlags, method: string, path: string, body?: unknown): Promise<unknown> {
  const token = flags.token ?? process.env.MANDATE_TOKEN;
  if (token === undefined || token === '') throw new MandateError('ERR_AUTH_MISSING', 'pass --token or set MANDATE_TOKEN');
  const base = brokerUrl(flags.url);
  let target: URL;
  try {
    target = new URL(`${base}${path}`);
  } catch {
    throw new MandateError('ERR_VALIDATION', `--url must be an http(s) URL, got "${base}"`);
  }
  const res = await fetchBroker(target, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new MandateError(
      'ERR_BROKER_UNREACHABLE',
      `${target.origin} answered ${method} ${path} with HTTP ${res.status} and no JSON: is it a Mandate broker?`,
    );
  }
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

/** Left-aligned columns with a header row, like `kubectl get`; the last column is not padded. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  if (rows.length === 0) return;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[header, ...rows].map(line).join('\n')}\n`);
}
