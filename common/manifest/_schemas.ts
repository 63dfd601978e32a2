/**
 * zod schemas for what callers hand the manifest store. Validation happens before any
 * transaction starts, so a malformed argument never writes anything.
 *
 * @module
 */
import { z } from "zod";
import { ManifestInputError } from "./errors.ts";

const finite = z.number().refine(Number.isFinite, "expected a finite number");
const text = z.string().min(1);
const count = z.number().int().nonnegative();
const dim = z.number().int().positive();

export const stageSchema = text;

export const sourceObjectSchema = z.object({
  sourceUri: text,
  sourceKey: z.string(),
  etag: z.string().nullish(),
  versionId: z.string().nullish(),
  sequencer: z.string().nullish(),
  size: count.nullish(),
});

export const annotationSchema = z.object({
  label: text,
  bbox: z.tuple([finite, finite, finite, finite]),
  polygon: z.array(z.tuple([finite, finite])).nullish(),
  rotation: finite.nullish(),
  score: finite.nullish(),
  sourceRef: z.string().nullish(),
});

const transformSchema = z.object({
  srcWidth: dim,
  srcHeight: dim,
  width: dim,
  height: dim,
  scaleX: finite,
  scaleY: finite,
  padX: finite,
  padY: finite,
  cropX: finite,
  cropY: finite,
});

export const variantSchema = z.object({
  imageId: text,
  name: text,
  specHash: text,
  version: z.number().int().positive(),
  uri: text,
  width: dim,
  height: dim,
  bytes: count,
  sha256: text,
  format: text,
  transform: transformSchema,
});

export const augmentationSchema = z.object({
  parentImageId: text,
  recipe: text,
  index: count,
  seed: z.number().int(),
  params: z.unknown(),
  uri: text,
  sha256: text,
  width: dim,
  height: dim,
  annotations: z.array(annotationSchema),
});

export const predictionSchema = z.object({
  imageId: text,
  modelName: text,
  modelVersion: text,
  boxes: z.array(z.object({
    label: text,
    bbox: z.tuple([finite, finite, finite, finite]),
    score: finite,
  })),
  score: finite,
  uri: z.string().nullish(),
  registry: z.string().optional(),
});

export const imageStatusSchema = z.enum(["pending", "ingested", "failed", "deleted", "duplicate"]);

export const effectsSchema = z.object({
  image: z.object({
    id: text.optional(),
    status: imageStatusSchema.optional(),
    sha256: z.string().nullish(),
    size: count.nullish(),
    width: dim.nullish(),
    height: dim.nullish(),
    format: z.string().nullish(),
    datasetUri: z.string().nullish(),
    duplicateOf: z.string().nullish(),
    error: z.string().nullish(),
    decodeWarning: z.string().nullish(),
  }).optional(),
  variants: z.array(variantSchema).optional(),
  annotations: z.array(z.object({
    imageId: text,
    source: text,
    items: z.array(annotationSchema),
  })).optional(),
  augmentations: z.array(augmentationSchema).optional(),
  predictions: z.array(predictionSchema).optional(),
  enqueue: z.array(z.object({ stage: stageSchema, itemId: text })).optional(),
});

export const claimOptionsSchema = z.object({
  max: z.number().int().positive().max(10_000),
  leaseMs: z.number().int().positive(),
  owner: text,
  maxAttempts: z.number().int().positive().default(5),
});

export const failOptionsSchema = z.object({
  retry: z.boolean().default(true),
  delayMs: count.optional(),
  maxAttempts: z.number().int().positive().default(5),
});

export const snapshotItemsSchema = z.array(z.object({
  imageId: text,
  split: z.enum(["train", "val"]),
}));

export const trainingRunSchema = z.object({
  id: text,
  snapshotId: text,
  tracker: text,
  runId: z.string().nullable(),
  modelName: z.string().nullable(),
  modelVersion: z.string().nullable(),
  status: text,
  params: z.record(z.string(), z.string()),
  metrics: z.record(z.string(), z.union([z.number(), z.nan()])),
});

export const listLimitSchema = z.number().int().positive().max(100_000);

/** `pruneDoneWork` options: a cut-off time and a bounded batch. */
export const pruneSchema = z.object({
  doneBefore: z.number().int().nonnegative(),
  limit: z.number().int().positive().max(100_000).default(10_000),
});

/** Parses `value` or throws a {@link ManifestInputError} naming `what` and every problem. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ManifestInputError(what, z.prettifyError(result.error));
  return result.data;
}
