// The `sluice-infer` command line, run as a real process (the end-to-end `once --eval` run is in
// stage_test.ts).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

async function cli(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, MAIN, ...args],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("sluice-infer: --help, usage errors, --print-config, no approved model", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "infer-main-"));
  const env = {
    // Only what Deno itself needs comes from outside: no stray SLUICE_* or MLFLOW_* settings.
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? dir,
    ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
    SLUICE_MANIFEST_URL: `sqlite://${dir}/manifest.db`,
    SLUICE_OBJECT_STORE_URL: `${dir}/objects`,
    SLUICE_STAGING_ROOT: `${dir}/nvme`,
    SLUICE_STAGING_MIN_FREE_MB: "0",
    SLUICE_MLFLOW_LOCAL_DIR: `${dir}/mlruns`,
    SLUICE_MLFLOW_MODEL_NAME: "det",
    SLUICE_HTTP_PORT: "0",
    SLUICE_LOG_FORMAT: "json",
  };
  try {
    await t.step("--help lists the modes, --input/--eval and the infer settings", async () => {
      const r = await cli(["--help"], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /sluice-infer \[run\|once\] \[--input PREFIX\|@LIST\]/);
      for (const flag of ["--input", "--eval", "--infer-alias", "--infer-model-uri"]) {
        assert.ok(r.stdout.includes(flag), `--help: expected ${flag}`);
      }
      assert.match(r.stdout, /SLUICE_INFER_EXECUTION_PROVIDER/);
    });

    await t.step("an unknown mode is a usage error (exit 2)", async () => {
      const r = await cli(["sideways"], env);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /expected one mode of run, once, found \["sideways"\]/);
    });

    await t.step("a bad setting is named (exit 2)", async () => {
      const r = await cli(["once"], { ...env, SLUICE_INFER_APPROVED_TAG: "approved" });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /expected key=value/);
    });

    await t.step("--print-config redacts the Label Studio token", async () => {
      const r = await cli(["--print-config"], {
        ...env,
        SLUICE_INFER_LABEL_STUDIO_TOKEN: "very-secret",
      });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /very-secret/);
      const printed = JSON.parse(r.stdout);
      assert.equal(printed.infer.labelStudioToken, "***redacted***");
      assert.equal(printed.infer.alias, "champion");
    });

    await t.step(
      "once without an approved model fails (exit 1) and says what it looked for",
      async () => {
        const r = await cli(["once"], env);
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, /no_approved_model/);
        assert.match(r.stderr, /alias \\"champion\\"/);
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
