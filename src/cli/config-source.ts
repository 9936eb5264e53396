// How CLI commands obtain their configuration: a file (--config), or the demo defaults (--demo),
// with --host/--port/--public-url applied before validation. Commands that work beside a running
// demo broker (dev tokens, demo audit keys) also follow MANDATE_URL, so one address serves all.
import { dirname, resolve } from 'node:path';
import { buildConfig, type Config, readConfigFile } from '../config/load.js';
import { ConfigError } from '../errors/index.js';

export interface ConfigFlags {
  readonly config?: string;
  readonly demo?: boolean;
  readonly host?: string;
  readonly port?: string;
  readonly publicUrl?: string;
  /** The running broker's URL (client-side commands); becomes the public URL of the demo configuration. */
  readonly url?: string;
}

// Request logs stay quiet in the demo: the console shows activity; use a config file for info logs.
export const DEMO_CONFIG = { mode: 'demo', dataDir: './data', log: { level: 'warn' } } as const;

export interface ConfigSourceOptions {
  /**
   * The command talks about a broker that runs elsewhere (it mints its tokens, reads its log):
   * with the demo configuration and no --port/--public-url, --url or MANDATE_URL is that broker's
   * public URL, so tokens carry its issuer and checkpoints its origin.
   */
  readonly followsBrokerUrl?: boolean;
}

export function configFromFlags(flags: ConfigFlags, options: ConfigSourceOptions = {}): Config {
  const source = flags.config;
  if (source === undefined && flags.demo !== true) {
    throw new ConfigError('ERR_CONFIG_UNREADABLE', 'no configuration: pass --config FILE, or --demo for the local demo');
  }
  const raw: Record<string, unknown> = source === undefined ? { ...DEMO_CONFIG } : readConfigFile(source);
  const server = { ...(raw.server as Record<string, unknown> | undefined) };
  if (flags.host !== undefined) server.host = flags.host;
  if (flags.port !== undefined) {
    const port = Number(flags.port);
    if (!/^\d+$/.test(flags.port) || port > 65535)
      throw new ConfigError('ERR_CONFIG_INVALID', `--port must be 0..65535, got "${flags.port}"`);
    server.port = port;
  }
  const fromEnv = source === undefined && flags.port === undefined ? process.env.MANDATE_URL || undefined : undefined;
  const publicUrl = flags.publicUrl ?? (options.followsBrokerUrl === true ? (flags.url ?? fromEnv) : undefined);
  if (publicUrl !== undefined) {
    if (!/^https?:\/\/[^/]+/.test(publicUrl)) {
      throw new ConfigError('ERR_CONFIG_INVALID', `the broker URL must be an http(s) URL, got "${publicUrl}"`);
    }
    server.publicUrl = publicUrl.replace(/\/+$/, '');
  }
  const cwd = source === undefined ? process.cwd() : dirname(resolve(source));
  return buildConfig({ ...raw, server }, { env: process.env, cwd }, source);
}
