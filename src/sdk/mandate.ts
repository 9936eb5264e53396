// The agent SDK's handle on one mandate: opens it, hands out an official MCP client (SDK 2.x,
// pinned to the stateless 2026-07-28 revision) whose every request carries the mandate's token
// with a DPoP proof, makes governed calls that wait for approvals, delegates, and ends it.
//
// Approval waits: when the gateway offers the Tasks extension, the call is sent declaring it and
// the task is polled (`tasks/get`) until it settles; otherwise the exact same call is retried with
// backoff until it runs, is denied, or its approval expires. Tasks requests are framed here, not by
// the MCP client: the 2.x client's result codecs do not accept `resultType: "task"` (see
// test/clients/sdk2.test.ts), so those three methods are one JSON-RPC POST each through the same
// authenticated fetch.
import { randomUUID } from 'node:crypto';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import * as oauth from 'oauth4webapi';
import { META, MODERN_REVISION, TASKS_EXTENSION } from '../lib/mcp-revisions.js';
import {
  ApprovalDenied,
  ApprovalExpired,
  ApprovalRequired,
  MandateAuthError,
  MandateRefusal,
  type RefusalDetails,
  refusalFrom,
} from './errors.js';
import type { IdentitySource } from './identity.js';
import { type Broker, type Clock, discover, type SessionHooks, TokenSession } from './session.js';

const MODERN = MODERN_REVISION;

/**
 * A requested mandate: the `authorization_details` entry of type `mandate` (docs/mandates.md): the
 * task, and the tools with their argument constraints and budgets. `type: 'mandate'` is added.
 *
 * @example
 * ```ts
 * const scope: MandateScope = {
 *   purpose: 'Resolve ticket T-4821',
 *   taskType: 'support.refund',
 *   environment: 'production',
 *   ttlSeconds: 900,
 *   tools: [{ tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } }, maxCalls: 3 }],
 * };
 * ```
 */
export interface MandateScope {
  readonly purpose: string;
  readonly taskType: string;
  readonly environment?: string;
  readonly ttlSeconds?: number;
  readonly tools: readonly Record<string, unknown>[];
  readonly delegable?: boolean;
  readonly [key: string]: unknown;
}

/**
 * A mandate asked for by task template (a `*.template.yaml` loaded with the broker's org policy;
 * docs/mandates.md "Task templates and parameters"): the template's name, its parameters, and the
 * human's request as written, which intent binding compares every call's arguments with.
 * `type: 'mandate'` is added. Unknown, missing or ill-typed parameters are refused
 * ({@link MandateAuthError} `invalid_authorization_details`, `details.code` ERR_TEMPLATE_PARAMS).
 *
 * @example
 * ```ts
 * const task: TemplateTask = {
 *   template: 'payments.transfer',
 *   params: { iban: 'DE89 3704 0044 0532 0130 00', amount: 120 },
 *   request: 'Pay my electricity bill: 120 EUR to DE89 3704 0044 0532 0130 00',
 * };
 * ```
 */
export interface TemplateTask {
  readonly template: string;
  /** Pin a template version (default: the highest the broker has loaded). */
  readonly version?: number;
  readonly params?: Readonly<Record<string, unknown>>;
  /** The human's request, as they wrote it. */
  readonly request?: string;
  readonly purpose?: string;
  /** At most the template's lifetime. */
  readonly ttlSeconds?: number;
  readonly environment?: string;
}

/**
 * Options of {@link Mandate.open}.
 *
 * @example
 * ```ts
 * const options: OpenOptions = { broker: 'https://mandate.example.com', identity: svidFile('/run/spiffe/svid.jwt'), template: 'refund-triage' };
 * const m = await Mandate.open(options);
 * ```
 */
