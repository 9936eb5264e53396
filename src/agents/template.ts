// Task templates, in their smallest form: a named, admin-registered mandate shape on an agent's
// profile (purpose, task type, lifetime, tools with their constraints and budgets). A client that
// cannot send `authorization_details` — an MCP SDK's client-credentials provider sends only
// `scope` — asks for a template by name, and the mandate is opened from it through exactly the
// checks a request in `authorization_details` goes through (checkAgainstProfile). Parameters
// (`$params.*`) are not supported yet: a template is a complete request. The agent profile holds
// the templates (here, below the mandates); src/mandates/from-template.ts turns one into a request.
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

export type TaskTemplate = z.infer<typeof taskTemplateSchema>;

export const templatesSchema = z
  .record(templateNameSchema, taskTemplateSchema)
  .default({})
  .refine((t) => Object.keys(t).length <= 100, 'at most 100 templates per agent')
  .describe('Task templates by name; a client-credentials request names one in `scope` (the one named `default` when it names none).');

/** The template an agent falls back to when a client-credentials request names none. */
export const DEFAULT_TEMPLATE = 'default';
