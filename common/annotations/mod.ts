/**
 * Annotations: geometry (boxes, polygons, affine matrices), validation of boxes against their
 * image, Label Studio and COCO import/export, and matching annotation records to images.
 *
 * @example
 * ```ts
 * import { applyBoxPolicy, createImageMatcher, readLabelStudioExport } from "../annotations/mod.ts";
 * const { tasks } = await readLabelStudioExport("export.json");
 * const match = createImageMatcher(images);
 * for (const task of tasks) {
 *   const m = match(task.imageRef);
 *   if (m.kind !== "matched" || task.width === null || task.height === null) continue;
 *   const { kept, problems } = applyBoxPolicy(task.annotations, { width: task.width, height: task.height });
 * }
 * ```
 * @module
 */
export * from "./box_policy.ts";
export * from "./coco.ts";
export * from "./errors.ts";
export * from "./geometry.ts";
export * from "./image_match.ts";
export * from "./label_config.ts";
export * from "./labelstudio.ts";
export * from "./rotated_box.ts";
export * from "./voc.ts";
export * from "./voc_dataset.ts";
export * from "./yolo.ts";
