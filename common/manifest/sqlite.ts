/**
 * The SQLite adapter (node:sqlite), the embedded default. One connection per store; WAL so that
 * readers never wait for the writer; every transaction is `BEGIN IMMEDIATE` so that writers
 * queue for the write lock up front instead of failing to upgrade a read lock halfway through.
 *
 * node:sqlite is synchronous, so statements are serialised inside the process with a mutex that
 * is shared by every store opened on the same file in this process (two stores on one file
 * would otherwise deadlock: the second `BEGIN IMMEDIATE` blocks the only thread while the first
 * transaction waits for it to continue). Other processes are waited for asynchronously: SQLite's
 * own busy handler waits a few milliseconds, then we back off on the event loop and retry.
 *
 * @example
 * ```ts
 * const store = await openSqliteManifest("sqlite:///var/lib/sluice/manifest.db");
 * await store.migrate();
 * ```
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { SluiceError } from "../errors/mod.ts";
import { type ManifestStore, ManifestUrlError } from "./contract.ts";
import type { SqlDriver, SqlRow, SqlValue } from "./_driver.ts";
import { Mutex } from "./_mutex.ts";
import { createSqlManifestStore, storeOptionsSchema } from "./store.ts";
import { sleep } from "../timing/mod.ts";

/** The database file was locked by another process for longer than `busyTimeoutMs`. */
export class SqliteBusyError extends SluiceError {
  constructor(path: string, waitedMs: number) {
    super(
      "manifest_busy",
      `sqlite manifest ${path}: expected the write lock within ${waitedMs} ms, ` +
        `found it still held by another connection`,
    );
    this.name = "SqliteBusyError";
  }
}

export const sqliteOptionsSchema = storeOptionsSchema.extend({
  /** How long a statement or transaction waits for another process's write lock (ms). */
  busyTimeoutMs: z.number().int().positive().default(30_000),
});

export type SqliteOptions = z.input<typeof sqliteOptionsSchema>;

/**
 * Maps a manifest URL to a database path: `sqlite:///abs/path.db` → `/abs/path.db`,
 * `sqlite:rel.db` → `<cwd>/rel.db`, `sqlite::memory:` → `:memory:`.
 *
 * @example
 * ```ts
 * parseSqliteUrl("sqlite:///tmp/m.db"); // "/tmp/m.db"
 * ```
 */
export function parseSqliteUrl(url: string): string {
  if (!url.startsWith("sqlite:")) throw new ManifestUrlError(url);
  const rest = url.slice("sqlite:".length);
  if (rest === ":memory:") return ":memory:";
  if (rest.startsWith("///")) return resolve(decodeURIComponent(rest.slice(2)));
  // `sqlite://host/...` names a host, which SQLite cannot use.
  if (rest.startsWith("//") || rest === "") throw new ManifestUrlError(url);
  return resolve(decodeURIComponent(rest));
}

/**
 * Opens (creating if needed) a SQLite manifest. Call `migrate()` before use, or use
 * `openManifest` from `mod.ts`, which does.
 *
 * @example
 * ```ts
 * const store = await openSqliteManifest("sqlite::memory:");
 * await store.migrate();
 * ```
 */
export async function openSqliteManifest(
  url: string,
  options: SqliteOptions = {},
): Promise<ManifestStore> {
  const opts = sqliteOptionsSchema.parse(options);
  const path = parseSqliteUrl(url);
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const driver = new SqliteDriver(path, opts.busyTimeoutMs);
  try {
    await driver.init();
  } catch (err) {
    await driver.close();
    throw err;
  }
  return createSqlManifestStore(driver, opts);
}

// Shared by every connection this process opens on one file (see the module comment).
const fileMutexes = new Map<string, { mutex: Mutex; users: number }>();

// SQLite's busy handler blocks the thread, so keep each synchronous wait short and do the long
// wait asynchronously.
const SYNC_BUSY_WAIT_MS = 20;
const STATEMENT_CACHE_SIZE = 256;

function isBusy(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { errcode?: unknown }).errcode;
  if (typeof code === "number" && (code & 0xff) === 5) return true;
  return /database is locked|database is busy/i.test(err.message);
}

/** Rewrites `$n` placeholders to positional `?`, returning the parameter order. */
function translate(sql: string): { text: string; order: number[] } {
  let text = "";
  const order: number[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      const end = sql.indexOf(c, i + 1);
      const stop = end < 0 ? sql.length : end + 1;
      text += sql.slice(i, stop);
      i = stop;
    } else if (c === "$" && /[0-9]/.test(sql[i + 1] ?? "")) {
      let j = i + 1;
      while (j < sql.length && /[0-9]/.test(sql[j])) j++;
      order.push(Number(sql.slice(i + 1, j)) - 1);
      text += "?";
      i = j;
    } else {
      text += c;
      i++;
    }
  }
  return { text, order };
}

