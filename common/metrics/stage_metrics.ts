/**
 * One Prometheus registry per stage with the metrics every stage exposes, all named
 * `sluice_<stage>_…`, plus helpers that register a stage's own metrics with that prefix enforced.
 *
 * @example
 * ```ts
 * const m = createStageMetrics("normalize", { version: "1.4.0" });
 * const end = m.itemDurationSeconds.startTimer();
 * m.itemsTotal.inc({ result: "ok" });
 * end();
 * const variants = m.counter({ name: "variants_total", help: "Variants written", labelNames: ["variant"] });
 * variants.inc({ variant: "640" }); // exposed as sluice_normalize_variants_total
 * ```
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { SluiceError } from "../errors/mod.ts";
import { registerProcessMetrics } from "./_process.ts";

/** A metric or label name was refused (wrong prefix, bad characters, wrong suffix, duplicate). */
export class MetricNameError extends SluiceError {
  constructor(message: string) {
    super("invalid_metric", message);
    this.name = "MetricNameError";
  }
}

/** Default item duration buckets (seconds): 10 ms to 10 minutes. */
export const ITEM_DURATION_BUCKETS: readonly number[] = [
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  120,
  300,
  600,
];

export interface StageMetricsOptions {
  /** Reported as `sluice_<stage>_build_info{version}` (default "dev"). */
  version?: string;
  /** Register process CPU, memory and fd metrics (default true). */
  processMetrics?: boolean;
  /** Buckets of `item_duration_seconds` (default {@link ITEM_DURATION_BUCKETS}). */
  durationBuckets?: readonly number[];
}

export interface MetricOptions<L extends string> {
  /** Name with or without the `sluice_<stage>_` prefix. */
  name: string;
  help: string;
  labelNames?: readonly L[];
}

export interface StageMetrics {
  readonly stage: string;
  /** `sluice_<stage>_` */
  readonly prefix: string;
  readonly registry: Registry;
  /** Items finished, by `result` (e.g. ok, failed, retried, skipped). */
  readonly itemsTotal: Counter<"result">;
  /** Wall time per item. */
  readonly itemDurationSeconds: Histogram<never>;
  /** Work items of this stage by `state` (pending, leased, done, failed). */
  readonly queueDepth: Gauge<"state">;
  /** Bytes currently held in this worker's staging directory. */
  readonly stagingBytes: Gauge<never>;
  /** Free bytes on the staging filesystem. */
  readonly stagingFreeBytes: Gauge<never>;
  /** Errors by `reason` (a SluiceError code). */
  readonly errorsTotal: Counter<"reason">;
  /** Always 1; the label carries the build version. */
  readonly buildInfo: Gauge<"version">;
  /** Registers a counter named `sluice_<stage>_<name>`; the name must end in `_total`. */
  counter<L extends string = never>(opts: MetricOptions<L>): Counter<L>;
  /** Registers a gauge named `sluice_<stage>_<name>`. */
  gauge<L extends string = never>(
    opts: MetricOptions<L> & { collect?: (this: Gauge<L>) => void | Promise<void> },
  ): Gauge<L>;
  /** Registers a histogram named `sluice_<stage>_<name>`. */
  histogram<L extends string = never>(
    opts: MetricOptions<L> & { buckets?: readonly number[] },
  ): Histogram<L>;
  /** The text exposition of every metric in the registry. */
  metrics(): Promise<string>;
  /** Content-Type of {@link StageMetrics.metrics}'s output. */
  readonly contentType: string;
}

const NAME = /^[a-z][a-z0-9_]*$/;
const LABEL = /^[a-z][a-z0-9_]*$/;
const RESERVED_SUFFIX = /_(bucket|count|sum|created)$/;

type MetricKind = "counter" | "gauge" | "histogram";

/**
 * `name` with the stage's `prefix` added (when it has none), checked against Prometheus naming:
 * counters end in `_total` and only they, no reserved suffix, not yet in `registry`.
 */
