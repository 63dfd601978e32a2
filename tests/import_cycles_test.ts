/**
 * No import circles between the project's own modules: the module graph of every stage entry
 * and every `common/*` module (from `deno info --json`) has no strongly connected component
 * larger than one file.
 *
 * @example
 * ```ts
 * // deno test -A tests/import_cycles_test.ts
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

const ROOT = fromFileUrl(new URL("..", import.meta.url));

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
}

/** The project's module graph reachable from `entries`: file → the project files it imports. */
async function moduleGraph(entries: string[]): Promise<Map<string, Set<string>>> {
  const graph = new Map<string, Set<string>>();
  for (const entry of entries) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, `deno info ${entry}: ${new TextDecoder().decode(out.stderr)}`);
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
    for (const m of info.modules) {
      const from = ownFile(m.specifier);
      if (from === null) continue;
      const deps = graph.get(from) ?? new Set<string>();
      graph.set(from, deps);
      for (const d of m.dependencies ?? []) {
        for (const spec of [d.code?.specifier, d.type?.specifier]) {
          const to = spec ? ownFile(spec) : null;
          if (to !== null && to !== from) deps.add(to);
        }
      }
    }
  }
  return graph;
}

/** The repository-relative path of a project file, or null for anything else. */
function ownFile(specifier: string): string | null {
  if (!specifier.startsWith("file://")) return null;
  const rel = relative(ROOT, fromFileUrl(specifier));
  return rel.startsWith("..") || rel.startsWith("node_modules") ? null : rel;
}

/** Strongly connected components with more than one file (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

Deno.test("cycles() finds a circle of two files and ignores a chain", () => {
  const g = new Map([["a", new Set(["b"])], ["b", new Set(["a", "c"])], ["c", new Set<string>()]]);
  assert.deepEqual(cycles(g), [["a", "b"]]);
});

Deno.test("no import circles between the project's modules", async () => {
  const entries: string[] = [];
  for (const dir of ["stages", "common"]) {
    for (const e of Deno.readDirSync(join(ROOT, dir))) {
      if (!e.isDirectory) continue;
      for (const f of ["main.ts", "mod.ts"]) {
        try {
          Deno.statSync(join(ROOT, dir, e.name, f));
          entries.push(join(dir, e.name, f));
        } catch {
          // no such entry in this module
        }
      }
    }
  }
  const found = cycles(await moduleGraph(entries));
  assert.deepEqual(found, [], `import circles:\n${found.map((c) => c.join(" ↔ ")).join("\n")}`);
});
