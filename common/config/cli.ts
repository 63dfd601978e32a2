/**
 * The command line every stage shares: `--help` (every flag and environment variable with its
 * default and description, generated from the schemas), `--print-config` (the effective
 * configuration as JSON, secrets redacted), `--config <file>`, one flag per setting, and the
 * stage's own flags.
 *
 * @example
 * ```ts
 * const { config, flags } = await parseStageArgs(Deno.args, {
 *   stage: "ingest",
 *   stageSchema: IngestSettings,
 *   usage: "sluice-ingest [options]\n\nCopies raw images into the dataset.",
 *   flags: { once: { type: "boolean", description: "Drain the queue once and exit" } },
 * });
 * if (flags.once) { ... }
 * ```
 * @module
 */
import { z } from "zod";
import { SluiceError } from "../errors/mod.ts";
import { ConfigError } from "./errors.ts";
import { redact, REDACTED } from "./secret.ts";
import { type StageName, STANDARD_ENV } from "./schema.ts";
import {
  CONFIG_ENV,
  configSections,
  defaultsContext,
  loadConfigDetailed,
  type StageConfig,
} from "./load_config.ts";
import { type FlagSpec, parseArgv } from "./_argv.ts";
import type { FieldInfo } from "./_fields.ts";

/** A stage-specific flag that is not a setting (e.g. `--once`). */
export interface StageFlag extends FlagSpec {
  description: string;
}

/** Values of the stage's own flags: booleans default to false, repeated flags collect. */
export type StageFlagValues<F extends Record<string, StageFlag>> = {
  [K in keyof F]: F[K] extends { multiple: true } ? string[]
    : F[K] extends { type: "boolean" } ? boolean
    : string | undefined;
};

export interface StageArgsOptions<S extends z.ZodType, F extends Record<string, StageFlag>> {
  stage: StageName;
  stageSchema: S;
  /** First lines of `--help`, e.g. `"sluice-ingest [options]\n\nWhat it does."`. */
  usage: string;
  flags?: F;
  /** Accept positional arguments (default false). */
  allowPositionals?: boolean;
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  hostname?: string;
  pid?: number;
  onWarning?: (message: string) => void;
  /** Writes help and printed config (default: stdout). */
  print?: (text: string) => void;
  /** Writes errors (default: stderr). */
  printError?: (text: string) => void;
  /** Ends the process (default: `Deno.exit`). */
  exit?: (code: number) => never;
}

export interface StageArgs<S extends z.ZodType, F extends Record<string, StageFlag>> {
  config: StageConfig<S>;
  flags: StageFlagValues<F>;
  positionals: string[];
  /** Where each set field came from. */
  sources: Record<string, string>;
  warnings: string[];
}

const BUILTIN: Record<string, StageFlag> = {
  help: { type: "boolean", short: "h", description: "Show this help and exit" },
  "print-config": {
    type: "boolean",
    description: `Print the effective configuration as JSON (secrets as "${REDACTED}") and exit`,
  },
};

/** Exit status for invalid configuration or arguments (as for usage errors). */
export const EXIT_USAGE = 2;

const encoder = new TextEncoder();

/**
 * Parses a stage's command line and loads its configuration. `--help` and `--print-config` print
 * and exit 0; invalid arguments or settings print every problem and exit 2.
 *
 * @example
 * ```ts
 * const { config } = await parseStageArgs(Deno.args, { stage: "train", stageSchema, usage });
 * ```
 */
export async function parseStageArgs<
  S extends z.ZodType,
  F extends Record<string, StageFlag> = Record<never, StageFlag>,
