// Mandate's error classes. Every error that may reach a client carries a registry code;
// families are subclasses so callers can catch a whole family, but they branch on `code`.
import { type ErrorCode, type ErrorSpec, errorRegistry } from './registry.js';

export { type ErrorCode, type ErrorSpace, type ErrorSpec, errorRegistry, isErrorCode } from './registry.js';

export interface MandateErrorOptions {
  /** Extra, client-safe detail (e.g. the config key path, the field that failed). */
  readonly details?: Record<string, unknown>;
  /** Underlying cause, for the log only. Never a token, secret or credential. */
  readonly cause?: unknown;
}

export class MandateError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, options: MandateErrorOptions = {}) {
    super(message ?? errorRegistry[code].message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
  }

  get spec(): ErrorSpec {
    return errorRegistry[this.code];
  }
}

/** Configuration and startup failures. */
export class ConfigError extends MandateError {}
/** Storage failures. */
export class StoreError extends MandateError {}
/** Authentication and authorization failures of callers. */
export class AuthError extends MandateError {}
/** Errors whose wire form is an RFC 6749 §5.2 error response. */
export class OAuthError extends MandateError {}

export function isMandateError(err: unknown): err is MandateError {
  return err instanceof MandateError;
}
