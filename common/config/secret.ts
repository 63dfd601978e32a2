/**
 * Secret marking and redaction. A schema is secret when any of its layers carries
 * `.meta({ secret: true })` (what {@link secret} adds), so stages mark their own secrets the same
 * way and redaction stays generic. Credentials embedded in URLs (`postgres://user:pw@host/db`)
 * are hidden as well, wherever they appear.
 *
 * @example
 * ```ts
 * const schema = z.object({ user: z.string(), token: secret(z.string()) });
 * redact({ user: "ann", token: "t0k" }, schema); // { user: "ann", token: "***redacted***" }
 * ```
 * @module
 */
import { z } from "zod";
import { REDACTED, redactText } from "../redaction/redact_text.ts";

/** What a secret value is replaced with in printed configuration and error messages. */
export { REDACTED };

/**
 * Marks a schema as secret (its values are never printed).
 *
 * @example
 * ```ts
 * const password = secret(z.string().min(1)).optional();
 * ```
 */
export function secret<T extends z.ZodType>(schema: T): T {
  return schema.meta({ ...(schema.meta() ?? {}), secret: true }) as T;
}

/** The wrapper types whose inner schema describes the same value. */
const WRAPPERS = new Set([
  "optional",
  "nullable",
  "default",
  "prefault",
  "readonly",
  "catch",
  "nonoptional",
]);

/**
 * Every layer of a schema from the outside in: the schema, then what optional/default/nullable/
 * pipe wrap, down to the base type (pipes are followed on their input side).
 */
export function schemaLayers(schema: z.ZodType): z.ZodType[] {
  const layers: z.ZodType[] = [];
  let cur: z.ZodType | undefined = schema;
  while (cur && layers.length < 32) {
    layers.push(cur);
    const def = cur._zod.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
    if (WRAPPERS.has(def.type)) cur = def.innerType;
    else if (def.type === "pipe") cur = def.in;
    else cur = undefined;
  }
  return layers;
}

/** The base (innermost) schema under optional/default/pipe wrappers. */
export function baseSchema(schema: z.ZodType): z.ZodType {
  const layers = schemaLayers(schema);
  return layers[layers.length - 1];
}

/** Metadata merged over all layers; outer layers win. */
export function schemaMeta(schema: z.ZodType): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of schemaLayers(schema).reverse()) {
    Object.assign(out, z.globalRegistry.get(layer) ?? {});
  }
  return out;
}

/** Whether any layer of the schema is marked secret. */
export function isSecret(schema: z.ZodType): boolean {
  return schemaLayers(schema).some((l) => z.globalRegistry.get(l)?.secret === true);
}

/**
 * Replaces the password of every URL in the string (`scheme://user:pw@host`) and other
 * recognisable credentials with {@link REDACTED}; see `common/redaction/redact_text.ts`.
 *
 * @example
 * ```ts
 * redactUrl("postgres://app:pw@db/sluice"); // "postgres://app:***redacted***@db/sluice"
 * ```
 */
export function redactUrl(value: string): string {
  return redactText(value);
}

/**
 * Returns a copy of `value` with every secret (per `schema`) replaced by {@link REDACTED} and URL
 * passwords hidden. Unset secrets stay unset so the output still shows what is configured.
 *
 * @example
 * ```ts
 * redact(config, schema); // safe to print or log
 * ```
 */
export function redact(value: unknown, schema?: z.ZodType): unknown {
  if (schema && isSecret(schema)) return value === undefined ? undefined : REDACTED;
  const base = schema ? baseSchema(schema) : undefined;
  const def = base?._zod.def as
    | {
      type: string;
      shape?: Record<string, z.ZodType>;
      element?: z.ZodType;
      valueType?: z.ZodType;
    }
    | undefined;
  if (typeof value === "string") return redactUrl(value);
  if (Array.isArray(value)) {
    return value.map((v) => redact(v, def?.type === "array" ? def.element : undefined));
  }
  if (value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const sub = def?.type === "object"
        ? def.shape?.[k]
        : def?.type === "record"
        ? def.valueType
        : undefined;
      out[k] = redact(v, sub);
    }
    return out;
  }
  return value;
}
