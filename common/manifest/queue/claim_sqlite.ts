/**
 * The SQLite claim: fail the stage's poison pills (items claimed `maxAttempts` times without
 * completing), then lease the next ready items in `(not_before, item_id)` order. Ready means
 * pending and due, or leased with an expired lease. SQLite serialises write transactions, so no
 * row locks are needed (PostgreSQL's claim is `claim_postgres.ts`).
 *
 * @example
 * ```ts
 * const claims = await db.transaction((tx) => claimSqlite(tx, "normalize",
 *   { max: 8, owner: "w1", leaseMs: 60_000, maxAttempts: 5 }, Date.now(), async () => {}));
 * ```
 * @module
 */
import type { Claim } from "../contract.ts";
import type { SqlDriver } from "../_driver.ts";
import { toNumber } from "../_columns.ts";
import { inQueueOrder, toClaim } from "../_rows.ts";
import type { PostgresClaimOptions } from "./claim_postgres.ts";

/** Claims up to `opts.max` items; `onPoisonPill` is called for each item it failed. */
export async function claimSqlite(
  tx: SqlDriver,
  stage: string,
  opts: PostgresClaimOptions,
  now: number,
  onPoisonPill: (itemId: string, error: string) => Promise<void>,
): Promise<Claim[]> {
  const ready = `stage = $1 AND ((state = 'pending' AND not_before <= $2)
    OR (state = 'leased' AND lease_until < $2))`;
  // Poison pills: items that keep getting claimed and never finish (a worker crashing on them,
  // say) leave the queue instead of being handed out forever.
  const dead = await tx.query(
    `UPDATE work SET state = 'failed', lease_token = NULL, lease_until = NULL,
       updated_at = $2,
       last_error = CASE WHEN state = 'leased'
         THEN 'lease_expired: claimed ' || attempts || ' times without completing'
         ELSE 'max_attempts: claimed ' || attempts || ' times without completing'
           || COALESCE('; last error: ' || last_error, '') END
     WHERE (stage, item_id) IN (SELECT stage, item_id FROM work WHERE ${ready} AND attempts >= $3)
     RETURNING item_id, last_error`,
    [stage, now, opts.maxAttempts],
  );
  for (const d of dead) await onPoisonPill(String(d.item_id), String(d.last_error));
  const rows = await tx.query(
    `UPDATE work SET state = 'leased', lease_owner = $3, lease_token = lower(hex(randomblob(16))),
       lease_until = $4, attempts = attempts + 1, updated_at = $2
     WHERE (stage, item_id) IN (
       SELECT stage, item_id FROM work WHERE ${ready} AND attempts < $5
       ORDER BY not_before, item_id LIMIT $6)
     RETURNING stage, item_id, lease_owner, lease_token, lease_until, attempts, not_before`,
    [stage, now, opts.owner, now + opts.leaseMs, opts.maxAttempts, opts.max],
  );
  // RETURNING's order is not the subquery's: sort back into queue order.
  return inQueueOrder(rows.map((r) => ({ notBefore: toNumber(r.not_before), claim: toClaim(r) })));
}
