/**
 * Ultralytics `data.yaml`: `path`, `train`, `val`, optional `test` (each a directory, a `.txt`
 * list of images, or a list of those) and `names` (a mapping `0: cat` or a list). Only this
 * subset of YAML is read: top-level keys, plain/quoted scalars, block and flow lists, and a
 * block or flow mapping of integers to names.
 * @module
 */

/** What a `data.yaml` says. */
export interface DataYaml {
  path: string | null;
  train: string[];
  val: string[];
  test: string[];
  /** Class names by index (gaps are errors). */
  names: string[];
}

/** Quotes a YAML scalar when a plain one would not read back as the same string. */
export function yamlString(s: string): string {
  if (
    /^[A-Za-z0-9_./][A-Za-z0-9_./ -]*$/.test(s) && !/ $/.test(s) &&
    !/^(true|false|null|yes|no|on|off|~)$/i.test(s) && !/^[-+.]?\d/.test(s)
  ) {
    return s;
  }
  return JSON.stringify(s);
}

/**
 * Writes a `data.yaml`.
 *
 * @example
 * ```ts
 * formatDataYaml({ path: "/data/ds", train: "images/train", val: "images/val", names: ["cat"] });
 * ```
 */
export function formatDataYaml(
  d: { path: string; train: string; val: string; test?: string; names: readonly string[] },
): string {
  const lines = [
    `path: ${yamlString(d.path)}`,
    `train: ${yamlString(d.train)}`,
    `val: ${yamlString(d.val)}`,
  ];
  if (d.test) lines.push(`test: ${yamlString(d.test)}`);
  lines.push("", "names:");
  d.names.forEach((n, i) => lines.push(`  ${i}: ${yamlString(n)}`));
  return lines.join("\n") + "\n";
}

function unquote(v: string): string {
  const s = v.trim();
  if (s.startsWith('"') && s.endsWith('"') && s.length >= 2) return JSON.parse(s);
  if (s.startsWith("'") && s.endsWith("'") && s.length >= 2) {
    return s.slice(1, -1).replace(/''/g, "'");
  }
  return s;
}

function stripComment(line: string): string {
  let q: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === q) q = null;
    } else if (c === '"' || c === "'") q = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

function splitFlow(inner: string): string[] {
  const out: string[] = [];
  let cur = "";
  let q: string | null = null;
  for (const c of inner) {
    if (q) {
      cur += c;
      if (c === q) q = null;
    } else if (c === '"' || c === "'") {
      q = c;
      cur += c;
    } else if (c === ",") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  if (cur.trim() !== "") out.push(cur);
  return out.map((s) => s.trim());
}

/**
 * Reads a `data.yaml`. Throws an Error naming the problem when `names` is missing or has gaps.
 *
 * @example
 * ```ts
 * parseDataYaml("path: .\ntrain: images/train\nval: images/val\nnames: [cat, dog]\n").names; // ["cat","dog"]
 * ```
 */
export function parseDataYaml(text: string): DataYaml {
  const lines = text.split(/\r?\n/).map(stripComment);
  const top = new Map<string, { inline: string; block: string[] }>();
  let current: { inline: string; block: string[] } | null = null;
  for (const line of lines) {
    if (line.trim() === "") continue;
    if (/^\S/.test(line)) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$/.exec(line);
      if (!m) throw new Error(`data.yaml: expected "key: value", found ${JSON.stringify(line)}`);
      current = { inline: m[2].trim(), block: [] };
      top.set(m[1], current);
    } else if (current) current.block.push(line.trim());
  }
  const list = (key: string): string[] => {
    const e = top.get(key);
    if (!e) return [];
    if (e.inline.startsWith("[")) {
      return splitFlow(e.inline.replace(/^\[|\]$/g, "")).map(unquote).filter((s) => s !== "");
    }
    if (e.inline !== "" && e.inline !== "null" && e.inline !== "~") return [unquote(e.inline)];
    return e.block.filter((l) => l.startsWith("-")).map((l) => unquote(l.slice(1)));
  };
  const names: string[] = [];
  const n = top.get("names");
  if (!n) throw new Error("data.yaml: expected a names key, found none");
  const entries: [string, string][] = [];
  if (n.inline.startsWith("[")) {
    splitFlow(n.inline.replace(/^\[|\]$/g, "")).forEach((s, i) => entries.push([String(i), s]));
  } else if (n.inline.startsWith("{")) {
    for (const kv of splitFlow(n.inline.replace(/^\{|\}$/g, ""))) {
      const k = kv.indexOf(":");
      entries.push([kv.slice(0, k).trim(), kv.slice(k + 1)]);
    }
  } else {
    let i = 0;
    for (const l of n.block) {
      if (l.startsWith("-")) entries.push([String(i++), l.slice(1)]);
      else {
        const k = l.indexOf(":");
        if (k < 0) {
          throw new Error(`data.yaml names: expected "N: name", found ${JSON.stringify(l)}`);
        }
        entries.push([l.slice(0, k).trim(), l.slice(k + 1)]);
      }
    }
  }
  for (const [k, v] of entries) {
    if (!/^\d+$/.test(k)) throw new Error(`data.yaml names: expected an integer key, found "${k}"`);
    names[Number(k)] = unquote(v);
  }
  for (let i = 0; i < names.length; i++) {
    if (names[i] === undefined) throw new Error(`data.yaml names: class ${i} has no name`);
  }
  const path = top.get("path");
  return {
    path: path && path.inline !== "" ? unquote(path.inline) : null,
    train: list("train"),
    val: list("val"),
    test: list("test"),
    names,
  };
}
