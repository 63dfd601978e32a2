/**
 * The stage images, built and run for real with podman (as root): each stage's `--help` as an
 * arbitrary UID in group 0 with a read-only root filesystem; ingest and normalize in containers
 * against a PostgreSQL manifest and the S3 test server on the host network (normalize's
 * /healthz and /readyz probed while it runs); and a two-node training run, one container per rank
 * started the way the train launcher's Indexed Job starts it, rendezvousing over TCP on loopback.
 *
 * Run by `make test-containers` (which sets SLUICE_CONTAINER_TESTS=1); `.ci/run` runs it too.
 * The `binary` and `train` targets need `deno task compile`'s dist/ and are built when it exists.
 */
import assert from "node:assert/strict";
import { chmod, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { openManifest } from "../../common/manifest/mod.ts";
import { hostTools } from "../harness/host_tools.ts";
import { startPostgres } from "../harness/postgres.ts";
import { startS3Server } from "../harness/s3.ts";
import { generateDataset } from "../support/synthetic/dataset.ts";
import { buildImage, ensureBase, podman, podmanOk, REPO } from "./podman.ts";

const STAGES = ["ingest", "normalize", "train", "infer"] as const;
const ARBITRARY_USER = "1000770000:0";
const DENO_IMAGE = "localhost/sluice:test-deno";
const DENO_TRAIN_IMAGE = "localhost/sluice:test-deno-train";
const IMAGES = 16;

const enabled = Deno.env.get("SLUICE_CONTAINER_TESTS") === "1";
const host = enabled
  ? await hostTools(["podman", "runc", "debootstrap"], { root: true })
  : { ok: false as const, reason: "run by `make test-containers` (SLUICE_CONTAINER_TESTS=1)" };
if (!host.ok) console.log(`SKIP container tests: ${host.reason}`);

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A host directory the arbitrary UID (group 0) can write: the staging volume of one container. */
async function stagingDir(name: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `sluice-ctr-${name}-`));
  await chmod(d, 0o2775);
  return d;
}

function envArgs(env: Record<string, string>): string[] {
  return Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
}

/** `podman run` as the arbitrary UID, read-only, on the host network, staging mounted. */
function runArgs(staging: string, env: Record<string, string>, name?: string): string[] {
  return [
    "run",
    ...(name ? ["--name", name] : ["--rm"]),
    "--network",
    "host",
    "--user",
    ARBITRARY_USER,
    "--read-only",
    "-v",
    `${staging}:/mnt/nvme/sluice`,
    ...envArgs(env),
  ];
}

async function waitFor<T>(
  what: string,
  ms: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last}` : ""}`);
}

function jsonLine(stdout: string): Record<string, unknown> {
  const line = stdout.trim().split("\n").filter((l) => l.startsWith("{")).at(-1);
  assert.ok(line, `expected a JSON line on stdout, found ${JSON.stringify(stdout.slice(-500))}`);
  return JSON.parse(line);
}

