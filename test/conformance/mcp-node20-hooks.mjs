// Module hooks that let the pinned MCP conformance runner load on Node 20: it imports
// fs.globSync (Node >= 22) at load time but only calls it in its tier report, which the
// server-mode run never uses. Only the runner's own `fs` import is redirected, to a module
// that re-exports node:fs plus a globSync that throws.
import { register } from 'node:module';

if (import.meta.url.endsWith('?register') === false && typeof globalThis.__mcpNode20Hooks === 'undefined') {
  globalThis.__mcpNode20Hooks = true;
  register(`${import.meta.url}?register`);
}

export async function resolve(specifier, context, next) {
  if ((specifier === 'fs' || specifier === 'node:fs') && context.parentURL?.includes('/@modelcontextprotocol/conformance/')) {
    return { url: new URL('./mcp-fs-shim.mjs', import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
