/**
 * The `deno compile` command for one stage and target, with every npm package the stage's module
 * graph does not import excluded (`--exclude node_modules/.deno/<package>` and the links to it).
 * With `"nodeModulesDir": "auto"` node_modules holds all of deno.lock, test-only packages (fauxqs,
 * @action-validator/core, hyparquet-writer) and infra-only ones (cdktf…) included, and `deno
 * compile` would otherwise embed them in the binary.
 *
 * @example
 * ```ts
 * const args = await compilePlan(".", STAGE_BINARIES[0], "dist", "x86_64-unknown-linux-gnu");
 * // ["compile", …, "--exclude", "node_modules/.deno/fauxqs@2.4.1", …, "stages/ingest/main.ts"]
 * ```
 * @module
 */
import { join } from "node:path";
import { graphPackageFolders } from "../../infra/container/stage_npm_packages.ts";
import { compileArgs, type StageBinary, type Target } from "./stages.ts";

async function entries(dir: string): Promise<Deno.DirEntry[]> {
  try {
    return await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return [];
  }
}

/** The links in a node_modules folder (scoped ones one level down), relative to `root`. */
async function links(root: string, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await entries(join(root, dir))) {
    if (e.isSymlink) out.push(`${dir}/${e.name}`);
    else if (e.isDirectory && e.name.startsWith("@")) {
      for (const s of await entries(join(root, dir, e.name))) {
        if (s.isSymlink) out.push(`${dir}/${e.name}/${s.name}`);
      }
    }
  }
  return out;
}

/**
 * Paths under `root` (relative) of the npm packages `s` does not import: package folders in
 * node_modules/.deno and the node_modules links that point into them. Sorted.
 */
export async function excludedPackages(root: string, s: StageBinary): Promise<string[]> {
  const keep = await graphPackageFolders(root, [
    s.entry,
    ...s.include.filter((p) => p.endsWith(".ts")),
  ]);
  const dropped = (await entries(join(root, "node_modules/.deno")))
    .filter((e) => e.isDirectory && !e.name.startsWith(".") && e.name !== "node_modules")
    .map((e) => e.name)
    .filter((name) => !keep.has(name.replace(/_\d+$/, "")));
  const excluded = dropped.map((name) => `node_modules/.deno/${name}`);
  for (
    const link of [
      ...await links(root, "node_modules"),
      ...await links(root, "node_modules/.deno/node_modules"),
    ]
  ) {
    const target = await Deno.readLink(join(root, link));
    if (dropped.some((name) => target.split("/").includes(name))) excluded.push(link);
  }
  return excluded.sort();
}

/** `compileArgs` for `s` and `target`, excluding the packages `s` does not import. */
export async function compilePlan(
  root: string,
  s: StageBinary,
  outDir: string,
  target: Target,
): Promise<string[]> {
  return compileArgs(s, outDir, target, await excludedPackages(root, s));
}
