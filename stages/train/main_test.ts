/**
 * The `sluice-train` command line, run as a real subprocess: help, printed configuration, the
 * k8s and systemd launchers (definitions written and printed), requests, and one rank of a
 * multi-host run (`node`), which trains for real when torch is available.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openManifest } from "../../common/manifest/mod.ts";
import { FileTracker } from "../../common/mlflow/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { freePort } from "./trainer_process.ts";
import { sharedSections, trainDefaults, trainerUnavailable } from "./testdata/pipeline.ts";
import { seedTrainingData } from "./testdata/seed_manifest.ts";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const missing = await trainerUnavailable();
const CI = Deno.env.get("CI") === "true";

interface Cli {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<Cli> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test("sluice-train command line", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-train-cli-"));
  try {
    await Deno.mkdir(join(dir, "nvme"));
    const configFile = join(dir, "sluice.json");
    await writeFile(configFile, JSON.stringify({ ...sharedSections(dir), train: trainDefaults }));
    const manifest = await openManifest(`sqlite://${join(dir, "manifest.db")}`);
    const store = await openObjectStore(join(dir, "objects"));
    try {
      await seedTrainingData(manifest, store, {
        count: 24,
        seed: 4,
        variant: { name: "96", width: 96, height: 96, mode: "letterbox" },
      });

      await t.step("--help lists modes, settings and their environment variables", async () => {
        const r = await cli(["--help"]);
        assert.equal(r.code, 0, r.stderr);
        for (
          const s of [
            "sluice-train",
            "worker",
            "node",
            "--train-epochs",
            "SLUICE_TRAIN_LAUNCHER",
            "--train-promotion-threshold",
            "--plan",
          ]
        ) {
          assert.ok(r.stdout.includes(s), s);
        }
      });

      await t.step("--print-config shows the defaults", async () => {
        const r = await cli(["--print-config"], { SLUICE_TRAIN_NODES: "3" });
        assert.equal(r.code, 0, r.stderr);
        const c: Json = JSON.parse(r.stdout);
        assert.equal(c.train.variant, "320");
        assert.equal(c.train.nodes, 3);
        assert.equal(c.train.launcher, "local");
        assert.equal(c.train.promotionThreshold, 0.5);
        assert.equal(c.train.approvedAlias, "champion");
        assert.equal(c.train.trainingPrefix, "training");
        assert.deepEqual(c.train.trainerCommand, [
          "/usr/bin/python3",
          "stages/train/trainer/train.py",
        ]);
      });

      await t.step("bad modes and settings are usage errors", async () => {
        assert.equal((await cli(["dance"])).code, 2);
        const bad = await cli(["--train-approved-alias", "candidate"]);
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /approvedAlias/);
        assert.equal((await cli(["node", "--config", configFile])).code, 2, "node needs --plan");
      });

      let k8sPlanKey = "";
      await t.step("launcher k8s writes the Job and Service and prints where", async () => {
        const r = await cli([
          "run",
          "--config",
          configFile,
          "--train-launcher",
          "k8s",
          "--train-nodes",
          "2",
        ]);
        assert.equal(r.code, 0, r.stderr);
        const out: Json = JSON.parse(r.stdout);
        assert.equal(out.launcher, "k8s");
        assert.equal(out.runId, null);
        assert.equal(out.definitions.length, 2);
        assert.ok(out.definitions[0].endsWith(`${out.keys.dir}/k8s/job.yaml`));
        const job = new TextDecoder().decode(await store.getBytes(`${out.keys.dir}/k8s/job.yaml`));
        assert.match(job, /completions: 2/);
        assert.match(job, /completionMode: "Indexed"/);
        assert.ok(
          job.includes(JSON.stringify(out.keys.launch)),
          "pods run node --plan <launch.json>",
        );
        assert.ok(await store.head(`${out.keys.dir}/k8s/service.yaml`));
        assert.equal(out.keys.shards.length, 2);
        k8sPlanKey = out.keys.launch;
      });

      await t.step(
        "launcher systemd writes the template unit and one env file per rank",
        async () => {
          const r = await cli([
            "run",
            "--config",
            configFile,
            "--train-launcher",
            "systemd",
            "--train-nodes",
            "2",
            "--train-master-addr",
            "gpu-1.internal",
          ]);
          assert.equal(r.code, 0, r.stderr);
          const out: Json = JSON.parse(r.stdout);
          assert.deepEqual(
            out.definitions.map((u: string) => u.slice(u.lastIndexOf("/") + 1)),
            ["sluice-train-node@.service", "rank-0.env", "rank-1.env"],
          );
          const env1 = new TextDecoder().decode(
            await store.getBytes(`${out.keys.dir}/systemd/rank-1.env`),
          );
          assert.match(env1, /^RANK="1"$/m);
          assert.match(env1, /^MASTER_ADDR="gpu-1.internal"$/m);
          assert.equal(out.keys.launch, k8sPlanKey, "same settings, same layout and inputs");
        },
      );

      await t.step("request enqueues a training request once", async () => {
        const a = await cli(["request", "nightly-1", "--config", configFile]);
        assert.equal(a.code, 0, a.stderr);
        assert.deepEqual(JSON.parse(a.stdout), { request: "nightly-1", added: true });
        const b = await cli(["request", "nightly-1", "--config", configFile]);
        assert.deepEqual(JSON.parse(b.stdout), { request: "nightly-1", added: false });
        const pending = await manifest.listWork("train", "pending");
        assert.deepEqual(pending.map((w) => w.itemId), ["nightly-1"]);
      });

      await t.step({
        name: "node runs one rank of a prepared multi-host run, and rank 0 registers",
        ignore: missing !== null && !CI,
        fn: async () => {
          const prep = await cli([
            "run",
            "--config",
            configFile,
            "--train-launcher",
            "k8s",
            "--train-epochs",
            "1",
          ]);
          assert.equal(prep.code, 0, prep.stderr);
          const plan: Json = JSON.parse(prep.stdout);
          const r = await cli(["node", "--config", configFile, "--plan", plan.keys.launch], {
            RANK: "0",
            WORLD_SIZE: "1",
            MASTER_ADDR: "127.0.0.1",
            MASTER_PORT: String(freePort()),
            SLUICE_TRAIN_PROMOTION_THRESHOLD: "0",
          });
          assert.equal(r.code, 0, r.stderr.slice(-3000));
          const out: Json = JSON.parse(r.stdout);
          assert.equal(out.launcher, "node");
          assert.equal(out.modelVersion, "1");
          assert.equal(out.shards.length, 1);
          const launch: Json = JSON.parse(
            new TextDecoder().decode(await store.getBytes(plan.keys.launch)),
          );
          assert.equal(launch.settings.nodes, 1);
          assert.equal(out.shards[0].count, launch.settings.imagesPerNode);
          const tracker = new FileTracker({ root: join(dir, "mlruns") });
          try {
            const run = await tracker.getRun(out.runId);
            assert.equal(run.params.launcher, "node");
            assert.equal(run.params.layout, plan.layout);
            assert.equal(
              (await tracker.getVersionByAlias("sluice-detector", "candidate"))?.version,
              "1",
            );
          } finally {
            await tracker.close();
          }
          const bad = await cli([
            "node",
            "--config",
            configFile,
            "--plan",
            plan.keys.launch,
            "--rank",
            "3",
          ]);
          assert.equal(bad.code, 1);
          assert.match(bad.stderr, /invalid_rank/);
        },
      });
    } finally {
      await store.close();
      await manifest.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
