/**
 * Records of reviewed annotations (what a reviewer kept in Label Studio) with their provenance.
 * The store keeps one row per Label Studio annotation id; the newest active review of an image
 * is mirrored into `annotations` under source {@link REVIEW_SOURCE}.
 *
 * @example
 * ```ts
 * const outcome = await manifest.applyReview({ annotationId: "7", taskId: "3", imageId,
 *   reviewer: "ann@example.com", reviewedAt: Date.now(), modelName: "det", modelVersion: "3",
 *   counts: null, perClass: null, boxes: [{ label: "cat", bbox: [0, 0, 10, 10] }] });
 * outcome; // "recorded"
 * ```
 * @module
 */
import type { AnnotationInput } from "./mod.ts";

/** The `annotations.source` of reviewed boxes. */
export const REVIEW_SOURCE = "review";

/** Edit counts of a review against the prediction it started from. */
export interface ReviewEditCounts {
  unchanged: number;
  moved: number;
  relabelled: number;
  deleted: number;
  added: number;
}

/** Per class: true positives of the prediction, predicted boxes, reviewed boxes. */
export interface ReviewClassCounts {
  tp: number;
  predicted: number;
  reviewed: number;
}

export interface ReviewInput {
  /** Label Studio annotation id. */
  annotationId: string;
  taskId: string;
  imageId: string;
  /** Who reviewed (Label Studio's `completed_by`: an email or a user id). */
  reviewer: string | null;
  /** Label Studio's `updated_at` (else `created_at`), epoch ms: orders updates of one id. */
  reviewedAt: number;
  /** The model version whose pre-annotation the review started from (null: none known). */
  modelName: string | null;
  modelVersion: string | null;
  /** Null when no prediction was known to compare with. */
  counts: ReviewEditCounts | null;
  perClass: Record<string, ReviewClassCounts> | null;
  /** What the reviewer kept. */
  boxes: AnnotationInput[];
}

export interface ReviewRow extends ReviewInput {
  state: "active" | "deleted";
  recordedAt: number;
}

/**
 * What {@link ReviewInput} did: `recorded` (new or newer), `duplicate` (same `reviewedAt` as
 * recorded), `stale` (older than recorded), `deleted` (its annotation or task was deleted).
 */
export type ReviewOutcome = "recorded" | "duplicate" | "stale" | "deleted";
