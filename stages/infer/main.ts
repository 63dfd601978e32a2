/**
 * `sluice-infer`: the command-line entry of the infer stage.
 *
 * ```
 * sluice-infer [run]                 predict queued images until SIGTERM/SIGINT, following the alias
 * sluice-infer once                  drain this model version's queue, publish outputs, print a JSON summary
 * sluice-infer --input PREFIX|@LIST  predict the given images instead of the queue (implies once)
 * sluice-infer --eval GT_COCO.json   after draining, print mAP@0.5 and mAP@0.5:0.95 against it
 * ```
 *
 * @example
 * ```ts
 * // deno run -A stages/infer/main.ts once --eval holdout/coco.json
 * ```
 * @module
 */
import "../../common/runtime_assets/sharp_preload.ts"; // first: sharp loads its addon from the runtime cache
import { EXIT_USAGE, parseStageArgs } from "../../common/config/mod.ts";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import { materialiseRuntimeAssets } from "../../common/runtime_assets/mod.ts";
import { createStageLogger, modeArgument, withStageServer } from "../../common/stage/mod.ts";
import { shutdownSignal } from "../../common/worker/mod.ts";
import { InferSettingsSchema } from "./config.ts";
import { createInferStage } from "./stage.ts";

const MODES = ["run", "once"] as const;
type Mode = typeof MODES[number];

const USAGE = `sluice-infer [run|once] [--input PREFIX|@LIST]... [--eval GT_COCO.json] [options]

Predicts boxes on ingested images that have no human annotation and no prediction from the
approved model version, and writes them for review: Label Studio tasks with pre-annotations
and COCO results under <prefix>/<model>/<version>/ in the object store, and prediction rows in
the manifest. The approved model is the registry alias (infer.alias), else the newest version
tagged infer.approvedTag, else the newest in infer.stage; or infer.modelUri.

Modes:
  run   predict queued images until SIGTERM/SIGINT, re-checking the approval every
        infer.aliasCheckSeconds and swapping models between batches (default)
  once  drain this model version's queue, publish the outputs, print a JSON summary, exit`;

const FLAGS = {
  input: {
    type: "string" as const,
    multiple: true as const,
    description: "Predict objects under this key prefix, or listed in @file, instead of the queue",
  },
  eval: {
    type: "string" as const,
    description: "COCO ground truth to score the predictions against (mAP@0.5, mAP@0.5:0.95)",
  },
};

async function main(argv: readonly string[]): Promise<number> {
  const { config, flags, positionals, warnings } = await parseStageArgs(argv, {
    stage: "infer",
    stageSchema: InferSettingsSchema,
    usage: USAGE,
    flags: FLAGS,
    allowPositionals: true,
  });
  const log = createStageLogger("infer", config.log);
  for (const w of warnings) log.warn(w);
  if (modeArgument<Mode>("sluice-infer", MODES, positionals) === null) return EXIT_USAGE;
  const inputs = flags.input;
  const gt = flags.eval;
  const mode: Mode = inputs.length > 0 || gt !== undefined
    ? "once"
    : (positionals[0] ?? "run") as Mode;

  const shutdown = shutdownSignal();
  try {
    await materialiseRuntimeAssets(config, { addons: ["onnxruntime"] });
    const stage = await createInferStage(config, { log });
    try {
      log.info("starting", { mode, inputs: inputs.length, eval: gt ?? null });
      const summary = await withStageServer(
        stage.handler,
        config.http,
        log,
        () => stage.run({ once: mode === "once", signal: shutdown.signal, inputs }),
      );
      if (mode === "once") {
        const report = gt !== undefined ? await stage.evaluate(gt) : undefined;
        console.log(JSON.stringify(report ? { ...summary, eval: report } : summary));
        if (report) {
          log.info("evaluation", {
            map50: report.map50,
            map50_95: report.map50_95,
            matchedImages: report.matchedImages,
            gtImages: report.gtImages,
          });
        }
      }
      return 0;
    } finally {
      await stage.close();
    }
  } catch (err) {
    log.error("infer failed", { reason: reasonOf(err), error: messageOf(err) });
    return 1;
  } finally {
    shutdown.dispose();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
