/**
 * A tiny block-style YAML writer for JSON-shaped values (maps, lists, strings, numbers, booleans,
 * null), enough for Kubernetes manifests. Strings are always double-quoted with JSON escapes,
 * which YAML reads back unchanged, so no value is ever mistaken for a number, bool or null.
 * @module
 */

/** A JSON-shaped value. */
export type YamlValue =
  | string
  | number
  | boolean
  | null
  | readonly YamlValue[]
  | { readonly [key: string]: YamlValue | undefined };

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_.\/-]*$/;

function scalar(v: string | number | boolean | null): string {
  if (v === null) return "null";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new TypeError(`YAML: expected a finite number, found ${v}`);
    const s = String(v);
    // YAML 1.1 readers (PyYAML, older Go parsers) take "1e+21" for a string: give it a dot.
    return /e/i.test(s) && !s.includes(".") ? s.replace(/e/i, ".0e") : s;
  }
  if (typeof v === "boolean") return v ? "true" : "false";
  return JSON.stringify(v);
}

function key(k: string): string {
  return PLAIN_KEY.test(k) && !/^(true|false|null|yes|no|on|off|y|n)$/i.test(k)
    ? k
    : JSON.stringify(k);
}

function isMap(v: YamlValue): v is { readonly [key: string]: YamlValue | undefined } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function lines(v: YamlValue, indent: string): string[] {
  if (Array.isArray(v)) {
    if (v.length === 0) return [`${indent}[]`];
    const out: string[] = [];
    for (const item of v as readonly YamlValue[]) {
      if (
        (isMap(item) && Object.keys(item).length > 0) || (Array.isArray(item) && item.length > 0)
      ) {
        const inner = lines(item, indent + "  ");
        out.push(`${indent}- ${inner[0].slice(indent.length + 2)}`, ...inner.slice(1));
      } else {
        out.push(`${indent}- ${lines(item, "")[0]}`);
      }
    }
    return out;
  }
  if (isMap(v)) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined) as [string, YamlValue][];
    if (entries.length === 0) return [`${indent}{}`];
    const out: string[] = [];
    for (const [k, x] of entries) {
      const nested = (isMap(x) && Object.keys(x).length > 0) || (Array.isArray(x) && x.length > 0);
      if (nested) {
        out.push(`${indent}${key(k)}:`, ...lines(x, Array.isArray(x) ? indent : indent + "  "));
      } else {
        out.push(`${indent}${key(k)}: ${lines(x, "")[0]}`);
      }
    }
    return out;
  }
  return [`${indent}${scalar(v as string | number | boolean | null)}`];
}

/**
 * Writes one YAML document (no leading `---`), ending in a newline.
 *
 * @example
 * ```ts
 * toYaml({ kind: "Job", spec: { completions: 2 } }); // 'kind: "Job"\nspec:\n  completions: 2\n'
 * ```
 */
export function toYaml(value: YamlValue): string {
  return lines(value, "").join("\n") + "\n";
}
