// DEVELOPMENT ONLY (demo mode): discovery and JWKS of the local operator issuer.
import type { FastifyInstance } from 'fastify';
import { DEV_ISSUER_PATH, type DevIssuer } from '../../identity/dev-issuer.js';

export function registerDevIssuerRoutes(app: FastifyInstance, issuer: DevIssuer): void {
  app.get(`${DEV_ISSUER_PATH}/.well-known/openid-configuration`, async () => ({
    issuer: issuer.issuer,
    jwks_uri: `${issuer.issuer}/jwks`,
    id_token_signing_alg_values_supported: ['EdDSA'],
    subject_types_supported: ['public'],
    response_types_supported: [],
    'x-development-only': true,
  }));
  app.get(`${DEV_ISSUER_PATH}/jwks`, async () => issuer.jwks);
}
