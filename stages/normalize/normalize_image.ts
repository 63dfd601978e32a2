/**
 * One image through normalize: decide which current variants it lacks, read its dataset object
 * into memory (hashed while it streams, checked against the recorded sha256), render the missing
 * variants from one decode, upload the outputs concurrently, and return the manifest rows to record (the caller
 * records them with `manifest.complete`, after every upload finished).
 *
 * A variant counts as present when its row for (image, name, spec hash) points at the key this
 * configuration would write and that object exists with the recorded size; then nothing is
 * downloaded, rendered or written for it. Keys are content- and spec-derived, so redoing a
 * variant (after a crash between upload and record) writes the same bytes to the same key.
 *
 * @example
 * ```ts
 * const existing = await manifest.listVariants({ imageIds: [image.id] });
 * const r = await normalizeImage(image, specs, existing, { store, staging, resizer, keys, prefix, limits });
 * await manifest.complete(claim, { variants: r.variants });
 * ```
 * @module
 */
import { SluiceError } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { ImageRow, VariantInput, VariantRow } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { Staging } from "../../common/staging/mod.ts";
import type { RenderedVariant, Resizer } from "../../common/images/resizer.ts";
import { ImageError } from "../../common/images/verify.ts";
import type { KeyTemplate } from "../../common/images/variant_spec.ts";
import type { Slots } from "./_slots.ts";
import { readSource } from "./_read_source.ts";
import { type RenderLimits, renderVariants } from "./render_variants.ts";
import { keyForUri } from "./source_key.ts";
import { keyOfRecorded } from "../../common/objectstore/recorded_key.ts";
import type { RegisteredSpec } from "./spec_registry.ts";
import { planVariants, writeVariants } from "./write_variants.ts";

export interface NormalizeImageDeps {
  store: ObjectStore;
  /** Unused since sources and variants no longer pass through staging; kept for callers. */
  staging?: Pick<Staging, "lease">;
  resizer: Resizer;
  keys: KeyTemplate;
  prefix: string;
  limits: RenderLimits;
  /** Bounds concurrent renders; unbounded when absent. */
  cpu?: Pick<Slots, "run">;
  signal?: AbortSignal;
  log?: Logger;
  /**
   * The item was claimed before (a worker died or gave up after uploading, before recording):
   * an unrecorded variant already at its key with the same size and sha256 is not PUT again.
   */
  retry?: boolean;
}

/** What {@link normalizeImage} did for one image. */
export interface NormalizeImageResult {
  /** Rows to record: one per variant rendered now. */
  variants: VariantInput[];
  /** Names of variants already present (nothing done for them). */
  present: string[];
  /** Encoded bytes uploaded. */
  bytesWritten: number;
  /** Time spent decoding and rendering (not waiting for a CPU slot), ms; 0 when nothing was. */
  renderMs: number;
}

/** The image is not (or no longer) ingested, so there is nothing to normalize from. */
export class NotIngestedError extends SluiceError {
  constructor(image: ImageRow) {
    super(
      "not_ingested",
      `image ${image.id}: expected status "ingested" with a sha256 and a dataset URI, found ` +
        `status "${image.status}", sha256 ${image.sha256 ?? "null"}, datasetUri ` +
        `${image.datasetUri ?? "null"}`,
    );
    this.name = "NotIngestedError";
  }
}

/**
 * Renders and uploads the variants `image` lacks; see the module documentation.
 *
 * @example
 * ```ts
 * const { variants, present } = await normalizeImage(image, specs, [], deps);
 * ```
 */
export async function normalizeImage(
  image: ImageRow,
  specs: readonly RegisteredSpec[],
  existing: readonly VariantRow[],
  deps: NormalizeImageDeps,
): Promise<NormalizeImageResult> {
  const { store, signal } = deps;
  const sha256 = image.sha256;
  if (image.status !== "ingested" || sha256 === null || image.datasetUri === null) {
    throw new NotIngestedError(image);
  }
  const planned = planVariants(specs, deps, sha256);

  const todo: typeof planned = [];
  const present: string[] = [];
  for (const p of planned) {
    const row = existing.find((r) => r.name === p.spec.name && r.specHash === p.specHash);
    if (row && keyOfRecorded(store, row.uri) === p.key && row.version === p.version) {
      const info = await store.head(p.key);
      if (info !== null && info.size === row.bytes) {
        present.push(p.spec.name);
        continue;
      }
      deps.log?.warn("variant recorded but its object is missing or differs: rendering again", {
        variant: p.spec.name,
        key: p.key,
      });
    }
    todo.push(p);
  }
  if (todo.length === 0) return { variants: [], present, bytesWritten: 0, renderMs: 0 };
  signal?.throwIfAborted();
  // The recorded size refuses an oversized object before it is downloaded (renderVariants checks
  // the bytes themselves again).
  if (image.size !== null && image.size > deps.limits.maxBytes) {
    throw new ImageError(
      "too_large",
      `image ${image.id} (${image.datasetUri})`,
      `${image.size} bytes exceeds the limit of ${deps.limits.maxBytes} bytes`,
    );
  }

  // Straight into memory, hashed while it streams: see _read_source.ts for why not staged.
  const bytes = await readSource(store, keyForUri(store, image.datasetUri), {
    imageId: image.id,
    uri: image.datasetUri,
    sha256,
    maxBytes: deps.limits.maxBytes,
    size: image.size,
  }, signal);
  signal?.throwIfAborted();

  let renderMs = 0;
  const render = async () => {
    const t0 = performance.now();
    try {
      return await renderVariants(bytes, todo.map((p) => p.spec), {
        resizer: deps.resizer,
        limits: deps.limits,
        name: image.datasetUri ?? image.id,
      });
    } finally {
      renderMs = performance.now() - t0;
    }
  };
  const rendered: RenderedVariant[] = deps.cpu
    ? await deps.cpu.run(render, signal)
    : await render();
  signal?.throwIfAborted();

  // Uploads of one image run together, and outside the CPU slot: other items render meanwhile.
  const { rows: variants, reusedBytes } = await writeVariants(
    store,
    image.id,
    sha256,
    todo,
    rendered,
    { skipPresent: deps.retry ?? false },
  );
  return {
    variants,
    present,
    bytesWritten: variants.reduce((n, v) => n + v.bytes, 0) - reusedBytes,
    renderMs,
  };
}
