/**
 * Records of reviewed annotations (what a reviewer kept in Label Studio) with their provenance.
 * The store keeps one row per Label Studio annotation id; the newest active review of an image
 * is mirrored into `annotations` under source {@link REVIEW_SOURCE}. The review rows and the store
 * methods (`applyReview`, `deleteReviews`, `listReviews`) are part of the manifest contract
 * (`manifest_store.ts`).
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

/** The `annotations.source` of reviewed boxes. */
export const REVIEW_SOURCE = "review";
