/**
 * What the ingest worker does with one claimed image: download the source object into the
 * item's NVMe staging lease (streamed, with the byte limit enforced while streaming), verify it
 * (magic bytes, header, pixel limit, full decode), apply EXIF orientation, hash the upright
 * bytes, dedupe by content, publish content-addressed (`images/<aa>/<sha256>.<ext>`), make the
 * configured augmented copies, and return the effects that `manifest.complete` records in one
 * transaction (image row, augmentations, `normalize` enqueue). Nothing is recorded here: a
 * crash after an upload leaves an object that the next attempt overwrites with the same bytes.
 *
 * @example
 * ```ts
 * const process = createItemProcessor({ manifest, source, objectStore, staging, settings });
 * await runWorker({ manifest, stage: "ingest", owner, log, process });
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import sharp from "sharp";
import { SluiceError } from "../../common/errors/mod.ts";
import { augment, type Recipe } from "../../common/images/augment.ts";
import {
  ImageError,
  type ImageFormat,
  inspectImage,
  normalizeOrientation,
} from "../../common/images/verify.ts";
import type {
  AnnotationInput,
  AugmentationInput,
  Claim,
  Effects,
  ManifestStore,
} from "../../common/manifest/mod.ts";
import {
  ObjectNotFoundError,
  type ObjectStore,
  validateKey,
} from "../../common/objectstore/mod.ts";
import type { Staging } from "../../common/staging/mod.ts";
import type { ItemContext } from "../../common/worker/mod.ts";
import type { IngestSettings } from "./config.ts";
import type { IngestMetrics } from "./metrics.ts";
import type { ContentLocks } from "./_content_locks.ts";
import type { Slots } from "../../common/worker/slots.ts";
import type { FusedRender, FusedResult } from "./fused_render.ts";

/** File extension of each accepted format in published keys. */
export const FORMAT_EXTENSIONS: Readonly<Record<ImageFormat, string>> = {
  jpeg: "jpg",
  png: "png",
  webp: "webp",
  tiff: "tif",
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  jpeg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  tiff: "image/tiff",
};

/** Reason codes that no retry can fix, besides the worker's `PERMANENT_CODES`. */
export const INGEST_PERMANENT_CODES: readonly string[] = [
  "empty_object",
  "too_many_pixels",
  "image_missing",
  "invalid_recipe",
];

/** The item's image row is gone (should not happen: rows are never deleted). */
export class ImageMissingError extends SluiceError {
  constructor(itemId: string) {
    super("image_missing", `ingest item ${itemId}: expected an image row, found none`);
    this.name = "ImageMissingError";
  }
}

export interface ProcessDeps {
  manifest: ManifestStore;
  source: ObjectStore;
  objectStore: ObjectStore;
  staging: Staging;
  settings: Pick<
    IngestSettings,
    | "maxBytes"
    | "maxPixels"
    | "failOn"
    | "keepMetadata"
    | "datasetPrefix"
    | "augmentCopies"
    | "augmentRecipe"
    | "augmentPrefix"
  >;
  metrics?: IngestMetrics;
  /**
   * Held per content hash from the dedupe lookup until the caller releases the item (the
   * worker's `onResult`), so that same-content items processed at once are told apart.
   */
  contentLocks?: ContentLocks;
  /** Bounds concurrent verifying decodes (one per core); unbounded when absent. */
  cpu?: Pick<Slots, "run">;
  /** `renderVariants`: verify with normalize's render and record its variants (fused_render.ts). */
  fused?: Pick<FusedRender, "verifyAndRender" | "write">;
}

/**
 * The content-addressed key of a published image.
 *
 * @example
 * ```ts
 * datasetKeyFor("images", "ab12…", "jpeg"); // "images/ab/ab12….jpg"
 * ```
 */
export function datasetKeyFor(prefix: string, sha256: string, format: ImageFormat): string {
  const p = prefix ? prefix.replace(/\/+$/, "") + "/" : "";
  return `${p}${sha256.slice(0, 2)}/${sha256}.${FORMAT_EXTENSIONS[format]}`;
}

/**
 * The key of one augmented copy: `<prefix>/<parent>/<recipe>/<index>-<seed>.<ext>`.
 *
 * @example
 * ```ts
 * augmentationKeyFor("augmented", "img_0123", "default", 2, 991, "jpeg");
 * // "augmented/img_0123/default/2-991.jpg"
 * ```
 */
