/**
 * The PostgreSQL claim: ONE statement per batch that leases the next ready items of a stage and,
 * in the same pass, fails the poison pills among them (items claimed `maxAttempts` times without
 * completing). Ready means pending and due, or leased with an expired lease.
 *
 * Each kind of ready row is found through its own index in its own order (`work_ready_idx` for
 * pending rows by `(not_before, item_id)`, `work_lease_idx` for expired leases), locked with
 * `FOR UPDATE SKIP LOCKED` and stopped after `max` rows, so a claim touches about `max` rows
 * whatever the table's size. The older form (a poison-pill UPDATE, then a claim whose `OR` of
 * both kinds of ready rows was planned as a sequential scan and a sort of the whole stage) read
 * every row of the stage twice per claim.
 *
 * Poison pills are failed when a claim reaches them in queue order (before, every claim failed
 * every poison pill of the stage first); a claim that failed some and leased fewer than `max`
 * looks again, so a batch never comes back short while ready items remain.
 *
 * @example
 * ```ts
 * const claims = await claimPostgres(tx, "normalize", { max: 100, owner: "w1", leaseMs: 60_000,
 *   maxAttempts: 5 }, Date.now(), async (id, error) => {});
 * ```
 * @module
 */
import type { Claim } from "../contract.ts";
import type { SqlDriver } from "../_driver.ts";
import { toNumber } from "../_columns.ts";
import { inQueueOrder, toClaim } from "../_rows.ts";

/** Validated claim options (see `claimOptionsSchema`). */
export interface PostgresClaimOptions {
  max: number;
  owner: string;
  leaseMs: number;
  maxAttempts: number;
}

const POISON = "w.attempts >= $5";

const CLAIM_SQL = `
WITH pending AS (
  SELECT stage, item_id, not_before FROM work
  WHERE stage = $1 AND state = 'pending' AND not_before <= $2
  ORDER BY not_before, item_id LIMIT $6 FOR UPDATE SKIP LOCKED
), expired AS (
  SELECT stage, item_id, not_before FROM work
  WHERE stage = $1 AND state = 'leased' AND lease_until < $2
  ORDER BY lease_until LIMIT $6 FOR UPDATE SKIP LOCKED
), picked AS (
  SELECT stage, item_id FROM (SELECT * FROM pending UNION ALL SELECT * FROM expired) ready
  ORDER BY not_before, item_id LIMIT $6
)
UPDATE work AS w SET
  state = CASE WHEN ${POISON} THEN 'failed' ELSE 'leased' END,
  lease_owner = CASE WHEN ${POISON} THEN w.lease_owner ELSE $3 END,
  lease_token = CASE WHEN ${POISON} THEN NULL ELSE gen_random_uuid()::text END,
  lease_until = CASE WHEN ${POISON} THEN NULL ELSE CAST($4 AS BIGINT) END,
  attempts = CASE WHEN ${POISON} THEN w.attempts ELSE w.attempts + 1 END,
  last_error = CASE
    WHEN NOT ${POISON} THEN w.last_error
    WHEN w.state = 'leased'
      THEN 'lease_expired: claimed ' || w.attempts || ' times without completing'
    ELSE 'max_attempts: claimed ' || w.attempts || ' times without completing'
      || COALESCE('; last error: ' || w.last_error, '') END,
  updated_at = $2
FROM picked
WHERE w.stage = picked.stage AND w.item_id = picked.item_id
RETURNING w.stage, w.item_id, w.state, w.lease_owner, w.lease_token, w.lease_until, w.attempts,
  w.not_before, w.last_error`;

/**
 * Claims up to `opts.max` ready items of `stage` inside the open transaction `tx`; calls
 * `onPoisoned` for each poison pill failed on the way (the store fails the image of an ingest
 * item there). Returns the claims ordered by (not_before, item_id).
 *
 * @example
 * ```ts
 * const claims = await claimPostgres(tx, "infer", opts, now, () => Promise.resolve());
 * ```
 */
export async function claimPostgres(
  tx: SqlDriver,
  stage: string,
  opts: PostgresClaimOptions,
  now: number,
  onPoisoned: (itemId: string, error: string) => Promise<void>,
): Promise<Claim[]> {
  const leased: { claim: Claim; notBefore: number }[] = [];
  while (leased.length < opts.max) {
    const rows = await tx.query(CLAIM_SQL, [
      stage,
      now,
      opts.owner,
      now + opts.leaseMs,
      opts.maxAttempts,
      opts.max - leased.length,
    ]);
    let poisoned = 0;
    for (const r of rows) {
      if (r.state === "failed") {
        poisoned++;
        await onPoisoned(String(r.item_id), String(r.last_error));
        continue;
      }
      leased.push({ notBefore: toNumber(r.not_before), claim: toClaim(r) });
    }
    if (poisoned === 0) break;
  }
  return inQueueOrder(leased);
}
