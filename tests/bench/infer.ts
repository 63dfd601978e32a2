/**
 * Inference throughput: the same ONNX detector on the same images through Sluice's inference
 * path (decode + letterbox with the normalize stage's code, batches in an onnxruntime-node worker
 * thread, box decoding, mapping back to original pixels) and through Python
 * (`tests/bench/infer_python.py`: onnxruntime when importable, else PyTorch running the trainer's
 * module with the weights saved beside the ONNX file), in the same run. Prints images/s of both
 * and their ratio; the target is Sluice ≥ 0.95 × Python.
 *
 * ```sh
 * deno task bench infer [--images 64] [--batch 8] [--threads 2] [--rounds 3] [--size 320]
 *                       [--model DIR] [--threshold 0.05] [--json]
 * ```
 * Without `--model`, a randomly initialised trainer CenterNet (model.onnx + model.pt) is built
 * with `/usr/bin/python3` (weights do not change the cost of a forward pass).
 *
 * @example
 * ```ts
 * import { run } from "./infer.ts";
 * await run(["--images", "32", "--rounds", "2"]);
 * ```
 * @module
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { SluiceError } from "../../common/errors/mod.ts";
import { createLogger } from "../../common/log/mod.ts";
import { generateDataset } from "../support/synthetic/dataset.ts";
import { InferenceEngine } from "../../stages/infer/inference_engine.ts";
import { fetchModel, loadModel } from "../../stages/infer/model_loader.ts";

const PYTHON = "/usr/bin/python3";
const PY_BENCH = fileURLToPath(new URL("./infer_python.py", import.meta.url));
const MAKE_MODELS = fileURLToPath(
  new URL("../../stages/infer/testdata/make_models.py", import.meta.url),
);

/** One side's result. */
export interface SideResult {
  name: string;
  imagesPerSec: number;
  roundsSec: number[];
  boxes: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function python(args: string[]): Promise<string> {
  const out = await new Deno.Command(PYTHON, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new SluiceError(
      "bench_failed",
      `${PYTHON} ${args[0]}: expected exit 0, found ${out.code}: ${
        new TextDecoder().decode(out.stderr).slice(-2000)
      }`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

async function sluiceSide(
  modelDir: string,
  paths: string[],
  o: { batch: number; threads: number; rounds: number; threshold: number; cacheRoot: string },
): Promise<SideResult> {
  const log = createLogger({ stage: "infer", level: "warn" });
  const fetched = await fetchModel(
    {
      name: "bench",
      version: null,
      alias: null,
      via: "uri",
      uri: pathToFileURL(modelDir).href,
      movable: false,
    },
    { root: o.cacheRoot },
  );
  const model = await loadModel(fetched, { provider: "auto", intraOpThreads: o.threads, log });
  const engine = new InferenceEngine<number>(model, {
    batchSize: o.batch,
    lingerMs: 5,
    scoreThreshold: o.threshold,
    log,
  });
  // As the stage runs it: two batches' worth of images in flight, so the next batch is decoded
  // while this one runs.
  const inFlight = 2 * o.batch;
  const round = async (): Promise<number> => {
    let next = 0, boxes = 0;
    const lanes = Array.from({ length: Math.min(inFlight, paths.length) }, async () => {
      while (next < paths.length) {
        const i = next++;
        // Not `boxes += await …`: that reads `boxes` before the await and loses other lanes' adds.
        const { boxes: found } = await engine.predict(paths[i], i);
        boxes += found.length;
      }
    });
    await Promise.all(lanes);
    return boxes;
  };
  try {
    await round();
    const roundsSec: number[] = [];
    let boxes = 0;
    for (let r = 0; r < o.rounds; r++) {
      const t0 = performance.now();
      boxes = await round();
      roundsSec.push((performance.now() - t0) / 1000);
    }
    return {
      name: `sluice (onnxruntime-node ${model.session.provider})`,
      imagesPerSec: paths.length / median(roundsSec),
      roundsSec,
      boxes,
    };
  } finally {
    await engine.close();
  }
}

/**
 * Runs the benchmark (see the module docs for options).
 *
 * @example
 * ```ts
 * await run(["--images", "16"]);
 * ```
 */
export async function run(
  args: string[],
): Promise<{ sluice: SideResult; python: SideResult; ratio: number }> {
  const { values } = parseArgs({
    args,
    options: {
      images: { type: "string", default: "64" },
      batch: { type: "string", default: "8" },
      threads: { type: "string", default: String(navigator.hardwareConcurrency || 2) },
      rounds: { type: "string", default: "3" },
      size: { type: "string", default: "320" },
      // Low, as the demo runs it: a randomly initialised detector then yields boxes on every
      // image, so box decoding, NMS and the mapping back are part of what is timed.
      threshold: { type: "string", default: "0.05" },
      model: { type: "string" },
      seed: { type: "string", default: "11" },
      json: { type: "boolean", default: false },
    },
  });
  const n = Number(values.images), batch = Number(values.batch), threads = Number(values.threads);
  const rounds = Number(values.rounds),
    size = Number(values.size),
    threshold = Number(values.threshold);
  for (const [k, v] of Object.entries({ images: n, batch, threads, rounds, size })) {
    if (!(Number.isInteger(v) && v >= 1)) {
      throw new SluiceError(
        "invalid_options",
        `bench infer --${k}: expected an integer >= 1, found ${v}`,
      );
    }
  }
  const dir = await mkdtemp(join(tmpdir(), "bench-infer-"));
  try {
    let modelDir = values.model;
    if (!modelDir) {
      modelDir = join(dir, "model");
      await python([MAKE_MODELS, "centernet", "--out", modelDir, "--size", String(size)]);
    }
    const imagesDir = join(dir, "images");
    const ds = await generateDataset({ count: n, seed: Number(values.seed), outDir: imagesDir });
    const paths = ds.images.map((img) => join(imagesDir, img.fileName));
    const list = join(dir, "images.txt");
    await writeFile(list, paths.join("\n") + "\n");
    console.log(
      `infer bench: ${n} images (${ds.images.filter((i) => i.format === "jpeg").length} JPEG), ` +
        `batch ${batch}, ${threads} thread(s), ${rounds} round(s), model ${modelDir}`,
    );

    const sluice = await sluiceSide(modelDir, paths, {
      batch,
      threads,
      rounds,
      threshold,
      cacheRoot: join(dir, "cache"),
    });
    const py = JSON.parse(
      (await python([
        PY_BENCH,
        "--model-dir",
        modelDir,
        "--list",
        list,
        "--batch",
        String(batch),
        "--threads",
        String(threads),
        "--threshold",
        String(threshold),
        "--rounds",
        String(rounds),
      ])).trim().split("\n").pop()!,
    ) as { backend: string; rounds_s: number[]; boxes: number };
    const pySide: SideResult = {
      name: `python (${py.backend})`,
      imagesPerSec: n / median(py.rounds_s),
      roundsSec: py.rounds_s,
      boxes: py.boxes,
    };
    const ratio = sluice.imagesPerSec / pySide.imagesPerSec;
    if (values.json) {
      console.log(JSON.stringify({ sluice, python: pySide, ratio }));
    } else {
      for (const s of [sluice, pySide]) {
        console.log(
          `  ${s.name.padEnd(36)} ${s.imagesPerSec.toFixed(1).padStart(7)} img/s  ` +
            `(rounds ${s.roundsSec.map((r) => r.toFixed(2)).join(", ")} s; ${s.boxes} boxes)`,
        );
      }
      console.log(
        `  ratio sluice / python: ${ratio.toFixed(2)}x (target >= 0.95x) ${
          ratio >= 0.95 ? "PASS" : "BELOW TARGET"
        }`,
      );
    }
    return { sluice, python: pySide, ratio };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await run(Deno.args);
