/**
 * `deno task infra:synth` writes the synthesized files (see `variants.ts`); with `--check` it
 * writes nothing and exits 1 naming each file that differs from what the TypeScript produces.
 *
 * @example
 * ```sh
 * deno task infra:synth            # writes infra/{aws,eks,openshift,rke2}/main.tf.json, infra/k8s/sluice.k8s.json
 * deno task infra:synth --check    # exit 1 when a committed file is stale
 * ```
 * @module
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderInfraFiles } from "./variants.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Files whose committed text differs from the rendered one.
 *
 * @example
 * ```ts
 * await staleInfraFiles(renderInfraFiles()); // [] when up to date
 * ```
 */
export async function staleInfraFiles(files: Map<string, string>): Promise<string[]> {
  const stale: string[] = [];
  for (const [path, text] of files) {
    const have = await readFile(join(ROOT, path), "utf8").catch(() => undefined);
    if (have !== text) stale.push(have === undefined ? `${path} (missing)` : path);
  }
  return stale;
}

async function main(args: string[]): Promise<number> {
  const check = args.includes("--check");
  const unknown = args.filter((a) => a !== "--check");
  if (unknown.length > 0) {
    console.error(
      `infra:synth: unknown argument ${unknown.join(" ")} (expected --check or nothing)`,
    );
    return 2;
  }
  const files = renderInfraFiles();
  if (check) {
    const stale = await staleInfraFiles(files);
    if (stale.length > 0) {
      console.error(`infra:synth --check: stale (run deno task infra:synth): ${stale.join(", ")}`);
      return 1;
    }
    console.log(`infra:synth --check: ${files.size} files up to date`);
    return 0;
  }
  for (const [path, text] of files) {
    await mkdir(dirname(join(ROOT, path)), { recursive: true });
    await writeFile(join(ROOT, path), text);
    console.log(`wrote ${path} (${text.length} bytes)`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
