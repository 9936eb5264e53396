// The upstream model: where tools live (a stdio command, a streamable HTTP URL, or an HTTP API's
// OpenAPI description), how sessions to it are shared, and the defaults its tools get in the catalog.
import { z } from 'zod';
import { upstreamCredentialSchema } from '../secrets/upstream-credentials.js';

export const actionClasses = ['read', 'propose', 'execute', 'destructive'] as const;
export type ActionClass = (typeof actionClasses)[number];
export const sensitivities = ['public', 'internal', 'confidential', 'restricted'] as const;
export type Sensitivity = (typeof sensitivities)[number];

/** Upstream ids are the namespace of their tools (`<id>.<tool>`), so no dots. */
export const upstreamId = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'lowercase letters, digits, _ or -, starting with a letter');

export const upstreamTransportSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('stdio'),
    command: z.string().min(1).max(1024).describe('executable to start'),
    args: z.array(z.string().max(4096)).max(64).default([]),
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/), z.string().max(4096))
      .default({})
      .describe('non-secret environment; secrets go in the credential'),
    cwd: z.string().max(1024).optional(),
  }),
  z.strictObject({
    type: z.literal('http'),
    url: z.url().describe('streamable HTTP endpoint of the MCP server'),
  }),
  z.strictObject({
    type: z.literal('openapi'),
    description: z
      .union([
        z.strictObject({ url: z.url({ protocol: /^https?$/ }).max(2048) }),
        z.strictObject({ path: z.string().min(1).max(1024).describe('absolute, under upstreams.httpApi.descriptionDirs') }),
      ])
      .describe('the OpenAPI 3.0/3.1 description (JSON or YAML), read once when the upstream is registered or refreshed'),
    serverUrl: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional()
      .describe("base URL every request goes to; overrides the description's servers (docs/http-api-upstreams.md)"),
  }),
]);

export type UpstreamTransport = z.infer<typeof upstreamTransportSchema>;

export const upstreamInput = z.strictObject({
  id: upstreamId,
  displayName: z.string().min(1).max(200).optional(),
  transport: upstreamTransportSchema,
  isolation: z
    .enum(['mandate', 'shared'])
    .default('mandate')
    .describe(
      'mandate: each mandate gets its own upstream session (and stdio process); shared: one session for all (stateless upstreams only)',
    ),
  defaultSensitivity: z.enum(sensitivities).default('internal'),
  timeoutMs: z.number().int().min(100).max(600_000).optional().describe('overrides gateway.upstreamTimeoutMs'),
  credential: upstreamCredentialSchema.optional().describe('write-only; stored encrypted'),
});

export type UpstreamInput = z.input<typeof upstreamInput>;

export const upstreamPatch = z.strictObject({
  displayName: z.string().min(1).max(200).optional(),
  transport: upstreamTransportSchema.optional(),
  isolation: z.enum(['mandate', 'shared']).optional(),
  defaultSensitivity: z.enum(sensitivities).optional(),
  timeoutMs: z.number().int().min(100).max(600_000).nullable().optional(),
  credential: upstreamCredentialSchema.nullable().optional().describe('null removes the credential'),
});

export type UpstreamPatch = z.input<typeof upstreamPatch>;

/** An upstream as the API shows it: the credential is reduced to the names of what it injects. */
export interface Upstream {
  readonly id: string;
  readonly displayName: string;
  readonly transport: UpstreamTransport;
  readonly isolation: 'mandate' | 'shared';
  readonly defaultSensitivity: Sensitivity;
  readonly timeoutMs: number | undefined;
  readonly credential: { readonly headers: readonly string[]; readonly env: readonly string[] } | undefined;
  readonly discoveredAt: number | undefined;
  readonly discoveryError: string | undefined;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Operator overrides of a catalog entry; `null` clears a field back to the discovered default. */
export const toolOverrideInput = z.strictObject({
  actionClass: z.enum(actionClasses).nullable().optional(),
  sensitivity: z.enum(sensitivities).nullable().optional(),
  sensitiveArgs: z.array(z.string().min(1).max(128)).max(100).nullable().optional(),
});

export type ToolOverrideInput = z.infer<typeof toolOverrideInput>;
