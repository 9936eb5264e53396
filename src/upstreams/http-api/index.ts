// HTTP API upstreams: an OpenAPI 3.0/3.1 description becomes catalog tools (one per operation),
// and a tools/call to one of them becomes that operation's HTTP request.
import { MandateError } from '../../errors/index.js';
import { compileDescription, type HttpApi, type HttpApiTool } from './compile.js';
import { type DescriptionSource, loadDescription } from './description.js';
import { validatorFor } from './validator.js';

export { HttpApiClient } from './client.js';
export type { HttpApi, HttpApiTool, HttpOperation } from './compile.js';
export type { DescriptionSource } from './description.js';

/** Bounds on registering and calling HTTP API upstreams (configuration `upstreams.httpApi`). */
export interface HttpApiLimits {
  /** Directories description files may be read from; none by default (URLs only). */
  readonly descriptionDirs: readonly string[];
  readonly maxDescriptionBytes: number;
  readonly maxOperations: number;
  readonly maxResponseBytes: number;
}

export const DEFAULT_HTTP_API_LIMITS: HttpApiLimits = {
  descriptionDirs: [],
  maxDescriptionBytes: 4 * 1024 * 1024,
  maxOperations: 1000,
  maxResponseBytes: 4 * 1024 * 1024,
};

/** Fetches (or reads) and compiles a description; throws ERR_HTTP_API_DESCRIPTION or ERR_HTTP_API_FILE_NOT_ALLOWED. */
export async function loadHttpApi(
  transport: { readonly description: DescriptionSource; readonly serverUrl?: string | undefined },
  limits: HttpApiLimits,
  timeoutMs: number,
): Promise<{ api: HttpApi; tools: HttpApiTool[] }> {
  const { doc, baseUrl } = await loadDescription(transport.description, {
    maxBytes: limits.maxDescriptionBytes,
    timeoutMs,
    dirs: limits.descriptionDirs,
  });
  const compiled = compileDescription(doc, { serverUrl: transport.serverUrl, baseUrl, maxOperations: limits.maxOperations });
  // Every schema is compiled once here, so one the validator cannot use is refused at registration
  // instead of failing every call to its tool.
  for (const [i, t] of compiled.tools.entries()) {
    // Each compile takes about 2 ms of CPU: let the replica serve other requests in between.
    if (i % 16 === 15) await new Promise((resolve) => setImmediate(resolve));
    try {
      validatorFor(t.inputSchema);
    } catch (err) {
      const why = String((err as Error).message)
        .split('\n')[0]
        ?.slice(0, 200);
      throw new MandateError('ERR_HTTP_API_DESCRIPTION', `the input schema of tool ${t.name} cannot be used: ${why}`);
    }
  }
  return compiled;
}
