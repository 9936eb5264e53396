// The MCP wire shapes the gateway benchmark sends and serves, for both revisions, without an SDK:
// 2025-11-25 (initialize → Mcp-Session-Id, then one POST per request with the session header) and
// 2026-07-28 (stateless: every POST carries MCP-Protocol-Version, Mcp-Method, Mcp-Name and the
// version and client capabilities in params._meta). Shared by the raw upstream server
// (bench/lib/gateway-rig.ts), the load generator (bench/lib/loadgen.ts) and the soak.
import { Agent, request } from 'node:http';

export type Revision = 'legacy' | 'modern';
export const REVISIONS: readonly Revision[] = ['modern', 'legacy'];
export const VERSION: Record<Revision, string> = { legacy: '2025-11-25', modern: '2026-07-28' };
export const META_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const META_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';
export const META_CLIENT_INFO = 'io.modelcontextprotocol/clientInfo';

/** Tool names on each path: the upstream's own, and the gateway's `<upstream id>.<tool>`. */
export const TOOL = { direct: 'read_ticket', gateway: 'bench.read_ticket' } as const;
/** Text every successful result carries (a refusal or error result does not). */
export const RESULT_MARKER = 'Charged twice';

/** Everything one process needs to send `tools/call` to one endpoint in one revision. */
export interface Target {
  readonly url: string;
  readonly revision: Revision;
  readonly tool: string;
  /** Headers of every call (auth, session or the 2026-07-28 request metadata), content-type included. */
  readonly headers: Record<string, string>;
}

/** A request body cut around its JSON-RPC id and argument, so a call costs two string concatenations. */
export interface BodyTemplate {
  readonly head: string;
  readonly mid: string;
  readonly tail: string;
}

export function callTemplate(target: Target): BodyTemplate {
  const meta = target.revision === 'modern' ? `,"_meta":${JSON.stringify(modernMeta())}` : '';
  return {
    head: '{"jsonrpc":"2.0","id":',
    mid: `,"method":"tools/call","params":{"name":${JSON.stringify(target.tool)},"arguments":{"id":"T-`,
    tail: `"}${meta}}}`,
  };
}

export function callBody(t: BodyTemplate, id: number): string {
  return t.head + id + t.mid + id + t.tail;
}

function modernMeta(): Record<string, unknown> {
  return {
    [META_VERSION]: VERSION.modern,
    [META_CLIENT_INFO]: { name: 'mandate-bench', version: '1' },
    [META_CAPABILITIES]: {},
  };
}

const setupAgent = new Agent({ keepAlive: false });

/** One POST over a throw-away connection (set-up requests only; the load generator has its own client). */
export function post(
  url: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: setupAgent,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Prepares calls of `tool` at `url` in `revision`: a 2025-11-25 session is opened here (initialize,
 * notifications/initialized); 2026-07-28 needs nothing but the per-request headers. One call is
 * made and checked, so a misconfigured rig fails before anything is measured.
 */
export async function openTarget(url: string, auth: Record<string, string>, tool: string, revision: Revision): Promise<Target> {
  const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...auth };
  let headers: Record<string, string>;
  if (revision === 'modern') {
    headers = { ...base, 'mcp-protocol-version': VERSION.modern, 'mcp-method': 'tools/call', 'mcp-name': tool };
  } else {
    const init = await post(
      url,
      base,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: VERSION.legacy, capabilities: {}, clientInfo: { name: 'mandate-bench', version: '1' } },
      }),
    );
    // A session id is the server's choice (2025-11-25 "MAY"): a stateless legacy server sends none.
    const sid = init.headers['mcp-session-id'];
    if (init.status !== 200) throw new Error(`initialize failed: ${init.status} ${init.body.slice(0, 300)}`);
    headers = { ...base, ...(typeof sid === 'string' ? { 'mcp-session-id': sid } : {}), 'mcp-protocol-version': VERSION.legacy };
    const ack = await post(url, headers, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    if (ack.status !== 202) throw new Error(`notifications/initialized: HTTP ${ack.status} ${ack.body.slice(0, 300)}`);
  }
  const target: Target = { url, revision, tool, headers };
  const probe = await post(url, headers, callBody(callTemplate(target), 1));
  const problem = resultProblem(probe.status, probe.body);
  if (problem !== undefined) throw new Error(`${revision} tools/call ${tool} at ${url}: ${problem}`);
  return target;
}

/** Why a tools/call answer is not a successful result (undefined when it is). */
export function resultProblem(status: number, body: string): string | undefined {
  if (status !== 200) return `HTTP ${status} ${body.slice(0, 300)}`;
  if (!body.includes(RESULT_MARKER) || body.includes('"isError":true')) return `not a successful result: ${body.slice(0, 300)}`;
  return undefined;
}
