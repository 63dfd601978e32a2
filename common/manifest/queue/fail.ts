/**
 * Fail: records a claimed item's failure. A retryable failure below `maxAttempts` makes it
 * pending again after a backoff (`delayMs`, else `retryDelayMs`); otherwise it is `failed`, and
 * an `ingest` item's image is marked failed with the reason. Fenced: a lost lease records
 * nothing and throws `LeaseLostError`.
 *
 * @example
 * ```ts
 * const state = await db.transaction((tx) =>
 *   failItem(tx, claim, "corrupt_image: truncated", { retry: false, maxAttempts: 5 }, Date.now()));
 * ```
 * @module
 */
import { type Claim, LeaseLostError, type WorkState } from "../contract.ts";
import type { SqlDriver } from "../_driver.ts";
import { fence, fenceParams } from "./_fence.ts";
import { failIngestImage, INGEST } from "./_ingest_image.ts";

/**
 * Default retry delay after the n-th attempt: min(60 s, 500 ms · 2^(n-1)), ±20 % jitter (items
 * failed together do not come back together).
 *
 * @example
 * ```ts
 * retryDelayMs(1, () => 0.5); // 500
 * retryDelayMs(20, () => 0.5); // 60000
 * ```
 */
export function retryDelayMs(attempts: number, random: () => number = Math.random): number {
  const base = Math.min(60_000, 500 * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** Records the failure; returns the item's new state (`pending` for a retry, else `failed`). */
export async function failItem(
  tx: SqlDriver,
  claim: Claim,
  error: string,
  opts: { retry: boolean; maxAttempts: number; delayMs?: number },
  now: number,
): Promise<WorkState> {
  const terminal = !opts.retry || claim.attempts >= opts.maxAttempts;
  const state: WorkState = terminal ? "failed" : "pending";
  const notBefore = terminal ? now : now + (opts.delayMs ?? retryDelayMs(claim.attempts));
  const rows = await tx.query(
    `UPDATE work SET state = $5, not_before = $6, last_error = $7, lease_token = NULL,
       lease_until = NULL, updated_at = $8
     WHERE ${fence(1)} RETURNING item_id`,
    [...fenceParams(claim), state, notBefore, error, now],
  );
  if (rows.length === 0) throw new LeaseLostError(claim);
  if (terminal && claim.stage === INGEST) await failIngestImage(tx, claim.itemId, error, now);
  return state;
}
