// Serves the web console (console/dist, built by `npm run build:console`) under /console/, with a
// fallback to index.html for the SPA's own routes, plus the console's sign-in settings.
//
// Hand-written rather than @fastify/static: the console is a few hashed files, read once into
// memory at start and looked up by exact path in a map, so there is no filesystem path built from
// a request (no traversal surface) and no dependency to add for ~60 lines.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { publicUrl } from '../../broker.js';
import type { AppContext } from '../app.js';
import { PUBLIC } from '../route-access.js';

export const CONSOLE_PATH = '/console/';
export const CONSOLE_CALLBACK_PATH = '/console/callback';

/** Where `vite build` writes the console (see console/vite.config.ts). */
export const CONSOLE_DIST = fileURLToPath(new URL('../../../console/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  /** Vite puts content hashes in names under assets/, so those can be cached forever. */
  readonly immutable: boolean;
}

/** Reads every file of the built console into memory, keyed by its URL path below /console/. */
export function loadConsoleAssets(dir: string = CONSOLE_DIST): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      const file = join(folder, name);
      if (statSync(file).isDirectory()) walk(file);
      else {
        const rel = relative(dir, file).split(sep).join('/');
        assets.set(rel, {
          body: readFileSync(file),
          type: TYPES[extname(name)] ?? 'application/octet-stream',
          immutable: rel.startsWith('assets/'),
        });
      }
    }
  };
  walk(dir);
  return assets;
}

export interface ConsoleSettings {
  /** The operator issuer the console signs in with (authorization code + PKCE). */
  readonly issuer: string | undefined;
  readonly clientId: string;
  readonly scope: string;
  readonly resource: string | undefined;
  readonly redirectUri: string;
  /** The console's canonical URL: sign-in must start there so the callback finds its PKCE verifier. */
  readonly consoleUrl: string;
  readonly demo: boolean;
}

export function registerConsoleRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const { config } = broker;
  if (!config.console.enabled) return;
  const base = publicUrl(config);
  const issuer = config.operators.issuer?.issuer ?? broker.devIssuer?.issuer;
  const settings: ConsoleSettings = {
    issuer,
    clientId: config.console.clientId,
    scope: config.console.scope,
    resource: config.console.resource,
    redirectUri: `${base}${CONSOLE_CALLBACK_PATH}`,
    consoleUrl: `${base}${CONSOLE_PATH}`,
    demo: config.mode === 'demo',
  };
  const issuerOrigin = issuer === undefined ? '' : ` ${new URL(issuer).origin}`;
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${issuerOrigin}`,
    `form-action 'self'${issuerOrigin}`,
    "base-uri 'none'",
    "object-src 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  const assets = loadConsoleAssets();

  const send = (reply: FastifyReply, asset: Asset) =>
    reply
      .type(asset.type)
      .header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('content-security-policy', csp)
      .header('x-content-type-options', 'nosniff')
      // The callback URL carries the authorization code: never leak it in a Referer.
      .header('referrer-policy', 'no-referrer')
      .send(asset.body);

  app.get('/console', PUBLIC, async (_req, reply) => reply.redirect(CONSOLE_PATH, 308));
  app.get(`${CONSOLE_PATH}config.json`, PUBLIC, async (_req, reply) => reply.header('cache-control', 'no-store').send(settings));
  app.get(`${CONSOLE_PATH}*`, PUBLIC, async (req, reply) => {
    const path = (req.params as { '*': string })['*'];
    const asset = assets.get(path);
    if (asset !== undefined) return send(reply, asset);
    // A missing hashed file is a real 404; every other path is a console route (SPA fallback).
    if (path.startsWith('assets/') || extname(path) !== '') {
      return reply.code(404).type('text/plain; charset=utf-8').send('not found');
    }
    const index = assets.get('index.html');
    if (index === undefined) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The console is not built. Run `npm run build:console` (npm start and npm test do it for you).');
    }
    return send(reply, index);
  });
}
