/**
 * Versioned schema migrations, applied in order by {@link migrate}. To change the schema, add a
 * module `NNNN_name.ts` exporting a {@link Migration} and list it in {@link MIGRATIONS}; never
 * edit one that has shipped.
 *
 * @example
 * ```ts
 * await migrate(driver, Date.now());
 * ```
 * @module
 */
import { SluiceError } from "../../errors/mod.ts";
import type { SqlDriver } from "../_driver.ts";
import { toNumber } from "../_columns.ts";
import type { Migration } from "./migration.ts";
import { migration as initial } from "./0001_initial.ts";
import { migration as reviews } from "./1601_reviews.ts";
import { migration as imageVerdicts } from "./1701_image_verdicts.ts";
import { migration as predictionRegistry } from "./1702_prediction_registry.ts";

export type { Migration } from "./migration.ts";

/** Every migration, in version order. */
export const MIGRATIONS: readonly Migration[] = [
  initial,
  reviews,
  imageVerdicts,
  predictionRegistry,
];

// Arbitrary constant naming "the sluice manifest migration lock" among advisory locks.
const PG_MIGRATION_LOCK = 0x51_1c_e0_01;

/** The database was migrated by a newer Sluice than this one. */
export class SchemaTooNewError extends SluiceError {
  constructor(known: number, found: number) {
    super(
      "manifest_schema_too_new",
      `manifest schema: expected version ${known} or older, found ${found} (upgrade Sluice)`,
    );
    this.name = "SchemaTooNewError";
  }
}

/**
 * Applies every migration not yet recorded, in one transaction. Idempotent, and serialised
 * across processes: PostgreSQL takes a transaction-scoped advisory lock, SQLite's
 * `BEGIN IMMEDIATE` holds the write lock. Returns the versions it applied.
 *
 * @example
 * ```ts
 * const applied = await migrate(driver, Date.now()); // [1] on a new database, [] afterwards
 * ```
 */
export function migrate(
  driver: SqlDriver,
  now: number,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  return driver.transaction(async (tx) => {
    if (tx.dialect === "postgres") {
      await tx.query(`SELECT pg_advisory_xact_lock(${PG_MIGRATION_LOCK})`);
    }
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at BIGINT NOT NULL
    )`);
    const rows = await tx.query("SELECT version FROM schema_migrations");
    const applied = new Set(rows.map((r) => toNumber(r.version)));
    const known = Math.max(0, ...migrations.map((m) => m.version));
    const newest = Math.max(0, ...applied);
    if (newest > known) throw new SchemaTooNewError(known, newest);
    const done: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      await tx.exec(typeof m.up === "string" ? m.up : m.up(tx.dialect));
      await tx.query(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        [m.version, m.name, now],
      );
      done.push(m.version);
    }
    return done;
  });
}
