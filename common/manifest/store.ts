/**
 * The manifest's domain logic, written once over {@link SqlDriver} and shared by the SQLite and
 * PostgreSQL adapters. Every multi-statement operation runs in one transaction; work-queue
 * writes made for a claim are fenced by (owner, lease token, state = leased). The work queue's
 * operations are in `queue/`, one per file (enqueue, claim, renew, complete, fail, release, ...);
 * this class validates their inputs and opens their transactions.
 *
 * Semantics worth knowing beyond `mod.ts`:
 * - An object that was deleted and is created again counts as changed, even with the same etag.
 * - `markSourceDeleted` for an unknown key with a sequencer records a `deleted` tombstone, so an
 *   older ObjectCreated delivered late is recognised as stale. It also drops the image's
 *   `ingest` work item (a re-created object enqueues a fresh one); other stages are untouched.
 * - An `ingest` failure never overwrites the status of a `deleted` image.
 * - Enqueue effects in `complete` insert absent items and reopen `done` or `failed` ones; an
 *   item currently leased by another worker is left to that worker.
 * - A lease is held until another claim takes it: completing after `leaseUntil` still succeeds
 *   when nobody has re-claimed the item (the token proves nobody else started).
 *
 * @example
 * ```ts
 * const store = createSqlManifestStore(driver, { now: () => Date.now() });
 * await store.migrate();
 * ```
 * @module
 */
import { z } from "zod";
import { SluiceError } from "../errors/mod.ts";
import {
  type AnnotationInput,
  type AnnotationRow,
  type AugmentationRow,
  type Claim,
  type ClaimOptions,
  type Effects,
  type FailOptions,
  imageIdFor,
  type ImageRow,
  type ImageStatus,
  type ManifestStats,
  type ManifestStore,
  type PredictionRow,
  type SnapshotItem,
  type SnapshotRow,
  type SourceObject,
  type StageName,
  type TrainingRunRow,
  type UpsertResult,
  type VariantRow,
  type VariantSpecRow,
  type WorkRow,
  type WorkState,
} from "./contract.ts";
import type { SqlDriver, SqlRow, SqlValue } from "./_driver.ts";
import { fromJson, toNumber, toStringOrNull } from "./_columns.ts";
import { ImageNotFoundError, ManifestInputError, SnapshotConflictError } from "./errors.ts";
import { migrate } from "./migrations/mod.ts";
import * as reviewSql from "./_reviews.ts";
import type { ReviewInput, ReviewListOptions, ReviewOutcome, ReviewRow } from "./contract.ts";
import {
  completeBatch,
  type CompletionOutcome,
  type CompletionRequest,
} from "./queue/complete_batch.ts";
import { claimPostgres } from "./queue/claim_postgres.ts";
import { claimSqlite } from "./queue/claim_sqlite.ts";
import { completeItem } from "./queue/complete.ts";
import { failItem } from "./queue/fail.ts";
import { replaceAnnotationRows } from "./_annotation_rows.ts";
import { enqueueForInference, enqueueRows } from "./queue/enqueue.ts";
import { failIngestImage, INGEST } from "./queue/_ingest_image.ts";
import { listWork, workCounts } from "./queue/list_work.ts";
import { pruneDoneWork } from "./queue/prune_done_work.ts";
import { releaseClaim } from "./queue/release.ts";
import { renewClaims } from "./queue/renew.ts";
import { retryFailed } from "./queue/retry_failed.ts";
import { CHUNK, chunks, ID_CHUNK, placeholders, valuesList } from "./_sql_lists.ts";
import { upsertSourceBatch } from "./upsert_source_batch.ts";
import { compareSequencers, isStaleSequencer } from "./sequencer.ts";
import {
  ANNOTATION_COLUMNS,
  AUGMENTATION_COLUMNS,
  encodeMetrics,
  IMAGE_COLUMNS,
  PREDICTION_COLUMNS,
  toAnnotation,
  toAugmentation,
  toImage,
  toPrediction,
  toTrainingRun,
  toVariant,
  toVariantSpec,
  TRAINING_RUN_COLUMNS,
  VARIANT_COLUMNS,
  VARIANT_SPEC_COLUMNS,
} from "./_rows.ts";
import {
  annotationSchema,
  claimOptionsSchema,
  effectsSchema,
  failOptionsSchema,
  listLimitSchema,
  parse,
  pruneSchema,
  snapshotItemsSchema,
  sourceObjectSchema,
  stageSchema,
  trainingRunSchema,
} from "./_schemas.ts";

