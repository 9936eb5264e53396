// HTTP API upstreams: an OpenAPI 3.0/3.1 description becomes catalog tools (one per operation),
// and a tools/call to one of them becomes that operation's HTTP request.
import { compileDescription, type HttpApi, type HttpApiTool } from './compile.js';
import { type DescriptionSource, loadDescription } from './description.js';

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
  return compileDescription(doc, { serverUrl: transport.serverUrl, baseUrl, maxOperations: limits.maxOperations });
}
