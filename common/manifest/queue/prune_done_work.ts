/**
 * Retention: deletes up to `limit` of a stage's `done` rows last updated before `doneBefore`
 * (`worker.doneRetentionMs`, `common/stage/work_retention.ts`); returns how many.
 *
 * @example
 * ```ts
 * await pruneDoneWork(db, "normalize", { doneBefore: Date.now() - 7 * 86_400_000, limit: 5000 });
 * ```
 * @module
 */
import type { StageName } from "../contract.ts";
import type { SqlDriver } from "../_driver.ts";

/** Rows deleted (at most `limit`). */
export async function pruneDoneWork(
  db: SqlDriver,
  stage: StageName,
  opts: { doneBefore: number; limit: number },
): Promise<number> {
  // One bounded statement per call: a long DELETE would hold its locks and bloat one
  // transaction. The (stage, state, ...) indexes find the stage's done rows.
  const rows = await db.query(
    `DELETE FROM work WHERE (stage, item_id) IN (
       SELECT stage, item_id FROM work
       WHERE stage = $1 AND state = 'done' AND updated_at < $2
       LIMIT $3)
     RETURNING item_id`,
    [stage, opts.doneBefore, opts.limit],
  );
  return rows.length;
}
