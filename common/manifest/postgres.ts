/**
 * The PostgreSQL adapter (npm:postgres), for many workers on many hosts sharing one manifest.
 * Each store owns a small connection pool; transactions retry on deadlocks and serialisation
 * failures, so concurrent completions that touch the same rows never surface as errors.
 *
 * @example
 * ```ts
 * const store = await openPostgresManifest("postgres://sluice@db:5432/sluice");
 * await store.migrate();
 * ```
 * @module
 */
import postgres from "postgres";
import { z } from "zod";
import { type ManifestStore, ManifestUrlError } from "./contract.ts";
import type { SqlDriver, SqlRow, SqlValue } from "./_driver.ts";
import { createSqlManifestStore, storeOptionsSchema } from "./store.ts";
import { containConnectionLoss } from "./_connection_loss_guard.ts";
import { sleep } from "../timing/mod.ts";

export const postgresOptionsSchema = storeOptionsSchema.extend({
  /** Connections in this store's pool. */
  maxConnections: z.number().int().positive().default(4),
  /** Seconds to wait for a connection to open. */
  connectTimeoutS: z.number().positive().default(30),
  /** Attempts for a transaction that hits a deadlock or serialisation failure. */
  transactionRetries: z.number().int().positive().default(8),
  /**
   * Longest wait, in seconds, before reconnecting after the server went away (the delay
   * doubles from 0.1 s per failed try). The driver's own default grows to 20 s, so a worker
   * stood idle long after a restart it had ridden through.
   */
  maxReconnectDelayS: z.number().positive().default(2),
});

export type PostgresOptions = z.input<typeof postgresOptionsSchema>;

/**
 * Opens a PostgreSQL manifest (`postgres://` or `postgresql://` URL). Call `migrate()` before
 * use, or use `openManifest` from `mod.ts`, which does.
 *
 * @example
 * ```ts
 * const store = await openPostgresManifest("postgres://postgres@127.0.0.1:5432/sluice");
 * await store.migrate();
 * ```
 */
export async function openPostgresManifest(
  url: string,
  options: PostgresOptions = {},
): Promise<ManifestStore> {
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ManifestUrlError(url);
  const opts = postgresOptionsSchema.parse(options);
  containConnectionLoss();
  const sql = postgres(url, {
    max: opts.maxConnections,
    connect_timeout: opts.connectTimeoutS,
    // No array parameters are used; the type fetch after each (re)connect is an unawaited
    // promise inside the driver that rejects when the server goes away mid-connect.
    fetch_types: false,
    backoff: (retries: number) => reconnectDelayS(retries, opts.maxReconnectDelayS),
    // "relation already exists, skipping" and friends are expected during migrations.
    onnotice: () => {},
  });
  const driver = new PostgresDriver(sql, opts.transactionRetries);
  try {
    await driver.query("SELECT 1");
  } catch (err) {
    await driver.close();
    throw err;
  }
  return createSqlManifestStore(driver, opts);
}

/**
 * Seconds before reconnect try `retries` (0, 1, ...): 0.1 s doubling up to `maxS`, with the
 * upper half jittered so that many workers do not knock at once.
 *
 * @example
 * ```ts
 * reconnectDelayS(0, 2); // 0.05–0.1
 * reconnectDelayS(9, 2); // 1–2
 * ```
 */
export function reconnectDelayS(retries: number, maxS: number): number {
  return Math.min(0.1 * 2 ** retries, maxS) * (0.5 + Math.random() / 2);
}

type Sql = postgres.Sql | postgres.TransactionSql;

// Deadlock and serialisation failure: the transaction was rolled back and may simply be re-run.
const RETRYABLE = new Set(["40P01", "40001"]);

function retryable(err: unknown): boolean {
  return err instanceof postgres.PostgresError && RETRYABLE.has(err.code);
}

function bind(params: SqlValue[]): (string | number | bigint | null)[] {
  return params.map((p) => p ?? null);
}

async function run<T>(sql: Sql, text: string, params: SqlValue[]): Promise<T[]> {
  // npm:postgres types `unsafe` parameters loosely; the values are plain scalars.
  const rows = await sql.unsafe(text, bind(params) as postgres.ParameterOrJSON<never>[]);
  return [...rows] as T[];
}

class PostgresDriver implements SqlDriver {
  readonly dialect = "postgres" as const;
  readonly #sql: postgres.Sql;
  readonly #retries: number;

  constructor(sql: postgres.Sql, retries: number) {
    this.#sql = sql;
    this.#retries = retries;
  }

  query<T extends SqlRow = SqlRow>(text: string, params: SqlValue[] = []): Promise<T[]> {
    return run<T>(this.#sql, text, params);
  }

  async exec(script: string): Promise<void> {
    await this.#sql.unsafe(script).simple();
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#sql.begin((tx) => fn(txView(tx))) as T;
      } catch (err) {
        if (!retryable(err) || attempt >= this.#retries) throw err;
        await sleep(Math.random() * 10 * attempt);
      }
    }
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }
}

function txView(tx: postgres.TransactionSql): SqlDriver {
  const view: SqlDriver = {
    dialect: "postgres",
    query: <R extends SqlRow = SqlRow>(text: string, params: SqlValue[] = []) =>
      run<R>(tx, text, params),
    exec: async (script: string) => {
      await tx.unsafe(script).simple();
    },
    transaction: <R>(fn: (inner: SqlDriver) => Promise<R>) => fn(view),
    savepoint: <R>(fn: (inner: SqlDriver) => Promise<R>) =>
      tx.savepoint((sp) => fn(txView(sp))) as Promise<R>,
    close: () => Promise.reject(new Error("close() called inside a transaction")),
  };
  return view;
}