export function augmentationKeyFor(
  prefix: string,
  parentId: string,
  recipe: string,
  index: number,
  seed: number,
  format: "jpeg" | "png" | "webp",
): string {
  const p = prefix ? prefix.replace(/\/+$/, "") + "/" : "";
  return validateKey(`${p}${parentId}/${recipe}/${index}-${seed}.${FORMAT_EXTENSIONS[format]}`);
}

/** Lower-case hex SHA-256. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Passes at most `max` bytes through; more fails the stream with `too_large`. */
function limitBytes(
  stream: ReadableStream<Uint8Array>,
  max: number,
  name: string,
): ReadableStream<Uint8Array> {
  let seen = 0;
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        seen += chunk.byteLength;
        if (seen > max) {
          ctl.error(
            new ImageError("too_large", name, `more than ${max} bytes: exceeds the limit`),
          );
          return;
        }
        ctl.enqueue(chunk);
      },
    }),
  );
}

/**
 * Builds the worker's `process` function.
 *
 * @example
 * ```ts
 * const process = createItemProcessor(deps);
 * const effects = await process(claim, { signal, log, attempt: 1 });
 * ```
 */
export function createItemProcessor(
  deps: ProcessDeps,
): (claim: Claim, ctx: ItemContext) => Promise<Effects> {
  const { manifest, source, objectStore, staging, settings, metrics, contentLocks, cpu, fused } =
    deps;
  // Ingest never decodes the same input twice, so libvips's operation cache only holds memory:
  // off, the verifying decodes of the bench corpus peak at 385 MB instead of 669 MB (issue 15).
  sharp.cache(false);

  return async (claim, ctx) => {
    const image = await manifest.getImage(claim.itemId);
    if (!image) throw new ImageMissingError(claim.itemId);
    if (image.status === "deleted") {
      ctx.log.info("source object was removed: nothing to ingest", { key: image.sourceKey });
      return {};
    }
    const key = validateKey(image.sourceKey);
    if (image.size !== null && image.size > settings.maxBytes) {
      throw new ImageError(
        "too_large",
        key,
        `${image.size} bytes exceeds the limit of ${settings.maxBytes} bytes`,
      );
    }

    await using lease = await staging.lease(claim.itemId);
    let body: ReadableStream<Uint8Array>;
    try {
      body = await source.get(key);
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) throw err;
      // Listed or announced, then removed before we got to it: the same end as ObjectRemoved.
      ctx.log.info("source object is gone: marked deleted", { key });
      return { image: { status: "deleted", error: `${err.code}: ${err.message}` } };
    }
    const staged = await lease.publish(key, limitBytes(body, settings.maxBytes, key), {
      ...(image.size !== null ? { expectedBytes: image.size } : {}),
    });
    ctx.signal.throwIfAborted();

    // Read once (the stream was held to maxBytes), verified and oriented in a decode slot.
    const original = await Deno.readFile(staged.path);
    const verify = () => verifyImage(original, key, settings, fused);
    const { info, upright, rendered } = cpu ? await cpu.run(verify, ctx.signal) : await verify();
    const sha256 = sha256Hex(upright);
    ctx.signal.throwIfAborted();

    const row = {
      sha256,
      // Size, hash and dimensions all describe the published (upright) object.
      size: upright.byteLength,
      width: info.width,
      height: info.height,
      format: info.format,
      error: null,
      decodeWarning: info.decodeWarning,
    };
    if (info.decodeWarning !== null) {
      metrics?.decodeWarnings.inc();
      ctx.log.warn("decoded with warnings", { key, warning: info.decodeWarning });
    }
    await contentLocks?.acquire(sha256, claim.itemId);
    const dup = await manifest.findImageBySha256(sha256);
    if (dup && dup.id !== image.id) {
      metrics?.duplicates.inc();
      metrics?.bytes.inc(staged.bytes);
      ctx.log.info("duplicate content", { key, duplicateOf: dup.id, sha256 });
      return {
        image: { ...row, status: "duplicate", duplicateOf: dup.id, datasetUri: dup.datasetUri },
      };
    }

    // Recorded relative to the store, so the data works from any mount point (issue 12 item 9).
    const datasetUri = await publishDataset(objectStore, settings, sha256, info.format, upright);
    ctx.signal.throwIfAborted();

    // Fused: the verifying decode rendered normalize's variants; normalize finds them recorded.
    const variants = fused && rendered
      ? await fused.write(objectStore, image.id, sha256, rendered)
      : null;
    if (variants) metrics?.fusedRenders.inc();
    ctx.signal.throwIfAborted();

    const augmentations = settings.augmentCopies > 0
      ? await makeAugmentations(deps, image.id, upright, ctx)
      : [];
    metrics?.ingested.inc();
    metrics?.bytes.inc(staged.bytes);
    ctx.log.info("ingested", {
      key,
      sha256,
      format: info.format,
      width: info.width,
      height: info.height,
      oriented: upright !== original,
      augmentations: augmentations.length,
      ...(variants ? { variants: variants.rows.length, variantsWritten: variants.written } : {}),
    });
    return {
      image: { ...row, status: "ingested", datasetUri, duplicateOf: null },
      augmentations,
      ...(variants ? { variants: variants.rows } : {}),
      // Enqueued all the same: normalize completes it without decoding when every current
      // variant is recorded, and renders what is missing otherwise (e.g. a newer spec).
      enqueue: [{ stage: "normalize", itemId: image.id }],
    };
  };
}

