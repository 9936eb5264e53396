// OpenID AuthZEN Authorization API 1.0 as a policy decision point over the active Cedar set.
// One mapping, documented in docs/authzen.md:
//   subject {type,id,properties}  → principal NS::<type> "id", attributes = entity data ∪ properties
//   resource {type,id,properties} → resource  NS::<type> "id", attributes = entity data ∪ properties
//   action {name,properties}      → NS::Action::"name"; properties → context.action
//   context                       → Cedar context (projected onto the action's declared context)
// Attributes from the configured entities file win over request properties (the PDP's own data is
// authoritative); undeclared properties are dropped, wrong-typed ones make the decision false.
// This module knows nothing about HTTP; src/http/routes/authzen.ts binds it.
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { MandateError } from '../errors/index.js';
import { project, ShapeError } from './cedar/shape.js';
import type { CedarValueJson, EngineRequest, EntityJson, EntityUidJson } from './engine.js';
import { entityKey, type PolicyBundle, type PolicyStore } from './store.js';

const MAX_DEPTH = 32;
const MAX_ANCESTORS = 64;

/** Properties and context: JSON objects of bounded depth (deeper input is a 400, not a crash). */
const jsonObject = z.record(z.string(), z.unknown()).refine((v) => depth(v) <= MAX_DEPTH, `nested deeper than ${MAX_DEPTH} levels`);

// z.object strips unknown keys: AuthZEN says unknown fields are ignored.
const entityRef = z.object({
  type: z.string().min(1).max(256),
  id: z.string().min(1).max(1024),
  properties: jsonObject.optional(),
});
const subjectOrResourceType = z.object({
  type: z.string().min(1).max(256),
  id: z.string().max(1024).optional(),
  properties: jsonObject.optional(),
});
const action = z.object({ name: z.string().min(1).max(256), properties: jsonObject.optional() });

export const evaluationRequestSchema = z.object({
  subject: entityRef,
  action,
  resource: entityRef,
  context: jsonObject.optional(),
});

const partial = z.object({
  subject: entityRef.optional(),
  action: action.optional(),
  resource: entityRef.optional(),
  context: jsonObject.optional(),
});

export const semantics = ['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'] as const;

export const evaluationsRequestSchema = partial.extend({
  evaluations: z.array(partial).optional(),
  options: z.object({ evaluations_semantic: z.enum(semantics).optional() }).optional(),
});

const page = z
  .object({
    token: z.string().max(2048).optional(),
    next_token: z.string().max(2048).optional(),
    limit: z.number().int().min(1).optional(),
  })
  .optional();

export const subjectSearchSchema = z.object({
  subject: subjectOrResourceType,
  action,
  resource: entityRef,
  context: jsonObject.optional(),
  page,
});
export const resourceSearchSchema = z.object({
  subject: entityRef,
  action,
  resource: subjectOrResourceType,
  context: jsonObject.optional(),
  page,
});
export const actionSearchSchema = z.object({ subject: entityRef, resource: entityRef, context: jsonObject.optional(), page });

export type EvaluationRequest = z.infer<typeof evaluationRequestSchema>;
export type EvaluationsRequest = z.infer<typeof evaluationsRequestSchema>;

export interface AuthzenDecision {
  decision: boolean;
  context?: { id: string; reason_admin?: { en: string }; error?: { status: number; message: string } };
}

export interface SearchResponse<T> {
  results: T[];
  page: { next_token: string; count: number; total: number };
}

export interface AuthzenOptions {
  readonly policies: PolicyStore;
  readonly namespace: string;
  readonly types: Readonly<Record<string, string>>;
  readonly maxBatch: number;
  readonly pageSize: number;
}

