// Places a lease's secret where the upstream expects it: an environment variable or an HTTP header.
import type { UpstreamCredential } from '../../secrets/upstream-credentials.js';
import type { LeaseConfig } from '../lease.js';

export function injectSecret(inject: LeaseConfig['inject'], secret: string): UpstreamCredential {
  return 'env' in inject ? { env: { [inject.env]: secret } } : { headers: { [inject.header]: `${inject.prefix}${secret}` } };
}
