/**
 * `deno task bench loop`: does review effort spent where the model is unsure beat random review at
 * the same labelling budget? On the demo's synthetic generator, with the generator's ground truth
 * as the reviewer answering through Label Studio's webhook into the ingest stage:
 *
 * 1. per seed, a shared home: a small labelled seed set (imported as a Label Studio export), an
 *    unlabelled pool, and a fixed held-out set (the same images for every seed) are ingested and
 *    normalized; the detector trains on the seed (round 0), infer predicts pool and held-out;
 * 2. per arm (`uncertainty`: the top-K `sluice_review_priority` infer wrote into the tasks;
 *    `random`: K uniformly drawn with a seeded PRNG), on a copy of that home, `--rounds` times:
 *    select K pool tasks → review them through the webhook → snapshot and retrain (warm-started
 *    from the previous round's weights, a fixed step budget) → infer → mAP@0.5 on the held-out set;
 * 3. print mAP@0.5 per round per arm per seed, the mean over seeds, and how many reviewed images
 *    uncertainty needs to reach random's final mean mAP (linear between rounds).
 *
 * Real stages and trainer throughout (CPU PyTorch, onnxruntime-node, SQLite, file stores).
 *
 * @example
 * ```sh
 * deno task bench loop                       # 3 seeds × 2 arms × 3 rounds of K = 24
 * deno task bench loop --seeds 2 --rounds 3 --k 16 --seed-size 24
 * deno task bench loop --quick               # a tiny loop end to end (seconds, not a measurement)
 * ```
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { SluiceError } from "../../common/errors/mod.ts";
import { openManifest, type ReviewRow } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { IngestSettingsSchema } from "../../stages/ingest/config.ts";
import { generateDataset, type SyntheticImage } from "../support/synthetic/dataset.ts";
import { toLabelStudioTasks } from "../support/synthetic/label_studio.ts";
import type { LabelStudioTask } from "../../common/annotations/labelstudio.ts";
import { type CocoGroundTruth, toCocoGroundTruth } from "../support/synthetic/coco.ts";
import { copyHome, type LoopModel, loopPipeline, type LoopTraining } from "./_loop_pipeline.ts";
import { startReviewer } from "./_loop_reviewer.ts";
import { type Arm, ARMS, reviewsToReach, selectTasks, topScore } from "./_loop_select.ts";

/** Options, validated at the edge. */
export const LoopOptionsSchema = z.strictObject({
  seeds: z.int().min(1).max(20),
  // Seed s generates images with seeds s·1000 + 1 and + 2; the held-out set uses 90,001.
  firstSeed: z.int().min(1).max(69),
  rounds: z.int().min(1).max(20),
  k: z.int().min(1).max(1000),
  seedSize: z.int().min(2).max(5000),
  pool: z.int().min(1).max(20_000),
  heldOut: z.int().min(1).max(5000),
  epochs: z.int().min(1).max(1000),
  seedEpochs: z.int().min(1).max(1000),
  imagesPerEpoch: z.int().min(1).max(100_000),
  batchSize: z.int().min(1).max(256),
  maxMinutes: z.number().positive().max(600),
  arms: z.array(z.enum(ARMS)).min(2).refine(
    (a) => a.includes("random") && new Set(a).size === a.length,
    {
      error: 'expected distinct arms including "random" (the baseline)',
    },
  ),
  dir: z.string().min(1).optional(),
  keep: z.boolean(),
  json: z.string().min(1).optional(),
}).refine((o) => o.rounds * o.k <= o.pool, {
  error: "expected --rounds × --k to be at most --pool (each round reviews K new pool images)",
});
export type LoopOptions = z.output<typeof LoopOptionsSchema>;

/**
 * The default run: the demo's budget class on 2 cores (≈ 21 min). Each training gets enough
 * steps (3,072 images, 96 seed epochs) that the labelled set, not the step budget, limits
 * mAP: with 8 × 128 steps per round (this bench's first defaults) the seed set alone, trained
 * as long as a whole loop, scored 0.62 where 96 reviewed images scored 0.34 on either arm, so
 * which images were reviewed could not matter.
 */
