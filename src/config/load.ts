// Loads the configuration once: read file, parse, validate strictly, resolve paths and secrets from
// the environment, deep-freeze. Nothing below this module reads process.env.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors/index.js';
import { deepFreeze } from '../lib/freeze.js';
import { sha256Hex } from '../lib/hash.js';
import { isWebhookSecret } from '../webhooks/secret.js';
import { type ConfigInput, configSchema } from './schema.js';

type Parsed = z.output<typeof configSchema>;

export interface ResolvedSecrets {
  /** Raw master key spec (`kid:base64,...`), parsed by secrets/. Undefined when not provided. */
  readonly masterKey: string | undefined;
  readonly bootstrapTokenSha256: string | undefined;
  /** Standard Webhooks signing secret of approval webhooks (MANDATE_APPROVAL_WEBHOOK_SECRET). */
  readonly approvalWebhookSecret: string | undefined;
  /** Standard Webhooks signing secret of risk notifications (MANDATE_RISK_WEBHOOK_SECRET). */
  readonly riskWebhookSecret: string | undefined;
  /** Bearer token for the external AuthZEN PDP (MANDATE_PDP_TOKEN; else policy.externalPdp.tokenFile is read). */
  readonly pdpToken: string | undefined;
  /** SHA-256 (hex) of the bearer token GET /metrics requires (MANDATE_METRICS_TOKEN or telemetry.metrics.tokenSha256). */
  readonly metricsTokenSha256: string | undefined;
}

/** A lease provider with its secret resolved (from the file, an environment variable or a secret file). */
type ResolvedLease<L> = L extends { type: 'postgres-role' }
  ? Omit<L, 'adminUrl' | 'adminUrlEnv' | 'adminUrlFile'> & { adminUrl: string }
  : L extends { type: 'oauth-client-credentials' }
    ? Omit<L, 'clientSecret' | 'clientSecretEnv' | 'clientSecretFile'> & { clientSecret: string }
    : L;
type ParsedLeases = Parsed['leases'];
type ResolvedLeases = Omit<ParsedLeases, 'upstreams'> & {
  upstreams: Record<string, ResolvedLease<ParsedLeases['upstreams'][string]>>;
};

export type Config = Readonly<
  Omit<Parsed, 'leases'> & {
    leases: ResolvedLeases;
    /** Absolute data folder. */
    dataDir: string;
    /** Where the file came from, for messages; undefined when built in code. */
    source: string | undefined;
    secrets: ResolvedSecrets;
  }
>;

export interface LoadOptions {
  /** Environment to read secret overrides from (the CLI passes process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Base folder for relative paths when no file is given. */
  readonly cwd?: string;
}

/** Reads, validates and freezes a configuration file (YAML or JSON). */
export function loadConfigFile(path: string, options: LoadOptions = {}): Config {
  return buildConfig(readConfigFile(path), { ...options, cwd: dirname(resolve(path)) }, path);
}

