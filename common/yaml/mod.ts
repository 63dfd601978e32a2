/**
 * YAML for readers that speak YAML 1.1 (PyYAML, which MLflow uses; Kubernetes' Go parser), on
 * the npm `yaml` package: strings that 1.1 would read as another type (`yes`, `null`, `'123'`)
 * are quoted, exponent numbers get a fraction (`1.0e+21`, which 1.1 reads as a float), keys can
 * be sorted as MLflow's `write_yaml` does, strings with control characters are written as JSON
 * strings, and reading leaves dates as strings.
 *
 * @example
 * ```ts
 * toYaml({ experiment_id: "1", name: "x", tags: [] }, { sortKeys: true });
 * // "experiment_id: '1'\nname: x\ntags: []\n"
 * parseYaml("experiment_id: '1'\nstatus: 3\n"); // { experiment_id: "1", status: 3 }
 * ```
 * @module
 */
import { parse, type ScalarTag, stringify, type Tags } from "yaml";

/** A JSON-shaped value (plus NaN and ±Infinity). */
export type YamlValue =
  | string
  | number
  | boolean
  | null
  | readonly YamlValue[]
  | { readonly [key: string]: YamlValue | undefined };

/** Options of {@link toYaml}. */
export interface ToYamlOptions {
  /** Sort mapping keys (MLflow's `write_yaml` does). */
  sortKeys?: boolean;
  /** Double-quote every string value (keys stay plain where they can), as Kubernetes files do. */
  quoteStrings?: boolean;
}

/** 1.1 reads `1e+21` as a string: give every exponent a fraction. */
function withFraction(tag: ScalarTag): ScalarTag {
  return {
    ...tag,
    stringify(item, ctx, onComment, onChompKeep) {
      const v = item.value;
      if (typeof v === "number" && Number.isFinite(v)) {
        const s = String(v);
        if (/e/i.test(s) && !s.includes(".")) return s.replace(/e/i, ".0e");
      }
      return tag.stringify!(item, ctx, onComment, onChompKeep);
    },
  };
}

/** Strings with control characters are written as JSON strings (PyYAML refuses a raw tab). */
function withJsonControls(tag: ScalarTag): ScalarTag {
  return {
    ...tag,
    stringify(item, ctx, onComment, onChompKeep) {
      const v = item.value;
      // deno-lint-ignore no-control-regex
      if (typeof v === "string" && /[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]/.test(v)) {
        return JSON.stringify(v);
      }
      return tag.stringify!(item, ctx, onComment, onChompKeep);
    },
  };
}

function writerTags(tags: Tags): Tags {
  return tags.map((t) => {
    if (typeof t !== "object" || !("stringify" in t) || !t.stringify) return t;
    if (/:(?:int|float)$/.test(t.tag)) return withFraction(t as ScalarTag);
    if (t.tag.endsWith(":str")) return withJsonControls(t as ScalarTag);
    return t;
  });
}

function withoutTimestamps(tags: Tags): Tags {
  return tags.filter((t) => typeof t !== "object" || !t.tag.endsWith(":timestamp"));
}

/**
 * Serialises `value` as block YAML a 1.1 reader reads back unchanged.
 *
 * @example
 * ```ts
 * toYaml({ s: "yes", n: 1e21 }); // "s: 'yes'\nn: 1.0e+21\n"
 * ```
 */
export function toYaml(value: YamlValue, opts: ToYamlOptions = {}): string {
  return stringify(value, {
    version: "1.1",
    lineWidth: 0,
    // As PyYAML writes them (MLflow's own files quote ids as '123').
    singleQuote: true,
    sortMapEntries: opts.sortKeys ?? false,
    // The same object twice is written twice, never as an anchor and alias.
    aliasDuplicateObjects: false,
    ...(opts.quoteStrings ? { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" } : {}),
    customTags: writerTags,
  });
}

/**
 * Reads one YAML document (1.1 rules: `yes`/`no` are booleans, `.nan`/`.inf` numbers); dates
 * stay strings. An empty document is `null`.
 *
 * @example
 * ```ts
 * parseYaml("a: 'b'\nc: [1, 2]\n"); // { a: "b", c: [1, 2] }
 * ```
 */
export function parseYaml(text: string): unknown {
  return parse(text, { version: "1.1", customTags: withoutTimestamps }) ?? null;
}

/**
 * Reads a YAML document that must be a mapping (an empty document is an empty one); anything
 * else throws, naming `what`.
 *
 * @example
 * ```ts
 * parseYamlMapping("status: 3\n", "meta.yaml"); // { status: 3 }
 * ```
 */
export function parseYamlMapping(text: string, what = "YAML"): Record<string, YamlValue> {
  const v = parseYaml(text);
  if (v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new TypeError(
      `${what}: expected a mapping, found ${Array.isArray(v) ? "a list" : typeof v}`,
    );
  }
  return v as Record<string, YamlValue>;
}
