/**
 * An image's annotations from one source, replaced as a set: the source's old rows deleted and
 * the new ones inserted, in the caller's transaction (`replaceAnnotations`, and `complete`'s
 * annotation effects).
 *
 * @example
 * ```ts
 * await db.transaction((tx) => replaceAnnotationRows(tx, "img_1", "coco", items, Date.now()));
 * ```
 * @module
 */
import type { AnnotationInput } from "./contract.ts";
import type { SqlDriver, SqlValue } from "./_driver.ts";
import { CHUNK, chunks, valuesList } from "./_sql_lists.ts";

const json = (v: unknown): string => JSON.stringify(v ?? null);

/** Replaces `imageId`'s annotations from `source` with `items`. */
export async function replaceAnnotationRows(
  tx: SqlDriver,
  imageId: string,
  source: string,
  items: readonly AnnotationInput[],
  now: number,
): Promise<void> {
  await tx.query("DELETE FROM annotations WHERE image_id = $1 AND source = $2", [
    imageId,
    source,
  ]);
  for (const part of chunks(items, CHUNK)) {
    const params: SqlValue[] = [];
    for (const a of part) {
      params.push(
        imageId,
        source,
        a.label,
        json(a.bbox),
        a.polygon == null ? null : json(a.polygon),
        a.rotation,
        a.score,
        a.sourceRef,
        now,
      );
    }
    await tx.query(
      `INSERT INTO annotations (image_id, source, label, bbox, polygon, rotation, score,
         source_ref, created_at)
       VALUES ${valuesList(part.length, 9)}`,
      params,
    );
  }
}
