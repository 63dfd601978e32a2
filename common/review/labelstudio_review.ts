/**
 * Turns one Label Studio annotation (as a webhook or an export carries it) into a review record
 * with provenance, and records it. The task is tied to a Sluice image by `data.sluice_image_id`
 * (infer writes it). The prediction it started from is `data.sluice_model` +
 * `data.sluice_model_version` (infer writes them too), else the task's prediction whose
 * `model_version` reads `name:version[@alias]`. The edit counts compare the reviewed boxes with
 * that model version's prediction in the manifest (see `review_diff.ts`).
 *
 * @example
 * ```ts
 * const r = await recordLabelStudioReview(manifest, payload.task, payload.annotation);
 * r.outcome; // "recorded" | "duplicate" | "stale" | "deleted" | "skipped"
 * ```
 * @module
 */
import { z } from "zod";
import { parseLabelStudioExport } from "../annotations/labelstudio.ts";
import type { ManifestStore, ReviewInput, ReviewOutcome } from "../manifest/mod.ts";
import { ImageNotFoundError } from "../manifest/errors.ts";
import { diffReview } from "./review_diff.ts";

const IdSchema = z.union([z.number(), z.string().min(1)]).transform(String);

/** A Label Studio task as webhooks and exports carry it (only what the review needs). */
export const LabelStudioTaskSchema = z.looseObject({
  id: IdSchema,
  data: z.looseObject({}),
  predictions: z.array(z.unknown()).nullish(),
});
export type LabelStudioTask = z.output<typeof LabelStudioTaskSchema>;

/** A Label Studio annotation (`completed_by` is a user id, or a user object in old exports). */
export const LabelStudioAnnotationSchema = z.looseObject({
  id: IdSchema,
  result: z.array(z.unknown()).nullish(),
  was_cancelled: z.boolean().nullish(),
  completed_by: z.union([
    z.number(),
    z.string(),
    z.looseObject({ id: z.number().nullish(), email: z.string().nullish() }),
  ]).nullish(),
  created_at: z.string().nullish(),
  updated_at: z.string().nullish(),
  task: z.union([z.number(), z.string()]).nullish(),
});
export type LabelStudioAnnotation = z.output<typeof LabelStudioAnnotationSchema>;

/** What recording one annotation did; `skipped` says why in `detail`. */
export interface ReviewRecordResult {
  annotationId: string;
  outcome: ReviewOutcome | "skipped";
  detail?: string;
}

export interface ReviewRecordOptions {
  /** The `data` key holding the image URL (default `image`). */
  dataKey?: string;
}

/** `name:version[@alias]` → name and version (infer's `model_version` label). */
export function parseModelLabel(label: string): { name: string; version: string } | null {
  const m = /^(.+):([^:@]+)(?:@[^@]*)?$/.exec(label);
  return m ? { name: m[1], version: m[2] } : null;
}

function modelOf(task: LabelStudioTask): { name: string; version: string } | null {
  const name = task.data.sluice_model;
  const version = task.data.sluice_model_version;
  if (
    typeof name === "string" && name && (typeof version === "string" || typeof version === "number")
  ) {
    return { name, version: String(version) };
  }
  for (const p of task.predictions ?? []) {
    if (p && typeof p === "object" && "model_version" in p && typeof p.model_version === "string") {
      const parsed = parseModelLabel(p.model_version);
      if (parsed) return parsed;
    }
  }
  return null;
}

function reviewerOf(a: LabelStudioAnnotation): string | null {
  const c = a.completed_by;
  if (c === null || c === undefined) return null;
  if (typeof c === "object") return c.email ?? (c.id == null ? null : String(c.id));
  return String(c);
}

/**
 * Builds the review record of `annotation` on `task`, or the reason it cannot be one.
 *
 * @example
 * ```ts
 * const built = await buildReview(manifest, task, annotation);
 * if ("skipped" in built) console.log(built.skipped);
 * ```
 */
export async function buildReview(
  manifest: ManifestStore,
  task: LabelStudioTask,
  annotation: LabelStudioAnnotation,
  opts: ReviewRecordOptions = {},
): Promise<ReviewInput | { skipped: string }> {
  const imageId = task.data.sluice_image_id;
  if (typeof imageId !== "string" || imageId === "") {
    return { skipped: `task ${task.id}: expected data.sluice_image_id, found none` };
  }
  if (annotation.was_cancelled) return { skipped: `annotation ${annotation.id} was cancelled` };
  const stamp = annotation.updated_at ?? annotation.created_at;
  const reviewedAt = stamp ? Date.parse(stamp) : NaN;
  if (Number.isNaN(reviewedAt)) {
    return {
      skipped: `annotation ${annotation.id}: expected updated_at or created_at as a date, ` +
        `found ${JSON.stringify(stamp ?? null)}`,
    };
  }
  const dataKey = opts.dataKey ?? "image";
  const imported = parseLabelStudioExport(
    [{ id: task.id, data: task.data, annotations: [annotation] }],
    { dataKey, choose: "first", file: `label studio task ${task.id}` },
  );
  if (imported.failures.length > 0) return { skipped: imported.failures[0].message };
  const boxes = imported.tasks[0].annotations;
  const model = modelOf(task);
  let counts: ReviewInput["counts"] = null;
  let perClass: ReviewInput["perClass"] = null;
  if (model) {
    const [pred] = await manifest.listPredictions({
      modelName: model.name,
      modelVersion: model.version,
      imageIds: [imageId],
    });
    if (pred) ({ counts, perClass } = diffReview(pred.boxes, boxes));
  }
  return {
    annotationId: annotation.id,
    taskId: task.id,
    imageId,
    reviewer: reviewerOf(annotation),
    reviewedAt,
    modelName: model?.name ?? null,
    modelVersion: model?.version ?? null,
    counts,
    perClass,
    boxes,
  };
}

/**
 * Builds and records one review (idempotent, out-of-order safe: see `ManifestStore.applyReview`).
 *
 * @example
 * ```ts
 * (await recordLabelStudioReview(manifest, task, annotation)).outcome; // "recorded"
 * ```
 */
export async function recordLabelStudioReview(
  manifest: ManifestStore,
  task: LabelStudioTask,
  annotation: LabelStudioAnnotation,
  opts: ReviewRecordOptions = {},
): Promise<ReviewRecordResult> {
  const built = await buildReview(manifest, task, annotation, opts);
  if ("skipped" in built) {
    return { annotationId: annotation.id, outcome: "skipped", detail: built.skipped };
  }
  try {
    return { annotationId: annotation.id, outcome: await manifest.applyReview(built) };
  } catch (err) {
    // Retrying cannot make an unknown image known: report it instead of failing the delivery.
    if (err instanceof ImageNotFoundError) {
      return { annotationId: annotation.id, outcome: "skipped", detail: err.message };
    }
    throw err;
  }
}
