/**
 * Structured logging: one JSON object per line (ts, level, stage, item, msg, ...fields)
 * on stderr, or a readable single line when stderr is a terminal.
 *
 * @example
 * ```ts
 * const log = createLogger({ stage: "ingest" });
 * log.info("staged", { item: "img_01", bytes: 1234 });
 * ```
 * @module
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  stage: string;
  level?: LogLevel;
  /** Force JSON (true) or pretty (false); default: pretty only when stderr is a terminal. */
  json?: boolean;
  /** Where lines go; default stderr. Tests pass an array collector. */
  sink?: (line: string) => void;
}

const encoder = new TextEncoder();

function defaultLevel(): LogLevel {
  const v = Deno.env.get("SLUICE_LOG_LEVEL");
  return v === "debug" || v === "warn" || v === "error" ? v : "info";
}

/** Creates a logger for one stage. */
export function createLogger(opts: LoggerOptions, base: LogFields = {}): Logger {
  const level = opts.level ?? defaultLevel();
  const json = opts.json ?? !Deno.stderr.isTerminal();
  const sink = opts.sink ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const rec: LogFields = {
      ts: new Date().toISOString(),
      level: lvl,
      stage: opts.stage,
      ...base,
      msg,
      ...fields,
    };
    for (const [k, v] of Object.entries(rec)) {
      if (v instanceof Error) rec[k] = v.message;
    }
    if (json) {
      sink(JSON.stringify(rec));
    } else {
      const { ts, level: l, stage, msg: m, ...rest } = rec;
      const extra = Object.keys(rest).length ? " " + JSON.stringify(rest) : "";
      sink(
        `${String(ts).slice(11, 19)} ${String(l).toUpperCase().padEnd(5)} [${stage}] ${m}${extra}`,
      );
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (f) => createLogger(opts, { ...base, ...f }),
  };
}
