// The MCP protocol revisions Mandate speaks, to agents (src/gateway) and to upstreams
// (src/upstreams/mcp-client), and the spec-reserved names both sides use: one place, so the two
// sides cannot drift apart.
import { version } from '../version.js';

/** The stateless revision: version, capabilities and client identity on every request (SEP-2575). */
export const MODERN_REVISION = '2026-07-28';
/** Revisions that open a session with `initialize`, newest first. */
export const LEGACY_REVISIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05', '2024-10-07'] as const;
export const LATEST_LEGACY_REVISION = LEGACY_REVISIONS[0];

/** Reserved `_meta` keys (2026-07-28 basic/index.mdx). */
export const META = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
} as const;

/** The Tasks extension (SEP-2663). */
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';

/** JSON-RPC codes the spec reserves for itself: only a modern peer sends them. */
export const MCP_ERROR = { headerMismatch: -32020, missingCapability: -32021, unsupportedVersion: -32022 } as const;

/** How Mandate names itself, as a server to agents and as a client to upstreams. */
export const IMPLEMENTATION = { name: 'mandate-gateway', version } as const;
