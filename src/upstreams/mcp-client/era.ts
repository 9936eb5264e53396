// The two protocol eras an upstream may speak (spec 2026-07-28 basic/versioning.mdx): modern
// (2026-07-28: no handshake, version, capabilities and client identity in every request's `_meta`)
// and legacy (2025-11-25 and earlier: `initialize` handshake, sessions). Constants and the
// era-specific encoding of a request live here; the channels stay era-agnostic.
import { IMPLEMENTATION, LATEST_LEGACY_REVISION, LEGACY_REVISIONS, MCP_ERROR, META, MODERN_REVISION } from '../../lib/mcp-revisions.js';

export type Era = 'modern' | 'legacy';

export const MODERN_VERSION = MODERN_REVISION;
export const LEGACY_VERSION = LATEST_LEGACY_REVISION;
/** Legacy revisions we accept when a server answers `initialize` with an older one. */
export const LEGACY_VERSIONS: ReadonlySet<string> = new Set<string>(LEGACY_REVISIONS);

export const CLIENT_INFO = IMPLEMENTATION;

/** JSON-RPC codes only a modern server sends (HeaderMismatch, MissingRequiredClientCapability, UnsupportedProtocolVersion). */
export const MODERN_ERROR_CODES: ReadonlySet<number> = new Set(Object.values(MCP_ERROR));
export const UNSUPPORTED_PROTOCOL_VERSION = MCP_ERROR.unsupportedVersion;

/** The per-request `_meta` of a modern request, serialized once. */
export const MODERN_META_JSON = JSON.stringify({
  [META.protocolVersion]: MODERN_VERSION,
  [META.clientCapabilities]: {},
  [META.clientInfo]: CLIENT_INFO,
});
const MODERN_META = JSON.parse(MODERN_META_JSON) as Record<string, unknown>;

/**
 * Serializes one JSON-RPC request. Modern requests get the `_meta` envelope spliced into the
 * params text, so the hot path allocates no merged params object (only when the caller brings its
 * own `_meta` are the two merged, ours winning).
 */
export function encodeRequest(era: Era, id: number, method: string, params: Record<string, unknown>): string {
  const head = `{"jsonrpc":"2.0","id":${id},"method":${JSON.stringify(method)},"params":`;
  if (era === 'legacy') return `${head}${JSON.stringify(params)}}`;
  if (params._meta !== undefined) {
    const own = typeof params._meta === 'object' && params._meta !== null ? params._meta : {};
    return `${head}${JSON.stringify({ ...params, _meta: { ...own, ...MODERN_META } })}}`;
  }
  const p = JSON.stringify(params);
  return p === '{}' ? `${head}{"_meta":${MODERN_META_JSON}}}` : `${head}{"_meta":${MODERN_META_JSON},${p.slice(1)}}`;
}

export function encodeNotification(method: string, params: Record<string, unknown> | undefined): string {
  return params === undefined
    ? `{"jsonrpc":"2.0","method":${JSON.stringify(method)}}`
    : `{"jsonrpc":"2.0","method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}`;
}

/** `initialize` params of the legacy handshake. */
export const INITIALIZE_PARAMS = { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: CLIENT_INFO } as const;

/** Whether a `server/discover` result names the modern version we speak. */
export function offersModern(result: Record<string, unknown>): boolean {
  const v = result.supportedVersions;
  return Array.isArray(v) && v.includes(MODERN_VERSION);
}

/** The `supported` list of an UnsupportedProtocolVersion error, or []. */
export function supportedFromError(data: unknown): string[] {
  const s = (data as { supported?: unknown } | null | undefined)?.supported;
  return Array.isArray(s) ? s.filter((x): x is string => typeof x === 'string') : [];
}