export interface OpenOptions {
  /** The broker's public URL (issuer of its tokens, host of /mcp). */
  readonly broker: string;
  /** Where the agent's identity proofs come from. */
  readonly identity: IdentitySource;
  /** A task template of the agent's profile, by name. Give this or `scope` (neither: the agent's `default` template). */
  readonly template?: string;
  /** The mandate asked for, spelled out. Give this or `template`. */
  readonly scope?: MandateScope;
  /** The mandate asked for by task template file, with parameters and the human's request. Give this, `scope` or `template`. */
  readonly task?: TemplateTask;
  /**
   * On whose behalf the agent acts: a token of that human from the broker's human issuer (RFC 8693:
   * the human is the subject, the agent the actor). Needs `scope`.
   */
  readonly onBehalfOf?: string;
  /** Bind every token of the mandate to a DPoP key (RFC 9449). Default `true`: a fresh ES256 key, or this key pair. */
  readonly dpop?: boolean | CryptoKeyPair;
  /** The MCP client's name and version as the gateway sees them. */
  readonly clientInfo?: { readonly name: string; readonly version: string };
  /** Called after each token refresh (the mandate stays the same), e.g. to log it. */
  readonly onTokenRefresh?: (info: { readonly mandateId: string; readonly expiresAt: number }) => void;
  /**
   * Time source in epoch ms (default the system clock): when to refresh, approval deadlines, the
   * `iat` of DPoP proofs. For simulations and tests that move time; agents leave it alone.
   */
  readonly clock?: Clock;
}

/**
 * What is known about an approval the SDK is waiting for (given to {@link CallOptions.onPending}).
 *
 * @example
 * ```ts
 * await m.call('helpdesk.execute_refund', refund, { onPending: (a: PendingApproval) => notify(`please approve: ${a.url}`) });
 * ```
 */
export interface PendingApproval {
  readonly approvalId: string | undefined;
  /** The console page where a human decides. */
  readonly url: string | undefined;
  /** How the SDK waits: an MCP task, or retrying the same call. */
  readonly via: 'task' | 'retry';
  readonly taskId?: string;
  /** The broker's message (which roles may approve, until when). */
  readonly message: string;
}

/**
 * Options of {@link Mandate.call}.
 *
 * @example
 * ```ts
 * const options: CallOptions = { timeoutMs: 10 * 60_000, onPending: (a) => console.log(a.url) };
 * await m.call('helpdesk.execute_refund', refund, options);
 * ```
 */
export interface CallOptions {
  /**
   * Wait for a human approval when the call needs one (default `true`): until it is approved (the
   * result of the call that then ran), denied ({@link ApprovalDenied}) or expired
   * ({@link ApprovalExpired}). `false`: throw {@link ApprovalRequired} at once.
   */
  readonly waitForApproval?: boolean;
  /** Give up waiting after this long ({@link ApprovalRequired}; a task is cancelled, withdrawing its request). */
  readonly timeoutMs?: number;
  /** `auto` (default): a task when the gateway offers the extension, else retries. */
  readonly approvalMode?: 'auto' | 'task' | 'retry';
  /** Called once when the wait begins (tell the user where to approve). */
  readonly onPending?: (approval: PendingApproval) => void;
  /**
   * Retry mode: the first interval (doubling up to 10 s, never past the approval's expiry; default
   * 1000). Task mode: the polling interval, instead of the one the gateway suggests.
   */
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * The result of a tool call that ran (an MCP `CallToolResult`).
 *
 * @example
 * ```ts
 * const r: ToolResult = await m.call('helpdesk.search_tickets', { query: 'charged twice' });
 * console.log(r.structuredContent ?? textOf(r));
 * ```
 */
export interface ToolResult {
  readonly content: readonly { type: string; text?: string; [key: string]: unknown }[];
  readonly structuredContent?: Record<string, unknown>;
  readonly isError?: boolean;
  readonly _meta?: Record<string, unknown>;
  readonly [key: string]: unknown;
}

/**
 * Options of {@link Mandate.delegate}.
 *
 * @example
 * ```ts
 * const options: DelegateOptions = { identity: svidFile('/run/spiffe/remediation.jwt'), scope: narrowerScope };
 * const child = await m.delegate(options);
 * ```
 */
export interface DelegateOptions {
  /** The receiving agent's identity (its proof is the token exchange's actor token). */
  readonly identity: IdentitySource;
  /** The child mandate: a subset of this one (the broker refuses anything wider). */
  readonly scope: MandateScope;
  /** Called after each refresh of the child's token. */
  readonly onTokenRefresh?: (info: { readonly mandateId: string; readonly expiresAt: number }) => void;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    });
  });

/**
 * The text blocks of a tool result, joined by newlines.
 *
 * @example
 * ```ts
 * console.log(textOf(await m.call('helpdesk.search_tickets', { query: 'charged twice' })));
 * ```
 */
export const textOf = (r: { content?: readonly { type: string; text?: string }[] }): string =>
  (r.content ?? [])
    .map((c) => (c.type === 'text' ? (c.text ?? '') : ''))
    .join('\n')
    .trim();

