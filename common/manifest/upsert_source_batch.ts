/**
 * Upserts many source objects in ONE transaction (the batched form of `upsertSourceObject`,
 * for discovery and reconcile, where one transaction per key capped a pass at a few hundred
 * keys per second). Each key keeps `upsertSourceObject`'s result and rules:
 *
 * - new keys: one multi-row `INSERT ... ON CONFLICT DO NOTHING` per 500 keys (no conflict target:
 *   a concurrent insert of the same source may collide on `source_uri` first), and their
 *   ingest work enqueued in one statement;
 * - known keys whose etag and version match (and that carry no sequencer, and are not
 *   deleted): read in bulk and reported unchanged, nothing written (the common case of a
 *   reconcile pass);
 * - everything else (a changed etag or version, a sequencer to compare, a deleted image, the same
 *   key twice in one batch): the single-key upsert, inside the same transaction.
 *
 * An error on one key (an image id collision, say) rolls back the whole batch and is thrown, as
 * a pass that upserted key by key stopped at that key.
 *
 * @example
 * ```ts
 * const results = await upsertSourceBatch(db, Date.now, objects, oneUpsert, enqueueIngest);
 * results.filter((r) => r.created).length; // new keys
 * ```
 * @module
 */
import { imageIdFor, type ImageRow, type SourceObject, type UpsertResult } from "./contract.ts";
import type { SqlDriver, SqlValue } from "./_driver.ts";
import { IMAGE_COLUMNS, toImage } from "./_rows.ts";
import { parse, sourceObjectSchema } from "./_schemas.ts";

/** Keys per statement: 8 parameters each, far below both databases' limits. */
const ROWS = 500;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

interface Keyed {
  index: number;
  id: string;
  obj: SourceObject;
}

/** Same source, nothing new to record: what `upsertSourceObject` reports as unchanged. */
function unchanged(obj: SourceObject, current: ImageRow): boolean {
  return current.sourceUri === obj.sourceUri && current.status !== "deleted" &&
    obj.sequencer == null &&
    (obj.etag == null || obj.etag === current.sourceEtag) &&
    (obj.versionId == null || obj.versionId === current.sourceVersion);
}

/**
 * Upserts `inputs` (see the module docs) and returns one result per input, in order.
 * `one` is the store's single-key upsert run inside `tx`; `enqueueIngest` enqueues (resets) the
 * ingest work of new images.
 *
 * @example
 * ```ts
 * const out = await upsertSourceBatch(db, now, [{ sourceUri: "s3://b/a.jpg", sourceKey: "a.jpg",
 *   etag: "e1" }], (o, tx) => store.upsertSourceObject(o, tx), enqueue);
 * ```
 */
export async function upsertSourceBatch(
  db: SqlDriver,
  now: () => number,
  inputs: readonly SourceObject[],
  one: (obj: SourceObject, tx: SqlDriver) => Promise<UpsertResult>,
  enqueueIngest: (tx: SqlDriver, ids: string[], now: number) => Promise<unknown>,
): Promise<UpsertResult[]> {
  if (inputs.length === 0) return [];
  const keyed: Keyed[] = await Promise.all(inputs.map(async (input, index) => {
    const obj = parse(sourceObjectSchema, input, `upsertSourceObjects[${index}]`);
    return { index, id: await imageIdFor(obj.sourceUri), obj };
  }));
  const firsts: Keyed[] = [];
  const repeats: Keyed[] = [];
  const seen = new Set<string>();
  for (const k of keyed) {
    if (seen.has(k.id)) repeats.push(k);
    else {
      seen.add(k.id);
      firsts.push(k);
    }
  }
  // Same lock order in every batch (no deadlocks between concurrent passes).
  firsts.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  return await db.transaction(async (tx) => {
    const t = now();
    const results: UpsertResult[] = new Array(inputs.length);
    const created = new Map<string, ImageRow>();
    for (const part of chunks(firsts, ROWS)) {
      const values = part.map((_, r) =>
        `(${
          Array.from({ length: 7 }, (_, c) => `$${2 + r * 7 + c}`).join(", ")
        }, 'pending', $1, $1)`
      ).join(", ");
      const rows = await tx.query(
        `INSERT INTO images (id, source_uri, source_key, source_etag, source_version,
           source_sequencer, size, status, created_at, updated_at)
         VALUES ${values}
         ON CONFLICT DO NOTHING RETURNING ${IMAGE_COLUMNS}`,
        [
          t,
          ...part.flatMap((k): SqlValue[] => [
            k.id,
            k.obj.sourceUri,
            k.obj.sourceKey,
            k.obj.etag,
            k.obj.versionId,
            k.obj.sequencer,
            k.obj.size,
          ]),
        ],
      );
      for (const r of rows) created.set(String(r.id), toImage(r));
    }
    if (created.size > 0) await enqueueIngest(tx, [...created.keys()], t);

    const known = firsts.filter((k) => !created.has(k.id));
    const current = new Map<string, ImageRow>();
    for (const part of chunks(known, ROWS)) {
      const rows = await tx.query(
        `SELECT ${IMAGE_COLUMNS} FROM images WHERE id IN (${
          part.map((_, i) => `$${i + 1}`).join(", ")
        })`,
        part.map((k) => k.id),
      );
      for (const r of rows) current.set(String(r.id), toImage(r));
    }
    for (const k of firsts) {
      const fresh = created.get(k.id);
      if (fresh) {
        results[k.index] = { image: fresh, created: true, changed: false, stale: false };
        continue;
      }
      const cur = current.get(k.id);
      results[k.index] = cur && unchanged(k.obj, cur)
        ? { image: cur, created: false, changed: false, stale: false }
        : await one(k.obj, tx);
    }
    for (const k of repeats) results[k.index] = await one(k.obj, tx);
    return results;
  });
}
