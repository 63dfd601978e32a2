/**
 * MLflow's REST wire formats (as MLflow 2.17 sends them, see ENVIRONMENT.md "MLflow contract")
 * and their conversion to the tracker's types. Every response is validated here, so a surprising
 * server answer fails with a message naming the field instead of an `undefined` further on.
 *
 * Quirks handled: empty lists are omitted (`tags`, `aliases`, `files`, `metrics`, `runs`…), ids and
 * versions may arrive as numbers, metric values arrive as numbers or as the strings "NaN",
 * "Infinity", "-Infinity", and int64 fields may arrive as strings.
 * @module
 */
import { z } from "zod";
import type {
  ArtifactEntry,
  DatasetInput,
  Experiment,
  Metric,
  ModelVersion,
  ModelVersionStatus,
  RegisteredModel,
  Run,
  RunInfo,
  RunStatus,
} from "./tracker.ts";

const id = z.union([z.string(), z.number()]).transform((v) => String(v));
const int64 = z.union([z.number(), z.string().regex(/^-?\d+$/)]).transform((v) => Number(v));
const str = z.string().nullish().transform((v) => v ?? "");
const keyValues = z.array(z.object({ key: z.string(), value: z.string().nullish() })).optional()
  .transform((kvs) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, kv.value ?? ""])));

/** A metric value as MLflow serialises it: a number, or "NaN"/"Infinity"/"-Infinity". */
export const metricValue = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === "number") return v;
  const n = parseMetricString(v);
  if (n === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `expected a number or "NaN"/"Infinity", found "${v}"`,
    });
    return z.NEVER;
  }
  return n;
});

