// The mandate model (DESIGN §2) and the wire shape that requests one: an RFC 9396
// `authorization_details` entry of type `mandate`.
import { z } from 'zod';
import { MAX_REQUEST_CHARS } from '../intent/binding.js';
import { type Scope, toolGrantSchema } from '../scope/scope.js';
import type { TemplateRef } from '../templates/template.js';

export const MANDATE_DETAILS_TYPE = 'mandate';

export const mandateStatuses = ['active', 'completed', 'failed', 'revoked', 'expired'] as const;
export type MandateStatus = (typeof mandateStatuses)[number];

/** One `authorization_details` entry requesting a mandate. */
export const mandateRequestSchema = z.strictObject({
  type: z.literal(MANDATE_DETAILS_TYPE),
  purpose: z.string().min(1).max(2000),
  taskType: z.string().min(1).max(128),
  environment: z.string().min(1).max(64),
  ttlSeconds: z.number().int().min(10),
  tools: z.array(toolGrantSchema).max(500),
  delegable: z.boolean().default(false),
  /** The human's request, as they wrote it: what intent binding compares arguments with (src/intent/). */
  request: z.string().min(1).max(MAX_REQUEST_CHARS).optional(),
});

/**
 * A mandate request as validated. `template` is set only by Mandate itself, when the request named a
 * task template (src/templates/resolve.ts); a client cannot send it.
 */
export type MandateRequest = z.infer<typeof mandateRequestSchema> & { readonly template?: TemplateRef };

/** A task-scoped grant. Times are milliseconds since the epoch. */
export interface Mandate {
  readonly id: string;
  readonly agentId: string;
  readonly parentId?: string;
  readonly rootId: string;
  readonly onBehalfOf?: string;
  readonly purpose: string;
  readonly taskType: string;
  readonly environment: string;
  readonly scope: Scope;
  readonly depth: number;
  readonly status: MandateStatus;
  readonly expiresAt: number;
  readonly createdAt: number;
  readonly endedAt?: number;
  readonly endedBy?: string;
  readonly endReason?: string;
  /** The human's request text (intent binding); a delegated mandate keeps its parent's. */
  readonly requestText?: string;
  /** The task template it was opened from; a delegated mandate keeps its parent's. */
  readonly template?: TemplateRef;
}

/** The `authorization_details` entry a token grants for `m` (what the response and token carry). */
export function grantedDetails(m: Mandate): Record<string, unknown> {
  // A plain literal (token endpoint path: no spreads); `template` only when there is one.
  const details: Record<string, unknown> = {
    type: MANDATE_DETAILS_TYPE,
    mandate_id: m.id,
    purpose: m.purpose,
    taskType: m.taskType,
    environment: m.environment,
    expiresAt: new Date(m.expiresAt).toISOString(),
    tools: m.scope.tools,
    delegable: m.scope.delegable,
  };
  if (m.template !== undefined) details.template = { name: m.template.name, version: m.template.version };
  return details;
}

export function isLive(m: Mandate, now: number): boolean {
  return m.status === 'active' && m.expiresAt > now;
}
