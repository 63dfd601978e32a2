/**
 * The tiny SQL driver the manifest's domain logic is written against. SQL uses `$1, $2, ...`
 * placeholders (PostgreSQL style); the SQLite driver translates them.
 *
 * Values cross the boundary as plain JS values: text as strings, integers and doubles as numbers
 * (PostgreSQL BIGINT and COUNT(*) arrive as strings, so readers convert with `Number`), JSON as
 * text. `undefined` parameters are sent as NULL.
 *
 * @module
 */

/** A value that can be bound to a placeholder. Booleans are not portable: use 0/1. */
export type SqlValue = string | number | bigint | null | undefined;

/** One result row, keyed by column name. */
export type SqlRow = Record<string, unknown>;

export interface SqlDriver {
  readonly dialect: "sqlite" | "postgres";
  /** Runs one statement and returns its rows (SELECT, or `RETURNING`; otherwise empty). */
  query<T extends SqlRow = SqlRow>(sql: string, params?: SqlValue[]): Promise<T[]>;
  /** Runs a parameterless script of several statements (migrations). */
  exec(script: string): Promise<void>;
  /**
   * Runs `fn` in one transaction: commits when it resolves, rolls back when it throws. Inside,
   * use only `tx`. Nested calls on `tx` join the outer transaction. The function may run more
   * than once (PostgreSQL deadlocks and serialisation failures are retried), so it must have no
   * side effects outside the database.
   */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  /**
   * Inside a transaction, where the driver needs its own API for it (PostgreSQL): runs `fn` in a
   * SAVEPOINT, rolled back to when `fn` throws (the error is rethrown; the transaction goes on).
   * Absent: plain `SAVEPOINT` statements do.
   */
  savepoint?<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