/** Parses "NaN", "Infinity", "-Infinity", "inf", "nan" and decimal strings; undefined otherwise. */
export function parseMetricString(v: string): number | undefined {
  const s = v.trim().toLowerCase();
  if (s === "nan" || s === "+nan" || s === "-nan") return NaN;
  if (s === "inf" || s === "infinity" || s === "+inf" || s === "+infinity") return Infinity;
  if (s === "-inf" || s === "-infinity") return -Infinity;
  if (s === "" || !/^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

/** How a metric value goes on the wire: JSON has no NaN/Infinity, MLflow accepts these strings. */
export function metricWireValue(v: number): number | string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  return v;
}

const metricWire = z.object({
  key: z.string(),
  value: metricValue,
  timestamp: int64.optional(),
  step: int64.optional(),
}).transform((m): Metric => ({
  key: m.key,
  value: m.value,
  timestamp: m.timestamp ?? 0,
  step: m.step ?? 0,
}));

const RUN_STATUSES = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"] as const;

const experimentWire = z.object({
  experiment_id: id,
  name: z.string(),
  artifact_location: str,
  lifecycle_stage: z.enum(["active", "deleted"]).optional(),
  creation_time: int64.optional(),
  last_update_time: int64.optional(),
  tags: keyValues,
}).transform((e): Experiment => ({
  experimentId: e.experiment_id,
  name: e.name,
  artifactLocation: e.artifact_location,
  lifecycleStage: e.lifecycle_stage ?? "active",
  creationTime: e.creation_time,
  lastUpdateTime: e.last_update_time,
  tags: e.tags,
}));

const runInfoWire = z.object({
  run_id: id.optional(),
  run_uuid: id.optional(),
  experiment_id: id,
  run_name: str,
  user_id: str,
  status: z.enum(RUN_STATUSES).optional(),
  start_time: int64.optional(),
  end_time: int64.nullish(),
  artifact_uri: str,
  lifecycle_stage: z.enum(["active", "deleted"]).optional(),
}).transform((r, ctx): RunInfo => {
  const runId = r.run_id ?? r.run_uuid;
  if (!runId) {
    ctx.addIssue({ code: "custom", message: "expected run_id or run_uuid" });
    return z.NEVER;
  }
  return {
    runId,
    experimentId: r.experiment_id,
    runName: r.run_name,
    userId: r.user_id,
    status: (r.status ?? "RUNNING") as RunStatus,
    startTime: r.start_time ?? 0,
    endTime: r.end_time ?? undefined,
    artifactUri: r.artifact_uri,
    lifecycleStage: r.lifecycle_stage ?? "active",
  };
});

const datasetInputWire = z.object({
  tags: keyValues,
  dataset: z.object({
    name: str,
    digest: str,
    source_type: str,
    source: str,
    schema: z.string().optional(),
    profile: z.string().optional(),
  }),
}).transform((d): DatasetInput => ({
  tags: d.tags,
  dataset: {
    name: d.dataset.name,
    digest: d.dataset.digest,
    sourceType: d.dataset.source_type,
    source: d.dataset.source,
    ...(d.dataset.schema !== undefined ? { schema: d.dataset.schema } : {}),
    ...(d.dataset.profile !== undefined ? { profile: d.dataset.profile } : {}),
  },
}));

const runWire = z.object({
  info: runInfoWire,
  data: z.object({
    metrics: z.array(metricWire).optional(),
    params: keyValues,
    tags: keyValues,
  }).optional(),
  inputs: z.object({ dataset_inputs: z.array(datasetInputWire).optional() }).optional(),
}).transform((r): Run => ({
  info: r.info,
  params: r.data?.params ?? {},
  tags: r.data?.tags ?? {},
  metrics: Object.fromEntries((r.data?.metrics ?? []).map((m) => [m.key, m])),
  ...(r.inputs?.dataset_inputs?.length ? { inputs: r.inputs.dataset_inputs } : {}),
}));

/** The wire form of {@link DatasetInput}s for `runs/log-inputs`. */
export function datasetInputsWire(inputs: DatasetInput[]): unknown[] {
  return inputs.map((i) => ({
    tags: toKeyValues(i.tags) ?? [],
    dataset: {
      name: i.dataset.name,
      digest: i.dataset.digest,
      source_type: i.dataset.sourceType,
      source: i.dataset.source,
      schema: i.dataset.schema,
      profile: i.dataset.profile,
    },
  }));
}

const modelVersionWire = z.object({
  name: z.string(),
  version: id,
  creation_timestamp: int64.optional(),
  last_updated_timestamp: int64.optional(),
  current_stage: str,
  description: str,
  source: str,
  run_id: str,
  status: z.enum(["PENDING_REGISTRATION", "FAILED_REGISTRATION", "READY"]).optional(),
  status_message: z.string().nullish(),
  tags: keyValues,
  aliases: z.array(z.string()).optional(),
}).transform((v): ModelVersion => ({
  name: v.name,
  version: v.version,
  source: v.source,
  runId: v.run_id,
  status: (v.status ?? "READY") as ModelVersionStatus,
  statusMessage: v.status_message ?? undefined,
  currentStage: v.current_stage || "None",
  description: v.description,
  tags: v.tags,
  aliases: v.aliases ?? [],
  creationTimestamp: v.creation_timestamp ?? 0,
  lastUpdatedTimestamp: v.last_updated_timestamp ?? v.creation_timestamp ?? 0,
}));

const registeredModelWire = z.object({
  name: z.string(),
  creation_timestamp: int64.optional(),
  last_updated_timestamp: int64.optional(),
  description: str,
  tags: keyValues,
  aliases: z.array(z.object({ alias: z.string(), version: id })).optional(),
}).transform((m): RegisteredModel => ({
  name: m.name,
  description: m.description,
  tags: m.tags,
  aliases: Object.fromEntries((m.aliases ?? []).map((a) => [a.alias, a.version])),
  creationTimestamp: m.creation_timestamp ?? 0,
  lastUpdatedTimestamp: m.last_updated_timestamp ?? m.creation_timestamp ?? 0,
}));

const fileInfoWire = z.object({
  path: z.string(),
  is_dir: z.boolean().optional(),
  file_size: int64.optional(),
}).transform((f): ArtifactEntry => {
  const e: ArtifactEntry = { path: f.path, isDir: f.is_dir ?? false };
  if (f.file_size !== undefined && !e.isDir) e.fileSize = f.file_size;
  return e;
});

const token = z.string().nullish().transform((v) => v || undefined);

/** Response schemas, one per endpoint family. */
export const Responses = {
  createExperiment: z.object({ experiment_id: id }),
  experiment: z.object({ experiment: experimentWire }),
  experiments: z.object({
    experiments: z.array(experimentWire).optional().transform((v) => v ?? []),
    next_page_token: token,
  }),
  run: z.object({ run: runWire }),
  runs: z.object({
    runs: z.array(runWire).optional().transform((v) => v ?? []),
    next_page_token: token,
  }),
  runInfo: z.object({ run_info: runInfoWire }),
  metricHistory: z.object({
    metrics: z.array(metricWire).optional().transform((v) => v ?? []),
    next_page_token: token,
  }),
  runArtifacts: z.object({
    root_uri: z.string().optional(),
    files: z.array(fileInfoWire).optional().transform((v) => v ?? []),
    next_page_token: token,
  }),
  proxyArtifacts: z.object({
    files: z.array(fileInfoWire).optional().transform((v) => v ?? []),
  }),
  registeredModel: z.object({ registered_model: registeredModelWire }),
  registeredModels: z.object({
    registered_models: z.array(registeredModelWire).optional().transform((v) => v ?? []),
    next_page_token: token,
  }),
  modelVersion: z.object({ model_version: modelVersionWire }),
  modelVersions: z.object({
    model_versions: z.array(modelVersionWire).optional().transform((v) => v ?? []),
    next_page_token: token,
  }),
  downloadUri: z.object({ artifact_uri: z.string() }),
  empty: z.unknown(),
} as const;

/** `{key, value}` pairs as MLflow's requests spell them; undefined when there are none. */
export function toKeyValues(
  map: Record<string, string> | undefined,
): { key: string; value: string }[] | undefined {
  const entries = Object.entries(map ?? {});
  return entries.length ? entries.map(([key, value]) => ({ key, value })) : undefined;
}
