/**
 * Variant specifications: what the normalize stage renders from each dataset image (size, fit
 * mode, output format), a stable hash of each spec, and the object-key template variants are
 * stored under.
 *
 * Defaults ({@link DEFAULT_VARIANTS}): `320` and `640` letterboxed squares (model inputs) and a
 * `1280` fit (a browsing / labelling copy), all JPEG q85. Letterbox padding is `#727272`
 * (114, 114, 114), the grey YOLO-family detectors are trained with, so padded pixels look like
 * what the model already treats as "nothing here".
 *
 * @example
 * ```ts
 * const specs = parseVariantSpecs([{ name: "640", width: 640, height: 640, mode: "letterbox" }]);
 * specHash(specs[0]);                              // "5d1c…" (16 hex, stable across runs)
 * const keys = compileKeyTemplate(DEFAULT_VARIANT_KEY_TEMPLATE);
 * keys.render({ prefix: "variants", variant: "640", sha256, ext: "jpg", specHash: specHash(specs[0]) });
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { SluiceError } from "../errors/mod.ts";
import { validateKey } from "../objectstore/mod.ts";

/**
 * How the source is fitted into `width × height`:
 * - `fit`: inside the box, aspect kept, no padding; never enlarged (a small image stays small);
 * - `letterbox`: inside the box, aspect kept, centred padding to exactly `width × height`;
 * - `cover`: fills the box, aspect kept, centred crop to exactly `width × height`;
 * - `stretch`: exactly `width × height`, independent x and y scales.
 */
export const VARIANT_MODES = ["fit", "letterbox", "cover", "stretch"] as const;
/** One of {@link VARIANT_MODES}. */
export type VariantMode = typeof VARIANT_MODES[number];

/** Output encodings. */
export const VARIANT_FORMATS = ["jpeg", "webp", "png", "avif"] as const;
/** One of {@link VARIANT_FORMATS}. */
export type VariantFormat = typeof VARIANT_FORMATS[number];

/** File extension per format (used for `{ext}` in key templates). */
export const VARIANT_EXTENSIONS: Readonly<Record<VariantFormat, string>> = {
  jpeg: "jpg",
  webp: "webp",
  png: "png",
  avif: "avif",
};

/** Letterbox pad colour: (114, 114, 114), the YOLO convention. */
export const DEFAULT_LETTERBOX_BACKGROUND = "#727272";

/** Upper bound on a variant side; larger is a configuration mistake, not a thumbnail. */
export const MAX_VARIANT_SIDE = 16384;

/** One variant. Unknown keys are refused so that typos do not silently fall back to defaults. */
export const VariantSpecSchema = z.strictObject({
  /** Used in object keys and manifest rows: letters, digits, `_`, `-`, `.`; at most 64. */
  name: z.string().regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
    "expected 1-64 characters from [A-Za-z0-9_.-], starting with a letter or digit",
  ),
  width: z.number().int().min(1).max(MAX_VARIANT_SIDE),
  height: z.number().int().min(1).max(MAX_VARIANT_SIDE),
  mode: z.enum(VARIANT_MODES).default("fit"),
  format: z.enum(VARIANT_FORMATS).default("jpeg"),
  /** Encoder quality 1-100 (PNG is lossless: ignored there). */
  quality: z.number().int().min(1).max(100).default(85),
  /** Letterbox pad colour `#rrggbb` (only used by `letterbox`). */
  background: z.string()
    .regex(/^#[0-9a-fA-F]{6}$/, "expected a colour like #727272")
    .default(DEFAULT_LETTERBOX_BACKGROUND)
    .transform((s) => s.toLowerCase()),
});

/** A variant as written in configuration (defaults may be left out). */
export type VariantSpecInput = z.input<typeof VariantSpecSchema>;
/** A validated variant with every default filled in. */
export type VariantSpec = z.output<typeof VariantSpecSchema>;

/** A list of variants with unique names. */
export const VariantSpecListSchema = z.array(VariantSpecSchema).min(1).superRefine((specs, ctx) => {
  const seen = new Set<string>();
  specs.forEach((s, i) => {
    if (seen.has(s.name)) {
      ctx.addIssue({
        code: "custom",
        path: [i, "name"],
        message: `expected unique variant names, found "${s.name}" twice`,
      });
    }
    seen.add(s.name);
  });
});

/** Default variants: two letterboxed model inputs and one browsing copy, JPEG q85. */
export const DEFAULT_VARIANTS: readonly VariantSpec[] = Object.freeze(
  VariantSpecListSchema.parse([
    { name: "320", width: 320, height: 320, mode: "letterbox" },
    { name: "640", width: 640, height: 640, mode: "letterbox" },
    { name: "1280", width: 1280, height: 1280, mode: "fit" },
  ]).map((s) => Object.freeze(s)),
);

