import assert from "node:assert/strict";
import { findDenortBase } from "./denort.ts";
import { compileArgs, STAGE_BINARIES } from "./stages.ts";

const base = await findDenortBase();
if (!base.found) console.log(`compile tests skipped: ${base.reason}`);

Deno.test("every stage has a main.ts entry that compile can build", async () => {
  for (const s of STAGE_BINARIES) {
    const st = await Deno.stat(s.entry);
    assert.ok(st.isFile, `${s.entry} exists`);
    assert.deepEqual(compileArgs(s, "dist").slice(-3), ["--output", `dist/${s.binary}`, s.entry]);
  }
});

Deno.test({
  name: "compiled stage binaries run and print their help",
  ignore: !base.found,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      for (const s of STAGE_BINARIES) {
        const c = await new Deno.Command(Deno.execPath(), {
          args: compileArgs(s, dir),
          env: base.found ? { DENORT_BIN: base.path } : {},
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(c.success, new TextDecoder().decode(c.stderr));
        const run = await new Deno.Command(`${dir}/${s.binary}`, {
          args: ["--help"],
          stdout: "piped",
        })
          .output();
        assert.ok(run.success);
        assert.match(new TextDecoder().decode(run.stdout), new RegExp(`sluice-${s.stage}`));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
