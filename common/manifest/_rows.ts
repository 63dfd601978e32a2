/**
 * Column lists and row → record mappers for the manifest tables. Column names are snake_case in
 * SQL and camelCase in the records of `mod.ts`.
 *
 * @module
 */
import type {
  AnnotationInput,
  AnnotationRow,
  AugmentationRow,
  BBox,
  Claim,
  ImageRow,
  ImageStatus,
  PredictionBox,
  PredictionRow,
  TrainingRunRow,
  VariantRow,
  VariantSpecRow,
  VariantTransform,
  WorkRow,
  WorkState,
} from "./contract.ts";
import type { SqlRow } from "./_driver.ts";
import { fromJson, fromJsonOrNull, toNumber, toNumberOrNull, toStringOrNull } from "./_columns.ts";

export const IMAGE_COLUMNS = "id, source_uri, source_key, source_etag, source_version, " +
  "source_sequencer, sha256, size, width, height, format, dataset_uri, status, error, " +
  "duplicate_of, created_at, updated_at, decode_warning";

export function toImage(r: SqlRow): ImageRow {
  return {
    id: String(r.id),
    sourceUri: String(r.source_uri),
    sourceKey: String(r.source_key),
    sourceEtag: toStringOrNull(r.source_etag),
    sourceVersion: toStringOrNull(r.source_version),
    sourceSequencer: toStringOrNull(r.source_sequencer),
    sha256: toStringOrNull(r.sha256),
    size: toNumberOrNull(r.size),
    width: toNumberOrNull(r.width),
    height: toNumberOrNull(r.height),
    format: toStringOrNull(r.format),
    datasetUri: toStringOrNull(r.dataset_uri),
    status: String(r.status) as ImageStatus,
    error: toStringOrNull(r.error),
    duplicateOf: toStringOrNull(r.duplicate_of),
    createdAt: toNumber(r.created_at),
    updatedAt: toNumber(r.updated_at),
    decodeWarning: toStringOrNull(r.decode_warning),
  };
}

export const ANNOTATION_COLUMNS =
  "id, image_id, source, label, bbox, polygon, rotation, score, source_ref, created_at";

export function toAnnotation(r: SqlRow): AnnotationRow {
  return {
    id: toNumber(r.id),
    imageId: String(r.image_id),
    source: String(r.source),
    label: String(r.label),
    bbox: fromJson<BBox>(r.bbox),
    polygon: fromJsonOrNull<[number, number][]>(r.polygon),
    rotation: toNumberOrNull(r.rotation),
    score: toNumberOrNull(r.score),
    sourceRef: toStringOrNull(r.source_ref),
    createdAt: toNumber(r.created_at),
  };
}

export const VARIANT_SPEC_COLUMNS = "name, spec_hash, version, spec, created_at";

export function toVariantSpec(r: SqlRow): VariantSpecRow {
  return {
    name: String(r.name),
    specHash: String(r.spec_hash),
    version: toNumber(r.version),
    spec: fromJson<unknown>(r.spec),
    createdAt: toNumber(r.created_at),
  };
}

export const VARIANT_COLUMNS = "image_id, name, spec_hash, version, uri, width, height, bytes, " +
  "sha256, format, transform, created_at";

export function toVariant(r: SqlRow): VariantRow {
  return {
    imageId: String(r.image_id),
    name: String(r.name),
    specHash: String(r.spec_hash),
    version: toNumber(r.version),
    uri: String(r.uri),
    width: toNumber(r.width),
    height: toNumber(r.height),
    bytes: toNumber(r.bytes),
    sha256: String(r.sha256),
    format: String(r.format),
    transform: fromJson<VariantTransform>(r.transform),
    createdAt: toNumber(r.created_at),
  };
}

export const AUGMENTATION_COLUMNS = "id, parent_image_id, recipe, aug_index, seed, params, uri, " +
  "sha256, width, height, annotations, created_at";

