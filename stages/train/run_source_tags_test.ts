import assert from "node:assert/strict";
import { runSourceTags } from "./run_source_tags.ts";

Deno.test("runSourceTags: user from the environment, commit from SLUICE_GIT_COMMIT", async () => {
  const env: Record<string, string> = { USER: "ops", SLUICE_GIT_COMMIT: "a".repeat(40) };
  assert.deepEqual(
    await runSourceTags({ sourceName: "sluice-train", sourceType: "JOB", env: (k) => env[k] }),
    {
      "mlflow.user": "ops",
      "mlflow.source.name": "sluice-train",
      "mlflow.source.type": "JOB",
      "mlflow.source.git.commit": "a".repeat(40),
    },
  );
});

Deno.test("runSourceTags: the commit of a git checkout; none outside one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "src-tags-" });
  try {
    const git = (...args: string[]) =>
      new Deno.Command("git", { args, cwd: dir, stdout: "piped", stderr: "piped" }).output();
    const env = (k: string) => ({ LOGNAME: "ci" } as Record<string, string>)[k];
    const none = await runSourceTags({ sourceName: "x", sourceType: "LOCAL", env, gitDir: dir });
    assert.equal(none["mlflow.source.git.commit"], undefined, "not a checkout: no commit tag");
    assert.equal(none["mlflow.user"], "ci");
    await git("init", "-q");
    await Deno.writeTextFile(`${dir}/f`, "x");
    await git("add", "f");
    await git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x");
    const head = new TextDecoder().decode((await git("rev-parse", "HEAD")).stdout).trim();
    const tags = await runSourceTags({ sourceName: "x", sourceType: "LOCAL", env, gitDir: dir });
    assert.equal(tags["mlflow.source.git.commit"], head);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