export const DEFAULTS: Omit<LoopOptions, "keep"> = {
  arms: ["uncertainty", "random"],
  seeds: 3,
  firstSeed: 1,
  rounds: 3,
  k: 24,
  seedSize: 32,
  pool: 240,
  heldOut: 100,
  epochs: 24,
  seedEpochs: 96,
  imagesPerEpoch: 128,
  batchSize: 16,
  maxMinutes: 6,
};

/** `--quick`: a tiny loop end to end (the smoke test's size); its mAP means nothing. */
export const QUICK: Omit<LoopOptions, "keep"> = {
  arms: ["uncertainty", "random"],
  seeds: 1,
  firstSeed: 1,
  rounds: 1,
  k: 3,
  seedSize: 6,
  pool: 6,
  heldOut: 4,
  epochs: 1,
  seedEpochs: 1,
  imagesPerEpoch: 8,
  batchSize: 4,
  maxMinutes: 1,
};

/** Original image sizes: small, mixed aspects (letterboxed to the 320 px variant). */
const SIZES: [number, number][] = [[320, 240], [240, 320], [320, 320], [400, 300], [300, 400]];
/** The held-out set is the same images for every seed. */
const HELD_OUT_SEED = 90_001;

/** One measured point. */
export interface LoopPoint {
  seed: number;
  arm: Arm;
  round: number;
  reviewed: number;
  map50: number;
  /** Model version evaluated (name/version). */
  model: string;
  /**
   * Rounds ≥ 1: the mean highest box score of the K images this round selected, and of all the
   * pool images it could select from (the model of the previous round scored both).
   */
  selectedTopScore?: number;
  poolTopScore?: number;
  /** Rounds ≥ 1: mean true objects per selected image, and per unreviewed pool image. */
  selectedObjects?: number;
  poolObjects?: number;
}

export interface LoopReport {
  options: Omit<LoopOptions, "dir" | "keep" | "json">;
  points: LoopPoint[];
  /** Mean mAP@0.5 over seeds per arm and round (index = round). */
  mean: Partial<Record<Arm, number[]>>;
  /** Reviewed images per round (index = round). */
  reviewed: number[];
  /** Random's final mean mAP, and the reviewed images each other arm needs to reach it. */
  target: number;
  reviewsToTarget: Partial<Record<Arm, number | null>>;
  /** Active reviews recorded through the webhook, per seed and arm (provenance rows). */
  reviews: { seed: number; arm: Arm; rows: number; withPrediction: number }[];
  seconds: number;
}

const HELP = `deno task bench loop [options]: uncertainty vs random review selection

  --seeds N        seeds (default ${DEFAULTS.seeds})
  --first-seed N   the first seed; seeds N, N+1, ... (default 1: another run adds seeds 4, 5, ...)
  --rounds N       select → review → retrain rounds per arm (default ${DEFAULTS.rounds})
  --k N            images reviewed per round (default ${DEFAULTS.k})
  --seed-size N    labelled images before round 1 (default ${DEFAULTS.seedSize})
  --pool N         unlabelled images to select from (default ${DEFAULTS.pool})
  --held-out N     fixed held-out images scored each round (default ${DEFAULTS.heldOut})
  --epochs N, --images-per-epoch N, --batch-size N
                   training budget per round (default ${DEFAULTS.epochs} × ${DEFAULTS.imagesPerEpoch}, batch ${DEFAULTS.batchSize}),
                   warm-started from the previous round's weights
  --seed-epochs N  epochs of the round-0 training from scratch on the seed set (default ${DEFAULTS.seedEpochs})
  --max-minutes M  wall-time cap per training (default ${DEFAULTS.maxMinutes})
  --arms A,B       arms compared (default uncertainty,random; also least-confident: 1 - top
                   box score alone, the priority without its class term); random is the baseline
  --quick          a tiny loop end to end (1 seed, 1 round, K = 3): a smoke run, not a measurement
  --dir DIR        work directory (default: a temp directory, removed unless --keep)
  --json FILE      also write the report as JSON
`;

