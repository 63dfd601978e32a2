/**
 * Schema introspection shared by loading, flags and help: each section's keys become fields
 * with an env var, a flag, a value kind (how strings from env/flags are parsed), a default and a
 * description.
 * @module
 */
import { z } from "zod";
import { baseSchema, isSecret, schemaLayers, schemaMeta } from "./secret.ts";
import { SluiceError } from "../errors/mod.ts";

/** How a string from env or a flag is turned into a value. */
export type FieldKind = "string" | "number" | "boolean" | "enum" | "json";

export interface FieldInfo {
  section: string;
  key: string;
  /** `section.key` */
  path: string;
  env: string;
  /** Flag name without dashes, e.g. `worker-concurrency`. */
  flag: string;
  kind: FieldKind;
  secret: boolean;
  description: string;
  /** Whether a default exists; `defaultValue` is it. */
  hasDefault: boolean;
  defaultValue?: unknown;
  enumValues?: string[];
  schema: z.ZodType;
}

/** `objectStore` → `OBJECT_STORE`, `maxAttempts` → `MAX_ATTEMPTS`. */
export function upperSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/[-.]/g, "_").toUpperCase();
}

/** `objectStore` → `object-store`. */
export function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").replace(/_/g, "-").toLowerCase();
}

/** The object shape under wrappers, or undefined when the schema is not an object. */
export function shapeOf(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  const def = baseSchema(schema)._zod.def as { type: string; shape?: Record<string, z.ZodType> };
  return def.type === "object" ? def.shape : undefined;
}

function kindOf(schema: z.ZodType): { kind: FieldKind; enumValues?: string[] } {
  const def = baseSchema(schema)._zod.def as {
    type: string;
    entries?: Record<string, string | number>;
    values?: unknown[];
  };
  switch (def.type) {
    case "string":
      return { kind: "string" };
    case "number":
    case "bigint":
      return { kind: "number" };
    case "boolean":
      return { kind: "boolean" };
    case "enum": {
      const values = Object.values(def.entries ?? {});
      return values.every((v) => typeof v === "string")
        ? { kind: "enum", enumValues: values as string[] }
        : { kind: "json" };
    }
    case "literal":
      return (def.values ?? []).every((v) => typeof v === "string")
        ? { kind: "enum", enumValues: def.values as string[] }
        : { kind: "json" };
    default:
      return { kind: "json" };
  }
}

function defaultOf(schema: z.ZodType): { hasDefault: boolean; defaultValue?: unknown } {
  for (const layer of schemaLayers(schema)) {
    const def = layer._zod.def as { type: string; defaultValue?: unknown };
    if (def.type === "default" || def.type === "prefault") {
      const v = def.defaultValue;
      return { hasDefault: true, defaultValue: typeof v === "function" ? v() : v };
    }
  }
  return { hasDefault: false };
}

/** Describes every field of the given sections (each an object schema), in schema order. */
export function fieldsOf(sections: Record<string, z.ZodType>): FieldInfo[] {
  const out: FieldInfo[] = [];
  for (const [section, schema] of Object.entries(sections)) {
    const shape = shapeOf(schema);
    if (!shape) {
      throw new SluiceError(
        "invalid_schema",
        `config section "${section}": expected a z.object schema, found ${
          baseSchema(schema)._zod.def.type
        }`,
      );
    }
    for (const [key, field] of Object.entries(shape)) {
      const meta = schemaMeta(field);
      out.push({
        section,
        key,
        path: `${section}.${key}`,
        env: `SLUICE_${upperSnake(section)}_${upperSnake(key)}`,
        flag: `${kebab(section)}-${kebab(key)}`,
        ...kindOf(field),
        secret: isSecret(field),
        description: typeof meta.description === "string" ? meta.description : "",
        ...defaultOf(field),
        schema: field,
      });
    }
  }
  return out;
}

/** A string parsed per kind, or the problem when it cannot be. */
export type Coerced = { ok: true; value: unknown } | { ok: false; expected: string };

/**
 * Parses a string from env or a flag: numbers as numbers, booleans from true/false/1/0,
 * lists and objects as JSON; strings and enums are kept (the schema checks them).
 */
export function coerce(field: FieldInfo, raw: string): Coerced {
  const s = raw.trim();
  switch (field.kind) {
    case "string":
    case "enum":
      return { ok: true, value: raw };
    case "number": {
      const n = s === "" ? NaN : Number(s);
      return Number.isFinite(n)
        ? { ok: true, value: n }
        : { ok: false, expected: "expected a number" };
    }
    case "boolean": {
      const v = s.toLowerCase();
      if (v === "true" || v === "1") return { ok: true, value: true };
      if (v === "false" || v === "0") return { ok: true, value: false };
      return { ok: false, expected: "expected true, false, 1 or 0" };
    }
    case "json":
      try {
        return { ok: true, value: JSON.parse(s) };
      } catch {
        return { ok: false, expected: "expected JSON (lists and objects are given as JSON)" };
      }
  }
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** The closest candidate within a small edit distance, if any. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined;
}
