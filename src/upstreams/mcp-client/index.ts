// Raw JSON-RPC MCP client for upstreams, both protocol eras, stdio and streamable HTTP.
export type { RequestOptions } from './channel.js';
export { DEFAULT_MAX_MESSAGE_BYTES } from './channel.js';
export { McpClient, type UpstreamClient } from './client.js';
export { type Era, LEGACY_VERSION, MODERN_VERSION } from './era.js';
export { UpstreamCallError, type UpstreamFailureKind } from './errors.js';
export { HttpChannel } from './http-channel.js';
export { StdioChannel, safeEnvironment } from './stdio-channel.js';
