// `mandate/sdk`: the agent SDK. Open a mandate with the agent's workload identity, call tools
// through the gateway with an official MCP client, wait for approvals, delegate, end it.
// See docs/sdk.md.
export {
  ApprovalDenied,
  ApprovalExpired,
  ApprovalRequired,
  MandateAuthError,
  MandateRefusal,
  type RefusalDetails,
} from './errors.js';
export { type IdentitySource, oidcTokenFile, svidCallback, svidFile } from './identity.js';
export {
  type CallOptions,
  type DelegateOptions,
  Mandate,
  type MandateScope,
  type OpenOptions,
  type PendingApproval,
  type TemplateTask,
  type ToolResult,
  textOf,
} from './mandate.js';
export type { Clock } from './session.js';
