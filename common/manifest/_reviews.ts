/**
 * SQL of the review records (see `reviews.ts`), shared by both adapters through the store.
 *
 * @module
 */
import type { SqlDriver, SqlRow, SqlValue } from "./_driver.ts";
import { fromJson, fromJsonOrNull, toNumber, toStringOrNull } from "./_columns.ts";
import { ImageNotFoundError } from "./errors.ts";
import { REVIEW_SOURCE } from "./reviews.ts";
import type {
  AnnotationInput,
  ReviewClassCounts,
  ReviewEditCounts,
  ReviewInput,
  ReviewOutcome,
  ReviewRow,
} from "./manifest_store.ts";

const COLUMNS = "annotation_id, task_id, image_id, reviewer, reviewed_at, model_name, " +
  "model_version, counts, per_class, boxes, state, recorded_at";

function toReview(r: SqlRow): ReviewRow {
  return {
    annotationId: String(r.annotation_id),
    taskId: String(r.task_id ?? ""),
    imageId: String(r.image_id ?? ""),
    reviewer: toStringOrNull(r.reviewer),
    reviewedAt: toNumber(r.reviewed_at),
    modelName: toStringOrNull(r.model_name),
    modelVersion: toStringOrNull(r.model_version),
    counts: fromJsonOrNull<ReviewEditCounts>(r.counts),
    perClass: fromJsonOrNull<Record<string, ReviewClassCounts>>(r.per_class),
    boxes: fromJson<AnnotationInput[]>(r.boxes),
    state: r.state === "deleted" ? "deleted" : "active",
    recordedAt: toNumber(r.recorded_at),
  };
}

function inList(n: number, from = 1): string {
  return Array.from({ length: n }, (_, i) => `$${from + i}`).join(", ");
}