const refusalOf = (r: ToolResult): RefusalDetails | undefined => {
  const m = r._meta?.['mandate/error'];
  return r.isError === true && typeof m === 'object' && m !== null && typeof (m as { code?: unknown }).code === 'string'
    ? (m as RefusalDetails)
    : undefined;
};

interface RpcReply {
  readonly result?: Record<string, unknown>;
  readonly error?: { code: number; message: string; data?: { code?: string; [k: string]: unknown } };
}

/**
 * An open mandate: one agent, one task, one scope. Open it with {@link Mandate.open}; call tools with
 * {@link Mandate.call} or the official MCP client in {@link Mandate.client}; end it with
 * {@link Mandate.complete} or {@link Mandate.fail}.
 *
 * @example
 * ```ts
 * import { Mandate, svidFile } from 'mandate/sdk';
 * const m = await Mandate.open({ broker: 'http://127.0.0.1:8080', identity: svidFile('/run/spiffe/svid.jwt'), template: 'refund-triage' });
 * const r = await m.call('helpdesk.search_tickets', { query: 'charged twice' });
 * await m.complete();
 * ```
 */
export class Mandate {
  /**
   * The official MCP client (`@modelcontextprotocol/client`), connected to the broker's /mcp with
   * this mandate's token: DPoP proofs, nonce retries and refresh are done underneath. Refusals
   * arrive as `isError` results with `_meta['mandate/error']`; {@link Mandate.call} turns them into errors.
   */
  readonly client: Client;
  readonly #session: TokenSession;
  readonly #clientInfo: { readonly name: string; readonly version: string };
  readonly #clock: Clock;
  #ended = false;

  private constructor(session: TokenSession, client: Client, clientInfo: { name: string; version: string }, clock: Clock) {
    this.#session = session;
    this.client = client;
    this.#clientInfo = clientInfo;
    this.#clock = clock;
  }

  /**
   * Opens a mandate (the MCP client-credentials grant with the agent's identity proof as its
   * `private_key_jwt` assertion; on behalf of a human, the RFC 8693 token exchange) and connects an
   * MCP client to the gateway with it.
   *
   * @throws {@link MandateAuthError} when the broker refuses the identity or the requested mandate.
   * @example
   * ```ts
   * const m = await Mandate.open({
   *   broker: 'https://mandate.example.com',
   *   identity: svidFile('/run/spiffe/svid.jwt'),
   *   scope: { purpose: 'Answer ticket T-1', taskType: 'support.triage', tools: [{ tool: 'helpdesk.search_tickets' }] },
   * });
   * ```
   */
  static async open(o: OpenOptions): Promise<Mandate> {
    if ([o.template, o.scope, o.task].filter((x) => x !== undefined).length > 1) {
      throw new TypeError('give one of template, scope or task');
    }
    if (o.onBehalfOf !== undefined && o.scope === undefined && o.task === undefined)
      throw new TypeError('onBehalfOf needs scope or task (a token exchange names its mandate)');
    const broker = await discover(o.broker);
    const key = await dpopKey(o.dpop);
    const clock = o.clock ?? { now: () => Date.now() };
    const hooks: SessionHooks = { clock, onRefresh: o.onTokenRefresh };
    const wanted = o.scope ?? o.task;
    const scope = wanted === undefined ? undefined : JSON.stringify([{ type: 'mandate', ...wanted }]);
    const session = await TokenSession.open(
      broker,
      o.identity,
      key,
      o.onBehalfOf !== undefined
        ? ({
            grant: 'token_exchange',
            params: {
              subject_token: o.onBehalfOf,
              subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
              authorization_details: scope ?? '',
            },
          } as const)
        : ({
            grant: 'client_credentials',
            params: scope !== undefined ? { authorization_details: scope } : o.template !== undefined ? { scope: o.template } : {},
          } as const),
      hooks,
    );
    return Mandate.#connect(broker, session, o.clientInfo ?? { name: 'mandate-sdk', version: '1' }, clock);
  }

