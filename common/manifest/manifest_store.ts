/**
 * The manifest's contract: its rows, the work queue's claims and effects, and the
 * {@link ManifestStore} interface every adapter (SQLite, PostgreSQL) implements.
 *
 * @example
 * ```ts
 * const counts = await manifest.workCounts("normalize");
 * counts.normalize?.pending; // 12
 * ```
 * @module
 */
/**
 * A work queue's name: a stage's own queue (`ingest`, `normalize`, `train`) or a derived one
 * (inference has one queue per model version, `infer:<model>@<version>`; see
 * `enqueueForInference`).
 */
export type QueueName = "ingest" | "normalize" | "infer" | "train" | string;

/** @deprecated It names a queue, not a stage: use {@link QueueName}. */
export type StageName = QueueName;

export type ImageStatus = "pending" | "ingested" | "failed" | "deleted" | "duplicate";

export interface ImageRow {
  /** Stable id derived from the source URI: `img_` + 20 hex of sha256(sourceUri). */
  id: string;
  sourceUri: string;
  sourceKey: string;
  sourceEtag: string | null;
  sourceVersion: string | null;
  /** Last S3 event sequencer applied to this key (orders events of one key). */
  sourceSequencer: string | null;
  sha256: string | null;
  size: number | null;
  width: number | null;
  height: number | null;
  format: string | null;
  /** Content-addressed published copy (`images/<aa>/<sha256>.<ext>` in the dataset store). */
  datasetUri: string | null;
  status: ImageStatus;
  /** `reason: message` of the last failure. */
  error: string | null;
  /** Image id whose content this one duplicates. */
  duplicateOf: string | null;
  createdAt: number;
  updatedAt: number;
  /** The warning the source decoded with ("Corrupt JPEG data: …"), null when it was clean. */
  decodeWarning?: string | null;
}

/** `[x, y, w, h]` in original-image pixels, top-left origin (COCO convention). */
export type BBox = [number, number, number, number];

export interface AnnotationInput {
  label: string;
  bbox: BBox;
  /** Polygon points in original-image pixels, `[[x, y], ...]`. */
  polygon?: [number, number][] | null;
  /** Rotation in degrees (Label Studio, clockwise about the top-left corner) when imported rotated. */
  rotation?: number | null;
  score?: number | null;
  /** Where it came from, e.g. the Label Studio task/annotation id or COCO annotation id. */
  sourceRef?: string | null;
}

export interface AnnotationRow extends AnnotationInput {
  id: number;
  imageId: string;
  /** `labelstudio`, `coco`, `human`, ... : replaced as a set per (image, source). */
  source: string;
  createdAt: number;
}

/** Exact mapping between source pixels and variant pixels: v = (s - crop) * scale + pad. */
export interface VariantTransform {
  srcWidth: number;
  srcHeight: number;
  width: number;
  height: number;
  scaleX: number;
  scaleY: number;
  padX: number;
  padY: number;
  cropX: number;
  cropY: number;
}

export interface VariantInput {
  imageId: string;
  name: string;
  specHash: string;
  version: number;
  uri: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
  format: string;
  transform: VariantTransform;
}

export interface VariantRow extends VariantInput {
  createdAt: number;
}

export interface VariantSpecRow {
  name: string;
  specHash: string;
  version: number;
  spec: unknown;
  createdAt: number;
}

export interface AugmentationInput {
  parentImageId: string;
  recipe: string;
  index: number;
  seed: number;
  params: unknown;
  uri: string;
  sha256: string;
  width: number;
  height: number;
  annotations: AnnotationInput[];
}

export interface AugmentationRow extends AugmentationInput {
  id: string;
  createdAt: number;
}

export interface PredictionBox {
  label: string;
  bbox: BBox;
  score: number;
}

