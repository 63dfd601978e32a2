/**
 * The npm packages a set of entry points really runs: those their module graph imports
 * (`deno info --json`), closed over their dependencies, as `node_modules/.deno` folder names
 * (`<name with / as +>@<version>`). deno.lock also holds test-only packages (fauxqs,
 * @action-validator/core, hyparquet-writer) and infra-only ones (cdktf…); the image packaging
 * (prune_node_modules.ts) and `deno task compile` keep only this set.
 *
 * @example
 * ```ts
 * const keep = await graphPackageFolders(".", ["stages/ingest/main.ts"]);
 * keep.has("sharp@0.35.5"); // true
 * keep.has("fauxqs@2.4.1"); // false
 * ```
 * @module
 */
import { join } from "node:path";

interface DenoInfo {
  modules: { kind?: string; npmPackage?: string }[];
  npmPackages: Record<string, { name: string; version: string; dependencies?: string[] }>;
}

/**
 * The `node_modules/.deno` folder names (`<name with / as +>@<version>`) of the npm packages the
 * module graph of `entrypoints` needs, dependencies included.
 */
export async function graphPackageFolders(
  root: string,
  entrypoints: string[],
): Promise<Set<string>> {
  const folders = new Set<string>();
  for (const entry of entrypoints) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--frozen", "--config", join(root, "deno.json"), entry],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `deno info ${entry}: expected exit 0, found ${out.code}: ` +
          new TextDecoder().decode(out.stderr),
      );
    }
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as DenoInfo;
    const seen = new Set<string>();
    const todo = info.modules.flatMap((m) =>
      m.kind === "npm" && m.npmPackage ? [m.npmPackage] : []
    );
    while (todo.length) {
      const id = todo.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      const pkg = info.npmPackages[id];
      if (!pkg) throw new Error(`deno info ${entry}: npm package ${id} is imported but not listed`);
      folders.add(`${pkg.name.replace("/", "+")}@${pkg.version}`);
      todo.push(...(pkg.dependencies ?? []));
    }
  }
  return folders;
}
