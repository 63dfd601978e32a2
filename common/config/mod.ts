/**
 * Configuration for every stage: shared zod schemas with local defaults, loading from defaults,
 * a JSON file, the environment and flags, and the shared command line.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { parseStageArgs } from "../common/config/mod.ts";
 *
 * const IngestSettings = z.object({ prefix: z.string().default("images/").describe("Key prefix") });
 * const { config } = await parseStageArgs(Deno.args, {
 *   stage: "ingest",
 *   stageSchema: IngestSettings,
 *   usage: "sluice-ingest [options]",
 * });
 * console.log(config.manifest.url, config.stage.prefix);
 * ```
 * @module
 */
export * from "./errors.ts";
export * from "./secret.ts";
export * from "./schema.ts";
export * from "./load_config.ts";
export * from "./cli.ts";
