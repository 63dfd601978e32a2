/**
 * Structured logging: one JSON object per line (ts, level, stage, item, msg, ...fields)
 * on stderr, or a readable single line when stderr is a terminal.
 *
 * @example
 * ```ts
 * const log = createLogger({ stage: "ingest" });
 * log.info("staged", { item: "img_01", bytes: 1234 });
 * ```
 * Every line goes through `redactText` (credentials in URLs, queries, auth headers and registered
 * secrets are hidden) as a last line of defence.
 * @module
 */
import { redactText } from "../redaction/redact_text.ts";

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

/** Keys every line has; a caller's field of the same name is written as `field_<name>`. */
const CORE_KEYS = new Set(["ts", "level", "stage", "msg"]);

/**
 * Creates a logger for one stage. Lines are JSON objects (`ts`, `level`, `stage`, `msg`, then
 * the fields, e.g. `item`), or a short readable line when `json` is false (the default on a
 * terminal). Logging never throws: errors become their messages, bigints strings, and a cycle
 * `"[circular]"`.
 *
 * @example
 * ```ts
 * const log = createLogger({ stage: "normalize", level: "debug" });
 * log.child({ item: "img_01" }).warn("retrying", { attempt: 2 });
 * ```
 */
export function createLogger(opts: LoggerOptions, base: LogFields = {}): Logger {
  const level = opts.level ?? defaultLevel();
  const json = opts.json ?? !Deno.stderr.isTerminal();
  const sink = opts.sink ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const rec: LogFields = { ts: new Date().toISOString(), level: lvl, stage: opts.stage, msg };
    for (const [k, v] of Object.entries({ ...base, ...fields })) {
      rec[CORE_KEYS.has(k) ? `field_${k}` : k] = v;
    }
    if (json) {
      sink(redactText(toJson(rec)));
    } else {
      const { ts, level: l, stage, msg: m, ...rest } = rec;
      const extra = Object.keys(rest).length ? " " + toJson(rest) : "";
      sink(redactText(
        `${String(ts).slice(11, 19)} ${String(l).toUpperCase().padEnd(5)} [${stage}] ${m}${extra}`,
      ));
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

// JSON that cannot fail: a log call must not turn a handled problem into a crash.
function toJson(value: unknown): string {
  const plain = (_k: string, v: unknown) =>
    v instanceof Error ? v.message : typeof v === "bigint" ? v.toString() : v;
  try {
    return JSON.stringify(value, plain);
  } catch {
    // A cycle: mark objects already on the current path.
    const path: unknown[] = [];
    return JSON.stringify(value, function (this: unknown, k, v) {
      while (path.length > 0 && path[path.length - 1] !== this) path.pop();
      const out = plain(k, v);
      if (out !== null && typeof out === "object") {
        if (path.includes(out)) return "[circular]";
        path.push(out);
      }
      return out;
    });
  }
}
