/**
 * `sluice-normalize`: the command-line entry of the normalize stage.
 *
 * ```
 * sluice-normalize [run]     claim and process normalize items until SIGTERM/SIGINT
 * sluice-normalize once      drain the queue, print a JSON summary, exit
 * sluice-normalize backfill  enqueue every ingested image lacking a current variant, exit
 * ```
 *
 * @example
 * ```ts
 * // deno run -A stages/normalize/main.ts once --manifest-url sqlite:///tmp/m.db
 * ```
 * @module
 */
import "../../common/runtime_assets/sharp_preload.ts"; // first: sharp loads its addon from the runtime cache
import { EXIT_USAGE, parseStageArgs } from "../../common/config/mod.ts";
import { messageOf, reasonOf } from "../../common/errors/mod.ts";
import { materialiseRuntimeAssets } from "../../common/runtime_assets/mod.ts";
import { createStageLogger, modeArgument, withStageServer } from "../../common/stage/mod.ts";
import { shutdownSignal } from "../../common/worker/mod.ts";
import { effectiveConcurrency, NormalizeSettingsSchema } from "./config.ts";
import { createNormalizeStage } from "./stage.ts";

const MODES = ["run", "once", "backfill"] as const;
type Mode = typeof MODES[number];

const USAGE = `sluice-normalize [run|once|backfill] [options]

Renders the variants of every ingested image (sizes, fit modes, formats) from one decode and
records each variant's exact transform in the manifest.

Modes:
  run       claim and process normalize items until SIGTERM/SIGINT (default)
  once      drain the normalize queue, print a JSON summary on stdout, and exit
  backfill  enqueue every ingested image that lacks a current variant, and exit

Run with MALLOC_ARENA_MAX=2: glibc's per-thread arenas otherwise keep freed decode buffers.`;

async function main(argv: readonly string[]): Promise<number> {
  const { config, positionals, sources, warnings } = await parseStageArgs(argv, {
    stage: "normalize",
    stageSchema: NormalizeSettingsSchema,
    usage: USAGE,
    allowPositionals: true,
  });
  const log = createStageLogger("normalize", config.log);
  for (const w of warnings) log.warn(w);
  const mode = modeArgument<Mode>("sluice-normalize", MODES, positionals);
  if (mode === null) return EXIT_USAGE;

  const shutdown = shutdownSignal();
  try {
    await materialiseRuntimeAssets(config);
    const stage = await createNormalizeStage(config, {
      log,
      concurrency: effectiveConcurrency(config, sources),
    });
    try {
      if (mode === "backfill") {
        const r = await stage.backfill();
        console.log(JSON.stringify(r));
        return 0;
      }
      log.info("starting", {
        mode,
        concurrency: stage.concurrency,
        cpuSlots: stage.cpuSlots,
        resizer: stage.resizer.name,
        variants: stage.specs.map((s) => `${s.spec.name}@v${s.version}`),
      });
      const summary = await withStageServer(
        stage.handler,
        config.http,
        log,
        () => stage.run({ once: mode === "once", signal: shutdown.signal }),
      );
      if (mode === "once") console.log(JSON.stringify(summary));
      return 0;
    } finally {
      await stage.close();
    }
  } catch (err) {
    log.error("normalize failed", { reason: reasonOf(err), error: messageOf(err) });
    return 1;
  } finally {
    shutdown.dispose();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
