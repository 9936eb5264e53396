// The agent model: a principal with actorType 'agent' plus the profile that binds it to a workload
// identity (SPIFFE ID or OIDC iss+sub, never a shared secret) and bounds what it may ever hold.
import { z } from 'zod';
import { parseSpiffeId } from '../identity/spiffe-id.js';
import type { Principal } from '../principals/principal.js';
import { scopeSchema } from '../scope/scope.js';
import { type TaskTemplate, templatesSchema } from './template.js';

const id = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@/-]*$/, 'letters, digits and . _ : @ / -');

export const agentIdentitySchema = z.union([
  z.strictObject({
    spiffeId: z.string().refine((v) => parseSpiffeId(v).ok, { message: 'a valid SPIFFE ID (spiffe://trust-domain/path)' }),
  }),
  z.strictObject({ issuer: z.url(), subject: z.string().min(1).max(255) }),
]);

export type AgentIdentity = z.infer<typeof agentIdentitySchema>;

const profileFields = {
  ceiling: scopeSchema.describe('The widest scope this agent may ever request; every mandate must be a subset.'),
  taskTypes: z.array(z.string().min(1).max(128)).max(100).default([]).describe('Allowed task types; empty allows any.'),
  maxTtlSeconds: z
    .number()
    .int()
    .min(10)
    .max(7 * 86_400)
    .default(3600),
  dpopRequired: z.boolean().default(false).describe('Every token of this agent must be DPoP-bound.'),
  mayReceiveDelegation: z.boolean().default(false).describe('Other agents may delegate part of their mandates to this one.'),
  templates: templatesSchema,
};

export const agentInput = z.strictObject({
  id,
  displayName: z.string().min(1).max(200),
  owner: id.describe('Owning human or team (required).'),
  environment: z.string().min(1).max(64),
  status: z.enum(['active', 'quarantined', 'disabled']).default('active'),
  identity: agentIdentitySchema,
  attributes: z.record(z.string(), z.unknown()).default({}),
  ...profileFields,
});

export const agentPatch = z.strictObject({
  displayName: z.string().min(1).max(200).optional(),
  owner: id.optional(),
  environment: z.string().min(1).max(64).optional(),
  status: z.enum(['active', 'quarantined', 'disabled']).optional(),
  identity: agentIdentitySchema.optional(),
  attributes: z.record(z.string(), z.unknown()).optional(),
  ceiling: profileFields.ceiling.optional(),
  taskTypes: z.array(z.string().min(1).max(128)).max(100).optional(),
  maxTtlSeconds: z
    .number()
    .int()
    .min(10)
    .max(7 * 86_400)
    .optional(),
  dpopRequired: z.boolean().optional(),
  mayReceiveDelegation: z.boolean().optional(),
  templates: templatesSchema.optional(),
});

export type AgentInput = z.input<typeof agentInput>;
export type AgentPatch = z.infer<typeof agentPatch>;

export interface AgentProfile {
  readonly identity: AgentIdentity;
  /** `spiffe:<id>` or `oidc:<iss> <sub>`; unique across agents. */
  readonly identityKey: string;
  readonly ceiling: z.infer<typeof scopeSchema>;
  readonly taskTypes: readonly string[];
  readonly maxTtlSeconds: number;
  readonly dpopRequired: boolean;
  readonly mayReceiveDelegation: boolean;
  /** Task templates by name (src/agents/template.ts). */
  readonly templates: Readonly<Record<string, TaskTemplate>>;
}

/** A registered agent: its principal record and its profile. */
export interface Agent extends AgentProfile {
  readonly principal: Principal;
}
