/**
 * The fence of a claim: a write made for a claim applies only while that claim still holds the
 * item (same owner, same lease token, still leased). A claim whose lease expired and was taken
 * by another worker matches no row, which the caller reports as `LeaseLostError`.
 *
 * @example
 * ```ts
 * const rows = await tx.query(`UPDATE work SET updated_at = $5 WHERE ${fence(1)} RETURNING item_id`,
 *   [...fenceParams(claim), now]);
 * if (rows.length === 0) throw new LeaseLostError(claim);
 * ```
 * @module
 */
import type { Claim } from "../contract.ts";
import type { SqlValue } from "../_driver.ts";

/** The fence's condition, its four parameters numbered from `$from` (see {@link fenceParams}). */
export function fence(from: number): string {
  // `COALESCE(state, '')`, not `state`: keeps the planner on the primary key. With `state =
  // 'leased'` it may probe work_lease_idx (stage, state) and filter every leased row of the
  // stage for each item, when its statistics say few rows are leased (issue 17).
  return `stage = $${from} AND item_id = $${from + 1} AND lease_owner = $${from + 2} ` +
    `AND lease_token = $${from + 3} AND COALESCE(state, '') = 'leased'`;
}

/** The fence's parameters, in {@link fence}'s order. */
export function fenceParams(c: Claim): SqlValue[] {
  return [c.stage, c.itemId, c.owner, c.token];
}