const LOOP_FLAGS = {
  seeds: { type: "string" },
  "first-seed": { type: "string" },
  rounds: { type: "string" },
  k: { type: "string" },
  "seed-size": { type: "string" },
  pool: { type: "string" },
  "held-out": { type: "string" },
  epochs: { type: "string" },
  "seed-epochs": { type: "string" },
  "images-per-epoch": { type: "string" },
  "batch-size": { type: "string" },
  "max-minutes": { type: "string" },
  quick: { type: "boolean", default: false },
  dir: { type: "string" },
  keep: { type: "boolean", default: false },
  json: { type: "string" },
  arms: { type: "string" },
  help: { type: "boolean", default: false },
} as const;

/**
 * Parses the benchmark's arguments (`--quick` picks the tiny defaults; explicit flags win).
 *
 * @example
 * ```ts
 * parseLoopArgs(["--seeds", "2"]).seeds; // 2
 * ```
 */
export function parseLoopArgs(args: string[]): LoopOptions | null {
  let parsed;
  try {
    parsed = parseArgs({ args, options: LOOP_FLAGS });
  } catch (err) {
    throw new SluiceError("invalid_options", `bench loop: ${(err as Error).message}`);
  }
  const { values } = parsed;
  if (values.help) return null;
  const base = values.quick ? QUICK : DEFAULTS;
  const num = (v: string | undefined, d: number) => v === undefined ? d : Number(v);
  const r = LoopOptionsSchema.safeParse({
    seeds: num(values.seeds, base.seeds),
    firstSeed: num(values["first-seed"], base.firstSeed),
    rounds: num(values.rounds, base.rounds),
    k: num(values.k, base.k),
    seedSize: num(values["seed-size"], base.seedSize),
    pool: num(values.pool, base.pool),
    heldOut: num(values["held-out"], base.heldOut),
    epochs: num(values.epochs, base.epochs),
    seedEpochs: num(values["seed-epochs"], base.seedEpochs),
    imagesPerEpoch: num(values["images-per-epoch"], base.imagesPerEpoch),
    batchSize: num(values["batch-size"], base.batchSize),
    maxMinutes: num(values["max-minutes"], base.maxMinutes),
    arms: values.arms === undefined ? base.arms : values.arms.split(","),
    dir: values.dir,
    keep: values.keep,
    json: values.json,
  });
  if (!r.success) {
    const i = r.error.issues[0];
    throw new SluiceError(
      "invalid_options",
      `bench loop: ${i.path.join(".") || "options"}: ${i.message}`,
    );
  }
  return r.data;
}

interface SeedData {
  annotationsKey: string;
  pool: Map<string, SyntheticImage>;
}

/** Generates and uploads one seed's labelled seed set and pool, plus the fixed held-out set. */
async function seedRaw(
  rawUrl: string,
  seed: number,
  o: LoopOptions,
  heldOut: SyntheticImage[],
): Promise<SeedData> {
  const sized = { sizes: SIZES };
  const labelled = await generateDataset({
    ...sized,
    count: o.seedSize,
    seed: seed * 1000 + 1,
    namePrefix: "seed_",
  });
  const pool = await generateDataset({
    ...sized,
    count: o.pool,
    seed: seed * 1000 + 2,
    namePrefix: "pool_",
  });
  const raw = await openObjectStore(rawUrl);
  try {
    const put = (key: string, img: SyntheticImage) =>
      raw.put(key, img.bytes, { contentType: img.format === "png" ? "image/png" : "image/jpeg" });
    for (const img of labelled.images) await put(`seed/${img.fileName}`, img);
    for (const img of pool.images) await put(`pool/${img.fileName}`, img);
    for (const img of heldOut) await put(`test/${img.fileName}`, img);
    const tasks = toLabelStudioTasks(labelled, { imageUrl: (f) => raw.uriFor(`seed/${f}`) });
    const annotationsKey = "exports/seed.json";
    await raw.put(annotationsKey, new TextEncoder().encode(JSON.stringify(tasks)), {
      contentType: "application/json",
    });
    return { annotationsKey, pool: new Map(pool.images.map((i) => [i.fileName, i])) };
  } finally {
    await raw.close();
  }
}

