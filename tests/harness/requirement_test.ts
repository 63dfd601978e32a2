import assert from "node:assert/strict";
import { RequirementMissingError, skipUnless } from "./requirement.ts";

Deno.test("skipUnless: present runs, missing skips, missing under CI=true fails", () => {
  assert.equal(skipUnless("tool", null, { CI: "true" }), false);
  assert.equal(skipUnless("tool", "not installed", {}), true);
  assert.throws(
    () => skipUnless("tool", "not installed", { CI: "true" }),
    (e: unknown) => e instanceof RequirementMissingError && /tool: not installed/.test(e.message),
  );
});

/** Runs a test file in a child with CI=true and the given PATH; returns its exit code and output. */
async function runUnderCi(file: string, env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", file],
    env: { CI: "true", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, text: d.decode(out.stdout) + d.decode(out.stderr) };
}

Deno.test("under CI=true, a missing systemd-analyze fails systemd_test instead of skipping", async () => {
  const r = await runUnderCi("stages/train/systemd_test.ts", {
    SLUICE_TEST_SYSTEMD_ANALYZE: "/nonexistent/systemd-analyze",
  });
  assert.notEqual(r.code, 0, r.text);
  assert.match(r.text, /RequirementMissingError|CI=true makes a missing requirement a failure/);
});

Deno.test("under CI=true, a missing torch fails gpu_resizer_test instead of skipping", async () => {
  const r = await runUnderCi("common/images/gpu_resizer_test.ts", {
    SLUICE_TEST_PYTHON: "/nonexistent/python3",
  });
  assert.notEqual(r.code, 0, r.text);
  assert.match(r.text, /CI=true makes a missing requirement a failure/);
});

Deno.test("under CI=true, no mount rights fail the tmpfs staging steps instead of skipping", async () => {
  const r = await runUnderCi("common/staging/staging_lease_test.ts", {
    SLUICE_TEST_MOUNT: "/nonexistent/mount",
  });
  assert.notEqual(r.code, 0, r.text);
  assert.match(r.text, /tmpfs steps: mount not permitted/);
});
