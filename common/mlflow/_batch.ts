/**
 * Normalising and chunking of log-batch payloads within MLflow's limits: at most 1000 metrics,
 * 100 params and 100 tags per request, 1000 entities in total, and (like MLflow's own client)
 * roughly 1 MB of JSON.
 * @module
 */
import { MlflowError } from "./errors.ts";
import type { LogBatch, Metric, ParamValue } from "./tracker.ts";

/** MLflow's per-request limits for `runs/log-batch`. */
export const BATCH_LIMITS = {
  metrics: 1000,
  params: 100,
  tags: 100,
  total: 1000,
  /** Serialized size we stay under (MLflow's client uses 1e6). */
  bytes: 900_000,
} as const;

/** A key/value pair as MLflow's REST API spells it. */
export interface KeyValue {
  key: string;
  value: string;
}

/** One request's worth of entities. */
export interface BatchChunk {
  params: KeyValue[];
  metrics: Metric[];
  tags: KeyValue[];
}

/** Converts a param value to the string MLflow stores (a number sent as JSON is stored as ""). */
export function paramString(key: string, value: ParamValue): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  throw new MlflowError(
    `param ${JSON.stringify(key)}: expected a string, number or boolean, found ${typeof value}`,
    { errorCode: "INVALID_PARAMETER_VALUE" },
  );
}

function checkKey(kind: string, key: string): void {
  if (typeof key !== "string" || key.length === 0 || key.length > 250) {
    throw new MlflowError(
      `${kind} key ${JSON.stringify(key)}: expected 1 to 250 characters`,
      { errorCode: "INVALID_PARAMETER_VALUE" },
    );
  }
}

/**
 * Fills defaults (step 0, timestamp now), checks types and keys, and stringifies params.
 * Throws `invalid_argument` before anything is sent.
 */
export function normalizeBatch(batch: LogBatch, now: number = Date.now()): BatchChunk {
  const params = Object.entries(batch.params ?? {}).map(([key, value]) => {
    checkKey("param", key);
    return { key, value: paramString(key, value) };
  });
  const tags = Object.entries(batch.tags ?? {}).map(([key, value]) => {
    checkKey("tag", key);
    if (typeof value !== "string") {
      throw new MlflowError(
        `tag ${JSON.stringify(key)}: expected a string value, found ${typeof value}`,
        { errorCode: "INVALID_PARAMETER_VALUE" },
      );
    }
    return { key, value };
  });
  const metrics = (batch.metrics ?? []).map((m) => {
    checkKey("metric", m.key);
    if (typeof m.value !== "number") {
      throw new MlflowError(
        `metric ${JSON.stringify(m.key)}: expected a number value, found ${typeof m.value}`,
        { errorCode: "INVALID_PARAMETER_VALUE" },
      );
    }
    const step = m.step ?? 0;
    const timestamp = m.timestamp ?? now;
    if (!Number.isSafeInteger(step) || !Number.isSafeInteger(timestamp)) {
      throw new MlflowError(
        `metric ${JSON.stringify(m.key)}: expected integer step and timestamp, found ` +
          `step=${step} timestamp=${timestamp}`,
        { errorCode: "INVALID_PARAMETER_VALUE" },
      );
    }
    return { key: m.key, value: m.value, step, timestamp };
  });
  return { params, metrics, tags };
}

function approxBytes(e: KeyValue | Metric): number {
  // Key + value + JSON punctuation; metric numbers are at most ~25 characters each.
  return e.key.length + (typeof e.value === "string" ? e.value.length : 25) + 60;
}

/**
 * Splits a normalized batch into requests that respect {@link BATCH_LIMITS}, keeping the order of
 * each kind. Params go first (so a conflicting param fails before metrics are written), then tags,
 * then metrics fill what room is left.
 *
 * @example
 * ```ts
 * chunkBatch({ params: [], tags: [], metrics: manyMetrics }).length; // ceil(n / 1000); [] when empty
 * ```
 */
export function chunkBatch(batch: BatchChunk): BatchChunk[] {
  const chunks: BatchChunk[] = [];
  let p = 0, t = 0, m = 0;
  while (p < batch.params.length || t < batch.tags.length || m < batch.metrics.length) {
    const chunk: BatchChunk = { params: [], metrics: [], tags: [] };
    let total = 0, bytes = 0;
    // An entity always fits an empty chunk, so every round makes progress.
    const take = (e: KeyValue | Metric): boolean => {
      if (total >= BATCH_LIMITS.total) return false;
      if (total > 0 && bytes + approxBytes(e) > BATCH_LIMITS.bytes) return false;
      total++;
      bytes += approxBytes(e);
      return true;
    };
    while (p < batch.params.length && chunk.params.length < BATCH_LIMITS.params) {
      if (!take(batch.params[p])) break;
      chunk.params.push(batch.params[p++]);
    }
    while (t < batch.tags.length && chunk.tags.length < BATCH_LIMITS.tags) {
      if (!take(batch.tags[t])) break;
      chunk.tags.push(batch.tags[t++]);
    }
    while (m < batch.metrics.length && chunk.metrics.length < BATCH_LIMITS.metrics) {
      if (!take(batch.metrics[m])) break;
      chunk.metrics.push(batch.metrics[m++]);
    }
    chunks.push(chunk);
  }
  return chunks;
}
