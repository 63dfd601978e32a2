/**
 * `sluice-ingest`: the ingest stage's command line.
 *
 * ```
 * sluice-ingest once|poll|events [options]
 * sluice-ingest import-annotations --format labelstudio|coco|yolo|voc FILE_OR_URI_OR_DIR
 * sluice-ingest export --format coco|labelstudio|yolo|voc --out FILE_OR_DIR [--snapshot ID]
 * ```
 *
 * Long-running modes serve HTTP on `http.port` (unless 0) and shut down gracefully on SIGTERM or
 * SIGINT: claims in flight finish or are released, servers and stores are closed.
 *
 * @example
 * ```ts
 * // deno run -A stages/ingest/main.ts once --source-url s3://raw --s3-endpoint http://127.0.0.1:9000
 * const code = await main(["once"]);
 * ```
 * @module
 */
import "../../common/runtime_assets/sharp_preload.ts"; // first: sharp loads its addon from the runtime cache
import { EXIT_USAGE, parseStageArgs } from "../../common/config/mod.ts";
import { loadFusedRenderSettings } from "./fused_render_settings.ts";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import { materialiseRuntimeAssets } from "../../common/runtime_assets/mod.ts";
import { withStageServer } from "../../common/stage/mod.ts";
import { shutdownSignal } from "../../common/worker/mod.ts";
import { ANNOTATION_FLAGS, runAnnotationCommand } from "./annotations_cli.ts";
import { IngestSettingsSchema } from "./config.ts";
import { createIngestLogger, openIngestStage } from "./stage.ts";
import { effectiveIngestConcurrency } from "./ingest_concurrency.ts";

const USAGE = `sluice-ingest <command> [options]

Copies raw images into the dataset: verifies, orients, deduplicates and publishes them
content-addressed, imports annotations, makes augmented copies, and queues them for normalize.

Commands:
  once                 Backfill: list the source, import ingest.annotations, drain the queue, exit
  poll                 List the source every ingest.pollIntervalMs and ingest what is new or changed
  events               Take S3 notifications (POST /events and/or SQS) plus reconciling lists
  import-annotations --format labelstudio|coco|yolo|voc FILE_OR_URI_OR_DIR
                       Import a Label Studio export, a COCO file, or a YOLO / VOC directory
  export --format coco|labelstudio|yolo|voc --out FILE_OR_DIR [--snapshot ID]
                       Write the ingested images (or a training snapshot) with their
                       annotations ("-" for stdout); see README "Formats"`;

const FLAGS = { ...ANNOTATION_FLAGS } as const;

const COMMANDS = ["once", "poll", "events", "import-annotations", "export"] as const;

/** Options for running `main` in-process (tests). */
export interface MainOptions {
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  print?: (text: string) => void;
  printError?: (text: string) => void;
}

const encoder = new TextEncoder();

/**
 * What is wrong with the command, or null when nothing is. `import-annotations` and `export`
 * check their own flags and arguments (annotations_cli.ts).
 */
function usageProblem(positionals: readonly string[]): string | null {
  const command = positionals[0];
  if (command === undefined) return `expected a command (${COMMANDS.join(", ")})`;
  if (!(COMMANDS as readonly string[]).includes(command)) {
    return `unknown command "${command}": expected one of ${COMMANDS.join(", ")}`;
  }
  const extra = positionals.slice(1);
  if (command !== "import-annotations" && command !== "export" && extra.length !== 0) {
    return `${command}: unexpected arguments ${extra.join(" ")}`;
  }
  return null;
}

/**
 * Runs the command line and returns the exit status.
 *
 * @example
 * ```ts
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(argv: readonly string[], opts: MainOptions = {}): Promise<number> {
  const print = opts.print ?? ((t: string) => Deno.stdout.writeSync(encoder.encode(t)));
  const printError = opts.printError ?? ((t: string) => Deno.stderr.writeSync(encoder.encode(t)));
  let exitCode: number | null = null;
  const parsed = await parseStageArgs(argv, {
    stage: "ingest",
    stageSchema: IngestSettingsSchema,
    usage: USAGE,
    flags: FLAGS,
    allowPositionals: true,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    print,
    printError,
    exit: (code: number): never => {
      exitCode = code;
      throw new ExitSignal();
    },
  }).catch((err) => {
    if (err instanceof ExitSignal) return null;
    throw err;
  });
  if (parsed === null) return exitCode ?? 0;
  const { config, flags, positionals } = parsed;
  config.worker.concurrency = effectiveIngestConcurrency(config.worker.concurrency, parsed.sources);
  const usageError = (msg: string) => {
    printError(`sluice-ingest: ${msg}\nRun with --help for usage.\n`);
    return EXIT_USAGE;
  };
  const problem = usageProblem(positionals);
  if (problem !== null) return usageError(problem);
  const command = positionals[0];
  const extra = positionals.slice(1);

  const log = createIngestLogger(config);
  const shutdown = shutdownSignal();
  try {
    await materialiseRuntimeAssets(config);
    if (command === "import-annotations" || command === "export") {
      const cwd = opts.cwd ?? Deno.cwd();
      return await runAnnotationCommand(command, {
        config,
        flags,
        args: extra,
        cwd,
        print,
        usageError,
        log,
      });
    }

    const normalize = config.stage.renderVariants
      ? await loadFusedRenderSettings({
        argv,
        env: opts.env,
        cwd: opts.cwd,
      })
      : undefined;
    // A backfill takes no S3 events: without a webhook token, `once` has nothing to refuse and
    // must not log the "webhook not served" error that `poll` and `events` log.
    const stageConfig = command === "once"
      ? { ...config, stage: { ...config.stage, webhook: false } }
      : config;
    const stage = await openIngestStage(stageConfig, normalize ? { normalize } : {}, log);
    try {
      return await withStageServer(stage.handler, config.http, log, async (server) => {
        if (command === "once") {
          const summary = await stage.runOnce({ signal: shutdown.signal });
          print(JSON.stringify(summary, null, 2) + "\n");
        } else if (command === "poll") {
          await stage.runPoll(shutdown.signal);
        } else {
          if (!(config.stage.webhook && server) && !config.stage.sqsQueueUrl) {
            return usageError(
              "events: expected ingest.webhook with an HTTP port, or ingest.sqsQueueUrl",
            );
          }
          if (stage.location.bucket === null) {
            return usageError(
              "events: expected an s3:// source.url or ingest.eventBucket to check events against",
            );
          }
          await stage.runEvents(shutdown.signal);
        }
        return 0;
      });
    } finally {
      await stage.close();
    }
  } catch (err) {
    log.error("sluice-ingest failed", { reason: reasonOf(err), error: messageOf(err) });
    printError(`sluice-ingest: ${messageOf(err)}\n`);
    return 1;
  } finally {
    shutdown.dispose();
  }
}

/** Stops `parseStageArgs` from exiting the process when `main` runs in-process. */
class ExitSignal extends Error {}

if (import.meta.main) Deno.exit(await main(Deno.args));