function checkedName(
  name: string,
  kind: MetricKind,
  prefix: string,
  registry: Registry,
  stage: string,
): string {
  let full = name;
  if (!name.startsWith(prefix)) {
    if (name.startsWith("sluice_")) {
      throw new MetricNameError(
        `${kind} ${
          JSON.stringify(name)
        }: expected the prefix ${prefix} (or none), found another stage's`,
      );
    }
    full = prefix + name;
  }
  if (!NAME.test(full) || full === prefix) {
    throw new MetricNameError(
      `${kind} ${JSON.stringify(name)}: expected lower-case letters, digits and _ after ${prefix}`,
    );
  }
  if (kind === "counter" && !full.endsWith("_total")) {
    throw new MetricNameError(`counter ${full}: expected a name ending in _total`);
  }
  if (kind !== "counter" && full.endsWith("_total")) {
    throw new MetricNameError(`${kind} ${full}: expected no _total suffix (counters only)`);
  }
  if (RESERVED_SUFFIX.test(full)) {
    throw new MetricNameError(`${kind} ${full}: expected no _bucket/_count/_sum/_created suffix`);
  }
  if (registry.getSingleMetric(full)) {
    throw new MetricNameError(`${kind} ${full}: already registered in the ${stage} registry`);
  }
  return full;
}

/** The label names, checked (lower-case, not `le` or `quantile`). */
function checkedLabels<L extends string>(name: string, ls: readonly L[] = []): L[] {
  for (const l of ls) {
    if (!LABEL.test(l) || l === "le" || l === "quantile") {
      throw new MetricNameError(
        `label ${
          JSON.stringify(l)
        } of ${name}: expected lower-case letters, digits and _ (not le/quantile)`,
      );
    }
  }
  return [...ls];
}

/**
 * Creates the registry and common metrics of one stage.
 *
 * @example
 * ```ts
 * const m = createStageMetrics("ingest");
 * m.queueDepth.set({ state: "pending" }, 42);
 * console.log(await m.metrics());
 * ```
 */
export function createStageMetrics(stage: string, opts: StageMetricsOptions = {}): StageMetrics {
  if (!NAME.test(stage)) {
    throw new MetricNameError(
      `stage name ${JSON.stringify(stage)}: expected lower-case letters, digits and _`,
    );
  }
  const prefix = `sluice_${stage}_`;
  const registry = new Registry();
  const registers = [registry];

  const fullName = (name: string, kind: MetricKind): string =>
    checkedName(name, kind, prefix, registry, stage);

  const counter = <L extends string = never>(o: MetricOptions<L>): Counter<L> => {
    const name = fullName(o.name, "counter");
    return new Counter<L>({
      name,
      help: o.help,
      labelNames: checkedLabels(name, o.labelNames),
      registers,
    });
  };
  const gauge = <L extends string = never>(
    o: MetricOptions<L> & { collect?: (this: Gauge<L>) => void | Promise<void> },
  ): Gauge<L> => {
    const name = fullName(o.name, "gauge");
    return new Gauge<L>({
      name,
      help: o.help,
      labelNames: checkedLabels(name, o.labelNames),
      registers,
      ...(o.collect ? { collect: o.collect } : {}),
    });
  };
  const histogram = <L extends string = never>(
    o: MetricOptions<L> & { buckets?: readonly number[] },
  ): Histogram<L> => {
    const name = fullName(o.name, "histogram");
    return new Histogram<L>({
      name,
      help: o.help,
      labelNames: checkedLabels(name, o.labelNames),
      registers,
      ...(o.buckets ? { buckets: [...o.buckets] } : {}),
    });
  };

  const metrics: StageMetrics = {
    stage,
    prefix,
    registry,
    itemsTotal: counter({
      name: "items_total",
      help: `Items the ${stage} stage finished, by result.`,
      labelNames: ["result"],
    }),
    itemDurationSeconds: histogram({
      name: "item_duration_seconds",
      help: `Time the ${stage} stage spent on one item, in seconds.`,
      buckets: opts.durationBuckets ?? ITEM_DURATION_BUCKETS,
    }),
    queueDepth: gauge({
      name: "queue_depth",
      help: `Work items of the ${stage} stage by state.`,
      labelNames: ["state"],
    }),
    stagingBytes: gauge({
      name: "staging_bytes",
      help: "Bytes held in this worker's staging directory.",
    }),
    stagingFreeBytes: gauge({
      name: "staging_free_bytes",
      help: "Free bytes on the staging filesystem.",
    }),
    errorsTotal: counter({
      name: "errors_total",
      help: `Errors in the ${stage} stage, by reason.`,
      labelNames: ["reason"],
    }),
    buildInfo: gauge({
      name: "build_info",
      help: "Build information; the value is always 1.",
      labelNames: ["version"],
    }),
    counter,
    gauge,
    histogram,
    metrics: () => registry.metrics(),
    contentType: registry.contentType,
  };
  metrics.buildInfo.set({ version: opts.version ?? "dev" }, 1);
  if (opts.processMetrics ?? true) registerProcessMetrics(registry);
  return metrics;
}