>(argv: readonly string[], opts: StageArgsOptions<S, F>): Promise<StageArgs<S, F>> {
  const print = opts.print ?? ((t: string) => Deno.stdout.writeSync(encoder.encode(t)));
  const printError = opts.printError ??
    ((t: string) => Deno.stderr.writeSync(encoder.encode(t)));
  const exit = opts.exit ?? ((code: number) => Deno.exit(code));
  const flags = stageFlags(opts);
  const ctx = defaultsContext(opts);
  const { fields } = configSections(ctx, opts.stageSchema);
  checkFlagNames(flags, fields);

  // Help must work even when the rest of the command line or the environment is broken.
  const pre = parseArgv(argv, fields, flags, true);
  if (pre.extra.help === true) {
    print(formatUsage(opts));
    return exit(0);
  }

  let loaded;
  try {
    loaded = await loadConfigDetailed({
      ...opts,
      argv,
      flags,
      allowPositionals: opts.allowPositionals ?? false,
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      printError(`${err.message}\nRun with --help to list every flag and variable.\n`);
      return exit(EXIT_USAGE);
    }
    throw err;
  }
  if (loaded.flags["print-config"] === true) {
    const { schema } = configSections(ctx, opts.stageSchema);
    const { stage, ...shared } = loaded.config;
    const doc = redact({ ...shared, [opts.stage]: stage }, schema);
    print(JSON.stringify(doc, null, 2) + "\n");
    return exit(0);
  }
  const { help: _h, "print-config": _p, ...own } = loaded.flags;
  return {
    config: loaded.config,
    flags: own as StageFlagValues<F>,
    positionals: loaded.positionals,
    sources: loaded.sources,
    warnings: loaded.warnings,
  };
}

function stageFlags(opts: { flags?: Record<string, StageFlag> }): Record<string, StageFlag> {
  const own = opts.flags ?? {};
  for (const name of Object.keys(own)) {
    if (name in BUILTIN || name === "config") {
      throw new SluiceError(
        "invalid_flags",
        `stage flag --${name}: expected a name other than the built-in --help, --config, --print-config`,
      );
    }
  }
  return { ...BUILTIN, ...own };
}

function checkFlagNames(flags: Record<string, StageFlag>, fields: FieldInfo[]): void {
  const shorts = new Set<string>();
  for (const [name, spec] of Object.entries(flags)) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) {
      throw new SluiceError("invalid_flags", `stage flag "${name}": expected kebab-case`);
    }
    const clash = fields.find((f) => f.flag === name || `no-${f.flag}` === name);
    if (clash) {
      throw new SluiceError(
        "invalid_flags",
        `stage flag --${name}: expected a name that is not the setting flag of ${clash.path}`,
      );
    }
    if (spec.short) {
      if (shorts.has(spec.short)) {
        throw new SluiceError("invalid_flags", `short flag -${spec.short}: used twice`);
      }
      shorts.add(spec.short);
    }
  }
}

function valueHint(f: FieldInfo): string {
  if (f.kind === "boolean") return "";
  if (f.kind === "enum") return ` <${f.enumValues!.join("|")}>`;
  if (f.kind === "number") return " <number>";
  if (f.kind === "json") return " <json>";
  return " <string>";
}

function showDefault(f: FieldInfo): string {
  if (!f.hasDefault || f.defaultValue === undefined) return "unset";
  if (f.secret) return REDACTED;
  return JSON.stringify(f.defaultValue);
}

/**
 * The `--help` text: usage, the built-in and stage flags, then every setting with its flag,
 * environment variable, default and description, grouped by config-file section.
 *
 * @example
 * ```ts
 * console.log(formatUsage({ stage: "infer", stageSchema, usage: "sluice-infer [options]" }));
 * ```
 */
export function formatUsage(opts: {
  stage: StageName;
  stageSchema: z.ZodType;
  usage: string;
  flags?: Record<string, StageFlag>;
  cwd?: string;
  hostname?: string;
  pid?: number;
}): string {
  const ctx = defaultsContext(opts);
  const { sections, fields } = configSections(ctx, opts.stageSchema);
  const lines: string[] = [`Usage: ${opts.usage.trimEnd()}`, "", "Options:"];
  const flagRows: Array<[string, string]> = [
    ["-h, --help", BUILTIN.help.description],
    ["--config <file>", `JSON config file with the sections below (also ${CONFIG_ENV})`],
    ["--print-config", BUILTIN["print-config"].description],
  ];
  for (const [name, spec] of Object.entries(opts.flags ?? {})) {
    const left = `${spec.short ? `-${spec.short}, ` : ""}--${name}${
      spec.type === "string" ? " <value>" : ""
    }`;
    flagRows.push([left, spec.description + (spec.multiple ? " (repeatable)" : "")]);
  }
  const width = Math.max(...flagRows.map(([l]) => l.length)) + 2;
  for (const [l, r] of flagRows) lines.push(`  ${l.padEnd(width)}${r}`);
  lines.push(
    "",
    "Settings: default < config file < environment < flag. Environment values are parsed",
    "as numbers, booleans (true/false/1/0) or JSON (lists, objects) as the setting requires.",
  );
  for (const section of Object.keys(sections)) {
    lines.push("", `[${section}]  (config file section "${section}")`);
    for (const f of fields.filter((x) => x.section === section)) {
      const flag = f.kind === "boolean"
        ? `--${f.flag}, --no-${f.flag}`
        : `--${f.flag}${valueHint(f)}`;
      lines.push(`  ${flag}`);
      lines.push(`      env ${f.env}${f.secret ? "  (secret)" : ""}`);
      lines.push(`      default: ${showDefault(f)}`);
      if (f.description) lines.push(`      ${f.description}`);
    }
  }
  lines.push("", "Standard variables also honoured (a SLUICE_* variable wins):");
  for (const { env, path } of STANDARD_ENV) lines.push(`  ${env.padEnd(26)}→ ${path}`);
  return lines.join("\n") + "\n";
}
