// Who may reach a route, declared where the route is registered and enforced on the route the
// router matched — never on the request-target string, which can be percent-encoded, absolute-form
// or otherwise spelled differently from what the router decodes and dispatches.
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { Broker } from '../broker.js';
import { ConfigError, MandateError } from '../errors/index.js';
import { authorizeOperator, isPermission, type Permission } from './admin-policy.js';

/**
 * A route's access rule.
 * - `public`: anyone (metadata, health, key sets, the console's static files, the log's tiles).
 * - `agent`: the handler verifies a mandate access token itself (agent API, `/mcp`).
 * - `client`: the handler authenticates an OAuth client or subject token itself (token endpoint).
 * - `pdp`: AuthZEN PEP authentication, as `policy.authzen.auth` configures it.
 * - `scraper`: the handler checks the metrics bearer token (`telemetry.metrics.tokenSha256`).
 * - `{ permission }`: an operator token holding that permission; this module authenticates and
 *   authorizes before the handler runs.
 */
export type RouteAccess = 'public' | 'agent' | 'client' | 'pdp' | 'scraper' | { readonly permission: Permission };

export interface AccessEntry {
  readonly method: string;
  readonly url: string;
  readonly access: RouteAccess;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyInstance {
    /** Every registered route with its access rule (for the boundary tests and the docs). */
    readonly accessTable: readonly AccessEntry[];
  }
}

/** Route options for a route anyone may reach. */
export const PUBLIC = { config: { access: 'public' } } satisfies { config: { access: RouteAccess } };

const SELF_AUTHENTICATED = new Set<unknown>(['public', 'agent', 'client', 'pdp', 'scraper']);

export function isRouteAccess(value: unknown): value is RouteAccess {
  if (SELF_AUTHENTICATED.has(value)) return true;
  return typeof value === 'object' && value !== null && isPermission((value as { permission?: unknown }).permission);
}

/** The permission a route demands of an operator, or undefined for routes that authenticate otherwise. */
export function permissionOf(access: RouteAccess | undefined): Permission | undefined {
  return typeof access === 'object' ? access.permission : undefined;
}

/**
 * Installs the registration check and the gate. Must run before any route is registered: a route
 * that declares no valid access rule stops the broker at startup, and a route under `adminPrefix`
 * must demand a permission.
 */
export function installRouteAccess(app: FastifyInstance, broker: Broker, adminPrefix: string): void {
  const table: AccessEntry[] = [];
  app.decorate('accessTable', table);

  app.addHook('onRoute', (route: RouteOptions) => {
    const access = route.config?.access;
    const where = `${[route.method].flat().join(',')} ${route.url}`;
    if (!isRouteAccess(access)) {
      throw new ConfigError('ERR_ROUTE_ACCESS_UNDECLARED', `route ${where} declares no access rule`);
    }
    if (route.url.startsWith(adminPrefix) && permissionOf(access) === undefined) {
      throw new ConfigError('ERR_ROUTE_ACCESS_UNDECLARED', `admin route ${where} must demand a permission`);
    }
    for (const method of [route.method].flat()) table.push({ method, url: route.url, access });
  });

  app.addHook('onRequest', async (req: FastifyRequest) => {
    // No matched route: the not-found handler answers, and it reveals nothing.
    if (req.routeOptions.url === undefined) return;
    const access = req.routeOptions.config.access;
    if (!isRouteAccess(access)) throw new MandateError('ERR_FORBIDDEN', 'this route declares no access rule and is denied');
    const permission = permissionOf(access);
    if (permission === undefined) return;
    req.operator = await broker.authenticateOperator(req.headers.authorization);
    authorizeOperator(req.operator, permission);
  });
}
