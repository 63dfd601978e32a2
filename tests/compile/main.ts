/**
 * `deno task compile [stage...]`: builds `dist/sluice-<stage>` for each stage (all by default).
 * Exits 0 with a SKIP line when Deno's runtime base cannot be obtained on this machine.
 * @module
 */
import { findDenortBase } from "./denort.ts";
import { compileArgs, STAGE_BINARIES } from "./stages.ts";

if (import.meta.main) {
  const wanted = Deno.args.length ? Deno.args : STAGE_BINARIES.map((s) => s.stage);
  const unknown = wanted.filter((w) => !STAGE_BINARIES.some((s) => s.stage === w));
  if (unknown.length) {
    console.error(
      `unknown stage(s) ${unknown.join(", ")}; expected one of ${
        STAGE_BINARIES.map((s) => s.stage).join(", ")
      }`,
    );
    Deno.exit(2);
  }
  const base = await findDenortBase();
  if (!base.found) {
    console.log(`SKIP compile: ${base.reason}`);
    Deno.exit(0);
  }
  await Deno.mkdir("dist", { recursive: true });
  for (const s of STAGE_BINARIES.filter((s) => wanted.includes(s.stage))) {
    const args = compileArgs(s, "dist");
    console.log(`deno ${args.join(" ")}`);
    const r = await new Deno.Command(Deno.execPath(), { args, env: { DENORT_BIN: base.path } })
      .output();
    if (!r.success) Deno.exit(r.code || 1);
  }
}
