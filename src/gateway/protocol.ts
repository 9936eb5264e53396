// What the /mcp endpoint needs to know about the MCP revisions it speaks, in one place: the
// revisions, the reserved `_meta` keys, the transport headers (2026-07-28 Streamable HTTP
// "Request Metadata") and the checks the spec makes MUSTs of. Pure functions: no HTTP objects.
import { MandateError } from '../errors/index.js';
import type { ErrorCode } from '../errors/registry.js';
import { IMPLEMENTATION, LATEST_LEGACY_REVISION, LEGACY_REVISIONS, META, MODERN_REVISION, TASKS_EXTENSION } from '../lib/mcp-revisions.js';

/** What `server/discover` and UnsupportedProtocolVersionError advertise. */
export const SUPPORTED_REVISIONS: readonly string[] = [MODERN_REVISION, LATEST_LEGACY_REVISION];

export { LEGACY_REVISIONS, META, MODERN_REVISION, TASKS_EXTENSION };
export const SERVER_INFO = IMPLEMENTATION;

export const INSTRUCTIONS =
  'Tools are governed by Mandate: every call is authorized against your mandate and org policy and audited. ' +
  'A refused call comes back as a tool result with isError and says why and what is allowed. A call that needs a ' +
  'human approval becomes a task (when you declare the tasks extension) or a result naming the approval: retry ' +
  'the exact same call once it is approved.';

/** Methods whose `Mcp-Name` header mirrors a body field, and which field. */
const NAME_FIELD: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'resources/read': 'uri',
  'prompts/get': 'name',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

/** A refusal of a modern request, with the HTTP status the spec requires for it. */
export class ProtocolError extends MandateError {
  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(code, message, { details: data });
  }
}

/** What a modern request declared in `_meta`. */
export interface ModernRequest {
  readonly protocolVersion: string;
  readonly clientCapabilities: Record<string, unknown>;
  /** The client declared the Tasks extension on this request. */
  readonly tasks: boolean;
}

/** The client capabilities of a request: legacy sessions declared them once, modern requests every time. */
export function declaresTasks(capabilities: unknown): boolean {
  const ext = isObject(capabilities) ? capabilities.extensions : undefined;
  return isObject(ext) && isObject(ext[TASKS_EXTENSION]);
}

/**
 * Checks a 2026-07-28 request: `_meta` fields (-32602), the supported revision (-32022), and the
 * HTTP headers against the body (-32020: "servers that process the request body MUST reject
 * requests where the values specified in the headers do not match"). Every refusal is HTTP 400.
 */
export function checkModernRequest(message: Record<string, unknown>, header: (name: string) => string | undefined): ModernRequest {
  const method = message.method as string;
  const params = isObject(message.params) ? message.params : {};
  const meta = isObject(params._meta) ? params._meta : {};
  const requested = meta[META.protocolVersion];
  const capabilities = meta[META.clientCapabilities];
  if (typeof requested !== 'string') {
    throw new ProtocolError('RPC_META_INVALID', `params._meta["${META.protocolVersion}"] is required and must be a string`);
  }
  if (!isObject(capabilities)) {
    throw new ProtocolError('RPC_META_INVALID', `params._meta["${META.clientCapabilities}"] is required and must be an object`);
  }
  const versionHeader = header('mcp-protocol-version');
  if (versionHeader === undefined) throw new ProtocolError('RPC_HEADER_MISMATCH', 'the MCP-Protocol-Version header is required');
  if (versionHeader !== requested) {
    throw new ProtocolError(
      'RPC_HEADER_MISMATCH',
      `Header mismatch: MCP-Protocol-Version "${bounded(versionHeader)}" does not match _meta protocolVersion "${bounded(requested)}"`,
    );
  }
  if (requested !== MODERN_REVISION) {
    throw new ProtocolError('RPC_UNSUPPORTED_PROTOCOL_VERSION', `protocol version "${bounded(requested)}" is not supported here`, {
      supported: [...SUPPORTED_REVISIONS],
      requested: bounded(requested),
    });
  }
  const methodHeader = header('mcp-method');
  if (methodHeader === undefined) throw new ProtocolError('RPC_HEADER_MISMATCH', 'the Mcp-Method header is required');
  if (methodHeader !== method) {
    throw new ProtocolError(
      'RPC_HEADER_MISMATCH',
      `Header mismatch: Mcp-Method "${bounded(methodHeader)}" does not match method "${bounded(method)}"`,
    );
  }
  const field = NAME_FIELD[method];
  if (field !== undefined) {
    const raw = header('mcp-name');
    if (raw === undefined) throw new ProtocolError('RPC_HEADER_MISMATCH', `the Mcp-Name header is required for ${method}`);
    const name = decodeHeaderValue(raw);
    if (name === undefined) throw new ProtocolError('RPC_HEADER_MISMATCH', 'the Mcp-Name header is malformed');
    if (name !== params[field]) {
      throw new ProtocolError('RPC_HEADER_MISMATCH', `Header mismatch: Mcp-Name does not match params.${field}`);
    }
  }
  return { protocolVersion: requested, clientCapabilities: capabilities, tasks: declaresTasks(capabilities) };
}

