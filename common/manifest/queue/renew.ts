/**
 * Renew: extends the leases still held among `claims` to `now + leaseMs`, in one transaction;
 * returns those (with their new `leaseUntil`). A claim missing from the result lost its lease.
 *
 * @example
 * ```ts
 * const held = await db.transaction((tx) => renewClaims(tx, claims, 60_000, Date.now()));
 * ```
 * @module
 */
import type { Claim } from "../contract.ts";
import type { SqlDriver } from "../_driver.ts";
import { fence, fenceParams } from "./_fence.ts";

/** The claims whose lease was extended. */
export async function renewClaims(
  tx: SqlDriver,
  claims: readonly Claim[],
  leaseMs: number,
  now: number,
): Promise<Claim[]> {
  const held: Claim[] = [];
  for (const c of claims) {
    const rows = await tx.query(
      `UPDATE work SET lease_until = $5, updated_at = $6 WHERE ${fence(1)} RETURNING item_id`,
      [...fenceParams(c), now + leaseMs, now],
    );
    if (rows.length > 0) held.push({ ...c, leaseUntil: now + leaseMs });
  }
  return held;
}