type Bindable = string | number | bigint | null;

class SqliteDriver implements SqlDriver {
  readonly dialect = "sqlite" as const;
  readonly #path: string;
  readonly #busyTimeoutMs: number;
  readonly #db: DatabaseSync;
  readonly #mutex: Mutex;
  readonly #statements = new Map<string, { stmt: StatementSync; order: number[] }>();
  #closed = false;

  constructor(path: string, busyTimeoutMs: number) {
    this.#path = path;
    this.#busyTimeoutMs = busyTimeoutMs;
    this.#db = new DatabaseSync(path);
    if (path === ":memory:") {
      this.#mutex = new Mutex();
    } else {
      const entry = fileMutexes.get(path) ?? { mutex: new Mutex(), users: 0 };
      entry.users++;
      fileMutexes.set(path, entry);
      this.#mutex = entry.mutex;
    }
  }

  async init(): Promise<void> {
    await this.#mutex.run(() =>
      this.#retryBusy(() => {
        this.#db.exec(`PRAGMA busy_timeout = ${SYNC_BUSY_WAIT_MS}`);
        this.#db.exec("PRAGMA foreign_keys = ON");
        // Switching to WAL needs a moment of exclusive access; another process may be mid-write.
        if (this.#path !== ":memory:") this.#db.exec("PRAGMA journal_mode = WAL");
        // In WAL mode NORMAL cannot corrupt the file; a power cut may lose the last commits,
        // which the queue tolerates because every step is idempotent and is simply redone.
        this.#db.exec("PRAGMA synchronous = NORMAL");
      })
    );
  }

  query<T extends SqlRow = SqlRow>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.#mutex.run(() => this.#retryBusy(() => this.#run<T>(sql, params)));
  }

  exec(script: string): Promise<void> {
    return this.#mutex.run(() => this.#retryBusy(() => this.#db.exec(script)));
  }

  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    return this.#mutex.run(async () => {
      await this.#retryBusy(() => this.#db.exec("BEGIN IMMEDIATE"));
      const tx = this.#txView();
      let result: T;
      try {
        result = await fn(tx);
      } catch (err) {
        this.#db.exec("ROLLBACK");
        throw err;
      }
      try {
        await this.#retryBusy(() => this.#db.exec("COMMIT"));
      } catch (err) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
        throw err;
      }
      return result;
    });
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return this.#mutex.run(() => {
      this.#statements.clear();
      this.#db.close();
      const entry = fileMutexes.get(this.#path);
      if (entry && --entry.users === 0) fileMutexes.delete(this.#path);
      return Promise.resolve();
    });
  }

  /** A driver bound to the open transaction: no mutex, nested transactions join it. */
  #txView(): SqlDriver {
    return {
      dialect: this.dialect,
      query: <R extends SqlRow = SqlRow>(sql: string, params: SqlValue[] = []) =>
        Promise.resolve(this.#run<R>(sql, params)),
      exec: (script: string) => Promise.resolve(this.#db.exec(script)),
      transaction: <R>(fn: (tx: SqlDriver) => Promise<R>) => fn(this.#txView()),
      close: () => Promise.reject(new Error("close() called inside a transaction")),
    };
  }

  #run<T>(sql: string, params: SqlValue[]): T[] {
    let entry = this.#statements.get(sql);
    if (entry) {
      // Map order is recency order: move this statement to the back.
      this.#statements.delete(sql);
    } else {
      const { text, order } = translate(sql);
      entry = { stmt: this.#db.prepare(text), order };
      // IN lists of varying length make many distinct statements; keep the recent ones.
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) {
        this.#statements.delete(this.#statements.keys().next().value!);
      }
    }
    this.#statements.set(sql, entry);
    const args: Bindable[] = entry.order.map((i) => {
      if (i < 0 || i >= params.length) {
        throw new RangeError(`placeholder $${i + 1}: expected a parameter, found ${params.length}`);
      }
      return params[i] ?? null;
    });
    return entry.stmt.all(...args) as T[];
  }

  async #retryBusy<T>(fn: () => T): Promise<T> {
    const start = Date.now();
    let pause = 2;
    while (true) {
      try {
        return fn();
      } catch (err) {
        if (!isBusy(err)) throw err;
        const waited = Date.now() - start;
        if (waited >= this.#busyTimeoutMs) throw new SqliteBusyError(this.#path, waited);
        await sleep(pause + Math.random() * pause);
        pause = Math.min(pause * 2, 50);
      }
    }
  }
}