export interface PredictionInput {
  imageId: string;
  modelName: string;
  modelVersion: string;
  boxes: PredictionBox[];
  /** Image-level score (e.g. mean box score). */
  score: number;
  uri?: string | null;
  /**
   * Identity of the model registry the model came from, without credentials (`file:///…/mlruns`,
   * `https://mlflow:5000`): version 1 in two registries are different models. `""` or absent:
   * unknown (rows written before migration 1702), matched by every registry.
   */
  registry?: string;
}

export interface PredictionRow extends PredictionInput {
  createdAt: number;
}

export interface SnapshotItem {
  imageId: string;
  split: "train" | "val";
}

export interface SnapshotRow {
  id: string;
  spec: unknown;
  createdAt: number;
  items: SnapshotItem[];
}

export interface TrainingRunRow {
  id: string;
  snapshotId: string;
  tracker: string;
  runId: string | null;
  modelName: string | null;
  modelVersion: string | null;
  status: string;
  params: Record<string, string>;
  metrics: Record<string, number>;
  createdAt: number;
  updatedAt: number;
}

export interface SourceObject {
  sourceUri: string;
  sourceKey: string;
  etag?: string | null;
  versionId?: string | null;
  sequencer?: string | null;
  size?: number | null;
}

export interface UpsertResult {
  image: ImageRow;
  /** A new row was created. */
  created: boolean;
  /** An existing row changed (new etag/version) and was re-queued. */
  changed: boolean;
  /** Event older than the one already applied (by sequencer): ignored. */
  stale: boolean;
}

export type WorkState = "pending" | "leased" | "done" | "failed";

/** A leased work item. `token` fences every write made on its behalf. */
export interface Claim {
  stage: QueueName;
  itemId: string;
  owner: string;
  token: string;
  /** Number of times this item has been claimed, this claim included. */
  attempts: number;
  leaseUntil: number;
}

export interface WorkRow {
  stage: QueueName;
  itemId: string;
  state: WorkState;
  leaseOwner: string | null;
  leaseUntil: number | null;
  attempts: number;
  notBefore: number;
  lastError: string | null;
  updatedAt: number;
}

export interface ClaimOptions {
  max: number;
  leaseMs: number;
  owner: string;
  /** Items claimed this many times without completing go to `failed` (default 5). */
  maxAttempts?: number;
}

/** Everything a finished item writes, applied atomically with its completion. */
export interface Effects {
  image?: {
    id?: string;
    status?: ImageStatus;
    sha256?: string | null;
    size?: number | null;
    width?: number | null;
    height?: number | null;
    format?: string | null;
    datasetUri?: string | null;
    duplicateOf?: string | null;
    error?: string | null;
    decodeWarning?: string | null;
  };
  variants?: VariantInput[];
  annotations?: { imageId: string; source: string; items: AnnotationInput[] }[];
  augmentations?: AugmentationInput[];
  predictions?: PredictionInput[];
  enqueue?: { stage: QueueName; itemId: string }[];
}

export interface FailOptions {
  /** Try again later (with backoff) unless attempts are exhausted; default true. */
  retry?: boolean;
  /** Backoff before the retry, ms (default: exponential in attempts, with jitter). */
  delayMs?: number;
  maxAttempts?: number;
}

export interface ManifestStats {
  images: Record<string, number>;
  annotations: number;
  variants: number;
  augmentations: number;
  predictions: number;
  snapshots: number;
  trainingRuns: number;
  work: Record<string, Record<WorkState, number>>;
}

// ---- reviews (issue 16) -----------------------------------------------------------

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

/** Filters of {@link ManifestStore.listReviews}. */
export interface ReviewListOptions {
  modelName?: string;
  modelVersion?: string;
  imageIds?: string[];
  includeDeleted?: boolean;
}

