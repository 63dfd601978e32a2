/**
 * Enqueue: pending work items for a stage, and the inference backlog of a model version.
 *
 * On an existing row, `absent` leaves it, `reset` makes it pending again whatever its state
 * (fencing out a current lease), `reopen` does so only for `done` and `failed` rows (what
 * `complete`'s follow-up items use: an item leased by another worker is left to that worker).
 *
 * @example
 * ```ts
 * await db.transaction((tx) => enqueueRows(tx, "normalize", ids, "absent", Date.now()));
 * ```
 * @module
 */
import type { StageName } from "../contract.ts";
import type { SqlDriver } from "../_driver.ts";
import { CHUNK, chunks } from "../_sql_lists.ts";

/** What an enqueue does to an item that already has a row (see the module documentation). */
export type EnqueueMode = "absent" | "reset" | "reopen";

/** Inserts (or resets, per `mode`) pending work items; returns the rows inserted or reset. */
export async function enqueueRows(
  tx: SqlDriver,
  stage: StageName,
  itemIds: readonly string[],
  mode: EnqueueMode,
  now: number,
): Promise<number> {
  // Sorted so that concurrent transactions lock rows in the same order (no deadlocks).
  const ids = [...new Set(itemIds)].sort();
  const onConflict = mode === "absent" ? "DO NOTHING" : `DO UPDATE SET state = 'pending',
      attempts = 0, not_before = excluded.not_before, lease_owner = NULL, lease_token = NULL,
      lease_until = NULL, last_error = NULL, updated_at = excluded.updated_at
      ${mode === "reopen" ? "WHERE work.state IN ('done', 'failed')" : ""}`;
  let n = 0;
  for (const part of chunks(ids, CHUNK)) {
    const rows = part.map((_, i) => `($1, $${i + 3}, 'pending', 0, $2, $2, $2)`).join(", ");
    const out = await tx.query(
      `INSERT INTO work (stage, item_id, state, attempts, not_before, created_at, updated_at)
       VALUES ${rows}
       ON CONFLICT (stage, item_id) ${onConflict} RETURNING item_id`,
      [stage, now, ...part],
    );
    n += out.length;
  }
  return n;
}

/**
 * Enqueues every ingested, non-duplicate image without a prediction of the model version (and,
 * unless `includeAnnotated`, without annotations); returns how many were added.
 */
export async function enqueueForInference(
  db: SqlDriver,
  now: number,
  stage: StageName,
  model: { name: string; version: string },
  opts: { includeAnnotated?: boolean; registry?: string } = {},
): Promise<number> {
  const unannotated = opts.includeAnnotated
    ? ""
    : "AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.image_id = i.id)";
  // Without a registry, any registry's prediction counts (the rule before migration 1702).
  const ofRegistry = opts.registry === undefined ? "" : "AND p.registry IN ($5, '')";
  const rows = await db.query(
    `INSERT INTO work (stage, item_id, state, attempts, not_before, created_at, updated_at)
     SELECT CAST($1 AS TEXT), i.id, 'pending', 0, CAST($4 AS BIGINT), CAST($4 AS BIGINT),
       CAST($4 AS BIGINT)
     FROM images i
     WHERE i.status = 'ingested' AND i.duplicate_of IS NULL ${unannotated}
       AND NOT EXISTS (SELECT 1 FROM predictions p WHERE p.image_id = i.id
         AND p.model_name = $2 AND p.model_version = $3 ${ofRegistry})
     ON CONFLICT (stage, item_id) DO NOTHING RETURNING item_id`,
    [stage, model.name, model.version, now, ...(ofRegistry ? [opts.registry!] : [])],
  );
  return rows.length;
}
