// The one registry of Mandate's error codes. Callers branch on `code`, never on message text.
// Three code spaces are kept apart: `oauth` (RFC 6749 §5.2 / RFC 6750 error values on the wire),
// `jsonrpc` (JSON-RPC / MCP error codes), `internal` (everything else: admin API, CLI, startup).
// docs/errors.md is tested against this table in both directions.

export type ErrorSpace = 'oauth' | 'jsonrpc' | 'internal';

export interface ErrorSpec {
  readonly space: ErrorSpace;
  /** HTTP status when the error reaches an HTTP client. */
  readonly status: number;
  /** Default message; safe to show to the client when `expose` is true. */
  readonly message: string;
  /** RFC 6749 `error` value (oauth space only). */
  readonly oauthError?: string;
  /** JSON-RPC error code (jsonrpc space only). */
  readonly rpcCode?: number;
  /** When false the client sees a generic server_error with a request id; details go to the log. */
  readonly expose: boolean;
}

const internal = (status: number, message: string, expose = true): ErrorSpec => ({
  space: 'internal',
  status,
  message,
  expose,
});
const oauth = (status: number, oauthError: string, message: string): ErrorSpec => ({
  space: 'oauth',
  status,
  message,
  oauthError,
  expose: true,
});
const rpc = (rpcCode: number, message: string, status = 200): ErrorSpec => ({
  space: 'jsonrpc',
  status,
  message,
  rpcCode,
  expose: true,
});

