// The authorization server's endpoints and its RFC 8414 metadata document (served by
// src/http/routes/oauth.ts): what a client discovers before it asks for a token.
import type { Config } from '../config/load.js';
import { GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN } from './client-credentials.js';
import { DPOP_ALGORITHMS } from './dpop.js';
import { GRANT_AUTHORIZATION_CODE, GRANT_TOKEN_EXCHANGE } from './token-exchange.js';

/** Paths of the OAuth endpoints, relative to the public URL. */
export const OAUTH_PATHS = {
  metadata: '/.well-known/oauth-authorization-server',
  authorize: '/oauth/authorize',
  jwks: '/oauth/jwks',
  token: '/oauth/token',
  introspect: '/oauth/introspect',
  revoke: '/oauth/revoke',
} as const;

export interface MetadataInput {
  /** Our issuer URL (the public URL). */
  readonly issuer: string;
  readonly interactiveClients: Config['interactiveClients'];
  /** What a client assertion may be signed with: every trust domain's and workload issuer's allow-list. */
  readonly assertionAlgorithms: readonly string[];
  /** Path of RFC 7591 registration (an HTTP-layer route), advertised when registration is enabled. */
  readonly registrationPath: string;
}

/** The RFC 8414 authorization server metadata document. */
export function authorizationServerMetadata({
  issuer,
  interactiveClients,
  assertionAlgorithms,
  registrationPath,
}: MetadataInput): Record<string, unknown> {
  const interactive = interactiveClients.enabled;
  return {
    issuer,
    // The MCP SDKs' metadata schemas (1.x and 2.x, hence MCP Inspector) require it even when
    // interactive clients are disabled; then `response_types_supported` is empty and the endpoint
    // answers `unsupported_response_type` (src/http/routes/authorize.ts).
    authorization_endpoint: `${issuer}${OAUTH_PATHS.authorize}`,
    token_endpoint: `${issuer}${OAUTH_PATHS.token}`,
    jwks_uri: `${issuer}${OAUTH_PATHS.jwks}`,
    introspection_endpoint: `${issuer}${OAUTH_PATHS.introspect}`,
    revocation_endpoint: `${issuer}${OAUTH_PATHS.revoke}`,
    grant_types_supported: [
      GRANT_TOKEN_EXCHANGE,
      GRANT_CLIENT_CREDENTIALS,
      GRANT_REFRESH_TOKEN,
      ...(interactive ? [GRANT_AUTHORIZATION_CODE] : []),
    ],
    // `private_key_jwt` (RFC 7523 §2.2, the MCP client-credentials extension) with the agent's identity
    // proof as the assertion; `none` for the token exchange, where the subject token authenticates.
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'none'],
    token_endpoint_auth_signing_alg_values_supported: assertionAlgorithms,
    // Introspection is authorized by an operator's bearer token (RFC 7662 §2.1). RFC 8414 §2 takes
    // this list's values from the token endpoint auth methods or the access token types registry,
    // where the type is registered as `Bearer` (RFC 6750 §6.1.1).
    introspection_endpoint_auth_methods_supported: ['Bearer'],
    revocation_endpoint_auth_methods_supported: ['none'],
    response_types_supported: interactive ? ['code'] : [],
    // Interactive clients (docs/clients-interactive.md): PKCE S256 only, RFC 9207 `iss` in every
    // authorization response, RFC 7591 registration and Client ID Metadata Documents.
    ...(interactive
      ? {
          code_challenge_methods_supported: ['S256'],
          authorization_response_iss_parameter_supported: true,
          ...(interactiveClients.metadataDocuments.enabled ? { client_id_metadata_document_supported: true } : {}),
          ...(interactiveClients.registration.enabled ? { registration_endpoint: `${issuer}${registrationPath}` } : {}),
        }
      : {}),
    authorization_details_types_supported: ['mandate'],
    dpop_signing_alg_values_supported: [...DPOP_ALGORITHMS],
  };
}
