/**
 * Prometheus metrics for stages: one registry per stage with the common `sluice_<stage>_*`
 * metrics, prefix-enforcing helpers for a stage's own, and a promtool lint for tests.
 *
 * @example
 * ```ts
 * import { createStageMetrics } from "../common/metrics/mod.ts";
 * const metrics = createStageMetrics("ingest", { version: "0.3.0" });
 * metrics.itemsTotal.inc({ result: "ok" });
 * ```
 * @module
 */
export * from "./stage_metrics.ts";
export * from "./promtool.ts";