export const errorRegistry = {
  // ── configuration and startup (CLI exits non-zero with one line) ──
  ERR_CONFIG_UNREADABLE: internal(500, 'configuration file cannot be read'),
  ERR_CONFIG_PARSE: internal(500, 'configuration file is not valid YAML or JSON'),
  ERR_CONFIG_UNKNOWN_KEY: internal(500, 'configuration has an unknown key'),
  ERR_CONFIG_INVALID: internal(500, 'configuration value is invalid'),
  ERR_MASTER_KEY_MISSING: internal(500, 'MANDATE_MASTER_KEY is required outside demo mode'),
  ERR_MASTER_KEY_MALFORMED: internal(500, 'MANDATE_MASTER_KEY is malformed'),
  ERR_PORT_IN_USE: internal(500, 'the listen address is already in use'),
  ERR_ROUTE_ACCESS_UNDECLARED: internal(500, 'an HTTP route declares no access rule; the broker refuses to start'),
  ERR_STDIO_COMMAND_NOT_ALLOWED: internal(403, 'this stdio command is not in upstreams.stdio.allowedCommands'),
  ERR_HTTP_API_DESCRIPTION: internal(400, 'the OpenAPI description cannot be used for an HTTP API upstream'),
  ERR_HTTP_API_FILE_NOT_ALLOWED: internal(403, 'this OpenAPI description file is not under upstreams.httpApi.descriptionDirs'),
  ERR_FILE_UNREADABLE: internal(500, 'a file named on the command line cannot be read'),
  ERR_BROKER_UNREACHABLE: internal(502, 'the CLI cannot reach the broker at its URL'),
  ERR_UPSTREAM_DISCOVERY_FAILED: internal(502, 'the upstream is registered but listing its tools failed'),

  // ── storage ──
  ERR_STORE_UNAVAILABLE: internal(503, 'the store is unreachable', false),
  ERR_STORE_MIGRATION: internal(500, 'a store migration failed', false),
  ERR_STORE_CONFLICT: internal(409, 'the record already exists'),
  ERR_REPLICA_STALE: internal(503, 'this replica cannot confirm it has applied every change; refusing privileged work'),
  ERR_SECRET_UNDECRYPTABLE: internal(500, 'a stored secret cannot be decrypted', false),

  // ── HTTP boundary (admin API and every JSON endpoint) ──
  ERR_BAD_REQUEST: internal(400, 'the request is malformed'),
  ERR_VALIDATION: internal(400, 'the request body does not match the schema'),
  ERR_BODY_TOO_LARGE: internal(413, 'the request body is larger than the configured limit'),
  ERR_HEADERS_TOO_LARGE: internal(431, 'the request headers are larger than the server accepts'),
  ERR_UNSUPPORTED_MEDIA_TYPE: internal(415, 'the request content type is not supported'),
  ERR_NOT_FOUND: internal(404, 'no such resource'),
  ERR_METHOD_NOT_ALLOWED: internal(405, 'method not allowed'),
  // Per client address and replica (server.rateLimit); Retry-After says when the window ends.
  ERR_RATE_LIMITED: internal(429, 'too many requests from this client; retry later'),
  ERR_INTERNAL: internal(500, 'internal error', false),

  // ── operator authentication and admin authorization ──
  ERR_AUTH_MISSING: internal(401, 'a bearer token is required'),
  ERR_AUTH_INVALID_TOKEN: internal(401, 'the bearer token is invalid'),
  ERR_AUTH_TOKEN_EXPIRED: internal(401, 'the bearer token has expired'),
  ERR_FORBIDDEN: internal(403, 'the caller is not allowed to do this'),
  ERR_CLIENT_CERTIFICATE_REQUIRED: internal(401, 'a client certificate (X.509-SVID) is required'),

  // ── OAuth space (token endpoint, introspection, revocation; RFC 6749 §5.2, RFC 6750) ──
  OAUTH_INVALID_REQUEST: oauth(400, 'invalid_request', 'the request is missing a parameter or is malformed'),
  OAUTH_INVALID_CLIENT: oauth(401, 'invalid_client', 'client authentication failed'),
  OAUTH_INVALID_GRANT: oauth(400, 'invalid_grant', 'the presented grant or subject token is invalid'),
  OAUTH_UNSUPPORTED_GRANT_TYPE: oauth(400, 'unsupported_grant_type', 'the grant type is not supported'),
  // RFC 6749 §5.2: a client-credentials `scope` that names no task template of the agent.
  OAUTH_INVALID_SCOPE: oauth(400, 'invalid_scope', 'the requested scope is invalid or unknown'),
  // RFC 6749 §4.1.2.1: the authorization endpoint supports `code` only.
  OAUTH_UNSUPPORTED_RESPONSE_TYPE: oauth(400, 'unsupported_response_type', 'the authorization server does not support this response type'),
  // RFC 6749 §4.1.2.1: the human (or the server on their behalf) refused the authorization request; sent to the client's redirect URI.
  OAUTH_ACCESS_DENIED: oauth(403, 'access_denied', 'the resource owner or authorization server denied the request'),
  // RFC 7591 §3.2.2: dynamic client registration refusals.
  OAUTH_INVALID_REDIRECT_URI: oauth(400, 'invalid_redirect_uri', 'a redirect URI of the registration is not acceptable'),
  OAUTH_INVALID_CLIENT_METADATA: oauth(400, 'invalid_client_metadata', 'a client metadata value is invalid or not accepted'),
  OAUTH_INVALID_TOKEN: oauth(401, 'invalid_token', 'the access token is invalid, expired or revoked'),
  OAUTH_INSUFFICIENT_SCOPE: oauth(403, 'insufficient_scope', 'the access token does not grant this'),

  // ── identity, tokens and mandates (token exchange, DPoP, delegation, lifecycle) ──
  // RFC 8693 §2.2.2: an invalid or unacceptable subject/actor token is `invalid_request`.
  OAUTH_INVALID_SUBJECT_TOKEN: oauth(400, 'invalid_request', 'the subject or actor token is invalid or not acceptable'),
  // RFC 9396 §5: the requested authorization_details are malformed or exceed what may be granted.
  OAUTH_INVALID_AUTHORIZATION_DETAILS: oauth(400, 'invalid_authorization_details', 'the authorization details are invalid or not allowed'),
  // RFC 8693 §2.2.2: the requested audience/target (e.g. a delegation receiver) is not acceptable.
  OAUTH_INVALID_TARGET: oauth(400, 'invalid_target', 'the requested target is invalid or not allowed'),
  // RFC 9449 §5 / §8: DPoP proof problems at the token endpoint, and the server nonce challenge.
  OAUTH_INVALID_DPOP_PROOF: oauth(400, 'invalid_dpop_proof', 'the DPoP proof is invalid'),
  OAUTH_USE_DPOP_NONCE: oauth(400, 'use_dpop_nonce', 'a DPoP nonce is required'),
  // RFC 9449 §9: the same challenge at a resource (/mcp, agent API), as a 401 with `WWW-Authenticate: DPoP error="use_dpop_nonce"`.
  OAUTH_RESOURCE_USE_DPOP_NONCE: oauth(
    401,
    'use_dpop_nonce',
    'this resource requires a DPoP nonce issued by the replica that serves the request',
  ),
  // `slow_down` is the registered OAuth token-endpoint error for a client asking too fast (RFC 8628 §3.5).
  OAUTH_RATE_LIMITED: oauth(429, 'slow_down', 'too many token requests from this client; retry later'),
  ERR_MANDATE_NOT_ACTIVE: internal(409, 'the mandate is not active'),
  ERR_TRUST_UNAVAILABLE: internal(503, 'a trust bundle or issuer key set cannot be loaded'),

  // ── audit log (append, proofs, verify, explain) ──
  // Fail closed: the privileged action that wanted this event must not happen.
  ERR_AUDIT_UNAVAILABLE: internal(503, 'the audit log cannot record this action, so it was not performed'),
  ERR_AUDIT_EVENT_INVALID: internal(500, 'the audit event is not serializable as canonical JSON', false),
  ERR_AUDIT_RANGE: internal(400, 'the requested audit log range or tree size is outside the log'),
  ERR_AUDIT_VERIFY_FAILED: internal(500, 'the audit log or proof failed verification'),

  // ── gateway, upstreams and approvals ──
  ERR_APPROVER_NOT_ALLOWED: internal(403, 'this operator may not decide this approval'),
  ERR_APPROVAL_NOT_PENDING: internal(409, 'the approval is no longer pending'),
  // Leases (src/leases): the provider failed or the mandate is no longer live; nothing is injected (fail closed).
  ERR_LEASE_UNAVAILABLE: internal(503, 'a per-mandate credential (lease) could not be obtained'),
  // JSON-RPC errors of /mcp. Codes in the JSON-RPC server range; `data.code` carries the name.
  RPC_UNKNOWN_TOOL: rpc(-32602, 'unknown tool'),
  RPC_CALL_DENIED: rpc(-32001, 'the call was denied by policy'),
  // Sent as a tool error (isError) so the agent can tell its user; never forwarded.
  RPC_APPROVAL_REQUIRED: rpc(-32002, 'the call waits for human approval'),
  // Sent as a tool error: a human denied this exact call; a retry is answered the same way, without a new request.
  RPC_APPROVAL_DENIED: rpc(-32006, 'a human denied this exact call'),
  // Sent as a tool error (a task's result): nobody decided before the approval expired; the call was not run.
  RPC_APPROVAL_EXPIRED: rpc(-32007, 'the approval expired before anyone decided'),
  RPC_ARGS_TOO_LARGE: rpc(-32003, 'the tool arguments exceed the configured limit'),
  RPC_CONCURRENCY_LIMIT: rpc(-32004, 'too many concurrent calls for this mandate'),
  RPC_SESSION_NOT_FOUND: rpc(-32005, 'no such MCP session for this mandate', 404),
  // Upstream failures after an allowed call: tool errors, audited, never retried by the gateway.
  RPC_UPSTREAM_UNAVAILABLE: rpc(-32010, 'the upstream is unreachable'),
  RPC_UPSTREAM_TIMEOUT: rpc(-32011, 'the upstream did not answer in time'),
  RPC_UPSTREAM_ERROR: rpc(-32012, 'the upstream answered with a protocol error'),
  RPC_RESULT_TOO_LARGE: rpc(-32013, 'the upstream result exceeds the configured limit'),
  // An allowed call whose per-mandate credential (lease, src/leases) could not be obtained: not forwarded.
  RPC_LEASE_UNAVAILABLE: rpc(-32016, 'the credential for this upstream could not be obtained for this mandate; the call was not forwarded'),
  // Failures of durable MCP tasks (src/tasks), carried in the task's `error` (status `failed`).
  RPC_TASK_EXPIRED: rpc(-32014, 'the task expired before its call was approved and forwarded'),
  RPC_TASK_OUTCOME_UNKNOWN: rpc(-32015, 'the replica forwarding the task stopped before recording its result; it is not forwarded again'),
  // Envelope refusals of /mcp (src/gateway/envelope.ts); a non-finite tool argument is audited.
  RPC_NON_FINITE_NUMBER: rpc(-32602, 'a number in the request is not finite (NaN or Infinity)'),
  RPC_REQUEST_TOO_DEEP: rpc(-32600, 'the request is nested deeper than the limit', 400),
  RPC_NOT_ACCEPTABLE: rpc(-32600, 'the client must accept application/json and text/event-stream', 406),
  // MCP 2026-07-28 protocol errors (the spec's own codes, -32020..-32022; HTTP 400 as it requires).
  RPC_HEADER_MISMATCH: rpc(-32020, 'the MCP request headers are missing or do not match the body', 400),
  RPC_MISSING_CLIENT_CAPABILITY: rpc(-32021, 'Missing required client capability', 400),
  RPC_UNSUPPORTED_PROTOCOL_VERSION: rpc(-32022, 'Unsupported protocol version', 400),
  RPC_META_INVALID: rpc(-32602, 'the request _meta lacks a required protocol field', 400),
  RPC_METHOD_NOT_ALLOWED: rpc(-32600, 'this HTTP method is not served here for this MCP revision', 405),
  // Tasks extension (SEP-2663): unknown, expired or another mandate's task, all alike.
  RPC_TASK_NOT_FOUND: rpc(-32602, 'Failed to retrieve task: Task not found'),
  // A request the client cancelled (legacy notifications/cancelled) gets this answer so its HTTP request ends.
  RPC_REQUEST_CANCELLED: rpc(-32800, 'the request was cancelled by the client'),

  // ── org policy (Cedar) and the AuthZEN PDP ──
  ERR_POLICY_INVALID: internal(422, 'the policy set does not parse or validate; the previous set keeps serving'),
  ERR_POLICY_UNAVAILABLE: internal(503, 'no valid org policy set is loaded'),
  // Task templates (src/templates): the token endpoint answers these as invalid_authorization_details with the code in details.
  ERR_TEMPLATE_UNKNOWN: internal(400, 'no task template of this name (and version) is loaded'),
  ERR_TEMPLATE_PARAMS: internal(400, 'the task template parameters are unknown, missing or of the wrong type'),
  // The external AuthZEN PDP engine (src/policy/authzen-engine.ts): each makes the decision a deny.
  ERR_PDP_UNAVAILABLE: internal(503, 'the external policy decision point could not be reached'),
  ERR_PDP_TIMEOUT: internal(504, 'the external policy decision point did not answer in time'),
  ERR_PDP_BAD_RESPONSE: internal(502, 'the external policy decision point answered with something other than a 2xx AuthZEN decision'),

  // ── web console (live event stream) ──
  ERR_CONSOLE_STREAMS_EXHAUSTED: internal(503, 'too many live event streams are open on this replica; retry shortly'),

  // ── JSON-RPC / MCP space ──
  RPC_PARSE_ERROR: rpc(-32700, 'parse error', 400),
  RPC_INVALID_REQUEST: rpc(-32600, 'invalid request', 400),
  RPC_METHOD_NOT_FOUND: rpc(-32601, 'method not found'),
  RPC_INVALID_PARAMS: rpc(-32602, 'invalid params'),
  RPC_INTERNAL_ERROR: rpc(-32603, 'internal error'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorRegistry;

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(errorRegistry, value);
}
