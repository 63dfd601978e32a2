/**
 * Where each variant of an image is stored. Keys come from a template (default
 * `{prefix}/{variant}/{stem}.{ext}`) whose `{stem}` is content- and spec-derived:
 * `<specHash>/<aa>/<sha256>` of the dataset image. So re-rendering an image writes the same key
 * with the same bytes, and a changed spec writes new keys instead of overwriting the objects
 * that the older version's manifest rows point at.
 *
 * @example
 * ```ts
 * const keys = compileNormalizeKeyTemplate(DEFAULT_NORMALIZE_KEY_TEMPLATE);
 * variantKey(keys, { prefix: "variants", spec, specHash: "5d1c…", version: 1, sha256 });
 * // "variants/640/5d1c…/ab/ab12….jpg"
 * ```
 * @module
 */
import {
  compileKeyTemplate,
  type KeyTemplate,
  KeyTemplateError,
  VARIANT_EXTENSIONS,
  type VariantSpec,
} from "../../common/images/variant_spec.ts";

/** The default key template of the normalize stage. */
export const DEFAULT_NORMALIZE_KEY_TEMPLATE = "{prefix}/{variant}/{stem}.{ext}";

/**
 * The stem of a variant key: `<specHash>/<aa>/<sha256>`, where `aa` is the first two hex digits
 * of the dataset image's sha256 (spreads keys over prefixes, as S3 and directories like).
 *
 * @example
 * ```ts
 * variantStem("ab12…", "5d1c0e9f3a2b4c6d"); // "5d1c0e9f3a2b4c6d/ab/ab12…"
 * ```
 */
export function variantStem(sha256: string, specHash: string): string {
  return `${specHash}/${sha256.slice(0, 2)}/${sha256}`;
}

/**
 * Compiles a variant key template for this stage: as `compileKeyTemplate`, and also refuses
 * templates that do not identify the spec (`{stem}`, `{specHash}` or `{version}`), since those
 * would overwrite an older version's objects when a spec changes.
 *
 * @example
 * ```ts
 * compileNormalizeKeyTemplate("{prefix}/{variant}/v{version}/{aa}/{sha256}.{ext}"); // ok
 * compileNormalizeKeyTemplate("{prefix}/{variant}/{sha256}.{ext}"); // throws KeyTemplateError
 * ```
 */
export function compileNormalizeKeyTemplate(template: string): KeyTemplate {
  const compiled = compileKeyTemplate(template);
  const p = compiled.placeholders;
  if (!p.includes("stem") && !p.includes("specHash") && !p.includes("version")) {
    throw new KeyTemplateError(
      `key template ${JSON.stringify(template)}: expected {stem}, {specHash} or {version}, ` +
        "otherwise a changed variant spec overwrites the objects of the previous version",
    );
  }
  return compiled;
}

/** What a variant key is made from. */
export interface VariantKeyInput {
  prefix: string;
  spec: VariantSpec;
  specHash: string;
  version: number;
  /** sha256 of the dataset image (64 lowercase hex). */
  sha256: string;
}

/**
 * The object key of one variant of one image.
 *
 * @example
 * ```ts
 * variantKey(keys, { prefix: "variants", spec, specHash, version: 2, sha256 });
 * ```
 */
export function variantKey(keys: KeyTemplate, v: VariantKeyInput): string {
  return keys.render({
    prefix: v.prefix,
    variant: v.spec.name,
    sha256: v.sha256,
    ext: VARIANT_EXTENSIONS[v.spec.format],
    specHash: v.specHash,
    version: v.version,
    stem: variantStem(v.sha256, v.specHash),
  });
}
