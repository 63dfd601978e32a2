/**
 * Reading the queue: a stage's work rows (in item order), and the count of items per stage and
 * state (every state present, zero when empty).
 *
 * @example
 * ```ts
 * const failed = await listWork(db, "ingest", "failed", 100);
 * (await workCounts(db, "ingest")).ingest.pending; // 0
 * ```
 * @module
 */
import type { StageName, WorkRow, WorkState } from "../contract.ts";
import type { SqlDriver } from "../_driver.ts";
import { toNumber } from "../_columns.ts";
import { toWork, WORK_COLUMNS } from "../_rows.ts";

const WORK_STATES: readonly WorkState[] = ["pending", "leased", "done", "failed"];

/** Up to `limit` work rows of `stage` (of one `state` when given), by item id. */
export async function listWork(
  db: SqlDriver,
  stage: StageName,
  state: WorkState | undefined,
  limit: number,
): Promise<WorkRow[]> {
  const rows = state === undefined
    ? await db.query(
      `SELECT ${WORK_COLUMNS} FROM work WHERE stage = $1 ORDER BY item_id LIMIT $2`,
      [stage, limit],
    )
    : await db.query(
      `SELECT ${WORK_COLUMNS} FROM work WHERE stage = $1 AND state = $2
       ORDER BY item_id LIMIT $3`,
      [stage, state, limit],
    );
  return rows.map(toWork);
}

/** Items per stage and state: every stage with work (or just `stage`), every state. */
export async function workCounts(
  db: SqlDriver,
  stage?: StageName,
): Promise<Record<string, Record<WorkState, number>>> {
  const rows = stage === undefined
    ? await db.query("SELECT stage, state, COUNT(*) AS n FROM work GROUP BY stage, state")
    : await db.query(
      "SELECT stage, state, COUNT(*) AS n FROM work WHERE stage = $1 GROUP BY stage, state",
      [stage],
    );
  const zero = () =>
    Object.fromEntries(WORK_STATES.map((s) => [s, 0])) as Record<WorkState, number>;
  const out: Record<string, Record<WorkState, number>> = {};
  if (stage !== undefined) out[stage] = zero();
  for (const r of rows) {
    const s = String(r.stage);
    out[s] ??= zero();
    out[s][String(r.state) as WorkState] = toNumber(r.n);
  }
  return out;
}