/** Reads and parses a configuration file without validating it (the CLI merges flags first). */
export function readConfigFile(path: string): Record<string, unknown> {
  const text = readText(path, (code) => new ConfigError('ERR_CONFIG_UNREADABLE', `cannot read configuration file ${path}: ${code}`));
  let raw: unknown;
  try {
    raw = parseYaml(text, { uniqueKeys: true }) ?? {};
  } catch (err) {
    throw new ConfigError('ERR_CONFIG_PARSE', `${path}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError('ERR_CONFIG_INVALID', `${path}: the configuration must be a mapping`);
  }
  return raw as Record<string, unknown>;
}

/** Validates a configuration object built in code (tests, demo defaults). */
export function buildConfig(raw: unknown, options: LoadOptions = {}, source?: string): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    if (issue === undefined) throw new ConfigError('ERR_CONFIG_INVALID', 'configuration is invalid');
    const base = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      const key = [...base, issue.keys[0] ?? '?'].join('.');
      throw new ConfigError('ERR_CONFIG_UNKNOWN_KEY', `unknown configuration key "${key}"`, { details: { path: key } });
    }
    const key = base.join('.') || '(root)';
    throw new ConfigError('ERR_CONFIG_INVALID', `invalid configuration at "${key}": ${issue.message}`, {
      details: { path: key },
    });
  }
  const env = options.env ?? {};
  const parsed = result.data;
  const cwd = options.cwd ?? process.cwd();
  const databaseUrl = nonEmpty(env.MANDATE_DATABASE_URL) ?? parsed.store.postgres.url;
  if (parsed.store.driver === 'postgres' && databaseUrl === undefined) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'store.driver is postgres but neither store.postgres.url nor MANDATE_DATABASE_URL is set', {
      details: { path: 'store.postgres.url' },
    });
  }
  const dataDir = resolve(cwd, parsed.dataDir);
  const bootstrapToken = nonEmpty(env.MANDATE_BOOTSTRAP_TOKEN);
  if (bootstrapToken !== undefined && bootstrapToken.length < 32) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'MANDATE_BOOTSTRAP_TOKEN must be at least 32 characters');
  }
  const approvalWebhookSecret = nonEmpty(env.MANDATE_APPROVAL_WEBHOOK_SECRET);
  if (parsed.gateway.approvals.webhook !== undefined && (approvalWebhookSecret === undefined || !isWebhookSecret(approvalWebhookSecret))) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      'gateway.approvals.webhook is set but MANDATE_APPROVAL_WEBHOOK_SECRET is not a Standard Webhooks secret (whsec_ + base64 of 24 to 64 bytes)',
      { details: { path: 'gateway.approvals.webhook' } },
    );
  }
  const riskWebhookSecret = nonEmpty(env.MANDATE_RISK_WEBHOOK_SECRET);
  if (parsed.risk.webhook !== undefined && (riskWebhookSecret === undefined || !isWebhookSecret(riskWebhookSecret))) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      'risk.webhook is set but MANDATE_RISK_WEBHOOK_SECRET is not a Standard Webhooks secret (whsec_ + base64 of 24 to 64 bytes)',
      { details: { path: 'risk.webhook' } },
    );
  }
  const metricsToken = nonEmpty(env.MANDATE_METRICS_TOKEN);
  if (metricsToken !== undefined && metricsToken.length < 32) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'MANDATE_METRICS_TOKEN must be at least 32 characters');
  }
  const leases = resolveLeases(parsed.leases, env, cwd);
  const tls = parsed.server.tls;
  const config = {
    ...parsed,
    dataDir,
    source,
    server:
      tls === undefined
        ? parsed.server
        : { ...parsed.server, tls: { ...tls, certFile: resolve(cwd, tls.certFile), keyFile: resolve(cwd, tls.keyFile) } },
    store: {
      ...parsed.store,
      sqlite: { ...parsed.store.sqlite, path: resolve(dataDir, parsed.store.sqlite.path ?? 'mandate.db') },
      postgres: { ...parsed.store.postgres, url: databaseUrl },
    },
    interactiveClients: {
      ...parsed.interactiveClients,
      metadataDocuments: {
        ...parsed.interactiveClients.metadataDocuments,
        caFile:
          parsed.interactiveClients.metadataDocuments.caFile === undefined
            ? undefined
            : resolve(cwd, parsed.interactiveClients.metadataDocuments.caFile),
      },
    },
    // Policy paths are relative to the configuration file, like the data folder.
    policy: {
      ...parsed.policy,
      dir: parsed.policy.dir === undefined ? undefined : resolve(cwd, parsed.policy.dir),
      schema: parsed.policy.schema === undefined ? undefined : resolve(cwd, parsed.policy.schema),
      entities: parsed.policy.entities === undefined ? undefined : resolve(cwd, parsed.policy.entities),
      externalPdp: resolveExternalPdp(parsed.policy.externalPdp, cwd),
    },
    leases,
    secrets: {
      masterKey: nonEmpty(env.MANDATE_MASTER_KEY),
      bootstrapTokenSha256: bootstrapToken !== undefined ? sha256Hex(bootstrapToken) : parsed.operators.bootstrapTokenSha256,
      approvalWebhookSecret,
      riskWebhookSecret,
      pdpToken: nonEmpty(env.MANDATE_PDP_TOKEN),
      metricsTokenSha256: metricsToken !== undefined ? sha256Hex(metricsToken) : parsed.telemetry.metrics.tokenSha256,
    },
  };
  return deepFreeze(config) as Config;
}

export type { ConfigInput };

/** The external PDP's file paths (token, TLS), relative to the configuration file. */
function resolveExternalPdp(pdp: Parsed['policy']['externalPdp'], cwd: string): Parsed['policy']['externalPdp'] {
  const at = (p: string | undefined) => (p === undefined ? undefined : resolve(cwd, p));
  const tls =
    pdp.tls === undefined ? undefined : { caFile: at(pdp.tls.caFile), certFile: at(pdp.tls.certFile), keyFile: at(pdp.tls.keyFile) };
  return { ...pdp, tokenFile: at(pdp.tokenFile), tls };
}

/**
 * Each lease provider's secret (postgres-role `adminUrl`, oauth-client-credentials `clientSecret`)
 * comes from exactly one of: the value in the file, `<field>Env` (an environment variable) or
 * `<field>File` (a file relative to the configuration file, trimmed). Errors name the field, never the value.
 */
function resolveLeases(leases: ParsedLeases, env: Readonly<Record<string, string | undefined>>, cwd: string): ResolvedLeases {
  const upstreams: Record<string, ResolvedLease<ParsedLeases['upstreams'][string]>> = {};
  for (const [id, lease] of Object.entries(leases.upstreams)) {
    const base = `leases.upstreams.${id}`;
    if (lease.type === 'postgres-role') {
      const { adminUrlEnv, adminUrlFile, ...rest } = lease;
      const adminUrl = leaseSecret(`${base}.adminUrl`, lease.adminUrl, adminUrlEnv, adminUrlFile, env, cwd);
      if (!/^postgres(ql)?:\/\//.test(adminUrl)) {
        throw new ConfigError('ERR_CONFIG_INVALID', `invalid configuration at "${base}.adminUrl": a postgres:// URL`, {
          details: { path: `${base}.adminUrl` },
        });
      }
      upstreams[id] = { ...rest, adminUrl };
    } else if (lease.type === 'oauth-client-credentials') {
      const { clientSecretEnv, clientSecretFile, ...rest } = lease;
      const clientSecret = leaseSecret(`${base}.clientSecret`, lease.clientSecret, clientSecretEnv, clientSecretFile, env, cwd);
      if (clientSecret.length > 4096) {
        throw new ConfigError('ERR_CONFIG_INVALID', `invalid configuration at "${base}.clientSecret": longer than 4096 characters`, {
          details: { path: `${base}.clientSecret` },
        });
      }
      upstreams[id] = { ...rest, clientSecret };
    } else {
      upstreams[id] = lease;
    }
  }
  return { ...leases, upstreams };
}

