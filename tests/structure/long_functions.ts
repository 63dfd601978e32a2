/**
 * Lists the long functions of the product tree: every function, method and arrow-function body
 * in `stages/` and `common/` (not `*_test.ts`) that spans more than a given number of lines,
 * counted from the first line of its header to its closing brace.
 *
 * A small brace-counting scanner, not a parser: it skips comments, strings, template literals
 * and regular-expression literals, and calls a `{` a function body when the text before it (since
 * the last `;`, `{` or `}`) ends in `=>`, holds `function`, or reads as a method header
 * (`name(…)` with an optional return type). Type literals (`): { a: string } {`) and braces
 * inside parentheses (destructuring, object arguments) are not bodies.
 *
 * @example
 * ```ts
 * // deno run -A tests/structure/long_functions.ts          # lists bodies over 120 lines
 * // deno run -A tests/structure/long_functions.ts 80       # over 80 lines
 * import { longFunctions } from "./long_functions.ts";
 * const found = await longFunctions(["stages", "common"], 120);
 * ```
 * @module
 */
import { join, relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

/** The repository root. */
export const ROOT: string = fromFileUrl(new URL("../..", import.meta.url));

/** One function body found by the scan. */
export interface FunctionSpan {
  /** Path relative to the repository root. */
  file: string;
  /** The function's name as read from its header (`<anonymous>` when none). */
  name: string;
  /** First line of the header (1-based). */
  start: number;
  /** Line of the closing brace (1-based). */
  end: number;
  /** `end - start + 1`. */
  lines: number;
}

const METHOD =
  /^(?:(?:public|private|protected|static|async|override|readonly|get|set)\s+)*\*?\s*[#\w$]+\s*(?:<[^]*>)?\s*\([^]*\)\s*(?::[^]*)?$/;
const NOT_METHOD = /^(?:if|for|while|switch|catch|with|return|else|do|try|finally)\b/;

type Frame = {
  kind: "function" | "inline" | "type" | "block";
  header: string;
  start: number;
  name: string;
};

/** The function bodies in `source` (a TypeScript file's text), each with its span. */
export function scanFunctions(file: string, source: string): FunctionSpan[] {
  const found: FunctionSpan[] = [];
  const stack: Frame[] = [];
  const templateDepth: number[] = []; // brace depth at each open `${`
  let header = "";
  let headerLine = 0;
  let line = 1;
  let lastSignificant = "";
  let i = 0;
  const n = source.length;
  const append = (text: string) => {
    if (header.trim() === "" && text.trim() !== "") headerLine = line;
    header += text;
  };
  const parenDepth = (text: string) => {
    let d = 0;
    for (const c of text) {
      if (c === "(" || c === "[") d++;
      else if ((c === ")" || c === "]") && d > 0) d--;
    }
    return d;
  };
  const skipString = (quote: string) => {
    i++;
    while (i < n && source[i] !== quote) {
      if (source[i] === "\\") i++;
      else if (source[i] === "\n") line++;
      i++;
    }
    i++;
  };
  // Skips template text up to `${` (returns true) or the closing backtick (returns false).
  const skipTemplate = (): boolean => {
    while (i < n) {
      const c = source[i];
      if (c === "\\") {
        i += 2;
        continue;
      }
      if (c === "\n") line++;
      if (c === "`") {
        i++;
        return false;
      }
      if (c === "$" && source[i + 1] === "{") {
        i += 2;
        return true;
      }
      i++;
    }
    return false;
  };
  while (i < n) {
    const c = source[i];
    const next = source[i + 1];
    if (c === "\n") {
      line++;
      header += " ";
      i++;
      continue;
    }
    if (c === "/" && next === "/") {
      while (i < n && source[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && next === "*") {
      i += 2;
      while (i < n && !(source[i] === "*" && source[i + 1] === "/")) {
        if (source[i] === "\n") line++;
        i++;
      }
      i += 2;
      continue;
    }
    if (c === '"' || c === "'") {
      skipString(c);
      append('""');
      lastSignificant = '"';
      continue;
    }
    if (c === "`") {
      i++;
      append('""');
      lastSignificant = '"';
      if (skipTemplate()) templateDepth.push(stack.length);
      continue;
    }
    if (c === "/" && (lastSignificant === "" || "(,=:[!&|?{};+-*%<>~^".includes(lastSignificant))) {
      // A regular-expression literal.
      i++;
      let inClass = false;
      while (i < n && (source[i] !== "/" || inClass) && source[i] !== "\n") {
        if (source[i] === "\\") i++;
        else if (source[i] === "[") inClass = true;
        else if (source[i] === "]") inClass = false;
        i++;
      }
      i++;
      while (i < n && /[a-z]/.test(source[i])) i++;
      append("/re/");
      lastSignificant = "/";
      continue;
    }
    if (c === "{") {
      const h = header.trim();
      let kind: Frame["kind"];
      if (/=>$/.test(h)) kind = "function";
      else if (/[:<|&,]$/.test(h) && !/^(?:case|default)\b/.test(h)) kind = "type";
      else if (parenDepth(h) > 0 || /[=(\[,?:]$/.test(h) || /\breturn$/.test(h)) kind = "inline";
      else if (/\bfunction\b/.test(h) || (METHOD.test(h) && !NOT_METHOD.test(h))) kind = "function";
      else kind = "block";
      const name = nameOf(h);
      stack.push({ kind, header, start: headerLine || line, name });
      if (kind === "function" || kind === "block") header = "";
      else append("{");
      lastSignificant = "{";
      i++;
      continue;
    }
    if (c === "}") {
      if (templateDepth.length > 0 && templateDepth[templateDepth.length - 1] === stack.length) {
        templateDepth.pop();
        i++;
        if (skipTemplate()) templateDepth.push(stack.length);
        lastSignificant = '"';
        continue;
      }
      const frame = stack.pop();
      i++;
      lastSignificant = "}";
      if (frame === undefined) continue;
      if (frame.kind === "function") {
        found.push({
          file,
          name: frame.name,
          start: frame.start,
          end: line,
          lines: line - frame.start + 1,
        });
      }
      if (frame.kind === "inline" || frame.kind === "type") {
        append("}");
      } else {
        header = "";
      }
      continue;
    }
    if (c === ";") {
      header = "";
      lastSignificant = ";";
      i++;
      continue;
    }
    append(c);
    if (!/\s/.test(c)) lastSignificant = c;
    i++;
  }
  return found;
}

function nameOf(header: string): string {
  const fn = /\bfunction\s*\*?\s*([#\w$]+)/.exec(header);
  if (fn) return fn[1];
  const assigned = /([#\w$.]+)\s*(?::[^=]*)?=\s*(?:async\s*)?(?:\([^]*\)|[\w$]+)\s*(?::[^=]*)?=>$/
    .exec(header);
  if (assigned) return assigned[1];
  const method =
    /^(?:(?:public|private|protected|static|async|override|get|set)\s+)*\*?\s*([#\w$]+)\s*[<(]/
      .exec(header);
  if (method && !NOT_METHOD.test(header)) return method[1];
  const key = /([#\w$]+)\s*:\s*(?:async\s*)?(?:\([^]*\)|[\w$]+)\s*(?::[^=]*)?=>$/.exec(header);
  if (key) return key[1];
  return "<anonymous>";
}

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* tsFiles(path);
    else if (entry.isFile && path.endsWith(".ts") && !path.endsWith("_test.ts")) yield path;
  }
}

/** Every function body over `maxLines` lines in the product `.ts` files under `dirs` (relative to the root). */
export async function longFunctions(dirs: string[], maxLines: number): Promise<FunctionSpan[]> {
  const all: FunctionSpan[] = [];
  for (const dir of dirs) {
    for await (const path of tsFiles(join(ROOT, dir))) {
      const spans = scanFunctions(relative(ROOT, path), await Deno.readTextFile(path));
      all.push(...spans.filter((s) => s.lines > maxLines));
    }
  }
  return all.sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file));
}

if (import.meta.main) {
  const max = Number(Deno.args[0] ?? "120");
  for (const s of await longFunctions(["stages", "common"], max)) {
    console.log(`${String(s.lines).padStart(4)}  ${s.file}:${s.start}-${s.end}  ${s.name}`);
  }
}