/** A variant spec (or list) failed validation. */
export class VariantSpecError extends SluiceError {
  constructor(message: string, options?: ErrorOptions) {
    super("invalid_variant_spec", message, options);
    this.name = "VariantSpecError";
  }
}

/**
 * Validates a list of variant specs and fills in defaults.
 *
 * @example
 * ```ts
 * parseVariantSpecs([{ name: "thumb", width: 128, height: 128, mode: "cover" }]);
 * // [{ name: "thumb", width: 128, height: 128, mode: "cover", format: "jpeg", quality: 85, background: "#727272" }]
 * ```
 */
export function parseVariantSpecs(input: unknown): VariantSpec[] {
  const r = VariantSpecListSchema.safeParse(input);
  if (!r.success) {
    throw new VariantSpecError(`variants: ${describeIssues(r.error)}`, { cause: r.error });
  }
  return r.data;
}

/**
 * Validates one variant spec and fills in defaults.
 *
 * @example
 * ```ts
 * parseVariantSpec({ name: "640", width: 640, height: 640, mode: "letterbox" }).quality; // 85
 * ```
 */
export function parseVariantSpec(input: unknown): VariantSpec {
  const r = VariantSpecSchema.safeParse(input);
  if (!r.success) {
    throw new VariantSpecError(`variant: ${describeIssues(r.error)}`, { cause: r.error });
  }
  return r.data;
}

/**
 * JSON with object keys sorted at every level, no whitespace: the same value always gives the
 * same text, whatever order its keys were written in.
 *
 * @example
 * ```ts
 * canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }); // '{"a":[{"c":3,"d":2}],"b":1}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new VariantSpecError(`canonical JSON: expected finite numbers, found ${value}`);
    }
    const s = JSON.stringify(value);
    if (s === undefined) {
      throw new VariantSpecError(`canonical JSON: expected a JSON value, found ${typeof value}`);
    }
    return s;
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** Hex characters kept from the sha256 of a spec: 64 bits, ample for a handful of specs. */
export const SPEC_HASH_LENGTH = 16;

/**
 * Stable hash of a variant spec: sha256 of its canonical JSON with defaults filled in, first
 * {@link SPEC_HASH_LENGTH} hex characters. Fields that cannot change the output are left out
 * (`background` unless `mode` is `letterbox`), so equivalent specs hash alike. The name is
 * included: it is part of the variant's identity in keys and manifest rows.
 *
 * @example
 * ```ts
 * specHash({ name: "640", width: 640, height: 640, mode: "letterbox" }) ===
 *   specHash({ mode: "letterbox", height: 640, width: 640, name: "640", quality: 85 }); // true
 * ```
 */
export function specHash(spec: VariantSpecInput | VariantSpec): string {
  const s = parseVariantSpec(spec);
  const canonical: Record<string, unknown> = { ...s };
  if (s.mode !== "letterbox") delete canonical.background;
  return createHash("sha256").update(canonicalJson(canonical)).digest("hex").slice(
    0,
    SPEC_HASH_LENGTH,
  );
}

// ---- object-key templates ------------------------------------------------------------------

/** Placeholders a variant key template may use. */
export const KEY_PLACEHOLDERS = [
  "prefix",
  "variant",
  "stem",
  "ext",
  "sha256",
  "aa",
  "version",
  "specHash",
] as const;
/** One of {@link KEY_PLACEHOLDERS}. */
export type KeyPlaceholder = typeof KEY_PLACEHOLDERS[number];

/**
 * Default variant key: content-addressed (`{aa}/{sha256}`) so re-rendering writes the same key
 * with the same bytes, and `{specHash}` so that changing a variant's spec never overwrites the
 * objects that older manifest rows point at.
 */
export const DEFAULT_VARIANT_KEY_TEMPLATE = "{prefix}/{variant}/{specHash}/{aa}/{sha256}.{ext}";

/** Values for a key template. `aa` is derived from `sha256`. */
export interface VariantKeyVars {
  /** Key prefix, e.g. "variants"; may be "" (its separator is then dropped). */
  prefix: string;
  /** Variant name. */
  variant: string;
  /** sha256 (64 lowercase hex) of the dataset image the variant was rendered from. */
  sha256: string;
  /** File extension without the dot, see {@link VARIANT_EXTENSIONS}. */
  ext: string;
  specHash: string;
  /** Manifest version of the spec (required only when the template uses `{version}`). */
  version?: number;
  /** Caller-chosen name stem (required only when the template uses `{stem}`). */
  stem?: string;
}

/** A key template was malformed, used an unknown placeholder, or lacked a value. */
export class KeyTemplateError extends SluiceError {
  constructor(message: string) {
    super("invalid_key_template", message);
    this.name = "KeyTemplateError";
  }
}

/** A validated key template; see {@link compileKeyTemplate}. */
export interface KeyTemplate {
  readonly template: string;
  /** Placeholders the template uses, in order of first use. */
  readonly placeholders: readonly KeyPlaceholder[];
  /** Fills in the template; the result is a valid object key (see `validateKey`). */
  render(vars: VariantKeyVars): string;
}