  static async #connect(
    broker: Broker,
    session: TokenSession,
    clientInfo: { name: string; version: string },
    clock: Clock,
  ): Promise<Mandate> {
    const client = new Client({ ...clientInfo }, { versionNegotiation: { mode: { pin: MODERN } } });
    await client.connect(new StreamableHTTPClientTransport(new URL('/mcp', `${broker.base}/`), { fetch: session.fetch }));
    return new Mandate(session, client, clientInfo, clock);
  }

  /**
   * The mandate's id (`mnd_…`), as the console and audit log show it.
   *
   * @example
   * ```ts
   * console.log(`${broker}/console/mandates/${m.id}`);
   * ```
   */
  get id(): string {
    return this.#session.mandateId;
  }

  /**
   * When the mandate ends at the latest (epoch ms, as granted); a child mandate cannot outlive it.
   *
   * @example
   * ```ts
   * const secondsLeft = Math.floor((m.expiresAt - Date.now()) / 1000);
   * ```
   */
  get expiresAt(): number {
    return this.#session.mandateExpiresAt;
  }

  /**
   * A valid access token of this mandate (refreshed when three quarters of its life have passed),
   * for clients that take a bearer token (open with `dpop: false` for those).
   *
   * @example
   * ```ts
   * const headers = { authorization: `Bearer ${await m.token()}` };
   * ```
   */
  token(): Promise<string> {
    return this.#session.token();
  }

  /**
   * `fetch` that presents this mandate's token to the broker (/mcp, the agent API): a DPoP proof per
   * request, the server's nonce, a refresh when due. Hand it to any client that takes a fetch.
   *
   * @example
   * ```ts
   * const transport = new StreamableHTTPClientTransport(new URL(`${broker}/mcp`), { fetch: m.fetch });
   * ```
   */
  get fetch(): (input: string | URL | Request, init?: RequestInit) => Promise<Response> {
    return this.#session.fetch;
  }

  /**
   * Calls a tool through the gateway. Resolves with the tool's result when it ran; throws a
   * {@link MandateRefusal} (its `code` from the broker) when the mandate or policy refused it,
   * {@link ApprovalDenied} / {@link ApprovalExpired} when a human approval did not come, or
   * {@link ApprovalRequired} when not waiting. A tool's own `isError` result is returned as is.
   *
   * @example
   * ```ts
   * const r = await m.call('helpdesk.execute_refund', { customerId: 'C-1009', amountCents: 4900 }, {
   *   onPending: (a) => console.log(`approve at ${a.url}`),
   * });
   * ```
   */
  async call(tool: string, args: Record<string, unknown> = {}, options: CallOptions = {}): Promise<ToolResult> {
    // Every call goes through the official client first; only a call that waits for a human
    // becomes a task (the same call again, declaring the extension: the gateway turns the pending
    // approval into a task), or is retried.
    const first = await this.#callOnce(tool, args, options.signal);
    const refusal = refusalOf(first);
    if (refusal?.code !== 'RPC_APPROVAL_REQUIRED' || options.waitForApproval === false) return this.#settle(first);
    const mode = options.approvalMode ?? 'auto';
    if (mode === 'task' || (mode === 'auto' && this.#offersTasks())) return this.#waitAsTask(tool, args, refusal, options);
    return this.#retryUntilDecided(tool, args, first, refusal, options);
  }

  #offersTasks(): boolean {
    const caps = this.client.getDiscoverResult()?.capabilities as { extensions?: Record<string, unknown> } | undefined;
    return caps?.extensions?.[TASKS_EXTENSION] !== undefined;
  }

  async #callOnce(tool: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<ToolResult> {
    if (this.#ended) throw new MandateAuthError('invalid_grant', `mandate ${this.id} has ended; open a new one`);
    this.#session.lastRefusal = undefined;
    try {
      return (await this.client.callTool({ name: tool, arguments: args }, signal ? { signal } : undefined)) as ToolResult;
    } catch (err) {
      // Protocol refusals (an unknown tool, a limit) are JSON-RPC errors with the registry code in data.code.
      const data = (err as { data?: { code?: unknown } }).data;
      if (typeof data?.code === 'string') throw new MandateRefusal((err as Error).message, data as RefusalDetails);
      // The token was refused (the mandate ended or was revoked elsewhere, the agent was suspended).
      const refused = this.#session.lastRefusal;
      if (refused !== undefined) throw refused;
      throw err;
    }
  }

  /** A result that ran, or the error its refusal is. */
  #settle(result: ToolResult): ToolResult {
    const refusal = refusalOf(result);
    if (refusal === undefined) return result;
    throw refusalFrom(refusal, textOf(result), result);
  }

  async #retryUntilDecided(
    tool: string,
    args: Record<string, unknown>,
    first: ToolResult,
    pending: RefusalDetails,
    o: CallOptions,
  ): Promise<ToolResult> {
    o.onPending?.({ approvalId: pending.approvalId, url: pending.url, via: 'retry', message: textOf(first) });
    const giveUp = o.timeoutMs === undefined ? Number.POSITIVE_INFINITY : this.#clock.now() + o.timeoutMs;
    const expiresAt = typeof pending.expiresAt === 'number' ? pending.expiresAt : Number.POSITIVE_INFINITY;
    let interval = o.pollMs ?? 1000;
    let last = first;
    for (;;) {
      const now = this.#clock.now();
      if (now >= giveUp) throw new ApprovalRequired(`gave up waiting for approval ${pending.approvalId ?? ''}`.trim(), pending, last);
      // Never sleep past the expiry: one retry right after it tells expired from approved-at-the-last-moment.
      await sleep(Math.max(0, Math.min(interval, giveUp - now, expiresAt + 250 - now)), o.signal);
      interval = Math.min(interval * 2, 10_000);
      last = await this.#callOnce(tool, args, o.signal);
      const r = refusalOf(last);
      if (r?.code !== 'RPC_APPROVAL_REQUIRED') return this.#settle(last);
      // A new approval request for the same call: ours ended without being granted (expired or withdrawn).
      if (r.approvalId !== pending.approvalId || this.#clock.now() > expiresAt) {
        throw new ApprovalExpired(
          `approval ${pending.approvalId ?? ''} expired before anyone decided; the call did not run`,
          pending,
          last,
        );
      }
    }
  }

  async #waitAsTask(tool: string, args: Record<string, unknown>, pending: RefusalDetails, o: CallOptions): Promise<ToolResult> {
    const created = await this.#rpc('tools/call', { name: tool, arguments: args }, tool, o.signal);
    const r = created.result ?? {};
    // Decided in between: the call ran (or was refused) as an ordinary result.
    if (r.resultType !== 'task') return this.#settle(r as ToolResult);
    const taskId = String(r.taskId);
    o.onPending?.({ approvalId: pending.approvalId, url: pending.url, via: 'task', taskId, message: String(r.statusMessage ?? '') });
    const giveUp = o.timeoutMs === undefined ? Number.POSITIVE_INFINITY : this.#clock.now() + o.timeoutMs;
    let task = r;
    while (task.status === 'working') {
      if (this.#clock.now() >= giveUp) {
        // Withdraw the request: nobody should approve a call that will not run.
        await this.#rpc('tasks/cancel', { taskId }, taskId).catch(() => {});
        throw new ApprovalRequired(`gave up waiting: task ${taskId} cancelled`, { code: 'RPC_APPROVAL_REQUIRED' });
      }
      const poll = o.pollMs ?? (typeof task.pollIntervalMs === 'number' ? task.pollIntervalMs : 2000);
      await sleep(Math.min(poll, Math.max(0, giveUp - this.#clock.now())), o.signal);
      task = (await this.#rpc('tasks/get', { taskId }, taskId, o.signal)).result ?? {};
    }
    if (task.status === 'completed') {
      const result = (task.result ?? {}) as ToolResult;
      const refusal = refusalOf(result);
      // Not run because its approval expired (the task's result says so with its own code).
      if (refusal?.code === 'RPC_APPROVAL_EXPIRED') {
        throw new ApprovalExpired(textOf(result), refusal, result);
      }
      return this.#settle(result);
    }
    const error = (task.error ?? {}) as RpcReply['error'];
    const details: RefusalDetails = { ...(error?.data ?? {}), code: error?.data?.code ?? `task ${String(task.status)}` };
    throw refusalFrom(details, error?.message ?? String(task.statusMessage ?? ''), task);
  }

  /** One 2026-07-28 JSON-RPC request declaring the Tasks extension (framing of the streamable HTTP transport). */
  async #rpc(method: string, params: Record<string, unknown>, name?: string, signal?: AbortSignal): Promise<RpcReply> {
    const id = randomUUID();
    const body = {
      jsonrpc: '2.0',
      id,
      method,
      params: {
        ...params,
        _meta: {
          [META.protocolVersion]: MODERN,
          [META.clientInfo]: this.#clientInfo,
          [META.clientCapabilities]: { extensions: { [TASKS_EXTENSION]: {} } },
        },
      },
    };
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-method': method,
      'mcp-protocol-version': MODERN,
    };
    if (name !== undefined) {
      const plain = /^[!-~](?:[ -~]*[!-~])?$/.test(name) && !name.startsWith('=?base64?');
      headers['mcp-name'] = plain ? name : `=?base64?${Buffer.from(name, 'utf8').toString('base64')}?=`;
    }
    const res = await this.#session.fetch(new URL('/mcp', `${this.#session.broker.base}/`), {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
    const text = await res.text();
    let reply: RpcReply & { id?: unknown } = {};
    if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) {
      for (const line of text.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const msg = JSON.parse(line.slice(5)) as RpcReply & { id?: unknown };
        if (msg.id === id) reply = msg;
      }
    } else if (text !== '') {
      reply = JSON.parse(text) as RpcReply;
    }
    if (res.status === 401)
      throw new MandateAuthError('invalid_token', res.headers.get('www-authenticate') ?? 'the token was refused', 401);
    if (reply.error !== undefined) {
      const data = reply.error.data ?? {};
      throw new MandateRefusal(reply.error.message, {
        ...data,
        code: typeof data.code === 'string' ? data.code : String(reply.error.code),
      });
    }
    if (reply.result === undefined) throw new Error(`no JSON-RPC response to ${method} (HTTP ${res.status})`);
    return reply;
  }

  /**
   * Delegates a narrower mandate to another agent (RFC 8693 token exchange: this mandate's token is
   * the subject, the other agent's identity proof the actor). The broker refuses a child wider than
   * this mandate. The child's tokens are bound to this mandate's DPoP key.
   *
   * @throws {@link MandateAuthError} (`invalid_authorization_details`, `invalid_target`) when refused.
   * @example
   * ```ts
   * const child = await m.delegate({
   *   identity: svidFile('/run/spiffe/remediation.jwt'),
   *   scope: { purpose: 'Look up C-1009', taskType: 'support.refund', tools: [{ tool: 'helpdesk.get_customer' }] },
   * });
   * await child.call('helpdesk.get_customer', { customerId: 'C-1009' });
   * ```
   */
  async delegate(o: DelegateOptions): Promise<Mandate> {
    const child = await this.#session.delegate(o.identity, o.scope, { clock: this.#clock, onRefresh: o.onTokenRefresh });
    return Mandate.#connect(this.#session.broker, child, this.#clientInfo, this.#clock);
  }

  /**
   * Ends the mandate as done: it, every mandate delegated from it and all their tokens stop working.
   *
   * @example
   * ```ts
   * await m.complete('ticket resolved');
   * ```
   */
  complete(reason?: string): Promise<void> {
    return this.#end('complete', reason);
  }

  /**
   * Ends the mandate as failed (same effect as {@link Mandate.complete}, recorded as a failure).
   *
   * @example
   * ```ts
   * await m.fail('the customer record is locked');
   * ```
   */
  fail(reason: string): Promise<void> {
    return this.#end('fail', reason);
  }

  async #end(action: 'complete' | 'fail', reason: string | undefined): Promise<void> {
    const url = new URL(`/mandate/v1/mandates/${encodeURIComponent(this.id)}/${action}`, `${this.#session.broker.base}/`);
    const res = await this.#session.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(reason === undefined ? {} : { reason }),
    });
    if (!res.ok) {
      const body = (await res.json().catch(() => ({}))) as { error?: string; error_description?: string; code?: string; message?: string };
      throw new MandateAuthError(body.error ?? body.code ?? `http_${res.status}`, body.error_description ?? body.message ?? '', res.status);
    }
    this.#ended = true;
    await this.close();
  }

  /**
   * True once {@link Mandate.complete} or {@link Mandate.fail} succeeded.
   *
   * @example
   * ```ts
   * if (!m.ended) await m.fail('interrupted');
   * ```
   */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Closes the MCP client; the mandate stays open (until it expires or is ended elsewhere).
   *
   * @example
   * ```ts
   * await m.close();
   * ```
   */
  async close(): Promise<void> {
    await this.client.close().catch(() => {});
  }
}

async function dpopKey(dpop: OpenOptions['dpop']): Promise<CryptoKeyPair | undefined> {
  if (dpop === false) return undefined;
  if (dpop === undefined || dpop === true) return oauth.generateKeyPair('ES256');
  return dpop;
}