/**
 * The strict verifying decode: with `fused`, normalize's render is the verification (and its
 * variants come back); otherwise `inspectImage` plus the upright copy to publish.
 */
async function verifyImage(
  original: Uint8Array,
  key: string,
  settings: ProcessDeps["settings"],
  fused: ProcessDeps["fused"],
): Promise<FusedResult> {
  const limits = { maxBytes: settings.maxBytes, maxPixels: settings.maxPixels };
  const keepMetadata = settings.keepMetadata ?? false;
  if (fused) {
    return await fused.verifyAndRender(original, {
      name: key,
      limits,
      failOn: settings.failOn,
      keepMetadata,
    });
  }
  const info = await inspectImage(original, limits, { name: key, failOn: settings.failOn });
  const upright = await normalizeOrientation(original, {
    keepMetadata,
    maxPixels: settings.maxPixels,
  });
  return { info, upright, rendered: null };
}

/** Puts the upright bytes under their content-addressed dataset key (once); returns the key. */
async function publishDataset(
  objectStore: ObjectStore,
  settings: ProcessDeps["settings"],
  sha256: string,
  format: ImageFormat,
  upright: Uint8Array,
): Promise<string> {
  const datasetKey = datasetKeyFor(settings.datasetPrefix, sha256, format);
  const existing = await objectStore.head(datasetKey);
  // Content-addressed: an object of the right size under this key already holds these bytes.
  if (existing === null || existing.size !== upright.byteLength) {
    await objectStore.put(datasetKey, upright, {
      contentType: CONTENT_TYPES[format],
      metadata: { "sluice-sha256": sha256 },
    });
  }
  return datasetKey;
}

/** The configured augmented copies of one image, uploaded, with their boxes. */
async function makeAugmentations(
  deps: ProcessDeps,
  imageId: string,
  upright: Uint8Array,
  ctx: ItemContext,
): Promise<AugmentationInput[]> {
  const { manifest, objectStore, metrics, settings: s } = deps;
  const recipe: Recipe = s.augmentRecipe;
  const rows = await manifest.listAnnotations([imageId]);
  const annotations: AnnotationInput[] = rows.map((a) => ({
    label: a.label,
    bbox: a.bbox,
    ...(a.polygon ? { polygon: a.polygon } : {}),
    ...(a.rotation ? { rotation: a.rotation } : {}),
    ...(a.sourceRef ? { sourceRef: a.sourceRef } : {}),
  }));
  const out: AugmentationInput[] = [];
  for (let index = 0; index < s.augmentCopies; index++) {
    ctx.signal.throwIfAborted();
    const copy = await augment(upright, annotations, { recipe, imageId, index });
    const key = augmentationKeyFor(
      s.augmentPrefix,
      imageId,
      recipe.name,
      index,
      copy.seed,
      copy.params.format,
    );
    await objectStore.put(key, copy.bytes, { contentType: CONTENT_TYPES[copy.params.format] });
    metrics?.augmentations.inc();
    out.push({
      parentImageId: imageId,
      recipe: recipe.name,
      index,
      seed: copy.seed,
      params: copy.params,
      uri: key,
      sha256: sha256Hex(copy.bytes),
      width: copy.width,
      height: copy.height,
      annotations: copy.annotations,
    });
  }
  return out;
}
