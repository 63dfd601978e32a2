/**
 * Complete: records a claimed item's effects and marks it done, in the caller's transaction.
 * Fenced first (a lost lease records nothing and throws `LeaseLostError`); then the image's new
 * state (a duplicate of an image that already holds the same content, if one does: then its
 * follow-ups, augmentations and variants are dropped), variants, annotations, augmentations,
 * predictions, the follow-up items (`reopen`: absent ones inserted, done or failed ones opened
 * again, one leased by another worker left to it), and the item's own `done`.
 *
 * @example
 * ```ts
 * await db.transaction((tx) => completeItem(tx, claim, effects, augmentationIds, Date.now()));
 * ```
 * @module
 */
import { LeaseLostError } from "../contract.ts";
import type { Claim } from "../contract.ts";
import type { SqlDriver } from "../_driver.ts";
import type { effectsSchema } from "../_schemas.ts";
import { AUGMENTATION_COLUMNS, PREDICTION_COLUMNS, VARIANT_COLUMNS } from "../_rows.ts";
import { replaceAnnotationRows } from "../_annotation_rows.ts";
import type { z } from "zod";
import { enqueueRows } from "./enqueue.ts";
import { fence, fenceParams } from "./_fence.ts";
import { contentOwner, updateImage } from "./_image_effects.ts";

/** Validated effects (see `effectsSchema`). */
export type CompletionEffects = z.output<typeof effectsSchema>;

const json = (v: unknown): string => JSON.stringify(v ?? null);

/**
 * Records `fx` for `claim` and marks it done; `augIds` are the augmentations' ids, in order
 * (`augmentationIdFor`).
 */
export async function completeItem(
  tx: SqlDriver,
  claim: Claim,
  fx: CompletionEffects,
  augIds: readonly string[],
  now: number,
): Promise<void> {
  // Fence first: on PostgreSQL this also locks the row, so no claim can take it meanwhile.
  const held = await tx.query(
    `UPDATE work SET updated_at = $5 WHERE ${fence(1)} RETURNING item_id`,
    [...fenceParams(claim), now],
  );
  if (held.length === 0) throw new LeaseLostError(claim);

  if (fx.image) {
    const imageId = fx.image.id ?? claim.itemId;
    const original = await contentOwner(tx, imageId, fx.image);
    if (original !== null) {
      // Another worker (another process or host) published the same content first: this
      // image becomes its duplicate and flows no further. Its augmentations are dropped too.
      fx.image = { ...fx.image, status: "duplicate", duplicateOf: original };
      fx.enqueue = (fx.enqueue ?? []).filter((e) => e.itemId !== imageId);
      fx.augmentations = (fx.augmentations ?? []).filter((a) => a.parentImageId !== imageId);
      fx.variants = (fx.variants ?? []).filter((v) => v.imageId !== imageId);
    }
    await updateImage(tx, imageId, fx.image, now);
  }
  for (const v of fx.variants ?? []) {
    await tx.query(
      `INSERT INTO variants (${VARIANT_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (image_id, name, spec_hash) DO UPDATE SET version = excluded.version,
         uri = excluded.uri, width = excluded.width, height = excluded.height,
         bytes = excluded.bytes, sha256 = excluded.sha256, format = excluded.format,
         transform = excluded.transform`,
      [
        v.imageId,
        v.name,
        v.specHash,
        v.version,
        v.uri,
        v.width,
        v.height,
        v.bytes,
        v.sha256,
        v.format,
        json(v.transform),
        now,
      ],
    );
  }
  for (const a of fx.annotations ?? []) {
    await replaceAnnotationRows(tx, a.imageId, a.source, a.items, now);
  }
  for (const [i, a] of (fx.augmentations ?? []).entries()) {
    await tx.query(
      `INSERT INTO augmentations (${AUGMENTATION_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (id) DO UPDATE SET params = excluded.params, uri = excluded.uri,
         sha256 = excluded.sha256, width = excluded.width, height = excluded.height,
         annotations = excluded.annotations`,
      [
        augIds[i],
        a.parentImageId,
        a.recipe,
        a.index,
        a.seed,
        json(a.params),
        a.uri,
        a.sha256,
        a.width,
        a.height,
        json(a.annotations),
        now,
      ],
    );
  }
  for (const p of fx.predictions ?? []) {
    await tx.query(
      `INSERT INTO predictions (${PREDICTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (image_id, model_name, model_version, registry) DO UPDATE SET
         boxes = excluded.boxes, score = excluded.score, uri = excluded.uri`,
      [
        p.imageId,
        p.modelName,
        p.modelVersion,
        json(p.boxes),
        p.score,
        p.uri,
        now,
        p.registry ?? "",
      ],
    );
  }
  const byStage = new Map<string, string[]>();
  for (const e of fx.enqueue ?? []) {
    byStage.set(e.stage, [...byStage.get(e.stage) ?? [], e.itemId]);
  }
  for (const stage of [...byStage.keys()].sort()) {
    await enqueueRows(tx, stage, byStage.get(stage)!, "reopen", now);
  }
  await tx.query(
    `UPDATE work SET state = 'done', lease_token = NULL, lease_until = NULL,
       last_error = NULL, updated_at = $3
     WHERE stage = $1 AND item_id = $2`,
    [claim.stage, claim.itemId, now],
  );
}
