/**
 * A real pipeline up to training, for the train stage's end-to-end tests: synthetic images and
 * their COCO file in a raw directory, pushed through the real ingest and normalize stages into a
 * SQLite manifest and a file dataset store, with one config file shared by every stage.
 * @module
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../../common/config/mod.ts";
import { createLogger, type Logger } from "../../../common/log/mod.ts";
import { generateDataset } from "../../../tests/support/synthetic/dataset.ts";
import { IngestSettingsSchema } from "../../ingest/config.ts";
import { runIngestOnce } from "../../ingest/run_once.ts";
import { NormalizeSettingsSchema } from "../../normalize/config.ts";
import { runNormalizeOnce } from "../../normalize/stage.ts";
import { type TrainConfig, type TrainSettingsInput, TrainSettingsSchema } from "../config.ts";

/** Whether Debian's python3 can run the trainer; the reason when not. */
export async function trainerUnavailable(): Promise<string | null> {
  try {
    const r = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import torch, torchvision, onnx, numpy, PIL"],
      stdout: "null",
      stderr: "piped",
    }).output();
    return r.success ? null : new TextDecoder().decode(r.stderr).trim().split("\n").at(-1) ?? "?";
  } catch (e) {
    return String(e);
  }
}

export interface Pipeline {
  dir: string;
  configFile: string;
  /** JSON log lines of every stage. */
  lines: string[];
  log: Logger;
  /** The train configuration from the shared file plus `train` overrides. */
  trainConfig(overrides?: TrainSettingsInput): Promise<TrainConfig>;
  close(): Promise<void>;
}

/** The sections every stage reads, for a pipeline rooted at `dir`. */
export function sharedSections(dir: string): Record<string, unknown> {
  return {
    source: { url: join(dir, "raw") },
    objectStore: { url: join(dir, "objects") },
    manifest: { url: `sqlite://${join(dir, "manifest.db")}` },
    staging: {
      root: join(dir, "nvme", "sluice"),
      fallbackRoot: join(dir, "fallback"),
      minFreeMb: 0,
    },
    worker: { id: "test-worker", idlePollMs: 100 },
    http: { port: 0 },
    log: { level: "info", format: "json" },
    mlflow: { localDir: join(dir, "mlruns"), experiment: "test", modelName: "sluice-detector" },
  };
}

/**
 * Generates `count` images, ingests them with their COCO annotations, renders the `96`
 * letterbox variant, and returns a handle for training on them.
 */
export async function openPipeline(opts: { count: number; seed: number }): Promise<Pipeline> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-train-e2e-"));
  const lines: string[] = [];
  const log = createLogger({ stage: "train", json: true, sink: (l) => lines.push(l) });
  try {
    await Deno.mkdir(join(dir, "nvme"));
    await generateDataset({ count: opts.count, seed: opts.seed, outDir: join(dir, "raw") });
    const configFile = join(dir, "sluice.json");
    await writeFile(
      configFile,
      JSON.stringify({
        ...sharedSections(dir),
        ingest: { annotations: ["coco.json"] },
        normalize: {
          variants: [{ name: "96", width: 96, height: 96, mode: "letterbox" }],
          resizer: "cpu",
        },
      }),
    );
    const argv = ["--config", configFile];
    const ingestConfig = await loadConfig({
      stage: "ingest",
      stageSchema: IngestSettingsSchema,
      argv,
      env: {},
    });
    const ingested = await runIngestOnce(ingestConfig, {
      log: createLogger({ stage: "ingest", json: true, sink: (l) => lines.push(l) }),
      progress: false,
    });
    if (ingested.worker.done !== opts.count) {
      throw new Error(
        `ingest: expected ${opts.count} images done, found ${JSON.stringify(ingested)}`,
      );
    }
    const normalizeConfig = await loadConfig({
      stage: "normalize",
      stageSchema: NormalizeSettingsSchema,
      argv,
      env: {},
    });
    const normalized = await runNormalizeOnce(normalizeConfig, {
      log: createLogger({ stage: "normalize", json: true, sink: (l) => lines.push(l) }),
    });
    if (normalized.done !== opts.count) {
      throw new Error(
        `normalize: expected ${opts.count} done, found ${JSON.stringify(normalized)}`,
      );
    }
    return {
      dir,
      configFile,
      lines,
      log,
      trainConfig: async (overrides = {}) => {
        const config = await loadConfig({
          stage: "train",
          stageSchema: TrainSettingsSchema,
          argv,
          env: {},
        });
        return { ...config, stage: TrainSettingsSchema.parse({ ...trainDefaults, ...overrides }) };
      },
      close: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Small and quick: a few steps on 96 px inputs with a half-width network. */
export const trainDefaults: TrainSettingsInput = {
  variant: "96",
  epochs: 2,
  batchSize: 8,
  valFraction: 0.2,
  device: "cpu",
  trainerArgs: ["--width", "0.5", "--log-every", "2"],
};