function leaseSecret(
  path: string,
  inline: string | undefined,
  envName: string | undefined,
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): string {
  const given = [inline, envName, file].filter((v) => v !== undefined).length;
  if (given !== 1) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `invalid configuration at "${path}": set exactly one of ${path}, ${path}Env, ${path}File (${given === 0 ? 'none' : 'several'} set)`,
      { details: { path } },
    );
  }
  if (inline !== undefined) return inline;
  if (envName !== undefined) {
    const value = nonEmpty(env[envName]);
    if (value === undefined) {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `invalid configuration at "${path}Env": environment variable ${envName} is not set or empty`,
        {
          details: { path: `${path}Env` },
        },
      );
    }
    return value;
  }
  const full = resolve(cwd, file as string);
  const text = readText(
    full,
    (code) =>
      new ConfigError('ERR_CONFIG_INVALID', `invalid configuration at "${path}File": cannot read ${full} (${code})`, {
        details: { path: `${path}File` },
      }),
  );
  const value = nonEmpty(text);
  if (value === undefined) {
    throw new ConfigError('ERR_CONFIG_INVALID', `invalid configuration at "${path}File": ${full} is empty`, {
      details: { path: `${path}File` },
    });
  }
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** A file's text; a file that cannot be read throws what `fail` makes of its error code (never its contents). */
function readText(path: string, fail: (code: string) => ConfigError): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw fail((err as NodeJS.ErrnoException).code ?? 'error');
  }
}
