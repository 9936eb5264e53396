// Opens the configured store and applies migrations.
import type { Config } from '../config/load.js';
import { openPostgresStore } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';
import type { Store } from './types.js';

export type { Dialect, Row, SqlExecutor, SqlValue, Store } from './types.js';

export function openStore(config: Config): Store {
  const { store } = config;
  if (store.driver === 'postgres') {
    return openPostgresStore({
      // buildConfig guarantees a URL for the postgres driver.
      url: store.postgres.url ?? '',
      schema: store.postgres.schema,
      poolMax: store.postgres.poolMax,
      connectTimeoutMs: store.postgres.connectTimeoutMs,
    });
  }
  // loadConfig resolves the path against the data folder.
  return openSqliteStore({
    path: store.sqlite.path ?? `${config.dataDir}/mandate.db`,
    busyTimeoutMs: store.sqlite.busyTimeoutMs,
    writerThread: store.sqlite.writerThread,
  });
}
