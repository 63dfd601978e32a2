/**
 * The small YAML subset MLflow's file store uses in `meta.yaml`: one mapping of scalar keys to
 * scalars (strings, integers, floats, booleans, null), block or flow lists of strings, and `{}`.
 *
 * Writing follows PyYAML's `safe_dump(sort_keys=True)` closely enough that Python reads back the
 * same types: strings that would otherwise parse as numbers, booleans or null are quoted (so an
 * experiment id stays `'123'`), and anything unusual is written as a JSON string, which is valid
 * YAML. Reading also accepts what PyYAML itself writes (single quotes, folded continuation lines,
 * block lists), because `mlflow ui` or the MLflow client may rewrite these files.
 * @module
 */

/** A value this subset can hold. */
export type YamlValue =
  | string
  | number
  | boolean
  | null
  | YamlValue[]
  | { [key: string]: YamlValue };

const PLAIN_SAFE = /^[A-Za-z0-9_./:@+-][A-Za-z0-9_./:@+ -]*$/;
// Values YAML 1.1 (PyYAML) would read as something other than a string.
const RESERVED =
  /^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|y|Y|n|N)$/;
const NUMBERISH = /^[-+]?(?:\.?[0-9]|\.(?:inf|Inf|INF|nan|NaN|NAN)$)/;

function scalar(v: string): string {
  if (
    v !== "" && PLAIN_SAFE.test(v) && !RESERVED.test(v) && !NUMBERISH.test(v) &&
    !v.endsWith(" ") && !v.includes(": ") && !v.includes(" #") && !v.startsWith("-") &&
    !v.startsWith(":") && !v.startsWith("@")
  ) return v;
  // deno-lint-ignore no-control-regex
  if (!/[\x00-\x1f\x7f-\x9f'\u2028\u2029\ufeff]/.test(v)) return `'${v}'`;
  return JSON.stringify(v);
}

function value(v: YamlValue): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    if (Number.isNaN(v)) return ".nan";
    if (v === Infinity) return ".inf";
    if (v === -Infinity) return "-.inf";
    return String(v);
  }
  if (typeof v === "string") return scalar(v);
  if (Array.isArray(v)) return v.length === 0 ? "[]" : "";
  return Object.keys(v).length === 0 ? "{}" : "";
}

/**
 * Serialises a flat mapping with sorted keys, as MLflow's `write_yaml` does.
 *
 * @example
 * ```ts
 * toYaml({ experiment_id: "1", name: "x", tags: [] }); // "experiment_id: '1'\nname: x\ntags: []\n"
 * ```
 */
export function toYaml(map: Record<string, YamlValue>): string {
  const lines: string[] = [];
  for (const key of Object.keys(map).sort()) {
    const v = map[key];
    if (Array.isArray(v) && v.length > 0) {
      lines.push(`${scalar(key)}:`);
      for (const item of v) lines.push(`- ${value(item)}`);
    } else if (v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) {
      lines.push(`${scalar(key)}:`);
      for (const k of Object.keys(v).sort()) lines.push(`  ${scalar(k)}: ${value(v[k])}`);
    } else {
      lines.push(`${scalar(key)}: ${value(v)}`);
    }
  }
  return lines.join("\n") + "\n";
}

function parseScalar(raw: string): YamlValue {
  const s = raw.trim();
  if (s === "" || s === "~" || /^(?:null|Null|NULL)$/.test(s)) return null;
  if (s === "[]") return [];
  if (s === "{}") return {};
  if (s.startsWith("'")) return s.slice(1, s.endsWith("'") ? -1 : undefined).replaceAll("''", "'");
  if (s.startsWith('"')) {
    try {
      return JSON.parse(s) as string;
    } catch {
      return s.slice(1, -1);
    }
  }
  if (/^(?:true|True|TRUE)$/.test(s)) return true;
  if (/^(?:false|False|FALSE)$/.test(s)) return false;
  if (/^[-+]?[0-9]+$/.test(s)) return Number(s);
  if (/^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/.test(s)) return Number(s);
  if (/^\.(?:nan|NaN|NAN)$/.test(s)) return NaN;
  if (/^\+?\.(?:inf|Inf|INF)$/.test(s)) return Infinity;
  if (/^-\.(?:inf|Inf|INF)$/.test(s)) return -Infinity;
  if (s.startsWith("[") && s.endsWith("]")) {
    return s.slice(1, -1).split(",").map((x) => parseScalar(x)).filter((x) => x !== null);
  }
  return s;
}

function unfold(first: string, continuation: string[]): string {
  // YAML line folding: a single line break becomes a space, each empty line a newline.
  let out = first;
  let pendingNewlines = 0;
  for (const line of continuation) {
    const t = line.trim();
    if (t === "") {
      pendingNewlines++;
      continue;
    }
    out += pendingNewlines > 0 ? "\n".repeat(pendingNewlines) : " ";
    pendingNewlines = 0;
    out += t;
  }
  return out;
}

/**
 * Parses the YAML subset above into a flat mapping. Unknown constructs are kept as raw strings
 * rather than rejected, since only a few known keys are ever read back.
 *
 * @example
 * ```ts
 * parseYaml("experiment_id: '1'\nstatus: 3\n"); // { experiment_id: "1", status: 3 }
 * ```
 */
export function parseYaml(text: string): Record<string, YamlValue> {
  const out: Record<string, YamlValue> = {};
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === "" || line.trimStart().startsWith("#") || /^\s/.test(line)) {
      i++;
      continue;
    }
    const m = /^('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^:]+?):(?:\s+(.*))?$/.exec(line);
    if (!m) {
      i++;
      continue;
    }
    const key = String(parseScalar(m[1]));
    const rest = (m[2] ?? "").trimEnd();
    i++;
    const block: string[] = [];
    while (
      i < lines.length &&
      (/^\s/.test(lines[i]) || lines[i].trim() === "" || lines[i].startsWith("- "))
    ) {
      if (lines[i].trim() === "" && (i + 1 >= lines.length || !/^\s/.test(lines[i + 1]))) break;
      block.push(lines[i]);
      i++;
    }
    if (rest === "" && block.length > 0 && block[0].trimStart().startsWith("- ")) {
      out[key] = block.filter((l) => l.trimStart().startsWith("- ")).map((l) =>
        parseScalar(l.trimStart().slice(2))
      );
    } else if (rest === "" && block.length > 0) {
      const nested: Record<string, YamlValue> = {};
      for (const l of block) {
        const nm = /^\s+([^:]+):\s*(.*)$/.exec(l);
        if (nm) nested[String(parseScalar(nm[1]))] = parseScalar(nm[2]);
      }
      out[key] = nested;
    } else if (block.length > 0) {
      const quote = rest[0] === "'" || rest[0] === '"' ? rest[0] : "";
      const joined = unfold(rest, block);
      out[key] = quote ? parseScalar(joined) : joined.trim();
    } else {
      out[key] = parseScalar(rest);
    }
  }
  return out;
}