const log = (msg: string, t0: number) =>
  console.log(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${msg}`);

/** Reviews recorded in a home's manifest (the webhook's provenance rows). */
async function reviewRows(url: string): Promise<ReviewRow[]> {
  const m = await openManifest(url);
  try {
    return await m.listReviews();
  } finally {
    await m.close();
  }
}

/**
 * Runs the benchmark and returns its report (also printed).
 *
 * @example
 * ```ts
 * const report = await runLoop(parseLoopArgs(["--quick"])!);
 * report.points.every((p) => p.map50 >= 0 && p.map50 <= 1); // true
 * ```
 */
export async function runLoop(o: LoopOptions): Promise<LoopReport> {
  const t0 = performance.now();
  const work = o.dir ?? await mkdtemp(join(tmpdir(), "sluice-bench-loop-"));
  const training: LoopTraining = {
    epochs: o.epochs,
    imagesPerEpoch: o.imagesPerEpoch,
    batchSize: o.batchSize,
    maxMinutes: o.maxMinutes,
  };
  const heldOutSet = await generateDataset({
    sizes: SIZES,
    count: o.heldOut,
    seed: HELD_OUT_SEED,
    namePrefix: "test_",
  });
  const truth: CocoGroundTruth = toCocoGroundTruth(heldOutSet);
  const points: LoopPoint[] = [];
  const reviews: LoopReport["reviews"] = [];
  try {
    for (let seed = o.firstSeed; seed < o.firstSeed + o.seeds; seed++) {
      const shared = loopPipeline(join(work, `seed-${seed}`, "shared"), "loop", training);
      const rawUrl = (await shared.config("ingest", IngestSettingsSchema)).source.url;
      const data = await seedRaw(rawUrl, seed, o, heldOutSet.images);
      await shared.ingest(data.annotationsKey);
      await shared.normalize();
      const base = await shared.train({ seed, epochs: o.seedEpochs });
      const map0 = await shared.inferAndEvaluate(base.version, truth);
      log(`seed ${seed}: round 0 (${o.seedSize} labelled) mAP@0.5 ${map0.toFixed(3)}`, t0);
      for (const arm of o.arms) {
        points.push({
          seed,
          arm,
          round: 0,
          reviewed: 0,
          map50: map0,
          model: `loop/${base.version}`,
        });
      }
      for (const arm of o.arms) {
        const home = loopPipeline(join(work, `seed-${seed}`, arm), `loop-${arm}`, training);
        await copyHome(shared.dir, home.dir);
        const reviewer = await startReviewer(home, data.pool);
        const reviewed = new Set<string>();
        let model: LoopModel = base;
        try {
          for (let round = 1; round <= o.rounds; round++) {
            const tasks = await home.tasksOf(model);
            const chosen = selectTasks(arm, tasks, {
              k: o.k,
              seed: seed * 100 + round,
              eligible: (id) => {
                const f = reviewer.fileOf(id);
                return f !== undefined && data.pool.has(f) && !reviewed.has(id);
              },
            });
            if (chosen.length !== o.k) {
              throw new SluiceError(
                "loop_bench",
                `seed ${seed} ${arm} round ${round}: expected ${o.k} pool tasks to review, found ${chosen.length}`,
              );
            }
            const { selectedTopScore, poolTopScore, selectedObjects, poolObjects } = selectionStats(
              chosen,
              tasks,
              (id) => {
                const f = reviewer.fileOf(id);
                return f === undefined || reviewed.has(id) ? undefined : data.pool.get(f);
              },
            );
            log(
              `seed ${seed} ${arm.padEnd(11)} round ${round}: selected ${o.k}, mean top box ` +
                `score ${selectedTopScore.toFixed(3)} (unreviewed pool ${
                  poolTopScore.toFixed(3)
                }), ` +
                `objects per image ${selectedObjects.toFixed(2)} (pool ${poolObjects.toFixed(2)})`,
              t0,
            );
            await reviewer.review(chosen);
            for (const t of chosen) reviewed.add(t.data.sluice_image_id);
            model = await home.train({ seed, initFrom: model.checkpoint });
            const map50 = await home.inferAndEvaluate(model.version, truth);
            points.push({
              seed,
              arm,
              round,
              reviewed: round * o.k,
              map50,
              model: `${model.name}/${model.version}`,
              selectedTopScore,
              poolTopScore,
              selectedObjects,
              poolObjects,
            });
            log(
              `seed ${seed} ${arm.padEnd(11)} round ${round} (${round * o.k} reviewed) ` +
                `mAP@0.5 ${map50.toFixed(3)}`,
              t0,
            );
          }
        } finally {
          await reviewer.close();
        }
        const ingestUrl = (await home.config("ingest", IngestSettingsSchema)).manifest.url;
        const rows = (await reviewRows(ingestUrl)).filter((r) => r.state === "active");
        reviews.push({
          seed,
          arm,
          rows: rows.length,
          withPrediction: rows.filter((r) => r.modelName !== null && r.counts !== null).length,
        });
      }
    }
  } finally {
    if (!o.dir && !o.keep) await rm(work, { recursive: true, force: true });
    else console.log(`work directory kept: ${work}`);
  }
  const reviewedAt = Array.from({ length: o.rounds + 1 }, (_, r) => r * o.k);
  const mean = Object.fromEntries(o.arms.map((arm) => [
    arm,
    reviewedAt.map((_, round) => {
      const xs = points.filter((p) => p.arm === arm && p.round === round).map((p) => p.map50);
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    }),
  ])) as Partial<Record<Arm, number[]>>;
  const target = mean.random![o.rounds];
  const report: LoopReport = {
    options: {
      seeds: o.seeds,
      firstSeed: o.firstSeed,
      rounds: o.rounds,
      k: o.k,
      seedSize: o.seedSize,
      pool: o.pool,
      heldOut: o.heldOut,
      epochs: o.epochs,
      seedEpochs: o.seedEpochs,
      imagesPerEpoch: o.imagesPerEpoch,
      batchSize: o.batchSize,
      maxMinutes: o.maxMinutes,
      arms: o.arms,
    },
    points,
    mean,
    reviewed: reviewedAt,
    target,
    reviewsToTarget: Object.fromEntries(
      o.arms.filter((a) => a !== "random").map((a) => [
        a,
        reviewsToReach(reviewedAt.map((x, i) => [x, mean[a]![i]] as const), target),
      ]),
    ),
    reviews,
    seconds: (performance.now() - t0) / 1000,
  };
  return report;
}

/**
 * The report as a Markdown table plus the headline sentence.
 *
 * @example
 * ```ts
 * console.log(formatLoopReport(report));
 * ```
 */
export function formatLoopReport(r: LoopReport): string {
  const seeds = [...new Set(r.points.map((p) => p.seed))];
  const arms = r.options.arms;
  const cell = (arm: Arm, round: number) => {
    const per = seeds.map((s) =>
      r.points.find((p) => p.seed === s && p.arm === arm && p.round === round)!.map50.toFixed(3)
    );
    return `${r.mean[arm]![round].toFixed(3)} (${per.join(", ")})`;
  };
  type Diagnostic = "selectedTopScore" | "poolTopScore" | "selectedObjects" | "poolObjects";
  const selectedCell = (arm: Arm, round: number) => {
    const at = r.points.filter((p) => p.arm === arm && p.round === round);
    const avg = (k: Diagnostic, digits: number) =>
      (at.reduce((a, p) => a + (p[k] ?? NaN), 0) / at.length).toFixed(digits);
    return `${avg("selectedTopScore", 3)} (${avg("poolTopScore", 3)}); ` +
      `${avg("selectedObjects", 2)} (${avg("poolObjects", 2)})`;
  };
  const lines = [
    `mAP@0.5 on ${r.options.heldOut} held-out images; mean over seeds ${seeds.join(", ")} ` +
    `(per seed in brackets); ${r.options.seedSize} labelled to start, K = ${r.options.k} per round`,
    "",
    `| round | reviewed | ${arms.join(" | ")} |`,
    `| ----- | -------- | ${arms.map(() => "---").join(" | ")} |`,
    ...r.reviewed.map((x, round) =>
      `| ${round} | ${x} | ${arms.map((a) => cell(a, round)).join(" | ")} |`
    ),
    "",
    "mean top box score; true objects per image, of the K images selected in each round " +
    "(unreviewed pool's mean in brackets; mean over seeds)",
    "",
    `| round | ${arms.join(" | ")} |`,
    `| ----- | ${arms.map(() => "---").join(" | ")} |`,
    ...r.reviewed.slice(1).map((_, i) =>
      `| ${i + 1} | ${arms.map((a) => selectedCell(a, i + 1)).join(" | ")} |`
    ),
    "",
  ];
  const budget = r.reviewed.at(-1)!;
  for (const arm of arms.filter((a) => a !== "random")) {
    const n = r.reviewsToTarget[arm] ?? null;
    lines.push(
      n === null
        ? `${arm} does NOT reach random's final mean mAP@0.5 ${r.target.toFixed(3)} within ` +
          `${budget} reviewed images (its final: ${r.mean[arm]!.at(-1)!.toFixed(3)})`
        : `${arm} reaches random's final mean mAP@0.5 ${r.target.toFixed(3)} (at ${budget} ` +
          `reviewed) after ${n.toFixed(1)} reviewed images (linear between rounds): ` +
          `${(100 * n / budget).toFixed(0)}% of random's budget`,
    );
  }
  lines.push(
    `reviews recorded through the webhook: ${
      r.reviews.map((x) =>
        `seed ${x.seed} ${x.arm} ${x.rows} (${x.withPrediction} with provenance)`
      )
        .join("; ")
    }`,
    `${r.seconds.toFixed(0)} s in all`,
  );
  return lines.join("\n");
}