/** Parses `body` with `schema`, or throws a 400 naming the first offending field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new MandateError('ERR_BAD_REQUEST', 'the body must be a JSON object');
  }
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : '(body)';
    const what = issue?.code === 'invalid_type' && issue.input === undefined ? 'is required' : (issue?.message ?? 'is invalid');
    throw new MandateError('ERR_BAD_REQUEST', `${where} ${what}`, { details: { path: where } });
  }
  return r.data;
}

export class AuthzenPdp {
  readonly #o: AuthzenOptions;

  constructor(options: AuthzenOptions) {
    this.#o = options;
  }

  /** Access Evaluation (§ access-evaluation-api). A deny is `{ decision: false }`, never an error. */
  evaluate(req: EvaluationRequest): AuthzenDecision {
    const bundle = this.#bundle();
    const id = randomUUID();
    let request: EngineRequest;
    try {
      request = this.#request(bundle, req);
    } catch (err) {
      if (err instanceof ShapeError) return { decision: false, context: { id, reason_admin: { en: err.message } } };
      throw err;
    }
    const answer = bundle.set.authorize(request);
    if (answer.errors.length > 0) {
      return { decision: false, context: { id, reason_admin: { en: `policy evaluation failed: ${answer.errors.join('; ')}` } } };
    }
    if (answer.decision === 'allow') return { decision: true, context: { id } };
    const why = answer.policies.length > 0 ? `forbidden by ${answer.policies.join(', ')}` : 'no policy permits this request';
    return { decision: false, context: { id, reason_admin: { en: why } } };
  }

  /** Access Evaluations (boxcar), with defaults from the top level and the three semantics. */
  evaluations(req: EvaluationsRequest): { decision?: boolean; evaluations?: AuthzenDecision[] } {
    return this.evaluationsWithRequests(req).response;
  }

  /** `evaluations`, also returning each evaluated request with its decision (for the audit log). */
  evaluationsWithRequests(req: EvaluationsRequest): {
    response: { decision?: boolean; evaluations?: AuthzenDecision[] };
    items: { request: EvaluationRequest; decision: AuthzenDecision }[];
  } {
    const items = req.evaluations ?? [];
    if (items.length === 0) {
      // Without evaluations the request is a single Access Evaluation (backwards compatible).
      const request = parseBody(evaluationRequestSchema, req);
      const decision = this.evaluate(request);
      return { response: decision, items: [{ request, decision }] };
    }
    if (items.length > this.#o.maxBatch) {
      throw new MandateError('ERR_BAD_REQUEST', `evaluations has ${items.length} items; at most ${this.#o.maxBatch} are accepted`);
    }
    // Validate every item (with defaults applied) before evaluating any: a malformed item is a 400.
    const full = items.map((item, i) => {
      const merged = {
        subject: item.subject ?? req.subject,
        action: item.action ?? req.action,
        resource: item.resource ?? req.resource,
        context: item.context ?? req.context,
      };
      for (const key of ['subject', 'action', 'resource'] as const) {
        if (merged[key] === undefined) {
          throw new MandateError('ERR_BAD_REQUEST', `evaluations.${i}.${key} is required (no top-level default)`, {
            details: { path: `evaluations.${i}.${key}` },
          });
        }
      }
      return merged as EvaluationRequest;
    });
    const semantic = req.options?.evaluations_semantic ?? 'execute_all';
    const out: { request: EvaluationRequest; decision: AuthzenDecision }[] = [];
    for (const request of full) {
      const decision = this.evaluate(request);
      out.push({ request, decision });
      if (semantic === 'deny_on_first_deny' && !decision.decision) break;
      if (semantic === 'permit_on_first_permit' && decision.decision) break;
    }
    return { response: { evaluations: out.map((o) => o.decision) }, items: out };
  }

  /** Subject Search: subjects of the requested type (from the entities file) that are allowed. */
  searchSubjects(req: z.infer<typeof subjectSearchSchema>): SearchResponse<{ type: string; id: string }> {
    const bundle = this.#bundle();
    const candidates = this.#idsOfType(bundle, req.subject.type);
    return this.#page(req, candidates, (id) =>
      this.evaluate({
        subject: { type: req.subject.type, id, properties: req.subject.properties },
        action: req.action,
        resource: req.resource,
        context: req.context,
      }).decision
        ? { type: req.subject.type, id }
        : undefined,
    );
  }

  /** Resource Search: resources of the requested type (from the entities file) that are allowed. */
  searchResources(req: z.infer<typeof resourceSearchSchema>): SearchResponse<{ type: string; id: string }> {
    const bundle = this.#bundle();
    const candidates = this.#idsOfType(bundle, req.resource.type);
    return this.#page(req, candidates, (id) =>
      this.evaluate({
        subject: req.subject,
        action: req.action,
        resource: { type: req.resource.type, id, properties: req.resource.properties },
        context: req.context,
      }).decision
        ? { type: req.resource.type, id }
        : undefined,
    );
  }

  /** Action Search: actions of the namespace that are allowed for this subject and resource. */
  searchActions(req: z.infer<typeof actionSearchSchema>): SearchResponse<{ name: string }> {
    const bundle = this.#bundle();
    const prefix = `${this.#o.namespace}::Action::`;
    const names = [...bundle.set.shapes.actions.keys()]
      .filter((k) => k.startsWith(prefix))
      .map((k) => JSON.parse(k.slice(prefix.length)) as string)
      .sort();
    return this.#page(req, names, (name) =>
      this.evaluate({ subject: req.subject, action: { name }, resource: req.resource, context: req.context }).decision
        ? { name }
        : undefined,
    );
  }

  /** PDP metadata for `/.well-known/authzen-configuration`. */
  static metadata(base: string): Record<string, string> {
    return {
      policy_decision_point: base,
      access_evaluation_endpoint: `${base}/access/v1/evaluation`,
      access_evaluations_endpoint: `${base}/access/v1/evaluations`,
      search_subject_endpoint: `${base}/access/v1/search/subject`,
      search_resource_endpoint: `${base}/access/v1/search/resource`,
      search_action_endpoint: `${base}/access/v1/search/action`,
    };
  }

  #bundle(): PolicyBundle {
    const bundle = this.#o.policies.current;
    if (bundle === undefined) throw new MandateError('ERR_POLICY_UNAVAILABLE');
    return bundle;
  }

  #cedarType(type: string): string {
    const mapped = Object.hasOwn(this.#o.types, type) ? (this.#o.types[type] as string) : type;
    return `${this.#o.namespace}::${mapped}`;
  }

  #idsOfType(bundle: PolicyBundle, type: string): string[] {
    const cedarType = this.#cedarType(type);
    const ids: string[] = [];
    for (const e of bundle.entities.values()) {
      const uid = uidOf(e.uid);
      if (uid.type === cedarType) ids.push(uid.id);
    }
    return ids.sort();
  }

  /**
   * Evaluates every candidate: `page.total` is the number of results of the whole query (AuthZEN
   * 1.0 paging), not of candidates, so each page costs one evaluation per candidate — the same
   * bound a sparse query already had. The token is stateless: the offset of the first result of
   * the next page, bound to a hash of the request so it cannot be replayed against another query.
   */
  #page<T>(
    req: { page?: { token?: string; next_token?: string; limit?: number } | undefined },
    candidates: string[],
    test: (c: string) => T | undefined,
  ): SearchResponse<T> {
    const { page: p, ...query } = req;
    const binding = createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 16);
    const limit = Math.min(p?.limit ?? this.#o.pageSize, this.#o.pageSize);
    let start = 0;
    const token = p?.token ?? p?.next_token;
    if (token !== undefined && token !== '') {
      const m = /^(\d{1,9})\.([A-Za-z0-9_-]{16})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
      if (m === null || m[2] !== binding) throw new MandateError('ERR_BAD_REQUEST', 'page.token is not valid for this request');
      start = Number(m[1]);
    }
    const allowed: T[] = [];
    let total = 0;
    let resumeAt: number | undefined;
    for (let i = 0; i < candidates.length; i++) {
      const hit = test(candidates[i] as string);
      if (hit === undefined) continue;
      total++;
      if (i < start) continue;
      if (allowed.length < limit) allowed.push(hit);
      else resumeAt ??= i;
    }
    const next = resumeAt === undefined ? '' : Buffer.from(`${resumeAt}.${binding}`).toString('base64url');
    return { results: allowed, page: { next_token: next, count: allowed.length, total } };
  }

  #request(bundle: PolicyBundle, req: EvaluationRequest): EngineRequest {
    const { shapes } = bundle.set;
    const actionKey = `${this.#o.namespace}::Action::${JSON.stringify(req.action.name)}`;
    const actionShape = shapes.actions.get(actionKey);
    if (actionShape === undefined) throw new ShapeError(`unknown action "${req.action.name}"`);
    const entities = new Map<string, EntityJson>();
    const principal = this.#entity(bundle, req.subject, 'subject', entities);
    const resource = this.#entity(bundle, req.resource, 'resource', entities);
    if (actionShape.principals.length > 0 && !actionShape.principals.includes(principal.type)) {
      throw new ShapeError(`action "${req.action.name}" does not apply to subjects of type "${req.subject.type}"`);
    }
    if (actionShape.resources.length > 0 && !actionShape.resources.includes(resource.type)) {
      throw new ShapeError(`action "${req.action.name}" does not apply to resources of type "${req.resource.type}"`);
    }
    return {
      principal,
      action: { type: `${this.#o.namespace}::Action`, id: req.action.name },
      resource,
      // Cedar actions carry no request attributes: action.properties reach policy as `context.action`.
      context: project(
        shapes,
        actionShape.context,
        req.action.properties === undefined ? (req.context ?? {}) : { ...req.context, action: req.action.properties },
        'context',
      ) as Record<string, CedarValueJson>,
      entities: [...entities.values()],
    };
  }

  /** Adds the entity (and its ancestors from the entities file) to the slice; returns its uid. */
  #entity(
    bundle: PolicyBundle,
    ref: z.infer<typeof entityRef>,
    role: string,
    slice: Map<string, EntityJson>,
  ): { type: string; id: string } {
    const { shapes } = bundle.set;
    const type = this.#cedarType(ref.type);
    if (!shapes.entities.has(type)) throw new ShapeError(`unknown ${role} type "${ref.type}"`);
    const key = entityKey(type, ref.id);
    const stored = bundle.entities.get(key);
    const attrs = { ...(ref.properties ?? {}), ...(stored?.attrs ?? {}) };
    const projected = project(shapes, shapes.entities.get(type), attrs, `${role}.properties`) as Record<string, CedarValueJson>;
    const existing = slice.get(key);
    // The same entity as subject and resource: one entity, the stored data wins either way.
    if (existing === undefined) slice.set(key, { uid: { type, id: ref.id }, attrs: projected, parents: stored?.parents ?? [] });
    // Ancestors (for `in` checks), breadth first and bounded.
    const queue = [...(stored?.parents ?? [])];
    while (queue.length > 0 && slice.size < MAX_ANCESTORS) {
      const parent = uidOf(queue.shift() as EntityUidJson);
      const pk = entityKey(parent.type, parent.id);
      if (slice.has(pk)) continue;
      const pe = bundle.entities.get(pk);
      if (pe === undefined) continue;
      slice.set(pk, pe);
      queue.push(...pe.parents);
    }
    return { type, id: ref.id };
  }
}

function uidOf(uid: EntityUidJson): { type: string; id: string } {
  return '__entity' in uid ? uid.__entity : uid;
}

function depth(value: unknown, level = 0): number {
  if (level > MAX_DEPTH) return level;
  if (typeof value !== 'object' || value === null) return level;
  let max = level;
  for (const v of Object.values(value)) max = Math.max(max, depth(v, level + 1));
  return max;
}
