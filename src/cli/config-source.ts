// How CLI commands obtain their configuration: a file (--config), or the demo defaults (--demo),
// with --host/--port applied before validation.
import { dirname, resolve } from 'node:path';
import { buildConfig, type Config, readConfigFile } from '../config/load.js';
import { ConfigError } from '../errors/index.js';

export interface ConfigFlags {
  readonly config?: string;
  readonly demo?: boolean;
  readonly host?: string;
  readonly port?: string;
}

// Request logs stay quiet in the demo: the console shows activity; use a config file for info logs.
export const DEMO_CONFIG = { mode: 'demo', dataDir: './data', log: { level: 'warn' } } as const;

export function configFromFlags(flags: ConfigFlags): Config {
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
  const cwd = source === undefined ? process.cwd() : dirname(resolve(source));
  return buildConfig({ ...raw, server }, { env: process.env, cwd }, source);
}
