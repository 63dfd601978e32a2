/**
 * `deno task compile [--target T]... [--out-dir DIR] [stage...]`: builds
 * `<out>/<target>/sluice-<stage>` for each stage (all by default) and Linux target (x86_64 and
 * aarch64 by default), and links `<out>/sluice-<stage>` to this machine's target. Each binary built
 * for this machine's architecture is run with `--help` to prove it is the stage.
 *
 * It checks everything first and exits 1 without building when Deno's runtime base (denort) or a
 * target's native packages are missing, naming what is missing and the way out. Exit 2: bad
 * arguments.
 * @module
 */
import { parseArgs } from "node:util";
import { compilePlan } from "./compile_plan.ts";
import { findDenortBase } from "./denort.ts";
import { missingNativePackages } from "./native_packages.ts";
import { binaryPath, hostTarget, STAGE_BINARIES, type Target, TARGETS } from "./stages.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function wayOut(): string {
  const version = Deno.version.deno;
  return [
    "Ways out:",
    `  - run \`deno task compile\` on a machine that can reach https://dl.deno.land (deno compile`,
    `    downloads denort-<target>.zip into $DENO_DIR/dl/release/v${version}/), or copy that zip`,
    "    there from such a machine;",
    `  - or set DENORT_BIN=<path to the denort binary of Deno ${version} for the target> (the file`,
    `    inside denort-<target>.zip; the same Deno version as the one compiling);`,
    `  - or build only the targets you have: deno task compile --target <target>.`,
    "  DENORT_BIN=$(which deno) does NOT produce a stage binary: the deno CLI ignores the embedded",
    "  program and behaves like plain `deno`, so it is refused.",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        target: { type: "string", multiple: true },
        "out-dir": { type: "string", default: "dist" },
      },
    });
  } catch (err) {
    console.error(`deno task compile: ${err instanceof Error ? err.message : err}`);
    return 2;
  }
  const stages = parsed.positionals.length
    ? parsed.positionals
    : STAGE_BINARIES.map((s) => s.stage);
  const unknown = stages.filter((w) => !STAGE_BINARIES.some((s) => s.stage === w));
  const targets = parsed.values.target ?? [...TARGETS];
  const badTargets = targets.filter((t) => !(TARGETS as readonly string[]).includes(t));
  if (unknown.length || badTargets.length) {
    console.error(
      `deno task compile: expected stages of ${STAGE_BINARIES.map((s) => s.stage).join(", ")} ` +
        `and targets of ${TARGETS.join(", ")}; found ${[...unknown, ...badTargets].join(", ")}`,
    );
    return 2;
  }
  const outDir = parsed.values["out-dir"];
  const wanted = STAGE_BINARIES.filter((s) => stages.includes(s.stage));

  const bases = new Map<Target, string>();
  const problems: string[] = [];
  let baseMissing = false;
  for (const target of targets as Target[]) {
    const reasons: string[] = [];
    const base = await findDenortBase(target);
    if (base.found) bases.set(target, base.path);
    else {
      reasons.push(base.reason);
      baseMissing = true;
    }
    const missing = missingNativePackages(target, ROOT);
    if (missing.length) {
      reasons.push(
        `node_modules lacks ${missing.join(", ")} (npm installs native packages for this ` +
          `machine's platform only; build ${target} on an ${target.split("-")[0]} machine)`,
      );
    }
    if (reasons.length) {
      problems.push(`cannot build ${outDir}/${target}/sluice-*:\n  ${reasons.join("\n  ")}`);
    }
  }
  if (problems.length) {
    console.error(
      `deno task compile: nothing built.\n${problems.join("\n")}` +
        (baseMissing ? `\n${wayOut()}` : ""),
    );
    return 1;
  }

  const host = hostTarget();
  for (const target of targets as Target[]) {
    await Deno.mkdir(`${outDir}/${target}`, { recursive: true });
    for (const s of wanted) {
      const args = await compilePlan(ROOT, s, outDir, target);
      console.error(`deno ${args.join(" ")}`);
      const r = await new Deno.Command(Deno.execPath(), {
        args,
        cwd: ROOT,
        env: { DENORT_BIN: bases.get(target)! },
      }).output();
      if (!r.success) {
        console.error(`deno task compile: deno compile failed for ${s.binary} (${target})`);
        return r.code || 1;
      }
      const bin = binaryPath(s, outDir, target);
      if (target.split("-")[0] === host?.split("-")[0]) {
        const help = await new Deno.Command(bin, { args: ["--help"], stdout: "piped" }).output();
        const text = new TextDecoder().decode(help.stdout);
        if (!help.success || !text.includes(s.binary)) {
          console.error(
            `deno task compile: ${bin} --help did not print the ${s.binary} usage (exit ` +
              `${help.code}); the runtime base is not a working denort`,
          );
          return 1;
        }
      }
      if (target === host) {
        const link = `${outDir}/${s.binary}`;
        await Deno.remove(link).catch(() => {});
        await Deno.symlink(`${target}/${s.binary}`, link);
      }
      console.log(bin);
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