export interface ManifestStore {
  readonly kind: "sqlite" | "postgres";
  /** Applies pending migrations (idempotent; serialised across processes). */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // ---- images -------------------------------------------------------------
  /** Idempotent upsert of a source object; (re)enqueues `ingest` when new or changed. */
  upsertSourceObject(obj: SourceObject): Promise<UpsertResult>;
  /**
   * `upsertSourceObject` for many objects in one transaction (discovery, reconcile): one result
   * per object, in order; unchanged known keys are recognised in bulk and not written.
   */
  upsertSourceObjects(objs: SourceObject[]): Promise<UpsertResult[]>;
  /** ObjectRemoved: marks the image deleted unless a newer event was already applied. */
  markSourceDeleted(sourceUri: string, sequencer?: string | null): Promise<ImageRow | null>;
  getImage(id: string): Promise<ImageRow | null>;
  getImageBySource(sourceUri: string): Promise<ImageRow | null>;
  /** First ingested image with this content hash (for dedupe), if any. */
  findImageBySha256(sha256: string): Promise<ImageRow | null>;
  /** Images by status, ordered by id, paginated with `afterId`. */
  listImages(
    opts?: { status?: ImageStatus; afterId?: string; limit?: number },
  ): Promise<ImageRow[]>;
  /** Directly records a failure on an image (outside a claim, e.g. a refused key). */
  recordImageFailure(id: string, reason: string, message: string): Promise<void>;
  /**
   * Records an object that ingest refuses without fetching it (e.g. `unsupported_suffix`): a
   * `failed` row with `reason: message`, nothing queued. An existing row is left as it is.
   */
  recordRefusedSource(obj: SourceObject, reason: string, message: string): Promise<UpsertResult>;
  /**
   * Rewrites recorded object URIs that start with `base` (a store's URI base, ending in `/`) to
   * the key after it: dataset copies, variants, augmentations, predictions. Percent-encoded
   * remainders are left absolute (readers still resolve them). Returns the rows rewritten.
   */
  relativizeObjectUris(base: string): Promise<number>;

  // ---- labels & annotations ---------------------------------------------------
  /** Ensures labels exist; returns name → stable category id (1-based, insertion order). */
  ensureLabels(names: string[]): Promise<Map<string, number>>;
  listLabels(): Promise<{ id: number; name: string }[]>;
  /** Replaces the annotations of one (image, source) pair (idempotent re-import). */
  replaceAnnotations(imageId: string, source: string, items: AnnotationInput[]): Promise<void>;
  listAnnotations(imageIds: string[]): Promise<AnnotationRow[]>;

  // ---- variants, augmentations, predictions --------------------------------------
  /** Returns the version for (name, specHash), creating version max+1 for a new spec. */
  registerVariantSpec(name: string, specHash: string, spec: unknown): Promise<VariantSpecRow>;
  listVariantSpecs(name?: string): Promise<VariantSpecRow[]>;
  listVariants(
    opts: { imageIds?: string[]; name?: string; specHash?: string },
  ): Promise<VariantRow[]>;
  listAugmentations(parentImageIds: string[]): Promise<AugmentationRow[]>;
  /** With `registry`: that registry's rows and the legacy ones (registry `""`). */
  listPredictions(
    opts: { modelName?: string; modelVersion?: string; imageIds?: string[]; registry?: string },
  ): Promise<PredictionRow[]>;

  // ---- snapshots & training runs ---------------------------------------------
  createSnapshot(id: string, spec: unknown, items: SnapshotItem[]): Promise<SnapshotRow>;
  getSnapshot(id: string): Promise<SnapshotRow | null>;
  upsertTrainingRun(
    run: Omit<TrainingRunRow, "createdAt" | "updatedAt">,
  ): Promise<TrainingRunRow>;
  listTrainingRuns(): Promise<TrainingRunRow[]>;

  // ---- reviews (issue 16; see `reviews.ts`) -----------------------------------
  /** Records a Label Studio review; newest active review mirrored into annotations. */
  applyReview(input: ReviewInput): Promise<ReviewOutcome>;
  /** Deletes reviews by annotation and/or task id (terminal); returns how many were active. */
  deleteReviews(ref: { annotationIds?: string[]; taskIds?: string[] }): Promise<number>;
  listReviews(opts?: ReviewListOptions): Promise<ReviewRow[]>;

