// node:fs plus a globSync stub, for the MCP conformance runner on Node 20 (see mcp-node20-hooks.mjs).
import fs from 'node:fs';

export * from 'node:fs';
export default fs;

export function globSync() {
  throw new Error('fs.globSync is not available on Node 20');
}
