// `mandate serve` and `mandate migrate`.
import type { Command } from 'commander';
import { createBroker, publicUrl } from '../../broker.js';
import { ConfigError } from '../../errors/index.js';
import { buildApp } from '../../http/app.js';
import { openStore } from '../../store/index.js';
import { type ConfigFlags, configFromFlags } from '../config-source.js';
import { DEFAULT_BROKER_URL } from './admin-request.js';

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('Run the broker (HTTP API, token endpoint, gateway).')
    .option('-c, --config <file>', 'configuration file (YAML or JSON)')
    .option('--demo', 'run the local demo: SQLite under ./data, development issuer, seeded humans')
    .option('--host <host>', 'listen address (overrides server.host)')
    .option('--port <port>', 'listen port (overrides server.port)')
    .option('--public-url <url>', 'external base URL: token issuer, links, audit origin (overrides server.publicUrl)')
    .action(async (flags: ConfigFlags) => {
      const config = configFromFlags(flags);
      const broker = await createBroker(config);
      const app = await buildApp(broker);
      for (const notice of broker.notices) process.stderr.write(`${notice}\n`);
      // Handlers first: a SIGTERM that arrives while we start up still drains and closes cleanly.
      const stop = (signal: string) => {
        app.log.info({ signal }, 'draining, then shutting down');
        app.drain();
        setTimeout(() => {
          const timer = setTimeout(() => process.exit(1), config.server.shutdownGraceMs);
          timer.unref();
          void app.close().then(() => process.exit(0));
        }, config.server.drainMs);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      let address: string;
      try {
        address = await app.listen({ host: config.server.host, port: config.server.port });
      } catch (err) {
        await app.close();
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new ConfigError(
            'ERR_PORT_IN_USE',
            `${config.server.host}:${config.server.port} is already in use; pick another with --port`,
          );
        }
        throw err;
      }
      const port = (app.server.address() as { port: number }).port;
      process.stdout.write(`listening on ${config.server.tls === undefined ? 'http' : 'https'}://${config.server.host}:${port}\n`);
      if (config.mode === 'demo') {
        // Every command printed here reaches this broker: on another address they carry --url.
        const base = publicUrl(config);
        const at = base === DEFAULT_BROKER_URL ? '' : ` --url ${base}`;
        if (config.console.enabled) {
          process.stdout.write(`  console: ${base}/console/  (sign in as carol to approve refunds, alice to investigate)\n`);
          process.stdout.write(
            `  agent:   npm run demo:agent${at === '' ? '' : ` --${at}`}  (in another terminal: runs the refund scenario)\n`,
          );
        }
        process.stdout.write(`  health:  ${address}/healthz\n  api doc: ${address}/openapi.json\n`);
        process.stdout.write(`  operator token (development only): npm run mandate -- dev operator-token --user alice${at}\n`);
        if (at !== '') process.stdout.write(`  other terminals: export MANDATE_URL=${base}  (the CLI, dev and demo commands read it)\n`);
      } else {
        process.stdout.write(`  public URL: ${publicUrl(config)}\n`);
        if (config.console.enabled) process.stdout.write(`  console: ${publicUrl(config)}/console/\n`);
      }
    });

  program
    .command('migrate')
    .description('Apply pending store migrations and exit.')
    .option('-c, --config <file>', 'configuration file (YAML or JSON)')
    .option('--demo', 'use the demo configuration')
    .action(async (flags: ConfigFlags) => {
      const store = openStore(configFromFlags(flags));
      try {
        const applied = await store.migrate();
        process.stdout.write(applied.length === 0 ? 'store is up to date\n' : `applied migrations: ${applied.join(', ')}\n`);
      } finally {
        await store.close();
      }
    });
}