  // ---- checkpoints ------------------------------------------------------------
  getCheckpoint(name: string): Promise<string | null>;
  setCheckpoint(name: string, value: string): Promise<void>;
  /**
   * Sets a checkpoint only when none exists; true when this call set it. A once-only claim
   * among concurrent workers (e.g. one backfill per variant spec version).
   */
  setCheckpointIfAbsent(name: string, value: string): Promise<boolean>;

  // ---- work queue ---------------------------------------------------------------
  /**
   * Adds items as pending; existing rows are untouched unless `reset` (then back to pending,
   * whatever their state, fencing out a lease) or `reopen` (only `done`/`failed` rows).
   */
  enqueue(
    stage: QueueName,
    itemIds: string[],
    opts?: { reset?: boolean; reopen?: boolean },
  ): Promise<number>;
  /**
   * Enqueues on `stage` every ingested, non-duplicate image that has no annotation (unless
   * `includeAnnotated`) and no prediction from (modelName, modelVersion) of `registry` (a
   * legacy prediction without a registry counts for every registry; without `registry`, every
   * registry's prediction counts). Returns the count added.
   */
  enqueueForInference(
    stage: QueueName,
    modelName: string,
    modelVersion: string,
    opts?: { includeAnnotated?: boolean; registry?: string },
  ): Promise<number>;
  /** Leases up to `max` pending (or lease-expired) items. One statement; SKIP LOCKED on PG. */
  claim(stage: QueueName, opts: ClaimOptions): Promise<Claim[]>;
  /** Extends leases still held; returns the claims that are still ours. */
  renew(claims: Claim[], leaseMs: number): Promise<Claim[]>;
  /** Applies effects and marks done, atomically. Throws LeaseLostError if the lease is gone. */
  complete(claim: Claim, effects?: Effects): Promise<void>;
  /**
   * `complete` for many claims at once, one outcome per claim in order: each item atomic on its
   * own; a lost lease (LeaseLostError in its outcome) does not fail the others.
   */
  completeMany(requests: CompletionRequest[]): Promise<CompletionOutcome[]>;
  /** Records a failure: back to pending with backoff, or `failed` when out of attempts. */
  fail(claim: Claim, reason: string, message: string, opts?: FailOptions): Promise<WorkState>;
  /** Gives a claim back untouched (graceful shutdown); the attempt is not counted. */
  release(claim: Claim): Promise<void>;
  /** Dead-letter listing and retry. */
  listWork(stage: QueueName, state?: WorkState, limit?: number): Promise<WorkRow[]>;
  retryFailed(stage: QueueName, itemIds?: string[]): Promise<number>;
  /**
   * Work retention: deletes up to `limit` (default 10,000) `done` rows of `stage` last updated
   * before `doneBefore` (epoch ms) and returns how many went; call again until it returns less
   * than `limit`. Pending, leased and failed rows are never touched. Safe at any time: a done
   * row is history, and nothing re-runs because it is gone (discovery skips known sources by
   * etag, normalize's backfill looks at variants, infer at predictions); only an explicit
   * `enqueue` of a pruned item queues it again.
   */
  pruneDoneWork(stage: QueueName, opts: { doneBefore: number; limit?: number }): Promise<number>;
  workCounts(stage?: QueueName): Promise<Record<string, Record<WorkState, number>>>;
  stats(): Promise<ManifestStats>;
}

/** One item of a `completeMany` batch. */
export interface CompletionRequest {
  claim: Claim;
  effects?: Effects;
}

/** How one item of a batch ended: recorded, or the error `complete` would have thrown. */
export type CompletionOutcome =
  | { claim: Claim; ok: true }
  | { claim: Claim; ok: false; error: unknown };
