// The one failure of a call to an upstream MCP server. `kind` says what the gateway can tell the
// agent: the upstream did not answer in time, could not be reached (or its transport died), or
// answered with a JSON-RPC error or a result that is not a result.
import { MandateError } from '../../errors/index.js';

export type UpstreamFailureKind = 'timeout' | 'unavailable' | 'rpc';

const CODE = { timeout: 'RPC_UPSTREAM_TIMEOUT', unavailable: 'RPC_UPSTREAM_UNAVAILABLE', rpc: 'RPC_UPSTREAM_ERROR' } as const;

/** Longest message kept: upstream text is shown to agents and operators, never a wall of it. */
const MAX_MESSAGE = 300;

export class UpstreamCallError extends MandateError {
  readonly kind: UpstreamFailureKind;
  /** The upstream's JSON-RPC error code (kind 'rpc' from an error response only). */
  readonly rpcCode: number | undefined;
  /** @internal The JSON-RPC error's `data` (era probe only; never shown). */
  errorData: unknown;
  /** @internal The HTTP status that carried the failure (era probe only). */
  httpStatus: number | undefined;

  constructor(kind: UpstreamFailureKind, message: string, options: { rpcCode?: number; cause?: unknown } = {}) {
    super(CODE[kind], bounded(message), options.cause === undefined ? {} : { cause: options.cause });
    this.kind = kind;
    this.rpcCode = options.rpcCode;
  }
}

/** One line, control characters replaced, at most MAX_MESSAGE characters. */
export function bounded(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  const line = s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE - 1)}…` : line;
}
