/**
 * The infer stage's own configuration section (`infer` in the config file, `SLUICE_INFER_*` in
 * the environment, `--infer-*` flags). The shared sections (manifest, objectStore, staging,
 * worker, http, log, s3, mlflow) come from common/config; the registered model's name is
 * `mlflow.modelName`.
 *
 * @example
 * ```ts
 * const config = await loadConfig({ stage: "infer", stageSchema: InferSettingsSchema });
 * config.stage.alias; // "champion"
 * ```
 * @module
 */
import { z } from "zod";
import { secret, type StageConfig } from "../../common/config/mod.ts";

/** Execution providers the session may use; `auto` tries CUDA first when it can exist. */
export const EXECUTION_PROVIDERS = ["auto", "cpu", "cuda"] as const;
/** One of {@link EXECUTION_PROVIDERS}. */
export type ExecutionProviderChoice = typeof EXECUTION_PROVIDERS[number];

const KEY_PREFIX = /^([A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*)?$/;
const TAG = /^[^=\s]+=[^=]*$/;

function httpUrl(what: string) {
  return z.string().refine((v) => {
    if (!URL.canParse(v)) return false;
    const p = new URL(v).protocol;
    return p === "http:" || p === "https:";
  }, { error: `expected an http(s):// URL of ${what}` });
}

/** The `infer` section. */
export const InferSettingsSchema = z.strictObject({
  modelUri: z.string().regex(/^(models:\/|runs:\/|s3:\/\/|file:\/\/)/, {
    error: "expected models:/name@alias, models:/name/N, runs:/<run>/<path>, s3:// or file://",
  }).optional().describe(
    "Explicit model (models:/name@alias, models:/name/N, runs:/..., s3://..., file://...); " +
      "unset = the approved version of mlflow.modelName",
  ),
  alias: z.string().min(1).default("champion").describe(
    "Registry alias that names the approved version (checked first)",
  ),
  approvedTag: z.string().regex(TAG, { error: "expected key=value, e.g. approved=true" })
    .default("approved=true").describe(
      "Version tag that marks approval when the alias is unset (newest tagged version wins)",
    ),
  stage: z.string().min(1).default("Production").describe(
    "Legacy registry stage used when neither the alias nor the tag names a version",
  ),
  aliasCheckSeconds: z.number().min(0.05, { error: "expected at least 0.05 seconds" }).default(30)
    .describe("How often the alias / approval is re-checked (and new images enqueued)"),
  batchSize: z.int().min(1).max(1024).default(8).describe("Images per inference batch"),
  lingerMs: z.int().min(0).max(10_000).default(25).describe(
    "How long a partial batch waits for more images before it runs",
  ),
  inFlight: z.int().min(0).max(4096).default(0).describe(
    "Images claimed and prepared at once (0 = 2 x batchSize, so decoding the next batch " +
      "overlaps inference of the current one)",
  ),
  scoreThreshold: z.number().min(0).max(1).default(0.25).describe(
    "Boxes scoring below this are not recorded",
  ),
  nmsIou: z.number().min(0).max(1).optional().describe(
    "Class-wise NMS IoU (unset = the model card's; NMS is skipped when the graph does it)",
  ),
  executionProvider: z.enum(EXECUTION_PROVIDERS).default("auto").describe(
    "onnxruntime execution provider: auto (CUDA when offered, else CPU), cpu, or cuda " +
      "(CUDA first; the CPU, with a warning, when CUDA cannot start)",
  ),
  intraOpThreads: z.int().min(0).max(256).default(0).describe(
    "onnxruntime intra-op threads (0 = onnxruntime's default, one per core)",
  ),
  interOpThreads: z.int().min(0).max(256).default(0).describe(
    "onnxruntime inter-op threads (0 = onnxruntime's default)",
  ),
  includeAnnotated: z.boolean().default(false).describe(
    "Also predict images that already have human annotations",
  ),
  prefix: z.string().regex(KEY_PREFIX, {
    error: "expected a key prefix like predictions (no leading or trailing /)",
  }).default("predictions").describe("Key prefix of prediction outputs in the object store"),
  imageUrlPrefix: httpUrl("an image server or CDN base").optional().describe(
    "Label Studio task image URL base replacing the object store URL (unset = the stored URI)",
  ),
  labelStudioUrl: httpUrl("a Label Studio server").optional().describe(
    "Label Studio server to push pre-annotated tasks to (with labelStudioToken and ProjectId)",
  ),
  labelStudioToken: secret(z.string().min(1)).optional().describe(
    "Label Studio API token: a legacy token or a Personal Access Token (see labelStudioAuth)",
  ),
  labelStudioProjectId: z.int().min(1).optional().describe("Label Studio project to import into"),
  labelStudioTopK: z.int().min(1).optional().describe(
    "Push only the K tasks of highest review priority per batch (unset = all)",
  ),
  labelStudioAuth: z.enum(["auto", "token", "pat"]).default("auto").describe(
    "Token kind: token (legacy, Authorization: Token), pat (refresh flow, Bearer), auto (JWT = pat)",
  ),
  labelStudioBatchSize: z.int().min(1).max(10_000).default(500).describe(
    "Tasks per Label Studio import request",
  ),
  labelStudioLabelConfig: z.string().min(1).optional().describe(
    "Label Studio label config XML file: from_name/to_name and labels of pre-annotations",
  ),
  maxBytes: z.int().min(1).default(256 * 1024 * 1024).describe(
    "Largest image object accepted, bytes",
  ),
});

/** The infer section as written (defaults may be left out). */
export type InferSettingsInput = z.input<typeof InferSettingsSchema>;
/** The validated infer section. */
export type InferSettings = z.output<typeof InferSettingsSchema>;
/** The whole configuration the infer stage runs with. */
export type InferConfig = StageConfig<typeof InferSettingsSchema>;

/**
 * Images in flight for a configuration: `inFlight`, or twice the batch size.
 *
 * @example
 * ```ts
 * inFlightFor({ inFlight: 0, batchSize: 8 }); // 16
 * ```
 */
export function inFlightFor(s: Pick<InferSettings, "inFlight" | "batchSize">): number {
  return s.inFlight > 0 ? s.inFlight : 2 * s.batchSize;
}

/**
 * Splits `approvedTag` into key and value.
 *
 * @example
 * ```ts
 * parseApprovedTag("approved=true"); // { key: "approved", value: "true" }
 * ```
 */
export function parseApprovedTag(tag: string): { key: string; value: string } {
  const i = tag.indexOf("=");
  return { key: tag.slice(0, i), value: tag.slice(i + 1) };
}