export function toAugmentation(r: SqlRow): AugmentationRow {
  return {
    id: String(r.id),
    parentImageId: String(r.parent_image_id),
    recipe: String(r.recipe),
    index: toNumber(r.aug_index),
    seed: toNumber(r.seed),
    params: fromJson<unknown>(r.params),
    uri: String(r.uri),
    sha256: String(r.sha256),
    width: toNumber(r.width),
    height: toNumber(r.height),
    annotations: fromJson<AnnotationInput[]>(r.annotations),
    createdAt: toNumber(r.created_at),
  };
}

export const PREDICTION_COLUMNS =
  "image_id, model_name, model_version, boxes, score, uri, created_at, registry";

export function toPrediction(r: SqlRow): PredictionRow {
  return {
    imageId: String(r.image_id),
    modelName: String(r.model_name),
    modelVersion: String(r.model_version),
    boxes: fromJson<PredictionBox[]>(r.boxes),
    score: toNumber(r.score),
    uri: toStringOrNull(r.uri),
    createdAt: toNumber(r.created_at),
    registry: String(r.registry ?? ""),
  };
}

export const TRAINING_RUN_COLUMNS = "id, snapshot_id, tracker, run_id, model_name, " +
  "model_version, status, params, metrics, created_at, updated_at";

/** JSON has no NaN; metrics such as a diverged loss are stored as the string "NaN". */
export function encodeMetrics(metrics: Record<string, number>): string {
  return JSON.stringify(metrics, (_k, v) => typeof v === "number" && Number.isNaN(v) ? "NaN" : v);
}

function decodeMetrics(v: unknown): Record<string, number> {
  const raw = fromJson<Record<string, number | string>>(v);
  return Object.fromEntries(Object.entries(raw).map(([k, x]) => [k, Number(x)]));
}

export function toTrainingRun(r: SqlRow): TrainingRunRow {
  return {
    id: String(r.id),
    snapshotId: String(r.snapshot_id),
    tracker: String(r.tracker),
    runId: toStringOrNull(r.run_id),
    modelName: toStringOrNull(r.model_name),
    modelVersion: toStringOrNull(r.model_version),
    status: String(r.status),
    params: fromJson<Record<string, string>>(r.params),
    metrics: decodeMetrics(r.metrics),
    createdAt: toNumber(r.created_at),
    updatedAt: toNumber(r.updated_at),
  };
}

export const WORK_COLUMNS = "stage, item_id, state, lease_owner, lease_until, attempts, " +
  "not_before, last_error, updated_at";

export function toWork(r: SqlRow): WorkRow {
  return {
    stage: String(r.stage),
    itemId: String(r.item_id),
    state: String(r.state) as WorkState,
    leaseOwner: toStringOrNull(r.lease_owner),
    leaseUntil: toNumberOrNull(r.lease_until),
    attempts: toNumber(r.attempts),
    notBefore: toNumber(r.not_before),
    lastError: toStringOrNull(r.last_error),
    updatedAt: toNumber(r.updated_at),
  };
}

/** A leased work row (`RETURNING stage, item_id, lease_owner, lease_token, ...`) as a claim. */
export function toClaim(r: SqlRow): Claim {
  return {
    stage: String(r.stage),
    itemId: String(r.item_id),
    owner: String(r.lease_owner),
    token: String(r.lease_token),
    attempts: toNumber(r.attempts),
    leaseUntil: toNumber(r.lease_until),
  };
}

/** Claims in queue order: by `not_before`, then item id. */
export function inQueueOrder(leased: { claim: Claim; notBefore: number }[]): Claim[] {
  return leased
    .sort((a, b) =>
      a.notBefore - b.notBefore ||
      (a.claim.itemId < b.claim.itemId ? -1 : a.claim.itemId > b.claim.itemId ? 1 : 0)
    )
    .map((l) => l.claim);
}
