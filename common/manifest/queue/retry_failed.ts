/**
 * Retry: makes a stage's failed items (all, or those of `itemIds`) pending again with their
 * attempts reset; for `ingest`, their failed images become pending too. Returns how many.
 *
 * @example
 * ```ts
 * await db.transaction((tx) => retryFailed(tx, "ingest", undefined, Date.now()));
 * ```
 * @module
 */
import type { StageName } from "../contract.ts";
import type { SqlDriver } from "../_driver.ts";
import { chunks, ID_CHUNK, placeholders } from "../_sql_lists.ts";
import { INGEST, reopenFailedImages } from "./_ingest_image.ts";

/** Items made pending again. */
export async function retryFailed(
  tx: SqlDriver,
  stage: StageName,
  itemIds: readonly string[] | undefined,
  now: number,
): Promise<number> {
  const reset = `UPDATE work SET state = 'pending', attempts = 0, not_before = $2,
      lease_owner = NULL, lease_token = NULL, lease_until = NULL, updated_at = $2
    WHERE stage = $1 AND state = 'failed'`;
  const retried: string[] = [];
  if (itemIds === undefined) {
    const rows = await tx.query(`${reset} RETURNING item_id`, [stage, now]);
    retried.push(...rows.map((r) => String(r.item_id)));
  } else {
    for (const part of chunks([...new Set(itemIds)].sort(), ID_CHUNK)) {
      const rows = await tx.query(
        `${reset} AND item_id IN (${placeholders(part.length, 3)}) RETURNING item_id`,
        [stage, now, ...part],
      );
      retried.push(...rows.map((r) => String(r.item_id)));
    }
  }
  if (stage === INGEST) await reopenFailedImages(tx, retried, now);
  return retried.length;
}
