/**
 * Loads a stage's configuration: defaults < JSON config file (`--config <file>` or
 * `SLUICE_CONFIG`) < environment (standard `AWS_*`/`MLFLOW_*`, then `SLUICE_<SECTION>_<KEY>`)
 * < command-line flags (`--<section>-<key>`). Validation reports every problem at once as a
 * {@link ConfigError}.
 *
 * @example
 * ```ts
 * const config = await loadConfig({
 *   stage: "ingest",
 *   stageSchema: z.object({ prefix: z.string().default("images/") }),
 *   argv: Deno.args,
 * });
 * config.worker.concurrency; // number
 * config.stage.prefix;       // string
 * ```
 * @module
 */
import { z } from "zod";
import { resolve } from "node:path";
import { hostname as osHostname } from "node:os";
import { createLogger } from "../log/mod.ts";
import { ConfigError, type ConfigIssue } from "./errors.ts";
import { REDACTED, redactUrl } from "./secret.ts";
import { rememberSecret } from "../redaction/redact_text.ts";
import {
  type DefaultsContext,
  type SharedConfig,
  sharedSchema,
  type StageName,
  STAGES,
  STANDARD_ENV,
} from "./schema.ts";
import { closest, coerce, type FieldInfo, fieldsOf, upperSnake } from "./_fields.ts";
import { type FlagSpec, type FlagValues, parseArgv } from "./_argv.ts";

/** The environment variable naming the config file (the `--config` flag wins over it). */
export const CONFIG_ENV = "SLUICE_CONFIG";

/** What `loadConfig` returns: the shared sections plus the stage's own section as `stage`. */
export type StageConfig<S extends z.ZodType> = SharedConfig & { stage: z.output<S> };

export interface LoadConfigOptions<S extends z.ZodType> {
  stage: StageName;
  /** The stage's own section (an object schema); env `SLUICE_<STAGE>_<KEY>`, file section `<stage>`. */
  stageSchema: S;
  /** Command-line arguments (default: none). */
  argv?: readonly string[];
  /** Environment (default: the process environment). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Directory `./.sluice/` and relative paths resolve against (default: `Deno.cwd()`). */
  cwd?: string;
  /** Host name in the default worker id (default: this host's). */
  hostname?: string;
  /** Process id in the default worker id (default: this process's). */
  pid?: number;
  /** Non-config flags accepted in `argv` (their values come back from `loadConfigDetailed`). */
  flags?: Readonly<Record<string, FlagSpec>>;
  /** Accept positional arguments (default false: they are an error). */
  allowPositionals?: boolean;
  /** Receives warnings such as unknown `SLUICE_*` variables (default: logged as warn). */
  onWarning?: (message: string) => void;
}

/** Everything `loadConfigDetailed` found. */
export interface LoadedConfig<S extends z.ZodType> {
  config: StageConfig<S>;
  /** Where each set field came from (`section.key` → `env SLUICE_…`, `file …`, `flag --…`). */
  sources: Record<string, string>;
  warnings: string[];
  /** Values of the non-config flags given in `flags`. */
  flags: FlagValues;
  positionals: string[];
  /** Absolute path of the config file read, if any. */
  configFile?: string;
}

/** The defaults context for `opts`, filling in the process's own cwd, host and pid. */
export function defaultsContext(
  opts: { stage: StageName; cwd?: string; hostname?: string; pid?: number },
): DefaultsContext {
  let host = opts.hostname;
  if (host === undefined) {
    try {
      host = osHostname();
    } catch {
      host = "localhost";
    }
  }
  // A worker id names directories: keep the host part to safe characters.
  host = host.replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "localhost";
  return {
    stage: opts.stage,
    cwd: resolve(opts.cwd ?? Deno.cwd()),
    hostname: host,
    pid: opts.pid ?? Deno.pid,
  };
}

