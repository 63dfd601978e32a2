/**
 * Watches one training run's trainer events: forwards params and metrics to the tracker stream,
 * keeps the Prometheus gauges current, logs progress (at most every `progressEveryMs`, and at
 * every new epoch), and remembers what the launcher needs afterwards (each rank's shard report,
 * the summary, the artifact paths).
 *
 * @example
 * ```ts
 * const observer = new RunObserver({ log, metrics, stream, epochs: 30 });
 * await runTrainerProcesses(specs, { onEvent: (rank, ev) => observer.onEvent(rank, ev) });
 * console.log(observer.summary?.map50, observer.shards);
 * ```
 * @module
 */
import type { Logger } from "../../common/log/mod.ts";
import type { TrainMetrics } from "./train_metrics.ts";
import type { TrackerStream } from "./tracker_stream.ts";
import type { SummaryEvent, TrainerEvent } from "./trainer_events.ts";

/** What a rank reported reading. */
export interface ShardReport {
  rank: number;
  worldSize: number;
  count: number;
  /** COCO image ids of the images it read, in shard order. */
  imageIds: (number | string)[];
}

export interface RunObserverOptions {
  log: Logger;
  metrics?: TrainMetrics;
  stream?: TrackerStream;
  /** Planned epochs (for the progress line). */
  epochs: number;
  /** Least time between progress log lines (default 10 s). */
  progressEveryMs?: number;
  /** Also called with every event. */
  onEvent?: (rank: number, event: TrainerEvent) => void;
}

/** See the module docs. */
export class RunObserver {
  readonly shards: ShardReport[] = [];
  readonly artifacts: string[] = [];
  summary: SummaryEvent | null = null;
  /** The latest value of each metric (rank 0). */
  readonly latest: Record<string, number> = {};
  #lastLog = 0;
  #lastEpoch = 0;
  readonly #o: RunObserverOptions;

  constructor(opts: RunObserverOptions) {
    this.#o = opts;
  }

  /** Handles one event of `rank`. */
  onEvent(rank: number, ev: TrainerEvent): void {
    const { log, metrics, stream } = this.#o;
    this.#o.onEvent?.(rank, ev);
    switch (ev.type) {
      case "param":
        stream?.param(ev.key, ev.value);
        break;
      case "metric":
        this.latest[ev.key] = ev.value;
        stream?.metric(ev.key, ev.value, ev.step);
        metrics?.trackedMetricsTotal.inc();
        if (ev.key === "train_loss" && Number.isFinite(ev.value)) metrics?.loss.set(ev.value);
        if (ev.key === "val_map50") metrics?.map.set({ iou: "0.5" }, ev.value);
        if (ev.key === "val_map50_95") metrics?.map.set({ iou: "0.5:0.95" }, ev.value);
        break;
      case "progress": {
        metrics?.epoch.set(ev.epoch);
        metrics?.step.set(ev.step);
        metrics?.imagesPerSecond.set(ev.images_per_sec);
        metrics?.progress.set(Math.min(1, Math.max(0, ev.progress)));
        stream?.metric("images_per_sec", ev.images_per_sec, ev.step);
        const now = Date.now();
        const every = this.#o.progressEveryMs ?? 10_000;
        if (ev.epoch !== this.#lastEpoch || now - this.#lastLog >= every) {
          this.#lastEpoch = ev.epoch;
          this.#lastLog = now;
          const eta = ev.progress > 0 ? ev.elapsed_s * (1 - ev.progress) / ev.progress : null;
          log.info("training", {
            epoch: ev.epoch,
            epochs: this.#o.epochs,
            step: ev.step,
            imagesPerSec: round(ev.images_per_sec, 1),
            loss: this.latest.train_loss === undefined ? null : round(this.latest.train_loss, 4),
            progress: round(ev.progress, 3),
            elapsedS: Math.round(ev.elapsed_s),
            etaS: eta === null ? null : Math.round(eta),
          });
        }
        break;
      }
      case "shard":
        this.shards.push({
          rank: ev.rank,
          worldSize: ev.world_size,
          count: ev.count,
          imageIds: ev.image_ids,
        });
        this.shards.sort((a, b) => a.rank - b.rank);
        log.info("rank reading its shard", { rank: ev.rank, images: ev.count });
        break;
      case "artifact":
        this.artifacts.push(ev.path);
        break;
      case "summary":
        this.summary = ev;
        metrics?.map.set({ iou: "0.5" }, ev.map50);
        metrics?.map.set({ iou: "0.5:0.95" }, ev.map50_95);
        metrics?.imagesPerSecond.set(ev.images_per_sec);
        metrics?.progress.set(1);
        break;
      case "error":
        log.error("trainer reported an error", { rank, reason: ev.code, err: ev.message });
        break;
      case "bench":
        break;
    }
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
