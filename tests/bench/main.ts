/**
 * Benchmark dispatcher: `deno task bench [name...] [--options]` runs `tests/bench/<name>.ts`'s
 * exported `run(args)` for each name (all benchmarks when none is named), passing every argument
 * from the first one starting with `-` onwards.
 *
 * @example
 * ```sh
 * deno task bench                              # every benchmark
 * deno task bench normalize --rounds 3         # one, with options
 * ```
 * @module
 */
import { readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { SluiceError } from "../../common/errors/mod.ts";

/** What a benchmark module exports. */
export interface BenchModule {
  run(args: string[]): Promise<void>;
}

const NAME = /^[a-z][a-z0-9_]*$/;

/**
 * Names of the benchmarks in this directory: `<name>.ts` files, excluding this dispatcher,
 * private helpers (`_x.ts`) and tests.
 *
 * @example
 * ```ts
 * await listBenchmarks(); // ["normalize", ...]
 * ```
 */
export async function listBenchmarks(): Promise<string[]> {
  const dir = fileURLToPath(new URL(".", import.meta.url));
  return (await readdir(dir))
    .filter((f) => f.endsWith(".ts") && !f.endsWith("_test.ts") && f !== "main.ts")
    .map((f) => f.slice(0, -3))
    .filter((n) => NAME.test(n))
    .sort();
}

/**
 * Runs the named benchmarks (all when none), in order, with the options that follow the names.
 *
 * @example
 * ```ts
 * await main(["normalize", "--images", "10"]);
 * ```
 */
export async function main(argv: string[]): Promise<void> {
  const firstOption = argv.findIndex((a) => a.startsWith("-"));
  const names = firstOption === -1 ? argv : argv.slice(0, firstOption);
  const rest = firstOption === -1 ? [] : argv.slice(firstOption);
  const available = await listBenchmarks();
  const chosen = names.length ? names : available;
  for (const name of chosen) {
    if (!NAME.test(name) || !available.includes(name)) {
      throw new SluiceError(
        "unknown_benchmark",
        `benchmark ${JSON.stringify(name)}: expected one of ${available.join(", ") || "(none)"}`,
      );
    }
  }
  for (const name of chosen) {
    const mod = await import(new URL(`./${name}.ts`, import.meta.url).href) as Partial<BenchModule>;
    if (typeof mod.run !== "function") {
      throw new SluiceError(
        "unknown_benchmark",
        `tests/bench/${name}.ts: expected an exported run(args), found none`,
      );
    }
    console.log(`\n=== bench ${name} ===`);
    await mod.run(rest);
  }
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (err) {
    console.error(err instanceof SluiceError ? `bench: ${err.message}` : err);
    Deno.exit(1);
  }
}