export { retryDelayMs } from "./queue/fail.ts";

/** Options shared by both adapters. */
export const storeOptionsSchema = z.object({
  /** Clock in epoch ms (tests may drive time by hand). Hosts sharing a manifest need NTP. */
  now: z.custom<() => number>((v) => typeof v === "function", "expected a function").optional(),
});

export type StoreOptions = z.input<typeof storeOptionsSchema>;

/**
 * Builds the manifest store over a driver. The adapters call this; tests of the domain logic
 * can too.
 *
 * @example
 * ```ts
 * const store = createSqlManifestStore(driver);
 * await store.migrate();
 * ```
 */
export function createSqlManifestStore(
  driver: SqlDriver,
  options: StoreOptions = {},
): ManifestStore {
  const opts = storeOptionsSchema.parse(options);
  return new SqlManifestStore(driver, opts.now ?? Date.now);
}

/**
 * Stable id of one augmented copy: `aug_` + 20 hex of sha256(parent, recipe, index, seed).
 *
 * @example
 * ```ts
 * const id = await augmentationIdFor("img_0123", "flip", 0, 42); // "aug_..." (24 chars)
 * ```
 */
export async function augmentationIdFor(
  parentImageId: string,
  recipe: string,
  index: number,
  seed: number,
): Promise<string> {
  const data = new TextEncoder().encode(`${parentImageId}\n${recipe}\n${index}\n${seed}`);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return "aug_" + Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, 20);
}

