/**
 * The trainer's stdout protocol (stages/train/trainer/events.py): one JSON object per line with a
 * `type` of param, metric, progress, shard, artifact, bench, summary or error. Non-finite floats
 * arrive as Python spells them (`"nan"`, `"inf"`, `"-inf"`) and become numbers here.
 *
 * @example
 * ```ts
 * const ev = parseTrainerLine('{"type":"metric","key":"train_loss","value":0.5,"step":10,"epoch":1}');
 * if (ev?.type === "metric") console.log(ev.key, ev.value);
 * ```
 * @module
 */
import { z } from "zod";

/** A float that may arrive as "nan" / "inf" / "-inf" (or MLflow's "NaN"). */
const float = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === "number") return v;
  const s = v.trim().toLowerCase();
  if (s === "nan") return NaN;
  if (s === "inf" || s === "infinity" || s === "+inf") return Infinity;
  if (s === "-inf" || s === "-infinity") return -Infinity;
  const n = Number(s);
  if (s === "" || Number.isNaN(n)) {
    ctx.addIssue({ code: "custom", input: v, message: "expected a number" });
    return z.NEVER;
  }
  return n;
});

const step = z.number().int().nonnegative();

export const ParamEventSchema = z.object({
  type: z.literal("param"),
  key: z.string().min(1),
  value: z.union([z.string(), z.number(), z.boolean()]).transform(String),
});
export const MetricEventSchema = z.object({
  type: z.literal("metric"),
  key: z.string().min(1),
  value: float,
  step: step.default(0),
  epoch: z.number().int().optional(),
});
export const ProgressEventSchema = z.object({
  type: z.literal("progress"),
  epoch: z.number().int(),
  step,
  images_per_sec: float,
  elapsed_s: float,
  progress: float,
});
export const ShardEventSchema = z.object({
  type: z.literal("shard"),
  rank: z.number().int().nonnegative(),
  world_size: z.number().int().positive(),
  shard: z.string().nullable(),
  count: z.number().int().nonnegative(),
  image_ids: z.array(z.union([z.number(), z.string()])),
});
export const ArtifactEventSchema = z.object({
  type: z.literal("artifact"),
  path: z.string().min(1),
});
export const SummaryEventSchema = z.object({
  type: z.literal("summary"),
  map50: float,
  map50_95: float,
  ap_definition: z.string().optional(),
  per_class: z.array(z.record(z.string(), z.unknown())).default([]),
  val_images: z.number().int(),
  train_images: z.number().int(),
  steps: z.number().int(),
  epochs: z.number().int(),
  train_seconds: float,
  images_per_sec: float,
  world_size: z.number().int(),
  device: z.string(),
  num_params: z.number().int(),
  model: z.string(),
});
export const BenchEventSchema = z.object({
  type: z.literal("bench"),
  images_per_sec: float,
  batch_size: z.number().int(),
  input_size: z.number().int(),
  threads: z.number().int(),
  device: z.string(),
  steps: z.number().int(),
  median_step_s: float,
  num_params: z.number().int(),
  torch: z.string(),
});
export const ErrorEventSchema = z.object({
  type: z.literal("error"),
  code: z.string(),
  message: z.string(),
});

/** Every event the launcher understands. */
export const TrainerEventSchema = z.discriminatedUnion("type", [
  ParamEventSchema,
  MetricEventSchema,
  ProgressEventSchema,
  ShardEventSchema,
  ArtifactEventSchema,
  SummaryEventSchema,
  BenchEventSchema,
  ErrorEventSchema,
]);
export type TrainerEvent = z.output<typeof TrainerEventSchema>;
export type MetricEvent = z.output<typeof MetricEventSchema>;
export type ProgressEvent = z.output<typeof ProgressEventSchema>;
export type ShardEvent = z.output<typeof ShardEventSchema>;
export type SummaryEvent = z.output<typeof SummaryEventSchema>;
export type BenchEvent = z.output<typeof BenchEventSchema>;

/** What one stdout line turned out to be. */
export type ParsedLine =
  | { kind: "event"; event: TrainerEvent }
  /** JSON with a type this launcher does not know (newer trainer): ignored. */
  | { kind: "unknown"; type: string }
  /** Not an event line (stray print) or an event that fails validation. */
  | { kind: "invalid"; problem: string }
  | { kind: "empty" };

const KNOWN = new Set<string>(TrainerEventSchema.options.map((o) => o.shape.type.value));

/**
 * Classifies and validates one line of trainer stdout.
 *
 * @example
 * ```ts
 * parseLine("hello"); // { kind: "invalid", problem: "expected a JSON object, found: hello" }
 * ```
 */
export function parseLine(line: string): ParsedLine {
  const s = line.trim();
  if (s === "") return { kind: "empty" };
  let value: unknown;
  try {
    value = JSON.parse(s);
  } catch {
    return { kind: "invalid", problem: `expected a JSON object, found: ${s.slice(0, 200)}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { kind: "invalid", problem: `expected a JSON object, found: ${s.slice(0, 200)}` };
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string") {
    return { kind: "invalid", problem: `expected a "type" string, found: ${s.slice(0, 200)}` };
  }
  if (!KNOWN.has(type)) return { kind: "unknown", type };
  const r = TrainerEventSchema.safeParse(value);
  if (!r.success) {
    return { kind: "invalid", problem: `${type} event: ${z.prettifyError(r.error)}` };
  }
  return { kind: "event", event: r.data };
}

/** The event on `line`, or null for anything else (see {@link parseLine} for why). */
export function parseTrainerLine(line: string): TrainerEvent | null {
  const p = parseLine(line);
  return p.kind === "event" ? p.event : null;
}
