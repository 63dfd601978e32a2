/**
 * The trainer as a compiled `sluice-train` carries it: read from the module-relative copy (what
 * `deno compile --include` embeds), materialised into the runtime cache, and run from there, with
 * the process started outside the checkout.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openManifest } from "../../common/manifest/mod.ts";
import { FileTracker } from "../../common/mlflow/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { sharedSections, trainDefaults, trainerUnavailable } from "./testdata/pipeline.ts";
import { seedTrainingData } from "./testdata/seed_manifest.ts";
import { TRAINER_FILES, TRAINER_SOURCE_DIR, withTrainerDir } from "./trainer_source.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CI = Deno.env.get("CI") === "true";
const missing = await trainerUnavailable();
if (missing !== null && !CI) {
  console.log(`trainer run skipped: python3 cannot import torch (${missing})`);
}

Deno.test("withTrainerDir points the bundled trainer's files at the materialised copy", () => {
  const dir = "/cache/trainer-abc";
  assert.deepEqual(
    withTrainerDir(["/usr/bin/python3", "stages/train/trainer/train.py", "--x"], dir),
    ["/usr/bin/python3", "/cache/trainer-abc/train.py", "--x"],
  );
  assert.deepEqual(withTrainerDir(["python3", "./stages/train/trainer/train.py"], dir), [
    "python3",
    "/cache/trainer-abc/train.py",
  ]);
  // The user's own trainer, and paths that are not a bundled Python file, are left alone.
  for (
    const cmd of [
      ["python3", "/opt/my/train.py"],
      ["python3", "my/stages/train/trainer/train.py"],
      ["sh", "stages/train/trainer/README.md"],
      ["sh", "stages/train/trainer/sub/x.py"],
    ]
  ) assert.deepEqual(withTrainerDir(cmd, dir), cmd);
});

function sha256(path: string): string {
  return createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
}

Deno.test({
  name: "sluice-train started outside the checkout trains from the materialised trainer",
  ignore: missing !== null && !CI,
  async fn() {
    const dir = await mkdtemp(join(tmpdir(), "sluice-train-outside-"));
    try {
      const stagingRoot = join(dir, "nvme", "sluice");
      await Deno.mkdir(stagingRoot, { recursive: true });
      const elsewhere = join(dir, "elsewhere");
      await Deno.mkdir(elsewhere);
      const configFile = join(dir, "sluice.json");
      await writeFile(
        configFile,
        JSON.stringify({ ...sharedSections(dir), train: { ...trainDefaults, epochs: 1 } }),
      );
      const manifest = await openManifest(`sqlite://${join(dir, "manifest.db")}`);
      const store = await openObjectStore(join(dir, "objects"));
      try {
        await seedTrainingData(manifest, store, {
          count: 24,
          seed: 9,
          variant: { name: "96", width: 96, height: 96, mode: "letterbox" },
        });
      } finally {
        await store.close();
        await manifest.close();
      }
      // The working directory has no stages/train/trainer; the modules come from the checkout
      // the way a binary's come from inside it (--config names the import map only).
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--config",
          join(ROOT, "deno.json"),
          join(ROOT, "stages/train/main.ts"),
          "run",
          "--config",
          configFile,
          "--train-promotion-threshold",
          "0",
        ],
        cwd: elsewhere,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const d = new TextDecoder();
      const stderr = d.decode(out.stderr);
      assert.equal(out.code, 0, stderr.slice(-3000));
      const result = JSON.parse(d.decode(out.stdout));
      assert.equal(result.modelVersion, "1");

      // The default cache (the staging root exists): <staging.root>/runtime-cache/trainer-<hash>,
      // holding exactly the trainer's Python files, byte for byte.
      const cache = join(stagingRoot, "runtime-cache");
      const trainerDirs = [...Deno.readDirSync(cache)].filter((e) => e.name.startsWith("trainer-"));
      assert.equal(trainerDirs.length, 1);
      const trainerDir = join(cache, trainerDirs[0].name);
      const sources = [...Deno.readDirSync(TRAINER_SOURCE_DIR)]
        .filter((e) => e.isFile && TRAINER_FILES.test(e.name)).map((e) => e.name).sort();
      const copied = [...Deno.readDirSync(trainerDir)].filter((e) => !e.name.startsWith("."))
        .map((e) => e.name).sort();
      assert.ok(copied.every((f) => f.endsWith(".py") || f === "__pycache__"), `${copied}`);
      assert.deepEqual(copied.filter((f) => f.endsWith(".py")), sources);
      for (const f of sources) {
        assert.equal(sha256(join(trainerDir, f)), sha256(join(TRAINER_SOURCE_DIR, f)), f);
      }
      const launch = stderr.split("\n").filter((l) => l.includes('"launching trainer"'))
        .map((l) => JSON.parse(l));
      assert.equal(launch.length, 1, "one launch logged");
      assert.equal(launch[0].command, `/usr/bin/python3 ${join(trainerDir, "train.py")}`);

      const tracker = new FileTracker({ root: join(dir, "mlruns") });
      try {
        const v = await tracker.getVersionByAlias("sluice-detector", "candidate");
        assert.equal(v?.version, "1");
      } finally {
        await tracker.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});
