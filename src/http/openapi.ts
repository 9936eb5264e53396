// Builds the OpenAPI 3.1 document of the admin API from the routes' own zod schemas, so the
// document cannot drift from the validation that actually runs. (Hand-written: a few lines over
// zod's JSON Schema export instead of a plugin that would need a second schema language.)
import { z } from 'zod';
import type { Permission } from './admin-policy.js';

export interface RouteDoc {
  readonly summary: string;
  readonly body?: z.ZodType;
  readonly query?: z.ZodType;
}

interface Operation {
  method: string;
  url: string;
  doc: RouteDoc;
  permission: Permission | undefined;
}

export class OpenApiCollector {
  readonly #operations: Operation[] = [];

  add(method: string, url: string, doc: RouteDoc, permission: Permission | undefined): void {
    this.#operations.push({ method: method.toLowerCase(), url, doc, permission });
  }

  document(version: string): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const { method, url, doc, permission } of this.#operations) {
      const path = url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      const params = [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
      }));
      const op: Record<string, unknown> = {
        summary: doc.summary,
        parameters: params,
        responses: {
          default: { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        },
      };
      if (permission !== undefined) {
        op.security = [{ bearer: [] }];
        op['x-mandate-permission'] = permission;
      }
      if (doc.body !== undefined) {
        op.requestBody = {
          required: true,
          content: { 'application/json': { schema: z.toJSONSchema(doc.body, { io: 'input', unrepresentable: 'any' }) } },
        };
      }
      paths[path] = { ...paths[path], [method]: op };
    }
    return {
      openapi: '3.1.0',
      info: { title: 'Mandate admin API', version },
      paths,
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Operator OIDC access token' } },
        schemas: {
          Error: {
            type: 'object',
            required: ['error', 'message'],
            properties: {
              error: { type: 'string' },
              message: { type: 'string' },
              request_id: { type: 'string' },
              details: { type: 'object' },
            },
          },
        },
      },
    };
  }
}
