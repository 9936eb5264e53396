// HTTP API upstreams: the bindings compiled from an OpenAPI description at registration (server
// URL, and per tool the method, path template and where each argument goes), kept beside the
// catalog so forwarding never re-reads the description.
import type { Migration } from './index.js';

export const m0055HttpApiUpstreams: Migration = {
  id: 55,
  name: 'http_api_upstreams',
  up: () => `
    ALTER TABLE upstreams ADD COLUMN http_api TEXT;
  `,
};
