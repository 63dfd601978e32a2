/**
 * What an `ingest` work item's end means for its image row: a terminal failure marks the image
 * failed (with the reason), unless the object was deleted meanwhile; a retry makes a failed
 * image pending again. Other stages' items leave the image's status alone.
 *
 * @example
 * ```ts
 * if (stage === INGEST) await failIngestImage(tx, itemId, "corrupt_image: ...", now);
 * ```
 * @module
 */
import type { SqlDriver } from "../_driver.ts";
import { chunks, ID_CHUNK, placeholders } from "../_sql_lists.ts";

/** The stage whose items are images. */
export const INGEST = "ingest";

/** Records an ingest failure on the image, unless the image was deleted meanwhile. */
export async function failIngestImage(
  tx: SqlDriver,
  id: string,
  error: string,
  now: number,
): Promise<void> {
  await tx.query(
    `UPDATE images SET status = 'failed', error = $2, updated_at = $3
     WHERE id = $1 AND status <> 'deleted'`,
    [id, error, now],
  );
}

/** Makes the failed images among `ids` pending again (their ingest items were retried). */
export async function reopenFailedImages(
  tx: SqlDriver,
  ids: readonly string[],
  now: number,
): Promise<void> {
  for (const part of chunks([...ids].sort(), ID_CHUNK)) {
    await tx.query(
      `UPDATE images SET status = 'pending', error = NULL, updated_at = $1
       WHERE status = 'failed' AND id IN (${placeholders(part.length, 2)})`,
      [now, ...part],
    );
  }
}