type Part = { text: string } | { name: KeyPlaceholder };

/**
 * Parses and validates a key template at configuration time: unknown placeholders, stray braces,
 * and templates that would make different images or variants collide are refused here rather
 * than when the first object is written.
 *
 * @example
 * ```ts
 * const t = compileKeyTemplate("{prefix}/{variant}/v{version}/{aa}/{sha256}.{ext}");
 * t.render({ prefix: "variants", variant: "640", version: 2, sha256, ext: "jpg", specHash: "…" });
 * // "variants/640/v2/ab/ab12….jpg"
 * compileKeyTemplate("{prefix}/{size}/{sha256}"); // throws KeyTemplateError: unknown placeholder {size}
 * ```
 */
export function compileKeyTemplate(template: string): KeyTemplate {
  const where = `key template ${JSON.stringify(template)}`;
  if (typeof template !== "string" || template.length === 0) {
    throw new KeyTemplateError(
      `key template: expected a non-empty string, found ${JSON.stringify(template)}`,
    );
  }
  const parts: Part[] = [];
  const re = /\{([^{}]*)\}/g;
  let last = 0;
  for (const m of template.matchAll(re)) {
    const text = template.slice(last, m.index);
    if (/[{}]/.test(text)) throw new KeyTemplateError(`${where}: unbalanced brace near "${text}"`);
    if (text) parts.push({ text });
    const name = m[1];
    if (!(KEY_PLACEHOLDERS as readonly string[]).includes(name)) {
      throw new KeyTemplateError(
        `${where}: unknown placeholder {${name}}, expected one of ${
          KEY_PLACEHOLDERS.map((p) => `{${p}}`).join(", ")
        }`,
      );
    }
    parts.push({ name: name as KeyPlaceholder });
    last = m.index + m[0].length;
  }
  const tail = template.slice(last);
  if (/[{}]/.test(tail)) throw new KeyTemplateError(`${where}: unbalanced brace near "${tail}"`);
  if (tail) parts.push({ text: tail });

  const used = new Set(parts.flatMap((p) => ("name" in p ? [p.name] : [])));
  if (!used.has("sha256") && !used.has("stem")) {
    throw new KeyTemplateError(
      `${where}: expected {sha256} or {stem}, otherwise every image gets the same key`,
    );
  }
  if (!used.has("variant") && !used.has("specHash")) {
    throw new KeyTemplateError(
      `${where}: expected {variant} or {specHash}, otherwise an image's variants overwrite each other`,
    );
  }

  return {
    template,
    placeholders: [...used],
    render(vars: VariantKeyVars): string {
      const values = placeholderValues(vars, used, where);
      const raw = parts.map((p) => ("text" in p ? p.text : values[p.name])).join("");
      // An empty prefix (or stem directory) leaves an empty segment: drop it instead of refusing.
      return validateKey(raw.split("/").filter((seg) => seg !== "").join("/"));
    },
  };
}

function placeholderValues(
  vars: VariantKeyVars,
  used: Set<KeyPlaceholder>,
  where: string,
): Record<KeyPlaceholder, string> {
  const need = (name: KeyPlaceholder, value: string | number | undefined): string => {
    if (!used.has(name)) return "";
    if (value === undefined || value === null) {
      throw new KeyTemplateError(`${where}: uses {${name}} but no value was given`);
    }
    return String(value);
  };
  if (used.has("sha256") || used.has("aa")) {
    if (!/^[0-9a-f]{64}$/.test(vars.sha256 ?? "")) {
      throw new KeyTemplateError(
        `${where}: expected sha256 as 64 lowercase hex, found ${JSON.stringify(vars.sha256)}`,
      );
    }
  }
  if (used.has("version") && !(Number.isInteger(vars.version) && (vars.version ?? 0) >= 1)) {
    throw new KeyTemplateError(
      `${where}: expected version as an integer >= 1, found ${JSON.stringify(vars.version)}`,
    );
  }
  for (
    const [name, value] of [["variant", vars.variant], ["ext", vars.ext], [
      "specHash",
      vars.specHash,
    ]] as const
  ) {
    if (
      used.has(name) &&
      (typeof value !== "string" || !/^[A-Za-z0-9_.-]+$/.test(value) || /^\.+$/.test(value))
    ) {
      throw new KeyTemplateError(
        `${where}: expected {${name}} as [A-Za-z0-9_.-]+, found ${JSON.stringify(value)}`,
      );
    }
  }
  return {
    prefix: need("prefix", vars.prefix ?? ""),
    variant: need("variant", vars.variant),
    stem: need("stem", vars.stem),
    ext: need("ext", vars.ext),
    sha256: need("sha256", vars.sha256),
    aa: need("aa", vars.sha256?.slice(0, 2)),
    version: need("version", vars.version),
    specHash: need("specHash", vars.specHash),
  };
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`)
    .join("; ");
}