Deno.test({
  name: "stage images: build, --help as an arbitrary UID, ingest/normalize, two-node training",
  ignore: !host.ok,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const started = performance.now();
    const cleanup: (() => Promise<unknown>)[] = [];
    try {
      await t.step("base image (debootstrap, cached)", async () => {
        console.log(await ensureBase());
      });

      await t.step("build the deno and deno-train targets", async () => {
        await buildImage("deno", DENO_IMAGE);
        await buildImage("deno-train", DENO_TRAIN_IMAGE);
        const user = await podmanOk([
          "image",
          "inspect",
          "--format",
          "{{.Config.User}}",
          DENO_IMAGE,
        ]);
        assert.equal(user.stdout.trim(), "1001:0", "images run as a non-root UID in group 0");
        // The image carries only what the stages import (infra/container/prune_node_modules.ts).
        const shipped = await podmanOk([
          "run",
          "--rm",
          DENO_IMAGE,
          "sh",
          "-c",
          "ls /opt/sluice/node_modules/.deno; find /opt/sluice/deno-dir -path '*/npm/*' | head -5",
        ]);
        for (const pkg of ["fauxqs@", "@action-validator+core@", "hyparquet-writer@", "cdktf@"]) {
          assert.ok(
            !shipped.stdout.includes(pkg),
            `${DENO_IMAGE} carries ${pkg}: ${shipped.stdout}`,
          );
        }
        assert.doesNotMatch(shipped.stdout, /\/deno-dir\/npm\//, "the npm cache is dropped");
        assert.match(shipped.stdout, /^sharp@/m, `${DENO_IMAGE} lacks sharp: ${shipped.stdout}`);
      });

      const helpImages = [DENO_IMAGE, DENO_TRAIN_IMAGE];
      const dist = STAGES.map((s) => join(REPO, "dist", `sluice-${s}`));
      if (dist.every((p) => existsSync(p))) {
        await t.step("build the binary and train targets from dist/", async () => {
          await buildImage("binary", "localhost/sluice:test-binary");
          await buildImage("train", "localhost/sluice:test-train");
          helpImages.push("localhost/sluice:test-binary", "localhost/sluice:test-train");
        });
      } else {
        console.log(
          "SKIP binary/train targets: dist/sluice-<stage> missing (`deno task compile` needs " +
            "Deno's denort base, which this machine cannot download; the CI workflow builds them)",
        );
      }

      await t.step("every stage's --help as 1000770000:0 with a read-only root", async () => {
        for (const image of helpImages) {
          for (const s of STAGES) {
            const r = await podman([
              "run",
              "--rm",
              "--network",
              "none",
              "--user",
              ARBITRARY_USER,
              "--read-only",
              image,
              `sluice-${s}`,
              "--help",
            ]);
            assert.equal(r.code, 0, `${image} sluice-${s} --help: ${r.stderr.slice(-2000)}`);
            assert.match(r.stdout, new RegExp(`sluice-${s}`), `${image} ${s}`);
            assert.match(r.stdout, /SLUICE_/);
          }
        }
        // A read-only root really is read-only for the stage's user; the staging volume is not.
        const ro = await podman([
          "run",
          "--rm",
          "--user",
          ARBITRARY_USER,
          "--read-only",
          DENO_IMAGE,
          "sh",
          "-c",
          "touch /opt/sluice/x 2>/dev/null && echo writable || echo read-only; " +
          "touch /mnt/nvme/sluice/x && touch /var/cache/sluice/x && echo staging-ok",
        ]);
        assert.equal(ro.stdout.trim(), "read-only", ro.stderr);
        const rw = await podmanOk([
          "run",
          "--rm",
          "--user",
          ARBITRARY_USER,
          DENO_IMAGE,
          "sh",
          "-c",
          "touch /mnt/nvme/sluice/x /var/cache/sluice/x && id -g",
        ]);
        assert.equal(rw.stdout.trim(), "0", "group-writable paths accept the group-0 user");
      });

      const pg = await startPostgres();
      cleanup.push(() => pg.stop());
      const s3 = await startS3Server();
      cleanup.push(() => s3.stop());
      await s3.createBucket("raw");
      await s3.createBucket("dataset");
      const client = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        requestChecksumCalculation: "WHEN_REQUIRED",
      });
      cleanup.push(() => Promise.resolve(client.destroy()));
      const shared: Record<string, string> = {
        SLUICE_MANIFEST_URL: pg.url,
        SLUICE_SOURCE_URL: "s3://raw",
        SLUICE_OBJECT_STORE_URL: "s3://dataset",
        SLUICE_S3_ENDPOINT: s3.endpoint,
        SLUICE_S3_REGION: s3.region,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        SLUICE_HTTP_PORT: "0",
        SLUICE_LOG_FORMAT: "json",
        SLUICE_INGEST_ANNOTATIONS: '["coco.json"]',
        SLUICE_NORMALIZE_VARIANTS: '[{"name":"96","width":96,"height":96,"mode":"letterbox"}]',
        SLUICE_STAGING_MIN_FREE_MB: "0",
      };
      const manifest = await openManifest(pg.url);
      cleanup.push(() => manifest.close());

      await t.step("ingest in a container: S3 raw bucket -> PostgreSQL + dataset", async () => {
        const raw = await mkdtemp(join(tmpdir(), "sluice-ctr-raw-"));
        cleanup.push(() => rm(raw, { recursive: true, force: true }));
        await generateDataset({
          count: IMAGES,
          seed: 9,
          outDir: raw,
          sizes: [[256, 192], [192, 256]],
        });
        for (const f of await readdir(raw)) {
          await client.send(
            new PutObjectCommand({ Bucket: "raw", Key: f, Body: await readFile(join(raw, f)) }),
          );
        }
        const staging = await stagingDir("ingest");
        cleanup.push(() => rm(staging, { recursive: true, force: true }));
        const r = await podman([...runArgs(staging, shared), DENO_IMAGE, "sluice-ingest", "once"]);
        assert.equal(r.code, 0, r.stderr.slice(-3000));
        const ingested = await manifest.listImages({ status: "ingested" });
        assert.equal(ingested.length, IMAGES, r.stderr.slice(-3000));
        assert.ok((await manifest.listAnnotations(ingested.map((i) => i.id))).length >= IMAGES);
        // Recorded relative to the dataset store (s3://dataset): the key in the bucket.
        const key = ingested[0].datasetUri ?? "";
        assert.match(key, /^images\//);
        const one = await client.send(new GetObjectCommand({ Bucket: "dataset", Key: key }));
        assert.equal((await one.Body!.transformToByteArray()).length > 0, true);
      });

      await t.step(
        "normalize in a container: probes answer, variants land, SIGTERM exits 0",
        async () => {
          const staging = await stagingDir("normalize");
          cleanup.push(() => rm(staging, { recursive: true, force: true }));
          const port = freePort();
          const name = `sluice-test-normalize-${port}`;
          cleanup.push(() => podman(["rm", "-f", name]));
          await podmanOk([
            ...runArgs(staging, { ...shared, SLUICE_HTTP_PORT: String(port) }, name),
            "-d",
            DENO_IMAGE,
            "sluice-normalize",
            "run",
          ]);
          for (const probe of ["healthz", "readyz"]) {
            await waitFor(`/${probe}`, 60_000, async () => {
              const res = await fetch(`http://127.0.0.1:${port}/${probe}`);
              await res.body?.cancel();
              return res.status === 200 ? true : undefined;
            });
          }
          const variants = await waitFor("a 96 variant of every image", 120_000, async () => {
            const v = await manifest.listVariants({ name: "96" });
            return v.length === IMAGES ? v : undefined;
          });
          assert.equal(new Set(variants.map((v) => v.imageId)).size, IMAGES);
          await podmanOk(["stop", "-t", "60", name]);
          const code = await podmanOk(["wait", name]);
          const logs = await podman(["logs", name]);
          assert.equal(code.stdout.trim(), "0", logs.stderr.slice(-3000));
        },
      );

      await t.step("two-node training: one container per rank, rendezvous over TCP", async () => {
        const train = {
          ...shared,
          SLUICE_TRAIN_VARIANT: "96",
          SLUICE_TRAIN_EPOCHS: "1",
          SLUICE_TRAIN_BATCH_SIZE: "4",
          SLUICE_TRAIN_NODES: "2",
          SLUICE_TRAIN_LAUNCHER: "k8s",
          SLUICE_TRAIN_PROMOTION_THRESHOLD: "0",
          SLUICE_MLFLOW_LOCAL_DIR: "/mnt/nvme/sluice/mlruns",
        };
        const planDir = await stagingDir("plan");
        cleanup.push(() => rm(planDir, { recursive: true, force: true }));
        const prep = await podman([
          ...runArgs(planDir, train),
          DENO_TRAIN_IMAGE,
          "sluice-train",
          "run",
        ]);
        assert.equal(prep.code, 0, prep.stderr.slice(-3000));
        const plan = jsonLine(prep.stdout) as { keys: { launch: string; dir: string } };
        const jobYaml = await (await client.send(
          new GetObjectCommand({ Bucket: "dataset", Key: `${plan.keys.dir}/k8s/job.yaml` }),
        )).Body!.transformToString();
        // The pods' command, exactly as the launcher wrote it into the Indexed Job.
        const command = ["/usr/local/bin/sluice-train", "node", "--plan", plan.keys.launch];
        for (const c of command) {
          assert.ok(
            jobYaml.includes(JSON.stringify(c)),
            `job.yaml runs ${command.join(" ")}:\n${jobYaml}`,
          );
        }
        assert.match(jobYaml, /completionMode: "Indexed"/);
        assert.match(jobYaml, /image: "ghcr\.io\/sluice\/sluice:\d+\.\d+\.\d+"/);

        const masterPort = String(freePort());
        const ranks = [0, 1].map(async (rank) => {
          const staging = await stagingDir(`rank${rank}`);
          cleanup.push(() => rm(staging, { recursive: true, force: true }));
          const name = `sluice-test-rank-${masterPort}-${rank}`;
          cleanup.push(() => podman(["rm", "-f", name]));
          const env = {
            ...train,
            // What the Job's pod spec gives each rank (RANK from the completion index).
            JOB_COMPLETION_INDEX: String(rank),
            RANK: String(rank),
            WORLD_SIZE: "2",
            LOCAL_RANK: "0",
            LOCAL_WORLD_SIZE: "1",
            MASTER_ADDR: "127.0.0.1",
            MASTER_PORT: masterPort,
            GLOO_SOCKET_IFNAME: "lo",
          };
          const r = await podman(
            [...runArgs(staging, env, name), DENO_TRAIN_IMAGE, ...command, "--rank", String(rank)],
            { timeoutMs: 600_000 },
          );
          return { rank, ...r };
        });
        const results = await Promise.all(ranks);
        for (const r of results) {
          assert.equal(r.code, 0, `rank ${r.rank}: ${r.stderr.slice(-4000)}`);
        }
        type Shard = { rank: number; worldSize: number; imageIds: (number | string)[] };
        const out = results.map((r) =>
          jsonLine(r.stdout) as { modelVersion?: string | null; shards?: Shard[] }
        );
        // Each rank read its own shard of a world of 2 (torch.distributed over gloo: neither rank
        // gets past init_process_group until both have joined), and rank 0 registered the model.
        for (const [rank, o] of out.entries()) {
          assert.equal(o.shards?.length, 1, JSON.stringify(o));
          assert.equal(o.shards![0].rank, rank);
          assert.equal(o.shards![0].worldSize, 2);
        }
        assert.notDeepEqual(out[0].shards![0].imageIds, out[1].shards![0].imageIds);
        assert.equal(out[0].modelVersion, "1", results[0].stdout);
      });
    } finally {
      for (const c of cleanup.reverse()) await c().catch(() => {});
      console.log(
        `container suite wall time: ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    }
  },
});
