/**
 * The normalize stage's metrics: the common `sluice_normalize_*` set plus variants written,
 * bytes written, render time, CPU slots in use, and which resizer runs and why.
 *
 * @example
 * ```ts
 * const m = createNormalizeMetrics({ version: "dev" });
 * m.resizerInfo.set({ name: "sharp", kind: "cpu", reason: "resizer=auto: nvidia-smi not found, using sharp CPU" }, 1);
 * ```
 * @module
 */
import type { Counter, Gauge, Histogram } from "prom-client";
import { createStageMetrics, type StageMetrics } from "../../common/metrics/mod.ts";

/** Render-time buckets, seconds: a small PNG to a 20 MP progressive JPEG. */
export const RENDER_BUCKETS: readonly number[] = [
  0.005,
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
];

export interface NormalizeMetrics extends StageMetrics {
  /** Variant objects written, by variant name. */
  readonly variantsTotal: Counter<"variant">;
  /** Encoded variant bytes written, by variant name. */
  readonly variantBytesTotal: Counter<"variant">;
  /** Variants found already present (nothing written), by variant name. */
  readonly variantsPresentTotal: Counter<"variant">;
  /** Decode + render time per image. */
  readonly renderSeconds: Histogram<never>;
  /** CPU slots busy now. */
  readonly cpuSlotsBusy: Gauge<never>;
  /** Always 1; labels name the resizer in use and why it was chosen. */
  readonly resizerInfo: Gauge<"name" | "kind" | "reason">;
}

/**
 * Creates the registry of the normalize stage.
 *
 * @example
 * ```ts
 * const m = createNormalizeMetrics();
 * m.variantsTotal.inc({ variant: "640" });
 * ```
 */
export function createNormalizeMetrics(opts: { version?: string } = {}): NormalizeMetrics {
  const base = createStageMetrics("normalize", { version: opts.version });
  return Object.assign(base, {
    variantsTotal: base.counter({
      name: "variants_written_total",
      help: "Variant objects written, by variant.",
      labelNames: ["variant"],
    }),
    variantBytesTotal: base.counter({
      name: "written_bytes_total",
      help: "Encoded variant bytes written, by variant.",
      labelNames: ["variant"],
    }),
    variantsPresentTotal: base.counter({
      name: "variants_present_total",
      help: "Variants already present when an image was processed (nothing written), by variant.",
      labelNames: ["variant"],
    }),
    renderSeconds: base.histogram({
      name: "render_seconds",
      help: "Time to decode one image once and render all its missing variants, in seconds.",
      buckets: RENDER_BUCKETS,
    }),
    cpuSlotsBusy: base.gauge({
      name: "cpu_slots_busy",
      help: "Images being decoded and resized right now.",
    }),
    resizerInfo: base.gauge({
      name: "resizer_info",
      help: "The resizer in use (value 1); reason says why it was selected.",
      labelNames: ["name", "kind", "reason"],
    }),
  });
}
