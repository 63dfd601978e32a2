/**
 * Release: gives a claimed item back to the queue without counting the attempt (a worker
 * stopping, or back-pressure). A claim that no longer holds the item changes nothing.
 *
 * @example
 * ```ts
 * await releaseClaim(db, claim, Date.now());
 * ```
 * @module
 */
import type { Claim } from "../contract.ts";
import type { SqlDriver } from "../_driver.ts";
import { fence, fenceParams } from "./_fence.ts";

/** Makes the item pending again, its attempt not counted. */
export async function releaseClaim(db: SqlDriver, claim: Claim, now: number): Promise<void> {
  await db.query(
    `UPDATE work SET state = 'pending', attempts = CASE WHEN attempts > 0 THEN attempts - 1
         ELSE 0 END, lease_owner = NULL, lease_token = NULL, lease_until = NULL, updated_at = $5
     WHERE ${fence(1)}`,
    [...fenceParams(claim), now],
  );
}