/**
 * What a round's selection looked like: the mean top box score and true objects per image of the
 * chosen tasks, and of every unreviewed pool task (`poolImage` gives a task's generated image, or
 * undefined when it is not an unreviewed pool image).
 */
function selectionStats(
  chosen: readonly LabelStudioTask[],
  tasks: readonly LabelStudioTask[],
  poolImage: (imageId: string) => SyntheticImage | undefined,
) {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const unreviewed = tasks.filter((t) => poolImage(t.data.sluice_image_id ?? "") !== undefined);
  // True objects per image (the generator's ground truth): what a review labels.
  const objects = (t: LabelStudioTask) => poolImage(t.data.sluice_image_id ?? "")!.boxes.length;
  return {
    selectedTopScore: mean(chosen.map(topScore)),
    poolTopScore: mean(unreviewed.map(topScore)),
    selectedObjects: mean(chosen.map(objects)),
    poolObjects: mean(unreviewed.map(objects)),
  };
}

/** The bench entry (`deno task bench loop ...`). */
export async function run(args: string[]): Promise<void> {
  const o = parseLoopArgs(args);
  if (!o) {
    console.log(HELP);
    return;
  }
  const report = await runLoop(o);
  console.log("\n" + formatLoopReport(report));
  if (o.json) await Deno.writeTextFile(o.json, JSON.stringify(report, null, 2) + "\n");
}
