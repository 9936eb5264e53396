// The one place that turns an error into what a client sees. Anything not meant for the client
// becomes a generic `server_error` carrying the request id; the caller logs the detail.
import { ZodError } from 'zod';
import { MandateError } from './index.js';
import { type ErrorCode, errorRegistry } from './registry.js';

export interface HttpErrorResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Record<string, unknown>;
  /** True when the error was not meant for the client and must be logged with its cause. */
  readonly internal: boolean;
}

/** Normalizes anything thrown into a MandateError (unknown errors become ERR_INTERNAL). */
export function toMandateError(err: unknown): MandateError {
  if (err instanceof MandateError) return err;
  if (err instanceof ZodError) {
    const issue = err.issues[0];
    const path = issue?.path.map(String).join('.') ?? '';
    return new MandateError('ERR_VALIDATION', `${path === '' ? 'body' : path}: ${issue?.message ?? 'invalid'}`, {
      details: { issues: err.issues.slice(0, 10).map((i) => ({ path: i.path.map(String).join('.'), message: i.message })) },
    });
  }
  return new MandateError('ERR_INTERNAL', undefined, { cause: err });
}

/**
 * A message as the value of a quoted header parameter (RFC 6750 §3 `error_description`): visible
 * ASCII only (RFC 6749 §5.2), no quote or backslash. Messages can echo attacker-chosen text (a
 * token's `alg`), and a character Node refuses in a header would turn a refusal into a 500.
 */
export function headerParam(value: string): string {
  return value.replace(/[^\x20-\x7e]|["\\]/g, '?').slice(0, 500);
}

export function toHttpError(err: unknown, requestId: string): HttpErrorResponse {
  const e = toMandateError(err);
  const spec = errorRegistry[e.code];
  if (!spec.expose) {
    return {
      status: spec.status,
      headers: {},
      body: { error: 'server_error', message: 'internal error', request_id: requestId },
      internal: true,
    };
  }
  if (spec.space === 'oauth') {
    const headers: Record<string, string> = {};
    if (spec.status === 401 || spec.status === 403) {
      // RFC 9449 §9: a resource's nonce challenge is a DPoP challenge, which is what clients look for.
      const scheme = spec.oauthError === 'use_dpop_nonce' ? 'DPoP' : 'Bearer';
      headers['www-authenticate'] = `${scheme} error="${spec.oauthError}", error_description="${headerParam(e.message)}"`;
    }
    headers['cache-control'] = 'no-store';
    return { status: spec.status, headers, body: { error: spec.oauthError, error_description: e.message }, internal: false };
  }
  const headers: Record<string, string> = {};
  if (e.code === 'ERR_AUTH_MISSING') headers['www-authenticate'] = 'Bearer';
  else if (spec.status === 401) headers['www-authenticate'] = `Bearer error="invalid_token", error_description="${headerParam(e.message)}"`;
  const body: Record<string, unknown> = { error: e.code, message: e.message, request_id: requestId };
  if (e.details !== undefined) body.details = e.details;
  return { status: spec.status, headers, body, internal: false };
}

export interface JsonRpcErrorObject {
  readonly code: number;
  readonly message: string;
  readonly data?: Record<string, unknown>;
}

/** JSON-RPC error object for the MCP gateway; non-JSON-RPC codes keep their Mandate code in `data`. */
export function toJsonRpcError(err: unknown, requestId: string): JsonRpcErrorObject {
  const e = toMandateError(err);
  const spec = errorRegistry[e.code];
  if (!spec.expose) return { code: -32603, message: 'internal error', data: { code: 'ERR_INTERNAL', request_id: requestId } };
  const code = spec.rpcCode ?? (spec.status >= 500 ? -32603 : -32600);
  // Details are client-safe by contract (MandateErrorOptions); the code and request id win.
  return { code, message: e.message, data: { ...e.details, code: e.code satisfies ErrorCode, request_id: requestId } };
}
