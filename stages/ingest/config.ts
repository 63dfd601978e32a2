/**
 * The `ingest` section of the configuration (file section `ingest`, env `SLUICE_INGEST_<KEY>`,
 * flags `--ingest-<key>`): discovery, limits, publishing, augmentation, annotations, events.
 * Everything has a default, so `sluice-ingest once` works on an empty configuration.
 *
 * @example
 * ```ts
 * import { loadConfig } from "../../common/config/mod.ts";
 * const config = await loadConfig({ stage: "ingest", stageSchema: IngestSettingsSchema, env: {} });
 * config.stage.pageSize; // 1000
 * ```
 * @module
 */
import { z } from "zod";
import { secret, type StageConfig } from "../../common/config/mod.ts";
import { type RecipeInput, RecipeSchema } from "../../common/images/augment.ts";
import { validateKey } from "../../common/objectstore/mod.ts";
import { IMAGE_URL_MODES } from "./image_urls.ts";
import { LABEL_STUDIO_REVIEW_SETTINGS } from "./labelstudio_review_config.ts";
import { DISCOVERY_SETTINGS } from "./discovery_mode.ts";

/** Annotation file formats the stage reads; `auto` tells them apart by shape. */
export const ANNOTATION_FORMATS = ["labelstudio", "coco"] as const;
export type AnnotationFormat = typeof ANNOTATION_FORMATS[number];

/** One configured annotation file: a key in the source store, or a file/s3/http(s) URI. */
export const AnnotationFileSchema = z.union([
  z.string().min(1, { error: "expected a key or URI of an annotation file" }),
  z.strictObject({
    uri: z.string().min(1, { error: "expected a key or URI of an annotation file" }),
    format: z.enum([...ANNOTATION_FORMATS, "auto"]).default("auto"),
  }),
]);
export type AnnotationFileInput = z.input<typeof AnnotationFileSchema>;

/** The default augmentation recipe: mild, box-preserving changes. */
export const DEFAULT_RECIPE: RecipeInput = {
  name: "default",
  ops: [
    { op: "hflip", p: 0.5 },
    { op: "rotate", p: 0.3, degrees: [-10, 10] },
    { op: "color", p: 0.8 },
    { op: "blur", p: 0.1 },
  ],
};

function keyPrefix(what: string, fallback: string) {
  return z.string().refine((p) => {
    try {
      validateKey(p);
      return true;
    } catch {
      return false;
    }
  }, {
    error: `expected a relative key prefix for ${what} (no leading "/", no "." or ".." segment)`,
  }).transform((p) => p.replace(/\/+$/, "")).default(fallback);
}

