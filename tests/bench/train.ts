/**
 * Train benchmark: training images/s on CPU through the launcher (`trainOnce`, the code path
 * `sluice-train run` uses), on synthetic images recorded in a real SQLite manifest with real
 * 320 px letterbox variants. For each node count it reports:
 *
 * - the trainer's own throughput (images through augmentation, forward, backward and the
 *   optimizer step per second, over all ranks: the `images_per_sec` of its summary);
 * - end-to-end throughput: train images × epochs / wall time of the whole run (snapshot, inputs,
 *   staging, trainer start-up, training, evaluation, ONNX export, tracking, registration);
 * - the trainer's `--bench` step throughput on random data at the same batch size, for context.
 *
 * Options: `--images N` (default 96), `--epochs E` (2), `--batch B` (16), `--size S` (320, the
 * variant side), `--nodes 1,2` (node counts to run, default 1), `--width W` (network width, 1.0).
 * The machine is shared: numbers are noisy; compare node counts within one run.
 *
 * @example
 * ```sh
 * deno task bench train --images 64 --nodes 1,2
 * ```
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../common/config/mod.ts";
import { SluiceError } from "../../common/errors/mod.ts";
import { createLogger } from "../../common/log/mod.ts";
import { openManifest } from "../../common/manifest/mod.ts";
import { FileTracker } from "../../common/mlflow/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { openStaging } from "../../common/staging/mod.ts";
import { TrainSettingsSchema } from "../../stages/train/config.ts";
import { trainOnce } from "../../stages/train/run_training.ts";
import { parseTrainerLine } from "../../stages/train/trainer_events.ts";
import { CHECKOUT_ROOT } from "../../stages/train/trainer_process.ts";
import { seedTrainingData } from "../../stages/train/testdata/seed_manifest.ts";

interface Options {
  images: number;
  epochs: number;
  batch: number;
  size: number;
  nodes: number[];
  width: number;
}

function parseOptions(args: string[]): Options {
  const o: Options = { images: 96, epochs: 2, batch: 16, size: 320, nodes: [1], width: 1 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = () => {
      const v = args[++i];
      if (v === undefined) throw new SluiceError("invalid_option", `${a}: expected a value`);
      return v;
    };
    const int = (min: number) => {
      const v = Number(next());
      if (!Number.isInteger(v) || v < min) {
        throw new SluiceError("invalid_option", `${a}: expected an integer >= ${min}`);
      }
      return v;
    };
    if (a === "--images") o.images = int(4);
    else if (a === "--epochs") o.epochs = int(1);
    else if (a === "--batch") o.batch = int(1);
    else if (a === "--size") {
      o.size = int(64);
      if (o.size % 32 !== 0) {
        throw new SluiceError("invalid_option", "--size: expected a multiple of 32");
      }
    } else if (a === "--nodes") {
      o.nodes = next().split(",").map(Number);
      if (o.nodes.some((n) => !Number.isInteger(n) || n < 1 || n > 8)) {
        throw new SluiceError("invalid_option", "--nodes: expected a list like 1,2 (1-8 each)");
      }
    } else if (a === "--width") {
      o.width = Number(next());
      if (!(o.width > 0 && o.width <= 4)) {
        throw new SluiceError("invalid_option", "--width: expected a number in (0, 4]");
      }
    } else {
      throw new SluiceError(
        "invalid_option",
        `train benchmark: unknown option ${a} (expected --images, --epochs, --batch, --size, --nodes, --width)`,
      );
    }
  }
  return o;
}

async function stepBench(o: Options): Promise<number | null> {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [
      join(CHECKOUT_ROOT, "stages/train/trainer/train.py"),
      "--bench",
      "--device",
      "cpu",
      "--batch-size",
      String(o.batch),
      "--input-size",
      String(o.size),
      "--width",
      String(o.width),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const ev = parseTrainerLine(line);
    if (ev?.type === "bench") return ev.images_per_sec;
  }
  console.log(
    `trainer --bench failed (exit ${out.code}): ${
      new TextDecoder().decode(out.stderr).slice(-500)
    }`,
  );
  return null;
}

/** Runs the benchmark (see the module docs). */
export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args);
  const dir = await mkdtemp(join(tmpdir(), "sluice-bench-train-"));
  const log = createLogger({ stage: "train", json: true, level: "warn", sink: () => {} });
  try {
    const manifest = await openManifest(`sqlite://${join(dir, "manifest.db")}`);
    const store = await openObjectStore(join(dir, "objects"));
    const tracker = new FileTracker({ root: join(dir, "mlruns") });
    try {
      const t0 = performance.now();
      await seedTrainingData(manifest, store, {
        count: o.images,
        seed: 1,
        variant: { name: String(o.size), width: o.size, height: o.size, mode: "letterbox" },
      });
      console.log(
        `train bench: ${o.images} synthetic images, ${o.size} px letterbox variants recorded in ` +
          `${
            ((performance.now() - t0) / 1000).toFixed(1)
          } s; ${navigator.hardwareConcurrency} cores`,
      );
      const steps = await stepBench(o);
      if (steps !== null) {
        console.log(
          `  trainer --bench (random data, batch ${o.batch}, 1 process): ${steps.toFixed(1)} img/s`,
        );
      }
      const results = [];
      for (const nodes of o.nodes) {
        const base = await loadConfig({
          stage: "train",
          stageSchema: TrainSettingsSchema,
          cwd: dir,
          env: {},
        });
        const config = {
          ...base,
          stage: TrainSettingsSchema.parse({
            variant: String(o.size),
            epochs: o.epochs,
            batchSize: o.batch,
            nodes,
            device: "cpu",
            promotionThreshold: 1,
            trainerArgs: ["--width", String(o.width)],
          }),
        };
        const staging = await openStaging({
          stage: "train",
          workerId: `bench-${nodes}`,
          root: join(dir, "nvme", "sluice"),
          fallbackRoot: join(dir, "staging"),
          minFreeMb: 0,
          log,
        });
        let firstShardAt = 0;
        const started = performance.now();
        const r = await trainOnce(config, {
          manifest,
          store,
          tracker,
          staging,
          log,
          onEvent: (_rank, ev) => {
            if (ev.type === "shard" && firstShardAt === 0) firstShardAt = performance.now();
          },
        });
        const wall = (performance.now() - started) / 1000;
        const s = r.summary!;
        const trained = s.train_images * s.epochs;
        const row = {
          nodes,
          trainerImagesPerSec: s.images_per_sec,
          endToEndImagesPerSec: trained / wall,
          trainSeconds: s.train_seconds,
          wallSeconds: wall,
          startupSeconds: firstShardAt ? (firstShardAt - started) / 1000 : null,
          trainImages: s.train_images,
          epochs: s.epochs,
          map50: s.map50,
        };
        results.push(row);
        console.log(
          `  nodes ${nodes}: trainer ${row.trainerImagesPerSec.toFixed(1)} img/s over all ranks; ` +
            `end to end ${row.endToEndImagesPerSec.toFixed(1)} img/s (${trained} images in ` +
            `${wall.toFixed(1)} s wall, ${s.train_seconds.toFixed(1)} s training, ` +
            `${row.startupSeconds?.toFixed(1) ?? "?"} s to the first batch); mAP@0.5 ${
              s.map50.toFixed(3)
            }`,
        );
      }
      console.log(JSON.stringify({ benchmark: "train", options: o, stepBench: steps, results }));
    } finally {
      await tracker.close();
      await store.close();
      await manifest.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await run(Deno.args);