/** The sections (shared + the stage's) and their fields, for loading and help. */
export function configSections<S extends z.ZodType>(
  ctx: DefaultsContext,
  stageSchema: S,
): { schema: z.ZodType; sections: Record<string, z.ZodType>; fields: FieldInfo[] } {
  const shared = sharedSchema(ctx);
  const sections: Record<string, z.ZodType> = { ...shared.shape, [ctx.stage]: stageSchema };
  return { schema: z.strictObject(sections), sections, fields: fieldsOf(sections) };
}

/**
 * Loads and validates the configuration of one stage.
 *
 * @example
 * ```ts
 * const cfg = await loadConfig({ stage: "train", stageSchema: z.object({}), env: {} });
 * cfg.http.port; // 9103
 * ```
 * @throws {ConfigError} listing every invalid or unknown setting.
 */
export async function loadConfig<S extends z.ZodType>(
  opts: LoadConfigOptions<S>,
): Promise<StageConfig<S>> {
  return (await loadConfigDetailed(opts)).config;
}

type Layer = Map<string, { value: unknown; source: string; raw?: string }>;

/** Like {@link loadConfig}, also returning sources, warnings, and non-config flag values. */
export async function loadConfigDetailed<S extends z.ZodType>(
  opts: LoadConfigOptions<S>,
): Promise<LoadedConfig<S>> {
  const ctx = defaultsContext(opts);
  const env = opts.env ?? Deno.env.toObject();
  const { schema, sections, fields } = configSections(ctx, opts.stageSchema);
  const byPath = new Map(fields.map((f) => [f.path, f]));
  const issues: ConfigIssue[] = [];
  const warnings: string[] = [];

  const argv = parseArgv(opts.argv ?? [], fields, opts.flags ?? {}, opts.allowPositionals ?? false);
  issues.push(...argv.issues);

  // File layer.
  const fileLayer: Layer = new Map();
  const envPath = env[CONFIG_ENV] || undefined;
  const filePath = argv.configPath ?? envPath;
  let configFile: string | undefined;
  if (filePath !== undefined) {
    configFile = resolve(ctx.cwd, filePath);
    const via = argv.configPath !== undefined ? "flag --config" : `env ${CONFIG_ENV}`;
    await readFileLayer(configFile, via, ctx.stage, sections, byPath, fileLayer, issues);
  }

  // Environment layer: standard names first so that SLUICE_* wins.
  const envLayer: Layer = new Map();
  for (const { env: name, path } of STANDARD_ENV) {
    const raw = env[name];
    if (raw) setFromString(byPath.get(path)!, raw, `env ${name}`, envLayer, issues);
  }
  const byEnv = new Map(fields.map((f) => [f.env, f]));
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith("SLUICE_") || raw === undefined) continue;
    const field = byEnv.get(name);
    if (field) {
      // Empty means unset: orchestrators often render absent values as "".
      if (raw !== "") setFromString(field, raw, `env ${name}`, envLayer, issues);
      continue;
    }
    if (name === CONFIG_ENV) continue;
    // Other stages' variables are expected in an environment shared by all stages.
    if (STAGES.some((s) => s !== ctx.stage && name.startsWith(`SLUICE_${upperSnake(s)}_`))) {
      continue;
    }
    const hint = closest(name, byEnv.keys());
    warnings.push(
      `unknown environment variable ${name} (ignored)${hint ? `; did you mean ${hint}?` : ""}`,
    );
  }

  // Flag layer.
  const flagLayer: Layer = new Map();
  for (const [path, { raw, flag }] of argv.fields) {
    const field = byPath.get(path)!;
    if (typeof raw === "boolean") flagLayer.set(path, { value: raw, source: `flag ${flag}` });
    else setFromString(field, raw, `flag ${flag}`, flagLayer, issues);
    if (typeof raw === "string" && (field.secret || urlPassword(raw) !== undefined)) {
      warnings.push(
        `${flag} carries a secret, which other users see in the process list (ps); ` +
          `set ${field.env} or put it in the config file (--config / ${CONFIG_ENV}) instead`,
      );
    }
  }

  // Merge: whole values replace lower layers (a JSON list from env replaces the file's list).
  const input: Record<string, Record<string, unknown>> = {};
  for (const name of Object.keys(sections)) input[name] = {};
  const sources: Record<string, string> = {};
  const badPaths = new Set(issues.map((i) => i.path));
  for (const layer of [fileLayer, envLayer, flagLayer]) {
    for (const [path, { value, source }] of layer) {
      const f = byPath.get(path)!;
      input[f.section][f.key] = value;
      sources[path] = source;
    }
  }

  const warn = opts.onWarning ?? defaultWarn(ctx.stage, env);
  for (const w of warnings) warn(w);

  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    for (const zi of parsed.error.issues) {
      for (const issue of fromZodIssue(zi, input, sources, byPath)) {
        // A value already reported while reading it (bad number, bad JSON) is not reported twice.
        if (!badPaths.has(issue.path)) issues.push(issue);
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const out = parsed.data as Record<string, unknown>;
  rememberSecrets(out, fields);
  const { [ctx.stage]: stageSection, ...shared } = out;
  return {
    config: { ...(shared as SharedConfig), stage: stageSection as z.output<S> },
    sources,
    warnings,
    flags: argv.extra,
    positionals: argv.positionals,
    configFile,
  };
}

/** The password of a `scheme://user:password@host` string as written; undefined if none. */
function urlPassword(value: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#\s:]*:([^/?#\s]*)@[^@/?#\s]*(?:[/?#]|$)/i.exec(value);
  return m && m[1] !== "" ? m[1] : undefined;
}

/** Registers every secret value and URL password of a loaded configuration for redaction. */
function rememberSecrets(config: Record<string, unknown>, fields: FieldInfo[]): void {
  for (const f of fields) {
    const section = config[f.section];
    if (!isPlainObject(section)) continue;
    const v = section[f.key];
    if (typeof v !== "string") continue;
    if (f.secret) rememberSecret(v);
    const pw = urlPassword(v);
    if (pw === undefined) continue;
    rememberSecret(pw);
    try {
      rememberSecret(decodeURIComponent(pw)); // what a client sends, e.g. in Basic auth
    } catch {
      // not percent-encoded: the raw form is already remembered
    }
  }
}

function defaultWarn(stage: StageName, env: Readonly<Record<string, string | undefined>>) {
  const level = env.SLUICE_LOG_LEVEL;
  const format = env.SLUICE_LOG_FORMAT;
  const log = createLogger({
    stage,
    level: level === "debug" || level === "warn" || level === "error" ? level : "info",
    json: format === "json" ? true : format === "pretty" ? false : undefined,
  });
  return (msg: string) => log.warn(msg);
}

/** Shows a value in a message: redacted when secret, JSON otherwise, shortened. */
export function showValue(value: unknown, secretField: boolean): string {
  if (secretField) return REDACTED;
  let s = typeof value === "string" ? JSON.stringify(redactUrl(value)) : JSON.stringify(value);
  if (s === undefined) s = String(value);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

function setFromString(
  field: FieldInfo,
  raw: string,
  source: string,
  layer: Layer,
  issues: ConfigIssue[],
): void {
  const c = coerce(field, raw);
  if (c.ok) {
    layer.set(field.path, { value: c.value, source, raw });
    return;
  }
  issues.push({
    path: field.path,
    source,
    found: showValue(raw, field.secret),
    expected: c.expected,
  });
}

async function readFileLayer(
  file: string,
  via: string,
  stage: StageName,
  sections: Record<string, z.ZodType>,
  byPath: Map<string, FieldInfo>,
  layer: Layer,
  issues: ConfigIssue[],
): Promise<void> {
  const source = `file ${file}`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    issues.push({
      path: "config",
      source: via,
      found: `${JSON.stringify(file)} (${err instanceof Error ? err.message : String(err)})`,
      expected: "expected a readable JSON config file",
    });
    return;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    issues.push({
      path: "config",
      source,
      found: `invalid JSON (${err instanceof Error ? err.message : String(err)})`,
      expected: "expected a JSON object of sections",
    });
    return;
  }
  if (!isPlainObject(doc)) {
    issues.push({
      path: "config",
      source,
      found: showValue(doc, false),
      expected: "expected a JSON object of sections",
    });
    return;
  }
  const names = Object.keys(sections);
  for (const [name, body] of Object.entries(doc)) {
    if (!(name in sections)) {
      // A file shared by all stages carries the other stages' sections too.
      if ((STAGES as readonly string[]).includes(name) && name !== stage) continue;
      const hint = closest(name, names);
      issues.push({
        path: name,
        source,
        found: "an unknown section",
        expected: `expected a known section${hint ? ` (did you mean "${hint}"?)` : ""}: one of ${
          names.join(", ")
        }`,
      });
      continue;
    }
    if (!isPlainObject(body)) {
      issues.push({
        path: name,
        source,
        found: showValue(body, false),
        expected: `expected an object of ${name} settings`,
      });
      continue;
    }
    const keys = [...byPath.values()].filter((f) => f.section === name).map((f) => f.key);
    for (const [key, value] of Object.entries(body)) {
      const field = byPath.get(`${name}.${key}`);
      if (!field) {
        const hint = closest(key, keys);
        issues.push({
          path: `${name}.${key}`,
          source,
          found: "an unknown key",
          expected: `expected a known key of ${name}${hint ? ` (did you mean "${hint}"?)` : ""}: ${
            keys.join(", ")
          }`,
        });
        continue;
      }
      layer.set(field.path, { value, source });
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

type ZodIssue = z.core.$ZodIssue;

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur = root;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

function article(type: string): string {
  const names: Record<string, string> = {
    int: "an integer",
    number: "a number",
    string: "a string",
    boolean: "a boolean",
    array: "an array",
    object: "an object",
    record: "an object",
  };
  return names[type] ?? type;
}

function expectedOf(zi: ZodIssue, missing: boolean): string {
  if (typeof zi.message === "string" && zi.message.startsWith("expected")) return zi.message;
  switch (zi.code) {
    case "invalid_type":
      return `expected ${article(zi.expected)}${missing ? " (required)" : ""}`;
    case "invalid_value":
      return `expected one of ${zi.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "too_small":
    case "too_big": {
      const small = zi.code === "too_small";
      const bound = small
        ? (zi as { minimum: number | bigint }).minimum
        : (zi as { maximum: number | bigint }).maximum;
      const op = `${small ? ">" : "<"}${zi.inclusive ? "=" : ""}`;
      if (zi.origin === "string") {
        return `expected ${small ? "at least" : "at most"} ${bound} characters`;
      }
      if (zi.origin === "array" || zi.origin === "set") {
        return `expected ${small ? "at least" : "at most"} ${bound} items`;
      }
      return `expected a number ${op} ${bound}`;
    }
    case "invalid_format":
      return zi.format === "regex" && "pattern" in zi
        ? `expected a string matching ${String(zi.pattern)}`
        : `expected a valid ${zi.format}`;
    case "not_multiple_of":
      return `expected a multiple of ${zi.divisor}`;
    default:
      return `expected a valid value (${zi.message})`;
  }
}

function fromZodIssue(
  zi: ZodIssue,
  input: unknown,
  sources: Record<string, string>,
  byPath: Map<string, FieldInfo>,
): ConfigIssue[] {
  const parts = zi.path.map(String);
  const fieldPath = parts.slice(0, 2).join(".");
  const field = byPath.get(fieldPath);
  const value = valueAt(input, zi.path);
  const source = sources[fieldPath] ??
    (value === undefined && field
      ? `not set: use ${field.env}, --${field.flag} or "${fieldPath}" in a config file`
      : "default");
  const secretField = field?.secret ?? false;
  if (zi.code === "unrecognized_keys") {
    return zi.keys.map((k) => ({
      path: [...parts, k].join("."),
      source,
      found: "an unknown key",
      expected: "expected only known keys",
    }));
  }
  return [{
    path: parts.join("."),
    source,
    found: value === undefined ? undefined : showValue(value, secretField),
    expected: expectedOf(zi, value === undefined),
  }];
}
