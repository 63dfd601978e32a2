/**
 * How many images ingest works on at once. Verifying decodes are CPU-bound, so at most one per
 * core runs (the decode slots); while they run, two more items download into staging and upload
 * their published copies, so the cores never wait on I/O (issue 15: with 2 items in flight on 2
 * cores, the file store's durable put left a core idle for each image's write).
 *
 * @example
 * ```ts
 * const { config, sources } = await parseStageArgs(Deno.args, { ... });
 * config.worker.concurrency = effectiveIngestConcurrency(config.worker.concurrency, sources);
 * const cpu = new Slots(ingestDecodeSlots());
 * ```
 * @module
 */

/** Verifying decodes at once: one per core. */
export function ingestDecodeSlots(cores: number = navigator.hardwareConcurrency): number {
  return Math.max(1, Math.floor(cores));
}

/** Items in flight when `worker.concurrency` is not set: the decode slots plus two. */
export function recommendedIngestConcurrency(
  cores: number = navigator.hardwareConcurrency,
): number {
  return ingestDecodeSlots(cores) + 2;
}

/**
 * Items in flight for a loaded configuration: `worker.concurrency` when it was set (file, env or
 * flag, as listed in `sources`), else {@link recommendedIngestConcurrency}.
 */
export function effectiveIngestConcurrency(
  configured: number,
  sources: Readonly<Record<string, string>>,
  cores: number = navigator.hardwareConcurrency,
): number {
  if (sources["worker.concurrency"] !== undefined) return configured;
  return recommendedIngestConcurrency(cores);
}
