/**
 * Command-line parsing on top of `node:util` parseArgs: one flag per config field
 * (`--worker-concurrency 4`, `--staging-require-nvme`, `--no-staging-require-nvme`), `--config`,
 * and the caller's own flags. Every problem is collected instead of stopping at the first.
 * @module
 */
import { parseArgs } from "node:util";
import type { ConfigIssue } from "./errors.ts";
import { closest, type FieldInfo } from "./_fields.ts";

/** A flag that is not a config field (e.g. `--help`, `--once`). */
export interface FlagSpec {
  type: "boolean" | "string";
  short?: string;
  multiple?: boolean;
}

/** Parsed values of non-config flags. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export interface ParsedArgv {
  /** Raw values of config-field flags, by field path; last occurrence wins. */
  fields: Map<string, { raw: string | boolean; flag: string }>;
  configPath?: string;
  extra: FlagValues;
  positionals: string[];
  issues: ConfigIssue[];
}

/** The flag reserved for the config file path. */
export const CONFIG_FLAG = "config";

/** Parses argv; problems land in `issues` (nothing is thrown for user mistakes). */
export function parseArgv(
  argv: readonly string[],
  fields: readonly FieldInfo[],
  extra: Readonly<Record<string, FlagSpec>>,
  allowPositionals: boolean,
): ParsedArgv {
  const byFlag = new Map(fields.map((f) => [f.flag, f]));
  // Insertion order is the order of the "valid flags" list: the caller's flags, then settings.
  const options: Record<string, { type: "boolean" | "string"; short?: string }> = {};
  for (const [name, spec] of Object.entries(extra)) {
    options[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type };
  }
  options[CONFIG_FLAG] = { type: "string" };
  for (const f of fields) options[f.flag] = { type: f.kind === "boolean" ? "boolean" : "string" };
  const validList = () =>
    Object.entries(options).map(([n, o]) =>
      `--${n}${o.type === "string" ? " <value>" : ""}${o.short ? ` (-${o.short})` : ""}`
    ).join(", ");

  const out: ParsedArgv = { fields: new Map(), extra: {}, positionals: [], issues: [] };
  for (const [name, spec] of Object.entries(extra)) {
    if (spec.multiple) out.extra[name] = [];
    else if (spec.type === "boolean") out.extra[name] = false;
  }
  let unknown = 0;
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const t of tokens) {
    if (t.kind === "option-terminator") continue;
    if (t.kind === "positional") {
      if (allowPositionals) out.positionals.push(t.value);
      else {
        out.issues.push({
          path: "argv",
          source: "argv",
          found: JSON.stringify(t.value),
          expected: "expected only flags (no positional arguments)",
        });
      }
      continue;
    }
    let name = t.name;
    let negated = false;
    if (
      !(name in options) && name.startsWith("no-") && options[name.slice(3)]?.type === "boolean"
    ) {
      name = name.slice(3);
      negated = true;
    }
    const opt = options[name];
    if (!opt) {
      const hint = closest(`--${name}`, Object.keys(options).map((n) => `--${n}`));
      // The (long) list of valid flags is spelled out once, on the first unknown flag.
      const list = unknown++ === 0 ? `; valid flags: ${validList()}` : "";
      out.issues.push({
        path: "argv",
        source: "argv",
        expected: `expected a known flag${hint ? ` (did you mean ${hint}?)` : ""}${list}`,
        found: t.rawName,
      });
      continue;
    }
    const read = flagValue(t, name, negated, opt.type, byFlag.get(name)?.path ?? "argv");
    if (typeof read === "object") {
      out.issues.push(read);
      continue;
    }
    let value = read;
    if (name === CONFIG_FLAG) {
      out.configPath = String(value);
      continue;
    }
    const field = byFlag.get(name);
    if (field) {
      out.fields.set(field.path, { raw: value, flag: `--${negated ? "no-" : ""}${name}` });
      continue;
    }
    const spec = extra[name];
    if (spec.type === "boolean" && typeof value === "string") {
      const v = value.toLowerCase();
      if (!["true", "false", "1", "0"].includes(v)) {
        out.issues.push({
          path: "argv",
          source: `flag ${t.rawName}`,
          expected: "expected true, false, 1 or 0",
          found: JSON.stringify(value),
        });
        continue;
      }
      value = v === "true" || v === "1";
    }
    if (spec.multiple) (out.extra[name] as string[]).push(String(value));
    else out.extra[name] = value;
  }
  return out;
}

/** The part of a `parseArgs` option token that {@link flagValue} reads. */
interface OptionToken {
  rawName: string;
  value?: string;
  inlineValue?: boolean;
}

/**
 * The value of one flag occurrence (`--name <v>`, `--name=v`, `--flag`, `--no-flag`), or the
 * issue when a string flag has no value or a negated flag has one.
 */
function flagValue(
  t: OptionToken,
  name: string,
  negated: boolean,
  type: "boolean" | "string",
  path: string,
): string | boolean | ConfigIssue {
  if (type === "string") {
    if (t.value === undefined || negated || (!t.inlineValue && t.value.startsWith("--"))) {
      return {
        path,
        source: `flag ${t.rawName}`,
        expected: `expected a value: --${name} <value>`,
        found: t.value === undefined ? undefined : `flag ${t.value}`,
      };
    }
    return t.value;
  }
  if (t.value !== undefined && t.inlineValue) {
    if (negated) {
      return {
        path,
        source: `flag ${t.rawName}`,
        expected: `expected --no-${name} without a value`,
        found: JSON.stringify(t.value),
      };
    }
    return t.value;
  }
  return !negated;
}
