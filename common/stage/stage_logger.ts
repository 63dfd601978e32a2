/**
 * The logger rule every stage follows: `log.level` is the lowest level written, and
 * `log.format` picks JSON lines (`json`), readable lines (`pretty`), or JSON unless stderr is a
 * terminal (`auto`).
 *
 * @example
 * ```ts
 * const log = createStageLogger("normalize", config.log);
 * log.info("starting", { mode: "once" });
 * ```
 * @module
 */
import { createLogger, type Logger } from "../log/mod.ts";
import type { SharedConfig } from "../config/schema.ts";

/** The `log` section of any stage's configuration. */
export type LogSettings = SharedConfig["log"];

/**
 * Creates the logger of `stage` as the configuration's `log` section asks for it.
 *
 * @example
 * ```ts
 * const log = createStageLogger("ingest", { level: "debug", format: "json" });
 * ```
 */
export function createStageLogger(stage: string, settings: LogSettings): Logger {
  return createLogger({
    stage,
    level: settings.level,
    ...(settings.format === "auto" ? {} : { json: settings.format === "json" }),
  });
}
