/**
 * Backfill: enqueue `normalize` for every ingested image that lacks a variant of a current spec
 * (a new variant, a changed spec, or images ingested before normalize ran). Items already done
 * or failed are reopened; pending items and items another worker holds are left alone (they are
 * normalized with the specs of the worker that runs them; resetting a held item used to take
 * its lease away, zero its attempts and write its variants twice).
 *
 * {@link backfillNewSpecs} runs this once per new spec version among all workers: the first to
 * start claims the version with an insert-if-absent checkpoint (`.../started`), the others skip
 * it; a finished backfill sets the version's checkpoint.
 *
 * @example
 * ```ts
 * const specs = await registerVariantSpecs(manifest, config.stage.variants);
 * const r = await backfillNormalize(manifest, specs);
 * log.info("backfill", r); // { scanned: 1200, missing: 40, enqueued: 40 }
 * ```
 * @module
 */
import type { Logger } from "../../common/log/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import type { RegisteredSpec } from "./spec_registry.ts";

/** The queue normalize claims from. */
export const NORMALIZE_STAGE = "normalize";

/** What a backfill did. */
export interface BackfillResult {
  /** Ingested images looked at. */
  scanned: number;
  /** Of those, images lacking at least one current variant. */
  missing: number;
  /** Work items created or reset to pending. */
  enqueued: number;
}

export interface BackfillOptions {
  /** Images per manifest page (default 500). */
  pageSize?: number;
  log?: Logger;
}

type BackfillManifest = Pick<ManifestStore, "listImages" | "listVariants" | "enqueue">;

/**
 * Enqueues every ingested image lacking a variant of `specs` (by name and spec hash).
 *
 * @example
 * ```ts
 * await backfillNormalize(manifest, specs, { pageSize: 1000 });
 * ```
 */
export async function backfillNormalize(
  manifest: BackfillManifest,
  specs: readonly Pick<RegisteredSpec, "spec" | "specHash">[],
  opts: BackfillOptions = {},
): Promise<BackfillResult> {
  const pageSize = opts.pageSize ?? 500;
  const wanted = specs.map((s) => `${s.spec.name}\u0000${s.specHash}`);
  const result: BackfillResult = { scanned: 0, missing: 0, enqueued: 0 };
  let afterId: string | undefined;
  for (;;) {
    const page = await manifest.listImages({ status: "ingested", afterId, limit: pageSize });
    if (page.length === 0) break;
    afterId = page[page.length - 1].id;
    const images = page.filter((i) => i.duplicateOf === null && i.datasetUri !== null);
    result.scanned += images.length;
    if (images.length > 0) {
      const have = new Set(
        (await manifest.listVariants({ imageIds: images.map((i) => i.id) }))
          .map((v) => `${v.imageId}\u0000${v.name}\u0000${v.specHash}`),
      );
      const lacking = images
        .filter((i) => wanted.some((w) => !have.has(`${i.id}\u0000${w}`)))
        .map((i) => i.id);
      result.missing += lacking.length;
      if (lacking.length > 0) {
        result.enqueued += await manifest.enqueue(NORMALIZE_STAGE, lacking, { reopen: true });
      }
    }
    if (page.length < pageSize) break;
  }
  opts.log?.info("backfill finished", { ...result });
  return result;
}

/** The checkpoint that records a finished backfill for one spec version. */
export function backfillCheckpoint(s: Pick<RegisteredSpec, "spec" | "specHash">): string {
  return `normalize/backfill/${s.spec.name}/${s.specHash}`;
}

/**
 * Backfills once for the specs whose checkpoint is not set yet (new versions), then sets their
 * checkpoints. Returns null when every spec was already backfilled.
 *
 * @example
 * ```ts
 * const r = await backfillNewSpecs(manifest, specs, { log }); // null on an unchanged config
 * ```
 */
export async function backfillNewSpecs(
  manifest:
    & BackfillManifest
    & Pick<ManifestStore, "getCheckpoint" | "setCheckpoint" | "setCheckpointIfAbsent">,
  specs: readonly Pick<RegisteredSpec, "spec" | "specHash" | "version">[],
  opts: BackfillOptions = {},
): Promise<BackfillResult | null> {
  const pending: typeof specs[number][] = [];
  const startedAt = new Date().toISOString();
  for (const s of specs) {
    if (await manifest.getCheckpoint(backfillCheckpoint(s)) !== null) continue;
    // Once per spec version, whoever starts first; the others leave it to that worker.
    const mine = await manifest.setCheckpointIfAbsent(
      `${backfillCheckpoint(s)}/started`,
      `${Deno.hostname()}-${Deno.pid} ${startedAt}`,
    );
    if (mine) pending.push(s);
    else {
      opts.log?.info("backfill for this spec version started by another worker", {
        name: s.spec.name,
        specHash: s.specHash,
      });
    }
  }
  if (pending.length === 0) return null;
  opts.log?.info("backfilling images for new variant specs", {
    specs: pending.map((s) => ({ name: s.spec.name, specHash: s.specHash, version: s.version })),
  });
  const result = await backfillNormalize(manifest, pending, opts);
  await markBackfilled(manifest, pending);
  return result;
}

/**
 * Records that every ingested image was enqueued for these spec versions, so start-up does not
 * scan for them again.
 *
 * @example
 * ```ts
 * await backfillNormalize(manifest, specs);
 * await markBackfilled(manifest, specs);
 * ```
 */
export async function markBackfilled(
  manifest: Pick<ManifestStore, "setCheckpoint">,
  specs: readonly Pick<RegisteredSpec, "spec" | "specHash">[],
): Promise<void> {
  const at = new Date().toISOString();
  for (const s of specs) await manifest.setCheckpoint(backfillCheckpoint(s), at);
}