const SENTINEL_PREFIX = '=?base64?';
const SENTINEL_SUFFIX = '?=';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * A header value as the body would carry it: plain visible ASCII as is, the Base64 sentinel
 * (`=?base64?…?=`) decoded as UTF-8. Undefined when malformed (bad Base64, not UTF-8).
 */
export function decodeHeaderValue(raw: string): string | undefined {
  if (
    !(raw.startsWith(SENTINEL_PREFIX) && raw.endsWith(SENTINEL_SUFFIX) && raw.length >= SENTINEL_PREFIX.length + SENTINEL_SUFFIX.length)
  ) {
    return raw;
  }
  const encoded = raw.slice(SENTINEL_PREFIX.length, raw.length - SENTINEL_SUFFIX.length);
  if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) return undefined;
  const bytes = Buffer.from(encoded, 'base64');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Checks the `Mcp-Param-{Name}` headers a tool's input schema designates (`x-mcp-header`) against
 * the arguments: a value present in the body needs its header, and the header must decode to the
 * value (integers compared numerically). Unrecognized Mcp-Param headers are ignored, as the spec requires.
 */
export function checkParamHeaders(
  mirrored: readonly MirroredParam[],
  args: Record<string, unknown>,
  header: (name: string) => string | undefined,
): void {
  for (const p of mirrored) {
    let value: unknown = args;
    for (const key of p.path) value = isObject(value) ? value[key] : undefined;
    const raw = header(`mcp-param-${p.header.toLowerCase()}`);
    if (value === undefined || value === null) continue;
    if (raw === undefined) throw new ProtocolError('RPC_HEADER_MISMATCH', `the Mcp-Param-${p.header} header is required for this call`);
    const decoded = decodeHeaderValue(raw);
    const matches =
      decoded !== undefined &&
      (typeof value === 'number'
        ? decoded.trim() !== '' && Number(decoded) === value
        : typeof value === 'boolean'
          ? decoded === String(value)
          : decoded === value);
    if (!matches) throw new ProtocolError('RPC_HEADER_MISMATCH', `Header mismatch: Mcp-Param-${p.header} does not match the argument`);
  }
}

/** A tool parameter mirrored into an HTTP header (`x-mcp-header`). */
export interface MirroredParam {
  readonly header: string;
  /** The chain of `properties` keys from the schema root. */
  readonly path: readonly string[];
}

/** The statically reachable `x-mcp-header` annotations of an input schema (properties chains only). */
export function mirroredParams(schema: unknown): MirroredParam[] {
  const out: MirroredParam[] = [];
  const stack: [unknown, string[]][] = [[schema, []]];
  while (stack.length > 0 && out.length < 64) {
    const [node, path] = stack.pop() as [unknown, string[]];
    if (!isObject(node) || !isObject(node.properties) || path.length > 8) continue;
    for (const [key, prop] of Object.entries(node.properties)) {
      if (!isObject(prop)) continue;
      const name = prop['x-mcp-header'];
      if (typeof name === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) out.push({ header: name, path: [...path, key] });
      stack.push([prop, [...path, key]]);
    }
  }
  return out;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bounded(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}…` : s;
}
