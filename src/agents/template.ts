// Task templates on an agent's profile: a named, admin-registered mandate shape (purpose, task
// type, lifetime, tools with their constraints and budgets), or a reference to a task template
// file loaded with the org policy (src/templates/) with fixed parameters. A client that cannot send
// `authorization_details` — an MCP SDK's client-credentials provider sends only `scope` — asks for
// one by name, and the mandate is opened from it through exactly the checks a request in
// `authorization_details` goes through (checkAgainstProfile). Inline profile templates take no
// parameters (they are complete requests); parameters and request text belong to file templates,
// which any orchestrator can open by name with `authorization_details` (docs/mandates.md).
import { z } from 'zod';
import { toolGrantSchema } from '../scope/scope.js';

/** Template names travel as one OAuth `scope` token (RFC 6749 §3.3: no spaces, quotes or backslashes). */
export const templateNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits and . _ : -');

export const taskTemplateSchema = z.strictObject({
  purpose: z.string().min(1).max(2000),
  taskType: z.string().min(1).max(128),
  /** Defaults to the agent's own environment. */
  environment: z.string().min(1).max(64).optional(),
  ttlSeconds: z.number().int().min(10),
  tools: z.array(toolGrantSchema).max(500),
  delegable: z.boolean().default(false),
});

/** A profile entry that stands for a task template file with fixed parameters. */
export const templateReferenceSchema = z.strictObject({
  template: templateNameSchema,
  /** Pin a version; default: the highest loaded when the mandate is opened. */
  version: z.number().int().min(1).optional(),
  params: z.record(z.string().max(64), z.unknown()).optional(),
  request: z.string().min(1).max(8192).optional(),
});

export type TemplateReference = z.infer<typeof templateReferenceSchema>;
export type TaskTemplate = z.infer<typeof taskTemplateSchema> | TemplateReference;

export const templatesSchema = z
  .record(templateNameSchema, z.union([templateReferenceSchema, taskTemplateSchema]))
  .default({})
  .refine((t) => Object.keys(t).length <= 100, 'at most 100 templates per agent')
  .describe('Task templates by name; a client-credentials request names one in `scope` (the one named `default` when it names none).');

/** The template an agent falls back to when a client-credentials request names none. */
export const DEFAULT_TEMPLATE = 'default';
