/**
 * The train/validation split: an image's split depends only on its id (a hash), so it is the same
 * on every run and host, and an image never changes sides as the dataset grows.
 *
 * @example
 * ```ts
 * splitOf("img_0123456789abcdef0123", 0.2); // "train" or "val", always the same
 * const { train, val } = splitImages(ids, 0.2);
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { SluiceError } from "../../common/errors/mod.ts";

/** Which side of the split an image is on. */
export type Split = "train" | "val";

/** A number in [0, 1) from sha256("sluice-split:" + id): uniform and independent of id order. */
export function splitPoint(imageId: string): number {
  const digest = createHash("sha256").update("sluice-split:" + imageId, "utf8").digest();
  return digest.readUInt32BE(0) / 4294967296;
}

function checkFraction(valFraction: number): void {
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new SluiceError(
      "invalid_split",
      `validation fraction: expected a number in [0, 1), found ${valFraction}`,
    );
  }
}

/**
 * The split of one image: `val` when its {@link splitPoint} is below `valFraction`.
 *
 * @example
 * ```ts
 * splitOf("img_a", 0); // "train"
 * ```
 */
export function splitOf(imageId: string, valFraction: number): Split {
  checkFraction(valFraction);
  return splitPoint(imageId) < valFraction ? "val" : "train";
}

/** The two sides, each in input order. */
export interface SplitResult {
  train: string[];
  val: string[];
}

/**
 * Splits image ids by {@link splitOf}. When `valFraction > 0` and at least two images exist but
 * the hash put none in validation, the image with the smallest split point goes there: a run
 * without validation cannot be scored, so it could never be promoted. Likewise, when every image
 * landed in validation, the one with the largest point trains.
 *
 * @example
 * ```ts
 * splitImages(["img_a", "img_b", "img_c"], 0.34); // { train: [...], val: [...] }
 * ```
 */
export function splitImages(imageIds: readonly string[], valFraction: number): SplitResult {
  checkFraction(valFraction);
  const points = imageIds.map((id) => ({ id, p: splitPoint(id) }));
  const val = new Set(points.filter((x) => x.p < valFraction).map((x) => x.id));
  if (valFraction > 0 && imageIds.length >= 2) {
    const byPoint = [...points].sort((a, b) => a.p - b.p || (a.id < b.id ? -1 : 1));
    if (val.size === 0) val.add(byPoint[0].id);
    if (val.size === imageIds.length) val.delete(byPoint[byPoint.length - 1].id);
  }
  return {
    train: imageIds.filter((id) => !val.has(id)),
    val: imageIds.filter((id) => val.has(id)),
  };
}
