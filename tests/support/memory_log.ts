/**
 * A logger that keeps its JSON lines in memory, for the kit's tests.
 *
 * @example
 * ```ts
 * const { log, lines } = memoryLog();
 * log.warn("x");
 * lines[0].msg; // "x"
 * ```
 * @module
 */
import { createLogger, type Logger } from "../../common/log/mod.ts";

/** A logger writing parsed JSON lines into `lines`. */
export function memoryLog(stage = "test"): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    stage,
    level: "debug",
    json: true,
    sink: (line) => lines.push(JSON.parse(line)),
  });
  return { log, lines };
}