/** Mirrors the image's newest active review into `annotations` (none: its review boxes go). */
async function refreshImage(tx: SqlDriver, imageId: string, now: number): Promise<void> {
  if (!imageId) return;
  await tx.query("DELETE FROM annotations WHERE image_id = $1 AND source = $2", [
    imageId,
    REVIEW_SOURCE,
  ]);
  const [newest] = await tx.query(
    `SELECT annotation_id, boxes FROM reviews WHERE image_id = $1 AND state = 'active'
     ORDER BY reviewed_at DESC, annotation_id DESC LIMIT 1`,
    [imageId],
  );
  if (!newest) return;
  for (const a of fromJson<AnnotationInput[]>(newest.boxes)) {
    await tx.query(
      `INSERT INTO annotations (image_id, source, label, bbox, polygon, rotation, score,
         source_ref, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        imageId,
        REVIEW_SOURCE,
        a.label,
        JSON.stringify(a.bbox),
        a.polygon == null ? null : JSON.stringify(a.polygon),
        a.rotation ?? null,
        a.score ?? null,
        a.sourceRef ?? `labelstudio:annotation/${String(newest.annotation_id)}`,
        now,
      ],
    );
  }
}

/** Records one review unless it is older than, or as old as, what is recorded. */
export function applyReview(
  db: SqlDriver,
  input: ReviewInput,
  now: number,
): Promise<ReviewOutcome> {
  return db.transaction(async (tx) => {
    const lock = tx.dialect === "postgres" ? "FOR UPDATE" : "";
    const dead = await tx.query("SELECT 1 AS x FROM review_deleted_tasks WHERE task_id = $1", [
      input.taskId,
    ]);
    if (dead.length > 0) return "deleted";
    const [found] = await tx.query(
      `SELECT state, reviewed_at FROM reviews WHERE annotation_id = $1 ${lock}`,
      [input.annotationId],
    );
    if (found?.state === "deleted") return "deleted";
    if (found && toNumber(found.reviewed_at) > input.reviewedAt) return "stale";
    if (found && toNumber(found.reviewed_at) === input.reviewedAt) return "duplicate";
    const image = await tx.query("SELECT id FROM images WHERE id = $1", [input.imageId]);
    if (image.length === 0) throw new ImageNotFoundError(input.imageId);
    const values: SqlValue[] = [
      input.annotationId,
      input.taskId,
      input.imageId,
      input.reviewer,
      input.reviewedAt,
      input.modelName,
      input.modelVersion,
      input.counts ? JSON.stringify(input.counts) : null,
      input.perClass ? JSON.stringify(input.perClass) : null,
      JSON.stringify(input.boxes),
      now,
    ];
    await tx.query(
      `INSERT INTO reviews (${COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11)
       ON CONFLICT (annotation_id) DO UPDATE SET task_id = excluded.task_id,
         image_id = excluded.image_id, reviewer = excluded.reviewer,
         reviewed_at = excluded.reviewed_at, model_name = excluded.model_name,
         model_version = excluded.model_version, counts = excluded.counts,
         per_class = excluded.per_class, boxes = excluded.boxes, recorded_at = excluded.recorded_at`,
      values,
    );
    await refreshImage(tx, input.imageId, now);
    return "recorded";
  });
}

/**
 * Deletes reviews by Label Studio annotation id and/or task id. Deletion is terminal (a later,
 * out-of-order create of the same id is refused), so unknown ids leave tombstones. Returns how
 * many recorded active reviews it deleted.
 */
export function deleteReviews(
  db: SqlDriver,
  ref: { annotationIds?: string[]; taskIds?: string[] },
  now: number,
): Promise<number> {
  return db.transaction(async (tx) => {
    const images = new Set<string>();
    let deleted = 0;
    const annIds = [...new Set(ref.annotationIds ?? [])];
    const taskIds = [...new Set(ref.taskIds ?? [])];
    for (const id of annIds) {
      const [row] = await tx.query("SELECT image_id, state FROM reviews WHERE annotation_id = $1", [
        id,
      ]);
      if (!row) {
        await tx.query(
          `INSERT INTO reviews (${COLUMNS}) VALUES ($1, NULL, NULL, NULL, 0, NULL, NULL, NULL,
             NULL, '[]', 'deleted', $2)`,
          [id, now],
        );
        continue;
      }
      if (row.state === "active") {
        deleted++;
        images.add(String(row.image_id));
        await tx.query(
          "UPDATE reviews SET state = 'deleted', recorded_at = $2 WHERE annotation_id = $1",
          [id, now],
        );
      }
    }
    if (taskIds.length > 0) {
      for (const id of taskIds) {
        await tx.query(
          "INSERT INTO review_deleted_tasks (task_id, deleted_at) VALUES ($1, $2) " +
            "ON CONFLICT (task_id) DO NOTHING",
          [id, now],
        );
      }
      const rows = await tx.query(
        `UPDATE reviews SET state = 'deleted', recorded_at = $1
         WHERE state = 'active' AND task_id IN (${inList(taskIds.length, 2)})
         RETURNING image_id`,
        [now, ...taskIds],
      );
      deleted += rows.length;
      for (const r of rows) images.add(String(r.image_id));
    }
    for (const img of [...images].sort()) await refreshImage(tx, img, now);
    return deleted;
  });
}

/** Recorded reviews, oldest first; only active ones unless `includeDeleted`. */
export async function listReviews(
  db: SqlDriver,
  opts: {
    modelName?: string;
    modelVersion?: string;
    imageIds?: string[];
    includeDeleted?: boolean;
  } = {},
): Promise<ReviewRow[]> {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (!opts.includeDeleted) where.push("state = 'active'");
  if (opts.modelName !== undefined) {
    params.push(opts.modelName);
    where.push(`model_name = $${params.length}`);
  }
  if (opts.modelVersion !== undefined) {
    params.push(opts.modelVersion);
    where.push(`model_version = $${params.length}`);
  }
  if (opts.imageIds !== undefined) {
    if (opts.imageIds.length === 0) return [];
    where.push(`image_id IN (${inList(opts.imageIds.length, params.length + 1)})`);
    params.push(...opts.imageIds);
  }
  const rows = await db.query(
    `SELECT ${COLUMNS} FROM reviews ${where.length ? "WHERE " + where.join(" AND ") : ""}
     ORDER BY reviewed_at, annotation_id`,
    params,
  );
  return rows.map(toReview);
}
