/**
 * `sluice-train`: the command-line entry of the train stage.
 *
 * ```
 * sluice-train [run]                   one training now; prints the result as JSON
 * sluice-train worker                  claim training requests from the train queue until SIGTERM
 * sluice-train request [id]            enqueue a training request for the workers, exit
 * sluice-train node --plan KEY --rank R   one rank of a k8s / systemd multi-host run
 * sluice-train models list|show|promote|approve|rollback|compare   manage model versions
 * ```
 *
 * @example
 * ```ts
 * // deno run -A stages/train/main.ts run --train-epochs 5 --train-launcher k8s
 * ```
 * @module
 */
import { EXIT_USAGE, parseStageArgs } from "../../common/config/mod.ts";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import { createStageLogger, modeArgument, withStageServer } from "../../common/stage/mod.ts";
import { shutdownSignal } from "../../common/worker/mod.ts";
import { TrainSettingsSchema } from "./config.ts";
import { modelsMain } from "./models_command.ts";
import { materialisedTrainerCommand } from "./trainer_source.ts";
import { createTrainStage } from "./stage.ts";

const MODES = ["run", "worker", "request", "node"] as const;
type Mode = typeof MODES[number];

const USAGE = `sluice-train [run|worker|request|node] [options]

Trains the detector on a snapshot of the manifest: ingested, non-duplicate images with
annotations and the chosen variant. Writes COCO files (boxes in variant pixels) and per-node
shard lists to <trainingPrefix>/<snapshot>/, stages them on NVMe, runs the PyTorch trainer,
streams its metrics to MLflow, registers the ONNX model (alias "candidate") and promotes it to
the approved alias when its validation mAP@0.5 reaches the threshold and the champion's.

Modes:
  run              one training now; prints the result as JSON on stdout (default)
                   with --train-launcher k8s|systemd: writes the Job / unit definitions for a
                   multi-host run into the training prefix and prints where
  worker           claim training requests from the "train" queue until SIGTERM/SIGINT
  request [id]     enqueue a training request (default id: request-<time>) and exit
  node             one rank of a multi-host run: --plan <launch.json key> [--rank N]
                   (rank default: $RANK, else $JOB_COMPLETION_INDEX)
  models ...       list, show, promote, approve, roll back or compare model versions
                   ("sluice-train models --help")`;

const FLAGS = {
  plan: { type: "string", description: "node: key of the run's launch.json in the training store" },
  rank: { type: "string", description: "node: this host's rank (default $RANK)" },
} as const;

function json(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v),
  );
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === "models") return await modelsMain(argv.slice(1));
  const { config, positionals, flags, warnings } = await parseStageArgs(argv, {
    stage: "train",
    stageSchema: TrainSettingsSchema,
    usage: USAGE,
    flags: FLAGS,
    allowPositionals: true,
  });
  const log = createStageLogger("train", config.log);
  for (const w of warnings) log.warn(w);
  const mode = modeArgument<Mode>(
    "sluice-train",
    MODES,
    positionals,
    (m) => m === "request" ? 2 : 1,
  );
  if (mode === null) return EXIT_USAGE;
  let rank = 0;
  if (mode === "node") {
    const raw = flags.rank ?? Deno.env.get("RANK") ?? Deno.env.get("JOB_COMPLETION_INDEX");
    rank = Number(raw);
    if (!flags.plan || raw === undefined || !/^\d+$/.test(raw)) {
      console.error(
        `sluice-train node: expected --plan <key> and a rank (--rank, $RANK or ` +
          `$JOB_COMPLETION_INDEX), found plan ${JSON.stringify(flags.plan)}, rank ${
            JSON.stringify(raw)
          }`,
      );
      return EXIT_USAGE;
    }
  }

  const shutdown = shutdownSignal();
  try {
    config.stage.trainerCommand = await materialisedTrainerCommand(config);
    const stage = await createTrainStage(config, { log, signal: shutdown.signal });
    try {
      if (mode === "request") {
        const id = positionals[1] ?? `request-${new Date().toISOString().replace(/[:.]/g, "-")}`;
        const added = await stage.request(id);
        console.log(json({ request: id, added }));
        return 0;
      }
      log.info("starting", {
        mode,
        launcher: config.stage.launcher,
        variant: config.stage.variant,
        nodes: config.stage.nodes,
        epochs: config.stage.epochs,
      });
      const out = await withStageServer(stage.handler, config.http, log, (): Promise<unknown> => {
        if (mode === "worker") return stage.work({ signal: shutdown.signal });
        return mode === "node" ? stage.runNode({ planKey: flags.plan!, rank }) : stage.runOnce();
      });
      console.log(json(out));
      return 0;
    } finally {
      await stage.close();
    }
  } catch (err) {
    log.error("train failed", { reason: reasonOf(err), error: messageOf(err) });
    return shutdown.signal.aborted ? 130 : 1;
  } finally {
    shutdown.dispose();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