/** The stage's own settings. */
export const IngestSettingsSchema = z.strictObject({
  prefix: z.string().refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), {
    error: 'expected a relative key prefix without ".." segments',
  }).default("").describe("Only source keys starting with this (relative to source.url)"),
  pageSize: z.int().min(1).max(1000).default(1000).describe(
    "Keys per ListObjectsV2 page (S3 caps it at 1000)",
  ),
  ...DISCOVERY_SETTINGS,
  pollIntervalMs: z.int().min(100).default(60_000).describe(
    "poll mode: wait (ms) between listing passes",
  ),
  reconcileIntervalMs: z.int().min(0).default(900_000).describe(
    "events mode: wait (ms) between reconciling listings (0 = only at start-up)",
  ),
  maxBytes: z.int().min(1).default(100 * 1024 * 1024).describe(
    "Largest source object accepted, bytes",
  ),
  maxPixels: z.int().min(1).default(100_000_000).describe(
    "Largest width × height accepted (decompression-bomb guard)",
  ),
  keepMetadata: z.boolean().default(false).describe(
    "Keep EXIF (GPS included), XMP and IPTC in published images (default: stripped from all)",
  ),
  failOn: z.enum(["truncated", "error", "warning"]).default("error").describe(
    "How strict the full decode is: truncated, error, or warning",
  ),
  renderVariants: z.boolean().default(false).describe(
    "Fused ingest: the verifying decode also renders normalize's variants (normalize section of " +
      "the same config file/env) and records them, so normalize decodes nothing for them",
  ),
  datasetPrefix: keyPrefix("dataset images", "images").describe(
    "Key prefix of published images: <prefix>/<aa>/<sha256>.<ext>",
  ),
  augmentCopies: z.int().min(0).max(100).default(0).describe(
    "Augmented copies made per ingested image",
  ),
  augmentRecipe: RecipeSchema.prefault(DEFAULT_RECIPE)
    .describe("Augmentation recipe (JSON: name, ops, minVisible, fill, output)"),
  augmentPrefix: keyPrefix("augmented copies", "augmented").describe(
    "Key prefix of augmented copies: <prefix>/<parent>/<recipe>/<index>-<seed>.<ext>",
  ),
  annotations: z.array(AnnotationFileSchema).default([]).describe(
    'Annotation files imported in once/poll mode: keys or URIs, or {"uri", "format"} (JSON)',
  ),
  labelStudioChoose: z.enum(["newest", "oldest", "first", "merge"]).default("newest").describe(
    "Label Studio tasks with several annotations: which wins (newest, oldest, first) or merge",
  ),
  boxOutOfBounds: z.enum(["clamp", "drop"]).default("clamp").describe(
    "Imported boxes partly outside their image: clamp or drop",
  ),
  labels: z.array(z.string().min(1)).optional().describe(
    "Label allowlist for imported annotations (JSON list; unset = any label)",
  ),
  labelConfig: z.string().min(1).optional().describe(
    "Label Studio label config XML file: label ids/order, aliases, from_name/to_name of exports",
  ),
  labelStudioImageUrl: z.enum(IMAGE_URL_MODES).default("auto").describe(
    "Label Studio data.image: s3, presigned, prefix, local-files, or auto (s3 for S3 stores)",
  ),
  imageUrlPrefix: z.url({ protocol: /^https?$/ }).optional().describe(
    "labelStudioImageUrl prefix: base URL of an image server or CDN in front of the store",
  ),
  imageUrlExpirySeconds: z.int().min(1).max(604_800).default(604_800).describe(
    "labelStudioImageUrl presigned: URL lifetime in seconds (at most 7 days)",
  ),
  localFilesRoot: z.string().min(1).default("/").describe(
    "labelStudioImageUrl local-files: Label Studio's LOCAL_FILES_DOCUMENT_ROOT",
  ),
  minBoxSize: z.number().min(0).default(0).describe(
    "Imported boxes smaller than this (px, either side) are dropped",
  ),
  webhook: z.boolean().default(true).describe("events mode: accept POST /events notifications"),
  webhookToken: secret(z.string().min(1)).optional().describe(
    "Bearer token POST /events must carry (unset = the webhook is not served)",
  ),
  insecureWebhook: z.boolean().default(false).describe(
    "Serve POST /events without a token (authentication OFF, logged as an error)",
  ),
  eventBucket: z.string().min(1).optional().describe(
    "Bucket events must name (default: the bucket of source.url)",
  ),
  maxEventBodyBytes: z.int().min(1024).default(8 * 1024 * 1024).describe(
    "Largest POST /events body accepted, bytes",
  ),
  sqsQueueUrl: z.url({ protocol: /^https?$/ }).optional().describe(
    "events mode: SQS queue with S3 notifications (unset = no SQS consumer)",
  ),
  sqsEndpoint: z.url({ protocol: /^https?$/ }).optional().describe(
    "SQS endpoint for emulators (unset = AWS)",
  ),
  sqsWaitSeconds: z.int().min(0).max(20).default(20).describe("SQS long-poll wait, seconds"),
  sqsMaxMessages: z.int().min(1).max(10).default(10).describe("SQS messages per receive"),
  sqsVisibilityTimeoutS: z.int().min(0).max(43_200).optional().describe(
    "SQS visibility timeout per receive, seconds (unset = the queue's)",
  ),
  ...LABEL_STUDIO_REVIEW_SETTINGS,
});

/** What the section parses to. */
export type IngestSettings = z.output<typeof IngestSettingsSchema>;
/** The whole configuration the ingest stage runs with. */
export type IngestConfig = StageConfig<typeof IngestSettingsSchema>;
