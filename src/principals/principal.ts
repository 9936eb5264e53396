// The principal model (DESIGN §2): anything that acts — a human, a service or an agent.
import { z } from 'zod';

export const actorTypes = ['human', 'service', 'agent'] as const;
export const principalStatuses = ['active', 'quarantined', 'disabled'] as const;

export type ActorType = (typeof actorTypes)[number];
export type PrincipalStatus = (typeof principalStatuses)[number];

const id = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@/-]*$/, 'letters, digits and . _ : @ / -');

export const principalInput = z
  .strictObject({
    id,
    actorType: z.enum(actorTypes),
    displayName: z.string().min(1).max(200),
    owner: id.optional().describe('Owning human or team; required for agents.'),
    environment: z.string().min(1).max(64).optional(),
    status: z.enum(principalStatuses).default('active'),
    roles: z.array(z.string().min(1).max(64)).max(32).default([]),
    attributes: z.record(z.string(), z.unknown()).default({}),
  })
  .refine((p) => p.actorType !== 'agent' || p.owner !== undefined, {
    message: 'an agent must have an owner',
    path: ['owner'],
  });

export const principalPatch = z.strictObject({
  displayName: z.string().min(1).max(200).optional(),
  owner: id.optional(),
  environment: z.string().min(1).max(64).optional(),
  status: z.enum(principalStatuses).optional(),
  roles: z.array(z.string().min(1).max(64)).max(32).optional(),
  attributes: z.record(z.string(), z.unknown()).optional(),
});

export type PrincipalInput = z.input<typeof principalInput>;
export type PrincipalPatch = z.infer<typeof principalPatch>;

export interface Principal {
  readonly id: string;
  readonly actorType: ActorType;
  readonly displayName: string;
  readonly owner: string | undefined;
  readonly environment: string | undefined;
  readonly status: PrincipalStatus;
  readonly roles: readonly string[];
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly createdAt: number;
  readonly updatedAt: number;
}