/** For an URI like `s3://bucket/dir/a.jpg`, the key `dir/a.jpg`; otherwise the URI itself. */
function keyOfUri(uri: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*\/(.+)$/i.exec(uri);
  return m ? m[1] : uri;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function json(v: unknown): string {
  return JSON.stringify(v ?? null);
}

class SqlManifestStore implements ManifestStore {
  readonly kind: "sqlite" | "postgres";
  readonly #db: SqlDriver;
  readonly #now: () => number;
  /** Row locks exist only on PostgreSQL; SQLite transactions hold the whole write lock. */
  readonly #forUpdate: string;

  constructor(db: SqlDriver, now: () => number) {
    this.#db = db;
    this.#now = now;
    this.kind = db.dialect;
    const pg = db.dialect === "postgres";
    this.#forUpdate = pg ? "FOR UPDATE" : "";
  }

  async migrate(): Promise<void> {
    await migrate(this.#db, this.#now());
  }

  close(): Promise<void> {
    return this.#db.close();
  }

  // ---- images ---------------------------------------------------------------------------

  upsertSourceObjects(inputs: SourceObject[]): Promise<UpsertResult[]> {
    return upsertSourceBatch(
      this.#db,
      this.#now,
      inputs,
      (o, tx) => this.upsertSourceObject(o, tx),
      (tx, ids, now) => enqueueRows(tx, INGEST, ids, "reset", now),
    );
  }

  /** `within`: an open transaction to run in (upsertSourceObjects' batch); default a new one. */
  async upsertSourceObject(input: SourceObject, within?: SqlDriver): Promise<UpsertResult> {
    const obj = parse(sourceObjectSchema, input, "upsertSourceObject");
    const id = await imageIdFor(obj.sourceUri);
    return (within ?? this.#db).transaction(async (tx) => {
      const now = this.#now();
      // No conflict target: a concurrent insert of the same source can collide on the
      // source_uri index first, which `ON CONFLICT (id)` left as an error on PostgreSQL.
      const inserted = await tx.query(
        `INSERT INTO images (id, source_uri, source_key, source_etag, source_version,
           source_sequencer, size, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8)
         ON CONFLICT DO NOTHING RETURNING ${IMAGE_COLUMNS}`,
        [
          id,
          obj.sourceUri,
          obj.sourceKey,
          obj.etag,
          obj.versionId,
          obj.sequencer,
          obj.size,
          now,
        ],
      );
      if (inserted.length > 0) {
        await enqueueRows(tx, INGEST, [id], "reset", now);
        return { image: toImage(inserted[0]), created: true, changed: false, stale: false };
      }
      const current = await this.#lockImage(tx, id);
      if (current.sourceUri !== obj.sourceUri) {
        throw new SluiceError(
          "image_id_collision",
          `image ${id}: expected source ${obj.sourceUri}, found ${current.sourceUri}`,
        );
      }
      if (isStaleSequencer(obj.sequencer, current.sourceSequencer)) {
        return { image: current, created: false, changed: false, stale: true };
      }
      const changed = current.status === "deleted" ||
        (obj.etag != null && obj.etag !== current.sourceEtag) ||
        (obj.versionId != null && obj.versionId !== current.sourceVersion);
      if (!changed) {
        let image = current;
        // Remember the newest sequencer so that older events arriving later are recognised.
        if (
          obj.sequencer != null &&
          (current.sourceSequencer == null ||
            compareSequencers(obj.sequencer, current.sourceSequencer) > 0)
        ) {
          const rows = await tx.query(
            `UPDATE images SET source_sequencer = $2 WHERE id = $1 RETURNING ${IMAGE_COLUMNS}`,
            [id, obj.sequencer],
          );
          image = toImage(rows[0]);
        }
        return { image, created: false, changed: false, stale: false };
      }
      const rows = await tx.query(
        `UPDATE images SET source_key = $2, source_etag = $3, source_version = $4,
           source_sequencer = COALESCE($5, source_sequencer), size = $6, sha256 = NULL,
           width = NULL, height = NULL, format = NULL, dataset_uri = NULL, status = 'pending',
           error = NULL, duplicate_of = NULL, decode_warning = NULL, updated_at = $7
         WHERE id = $1 RETURNING ${IMAGE_COLUMNS}`,
        [id, obj.sourceKey, obj.etag, obj.versionId, obj.sequencer, obj.size, now],
      );
      await enqueueRows(tx, INGEST, [id], "reset", now);
      return { image: toImage(rows[0]), created: false, changed: true, stale: false };
    });
  }

  async recordRefusedSource(
    input: SourceObject,
    reason: string,
    message: string,
  ): Promise<UpsertResult> {
    const obj = parse(sourceObjectSchema, input, "recordRefusedSource");
    const id = await imageIdFor(obj.sourceUri);
    const now = this.#now();
    const inserted = await this.#db.query(
      `INSERT INTO images (id, source_uri, source_key, source_etag, source_version,
         source_sequencer, size, status, error, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'failed', $8, $9, $9)
       ON CONFLICT (id) DO NOTHING RETURNING ${IMAGE_COLUMNS}`,
      [
        id,
        obj.sourceUri,
        obj.sourceKey,
        obj.etag,
        obj.versionId,
        obj.sequencer,
        obj.size,
        `${reason}: ${message}`,
        now,
      ],
    );
    if (inserted.length > 0) {
      return { image: toImage(inserted[0]), created: true, changed: false, stale: false };
    }
    const rows = await this.#db.query(`SELECT ${IMAGE_COLUMNS} FROM images WHERE id = $1`, [id]);
    return { image: toImage(rows[0]), created: false, changed: false, stale: false };
  }

  async relativizeObjectUris(base: string): Promise<number> {
    parse(z.string().regex(/^[a-z][a-z0-9+.-]*:.*\/$/i), base, "relativizeObjectUris base");
    const columns = [
      ["images", "dataset_uri"],
      ["variants", "uri"],
      ["augmentations", "uri"],
      ["predictions", "uri"],
    ] as const;
    return await this.#db.transaction(async (tx) => {
      let n = 0;
      for (const [table, col] of columns) {
        const rows = await tx.query(
          `UPDATE ${table} SET ${col} = substr(${col}, length(CAST($1 AS TEXT)) + 1)
           WHERE substr(${col}, 1, length(CAST($1 AS TEXT))) = CAST($1 AS TEXT)
             AND length(${col}) > length(CAST($1 AS TEXT))
             AND ${col} NOT LIKE '%!%%' ESCAPE '!'
           RETURNING 1 AS one`,
          [base],
        );
        n += rows.length;
      }
      return n;
    });
  }

  async markSourceDeleted(sourceUri: string, sequencer?: string | null): Promise<ImageRow | null> {
    parse(z.string().min(1), sourceUri, "markSourceDeleted sourceUri");
    const id = await imageIdFor(sourceUri);
    return this.#db.transaction(async (tx) => {
      const now = this.#now();
      let rows = await tx.query(
        `SELECT ${IMAGE_COLUMNS} FROM images WHERE id = $1 ${this.#forUpdate}`,
        [id],
      );
      if (rows.length === 0) {
        if (sequencer == null) return null;
        const tomb = await tx.query(
          `INSERT INTO images (id, source_uri, source_key, source_sequencer, status, created_at,
             updated_at)
           VALUES ($1, $2, $3, $4, 'deleted', $5, $5)
           ON CONFLICT (id) DO NOTHING RETURNING ${IMAGE_COLUMNS}`,
          [id, sourceUri, keyOfUri(sourceUri), sequencer, now],
        );
        if (tomb.length > 0) return toImage(tomb[0]);
        rows = await tx.query(
          `SELECT ${IMAGE_COLUMNS} FROM images WHERE id = $1 ${this.#forUpdate}`,
          [id],
        );
      }
      const current = toImage(rows[0]);
      if (isStaleSequencer(sequencer, current.sourceSequencer)) return current;
      const updated = await tx.query(
        `UPDATE images SET status = 'deleted', source_sequencer = COALESCE($2, source_sequencer),
           updated_at = $3
         WHERE id = $1 RETURNING ${IMAGE_COLUMNS}`,
        [id, sequencer, now],
      );
      await tx.query("DELETE FROM work WHERE stage = $1 AND item_id = $2", [INGEST, id]);
      return toImage(updated[0]);
    });
  }

  async getImage(id: string): Promise<ImageRow | null> {
    const rows = await this.#db.query(`SELECT ${IMAGE_COLUMNS} FROM images WHERE id = $1`, [id]);
    return rows.length ? toImage(rows[0]) : null;
  }

  async getImageBySource(sourceUri: string): Promise<ImageRow | null> {
    const rows = await this.#db.query(
      `SELECT ${IMAGE_COLUMNS} FROM images WHERE source_uri = $1`,
      [sourceUri],
    );
    return rows.length ? toImage(rows[0]) : null;
  }

  async findImageBySha256(sha256: string): Promise<ImageRow | null> {
    const rows = await this.#db.query(
      `SELECT ${IMAGE_COLUMNS} FROM images WHERE sha256 = $1 AND status = 'ingested'
       ORDER BY created_at, id LIMIT 1`,
      [sha256],
    );
    return rows.length ? toImage(rows[0]) : null;
  }

  async listImages(
    opts: { status?: ImageStatus; afterId?: string; limit?: number } = {},
  ): Promise<ImageRow[]> {
    const limit = parse(listLimitSchema, opts.limit ?? 1000, "listImages limit");
    const where = ["id > $1"];
    const params: SqlValue[] = [opts.afterId ?? ""];
    if (opts.status !== undefined) {
      params.push(opts.status);
      where.push(`status = $${params.length}`);
    }
    params.push(limit);
    const rows = await this.#db.query(
      `SELECT ${IMAGE_COLUMNS} FROM images WHERE ${where.join(" AND ")}
       ORDER BY id LIMIT $${params.length}`,
      params,
    );
    return rows.map(toImage);
  }

  async recordImageFailure(id: string, reason: string, message: string): Promise<void> {
    const rows = await this.#db.query(
      "UPDATE images SET status = 'failed', error = $2, updated_at = $3 WHERE id = $1 RETURNING id",
      [id, `${reason}: ${message}`, this.#now()],
    );
    if (rows.length === 0) throw new ImageNotFoundError(id);
  }

  async #lockImage(tx: SqlDriver, id: string): Promise<ImageRow> {
    const rows = await tx.query(
      `SELECT ${IMAGE_COLUMNS} FROM images WHERE id = $1 ${this.#forUpdate}`,
      [id],
    );
    if (rows.length === 0) throw new ImageNotFoundError(id);
    return toImage(rows[0]);
  }

  // ---- labels & annotations -----------------------------------------------------------

  async ensureLabels(names: string[]): Promise<Map<string, number>> {
    const wanted = [...new Set(parse(z.array(z.string().min(1)), names, "ensureLabels"))];
    const found = new Map<string, number>();
    for (const part of chunks(wanted, ID_CHUNK)) {
      const rows = await this.#db.query(
        `SELECT id, name FROM labels WHERE name IN (${placeholders(part.length)})`,
        part,
      );
      for (const r of rows) found.set(String(r.name), toNumber(r.id));
    }
    for (const name of wanted) {
      if (found.has(name)) continue;
      // Ids are dense and in insertion order: max + 1. A concurrent writer taking the same id
      // (or name) turns our insert into a no-op; then we look again and, if needed, retry.
      for (let attempt = 0;; attempt++) {
        const ins = await this.#db.query(
          `INSERT INTO labels (id, name, created_at)
           SELECT COALESCE(MAX(id), 0) + 1, CAST($1 AS TEXT), CAST($2 AS BIGINT) FROM labels
           WHERE 1 = 1
           ON CONFLICT DO NOTHING RETURNING id`,
          [name, this.#now()],
        );
        if (ins.length > 0) {
          found.set(name, toNumber(ins[0].id));
          break;
        }
        const sel = await this.#db.query("SELECT id FROM labels WHERE name = $1", [name]);
        if (sel.length > 0) {
          found.set(name, toNumber(sel[0].id));
          break;
        }
        if (attempt >= 100) {
          throw new SluiceError(
            "label_contention",
            `label ${JSON.stringify(name)}: expected to insert it within 100 tries, found ` +
              `every id taken by concurrent writers`,
          );
        }
      }
    }
    return new Map(wanted.map((n) => [n, found.get(n)!]));
  }

  async listLabels(): Promise<{ id: number; name: string }[]> {
    const rows = await this.#db.query("SELECT id, name FROM labels ORDER BY id");
    return rows.map((r) => ({ id: toNumber(r.id), name: String(r.name) }));
  }

  async replaceAnnotations(
    imageId: string,
    source: string,
    items: AnnotationInput[],
  ): Promise<void> {
    const valid = parse(z.array(annotationSchema), items, "replaceAnnotations items");
    parse(z.string().min(1), source, "replaceAnnotations source");
    await this.#db.transaction((tx) =>
      replaceAnnotationRows(tx, imageId, source, valid, this.#now())
    );
  }

  async listAnnotations(imageIds: string[]): Promise<AnnotationRow[]> {
    const out: AnnotationRow[] = [];
    for (const part of chunks([...new Set(imageIds)], ID_CHUNK)) {
      const rows = await this.#db.query(
        `SELECT ${ANNOTATION_COLUMNS} FROM annotations
         WHERE image_id IN (${placeholders(part.length)}) ORDER BY image_id, source, id`,
        part,
      );
      out.push(...rows.map(toAnnotation));
    }
    // Chunks are each ordered; restore one order across them.
    return out.sort((a, b) => cmp(a.imageId, b.imageId) || cmp(a.source, b.source) || a.id - b.id);
  }

  // ---- variants, augmentations, predictions --------------------------------------------

  async registerVariantSpec(
    name: string,
    specHash: string,
    spec: unknown,
  ): Promise<VariantSpecRow> {
    parse(z.string().min(1), name, "registerVariantSpec name");
    parse(z.string().min(1), specHash, "registerVariantSpec specHash");
    for (let attempt = 0;; attempt++) {
      const existing = await this.#db.query(
        `SELECT ${VARIANT_SPEC_COLUMNS} FROM variant_specs WHERE name = $1 AND spec_hash = $2`,
        [name, specHash],
      );
      if (existing.length > 0) return toVariantSpec(existing[0]);
      // (name, version) is unique: of two concurrent new specs one inserts version max+1 and
      // the other's insert becomes a no-op, so it looks again and takes the next version.
      const ins = await this.#db.query(
        `INSERT INTO variant_specs (name, spec_hash, version, spec, created_at)
         SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), COALESCE(MAX(version), 0) + 1,
           CAST($3 AS TEXT), CAST($4 AS BIGINT)
         FROM variant_specs WHERE name = $1
         ON CONFLICT DO NOTHING RETURNING ${VARIANT_SPEC_COLUMNS}`,
        [name, specHash, json(spec), this.#now()],
      );
      if (ins.length > 0) return toVariantSpec(ins[0]);
      if (attempt >= 100) {
        throw new SluiceError(
          "variant_spec_contention",
          `variant spec ${name}/${specHash}: expected to register it within 100 tries, found ` +
            `every version taken by concurrent writers`,
        );
      }
    }
  }

  async listVariantSpecs(name?: string): Promise<VariantSpecRow[]> {
    const rows = name === undefined
      ? await this.#db.query(
        `SELECT ${VARIANT_SPEC_COLUMNS} FROM variant_specs ORDER BY name, version`,
      )
      : await this.#db.query(
        `SELECT ${VARIANT_SPEC_COLUMNS} FROM variant_specs WHERE name = $1 ORDER BY version`,
        [name],
      );
    return rows.map(toVariantSpec);
  }

  async listVariants(
    opts: { imageIds?: string[]; name?: string; specHash?: string },
  ): Promise<VariantRow[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (opts.name !== undefined) {
      params.push(opts.name);
      where.push(`name = $${params.length}`);
    }
    if (opts.specHash !== undefined) {
      params.push(opts.specHash);
      where.push(`spec_hash = $${params.length}`);
    }
    return await this.#selectByIds(
      `SELECT ${VARIANT_COLUMNS} FROM variants`,
      "image_id",
      where,
      params,
      opts.imageIds,
      "image_id, name, version",
      toVariant,
    );
  }

  async listAugmentations(parentImageIds: string[]): Promise<AugmentationRow[]> {
    return await this.#selectByIds(
      `SELECT ${AUGMENTATION_COLUMNS} FROM augmentations`,
      "parent_image_id",
      [],
      [],
      parentImageIds,
      "parent_image_id, recipe, aug_index, seed",
      toAugmentation,
    );
  }

  async listPredictions(
    opts: { modelName?: string; modelVersion?: string; imageIds?: string[]; registry?: string },
  ): Promise<PredictionRow[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (opts.modelName !== undefined) {
      params.push(opts.modelName);
      where.push(`model_name = $${params.length}`);
    }
    if (opts.modelVersion !== undefined) {
      params.push(opts.modelVersion);
      where.push(`model_version = $${params.length}`);
    }
    if (opts.registry !== undefined) {
      params.push(opts.registry);
      where.push(`registry IN ($${params.length}, '')`);
    }
    return await this.#selectByIds(
      `SELECT ${PREDICTION_COLUMNS} FROM predictions`,
      "image_id",
      where,
      params,
      opts.imageIds,
      "image_id, model_name, model_version, registry",
      toPrediction,
    );
  }

  /**
   * Runs `select` with `where`, optionally restricted to `ids` (in chunks), ordered by
   * `orderBy`. Results of several chunks are merged in id order.
   */
  async #selectByIds<T>(
    select: string,
    idColumn: string,
    where: string[],
    params: SqlValue[],
    ids: string[] | undefined,
    orderBy: string,
    map: (r: SqlRow) => T,
  ): Promise<T[]> {
    const run = async (extra: string[], extraParams: SqlValue[]) => {
      const all = [...where, ...extra];
      const rows = await this.#db.query(
        `${select}${all.length ? " WHERE " + all.join(" AND ") : ""} ORDER BY ${orderBy}`,
        [...params, ...extraParams],
      );
      return rows;
    };
    if (ids === undefined) return (await run([], [])).map(map);
    const rows: SqlRow[] = [];
    for (const part of chunks([...new Set(ids)].sort(), ID_CHUNK)) {
      rows.push(
        ...await run([`${idColumn} IN (${placeholders(part.length, params.length + 1)})`], part),
      );
    }
    return rows.map(map);
  }

  // ---- snapshots & training runs -------------------------------------------------------

  async createSnapshot(id: string, spec: unknown, items: SnapshotItem[]): Promise<SnapshotRow> {
    parse(z.string().min(1), id, "createSnapshot id");
    const valid = parse(snapshotItemsSchema, items, "createSnapshot items");
    const seen = new Set<string>();
    for (const it of valid) {
      if (seen.has(it.imageId)) {
        throw new ManifestInputError(
          "createSnapshot items",
          `expected each image once, found ${it.imageId} twice`,
        );
      }
      seen.add(it.imageId);
    }
    return await this.#db.transaction(async (tx) => {
      const now = this.#now();
      const ins = await tx.query(
        `INSERT INTO snapshots (id, spec, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        [id, json(spec), now],
      );
      if (ins.length === 0) {
        // Re-running a launcher with the same snapshot id is fine; changing its content is not.
        const existing = (await this.#loadSnapshot(tx, id))!;
        const same = existing.items.length === valid.length &&
          existing.items.every((e, i) =>
            e.imageId === valid[i].imageId && e.split === valid[i].split
          );
        if (!same) throw new SnapshotConflictError(id, valid.length, existing.items.length);
        return existing;
      }
      for (const [c, part] of chunks(valid, CHUNK).entries()) {
        const params: SqlValue[] = [];
        part.forEach((it, i) => params.push(id, c * CHUNK + i, it.imageId, it.split));
        await tx.query(
          `INSERT INTO snapshot_items (snapshot_id, position, image_id, split)
           VALUES ${valuesList(part.length, 4)}`,
          params,
        );
      }
      return { id, spec: fromJson<unknown>(json(spec)), createdAt: now, items: valid };
    });
  }

  async getSnapshot(id: string): Promise<SnapshotRow | null> {
    return await this.#loadSnapshot(this.#db, id);
  }

  async #loadSnapshot(db: SqlDriver, id: string): Promise<SnapshotRow | null> {
    const rows = await db.query("SELECT id, spec, created_at FROM snapshots WHERE id = $1", [id]);
    if (rows.length === 0) return null;
    const items = await db.query(
      "SELECT image_id, split FROM snapshot_items WHERE snapshot_id = $1 ORDER BY position",
      [id],
    );
    return {
      id,
      spec: fromJson<unknown>(rows[0].spec),
      createdAt: toNumber(rows[0].created_at),
      items: items.map((r) => ({
        imageId: String(r.image_id),
        split: String(r.split) as SnapshotItem["split"],
      })),
    };
  }

  async upsertTrainingRun(
    run: Omit<TrainingRunRow, "createdAt" | "updatedAt">,
  ): Promise<TrainingRunRow> {
    const r = parse(trainingRunSchema, run, "upsertTrainingRun");
    const rows = await this.#db.query(
      `INSERT INTO training_runs (${TRAINING_RUN_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
       ON CONFLICT (id) DO UPDATE SET snapshot_id = excluded.snapshot_id,
         tracker = excluded.tracker, run_id = excluded.run_id, model_name = excluded.model_name,
         model_version = excluded.model_version, status = excluded.status,
         params = excluded.params, metrics = excluded.metrics, updated_at = excluded.updated_at
       RETURNING ${TRAINING_RUN_COLUMNS}`,
      [
        r.id,
        r.snapshotId,
        r.tracker,
        r.runId,
        r.modelName,
        r.modelVersion,
        r.status,
        json(r.params),
        encodeMetrics(r.metrics),
        this.#now(),
      ],
    );
    return toTrainingRun(rows[0]);
  }

  async listTrainingRuns(): Promise<TrainingRunRow[]> {
    const rows = await this.#db.query(
      `SELECT ${TRAINING_RUN_COLUMNS} FROM training_runs ORDER BY created_at, id`,
    );
    return rows.map(toTrainingRun);
  }

  // ---- checkpoints ----------------------------------------------------------------------

  // ---- reviews (issue 16; SQL in _reviews.ts) -------------------------------------------
  applyReview(input: ReviewInput): Promise<ReviewOutcome> {
    return reviewSql.applyReview(this.#db, input, this.#now());
  }
  deleteReviews(ref: { annotationIds?: string[]; taskIds?: string[] }): Promise<number> {
    return reviewSql.deleteReviews(this.#db, ref, this.#now());
  }
  listReviews(opts?: ReviewListOptions): Promise<ReviewRow[]> {
    return reviewSql.listReviews(this.#db, opts);
  }

  async getCheckpoint(name: string): Promise<string | null> {
    const rows = await this.#db.query("SELECT value FROM checkpoints WHERE name = $1", [name]);
    return rows.length ? toStringOrNull(rows[0].value) : null;
  }

  async setCheckpoint(name: string, value: string): Promise<void> {
    parse(z.string().min(1), name, "setCheckpoint name");
    parse(z.string(), value, "setCheckpoint value");
    await this.#db.query(
      `INSERT INTO checkpoints (name, value, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      [name, value, this.#now()],
    );
  }

  async setCheckpointIfAbsent(name: string, value: string): Promise<boolean> {
    parse(z.string().min(1), name, "setCheckpointIfAbsent name");
    parse(z.string(), value, "setCheckpointIfAbsent value");
    const rows = await this.#db.query(
      `INSERT INTO checkpoints (name, value, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO NOTHING RETURNING name`,
      [name, value, this.#now()],
    );
    return rows.length === 1;
  }

  // ---- work queue -----------------------------------------------------------------------

  async enqueue(
    stage: StageName,
    itemIds: string[],
    opts: { reset?: boolean; reopen?: boolean } = {},
  ): Promise<number> {
    parse(stageSchema, stage, "enqueue stage");
    parse(z.array(z.string().min(1)), itemIds, "enqueue itemIds");
    const mode = opts.reset ? "reset" : opts.reopen ? "reopen" : "absent";
    return await this.#db.transaction((tx) => enqueueRows(tx, stage, itemIds, mode, this.#now()));
  }

  async enqueueForInference(
    stage: StageName,
    modelName: string,
    modelVersion: string,
    opts: { includeAnnotated?: boolean; registry?: string } = {},
  ): Promise<number> {
    parse(stageSchema, stage, "enqueueForInference stage");
    const model = { name: modelName, version: modelVersion };
    return await enqueueForInference(this.#db, this.#now(), stage, model, opts);
  }

  async claim(stage: StageName, options: ClaimOptions): Promise<Claim[]> {
    parse(stageSchema, stage, "claim stage");
    const opts = parse(claimOptionsSchema, options, "claim options");
    return await this.#db.transaction((tx) => {
      const now = this.#now();
      const onPoisonPill = async (id: string, error: string) => {
        if (stage === INGEST) await failIngestImage(tx, id, error, now);
      };
      return this.kind === "postgres"
        ? claimPostgres(tx, stage, opts, now, onPoisonPill)
        : claimSqlite(tx, stage, opts, now, onPoisonPill);
    });
  }

  async renew(claims: Claim[], leaseMs: number): Promise<Claim[]> {
    parse(z.number().int().positive(), leaseMs, "renew leaseMs");
    if (claims.length === 0) return [];
    return await this.#db.transaction((tx) => renewClaims(tx, claims, leaseMs, this.#now()));
  }

  /** `within`: an open transaction to run in (completeMany's batch); default a new one. */
  async complete(claim: Claim, effects: Effects = {}, within?: SqlDriver): Promise<void> {
    const fx = parse(effectsSchema, effects, `complete ${claim.stage}/${claim.itemId} effects`);
    const augIds = await Promise.all(
      (fx.augmentations ?? []).map((a) =>
        augmentationIdFor(a.parentImageId, a.recipe, a.index, a.seed)
      ),
    );
    await (within ?? this.#db).transaction((tx) =>
      completeItem(tx, claim, fx, augIds, this.#now())
    );
  }

  async fail(
    claim: Claim,
    reason: string,
    message: string,
    options: FailOptions = {},
  ): Promise<WorkState> {
    const opts = parse(failOptionsSchema, options, "fail options");
    const error = `${reason}: ${message}`;
    return await this.#db.transaction((tx) => failItem(tx, claim, error, opts, this.#now()));
  }

  completeMany(requests: CompletionRequest[]): Promise<CompletionOutcome[]> {
    return completeBatch(this.#db, this.#now, requests, (c, fx, tx) => this.complete(c, fx, tx));
  }

  async release(claim: Claim): Promise<void> {
    await releaseClaim(this.#db, claim, this.#now());
  }

  async listWork(stage: StageName, state?: WorkState, limit = 100): Promise<WorkRow[]> {
    parse(listLimitSchema, limit, "listWork limit");
    return await listWork(this.#db, stage, state, limit);
  }

  async pruneDoneWork(
    stage: StageName,
    opts: { doneBefore: number; limit?: number },
  ): Promise<number> {
    parse(stageSchema, stage, "pruneDoneWork stage");
    return await pruneDoneWork(this.#db, stage, parse(pruneSchema, opts, "pruneDoneWork options"));
  }

  async retryFailed(stage: StageName, itemIds?: string[]): Promise<number> {
    parse(stageSchema, stage, "retryFailed stage");
    return await this.#db.transaction((tx) => retryFailed(tx, stage, itemIds, this.#now()));
  }

  workCounts(stage?: StageName): Promise<Record<string, Record<WorkState, number>>> {
    return workCounts(this.#db, stage);
  }

  async stats(): Promise<ManifestStats> {
    const images: Record<string, number> = {};
    const byStatus = await this.#db.query(
      "SELECT status, COUNT(*) AS n FROM images GROUP BY status ORDER BY status",
    );
    for (const r of byStatus) images[String(r.status)] = toNumber(r.n);
    const [c] = await this.#db.query(
      `SELECT
         (SELECT COUNT(*) FROM annotations) AS annotations,
         (SELECT COUNT(*) FROM variants) AS variants,
         (SELECT COUNT(*) FROM augmentations) AS augmentations,
         (SELECT COUNT(*) FROM predictions) AS predictions,
         (SELECT COUNT(*) FROM snapshots) AS snapshots,
         (SELECT COUNT(*) FROM training_runs) AS training_runs`,
    );
    return {
      images,
      annotations: toNumber(c.annotations),
      variants: toNumber(c.variants),
      augmentations: toNumber(c.augmentations),
      predictions: toNumber(c.predictions),
      snapshots: toNumber(c.snapshots),
      trainingRuns: toNumber(c.training_runs),
      work: await this.workCounts(),
    };
  }
}
