/**
 * Streams a trainer's params and metrics to the tracker while it runs: values are queued and sent
 * as one `logBatch` every `flushMs` (or sooner when `maxBatch` values wait), so a fast trainer
 * does not make one request per value and a slow one still shows up live. A failed send keeps
 * its values for the next one; {@link TrackerStream.close} makes a last attempt and throws if
 * values are still unsent.
 *
 * @example
 * ```ts
 * const stream = new TrackerStream(tracker, run.runId, { log });
 * stream.param("lr", "0.003");
 * stream.metric("train_loss", 0.52, 10);
 * await stream.close();
 * ```
 * @module
 */
import { messageOf, SluiceError } from "../../common/errors/mod.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { MetricInput, Tracker } from "../../common/mlflow/tracker.ts";

export interface TrackerStreamOptions {
  /** Send queued values at least this often (default 2000 ms). */
  flushMs?: number;
  /** Send as soon as this many values wait (default 500). */
  maxBatch?: number;
  log?: Logger;
}

/** Counts of what went out. */
export interface TrackerStreamStats {
  batches: number;
  metrics: number;
  params: number;
  failures: number;
}

/** See the module docs. */
export class TrackerStream {
  readonly #tracker: Pick<Tracker, "logBatch">;
  readonly #runId: string;
  readonly #maxBatch: number;
  readonly #log?: Logger;
  #metrics: MetricInput[] = [];
  #params = new Map<string, string>();
  readonly #sentParams = new Map<string, string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  readonly stats: TrackerStreamStats = { batches: 0, metrics: 0, params: 0, failures: 0 };

  constructor(tracker: Pick<Tracker, "logBatch">, runId: string, opts: TrackerStreamOptions = {}) {
    this.#tracker = tracker;
    this.#runId = runId;
    this.#maxBatch = opts.maxBatch ?? 500;
    this.#log = opts.log;
    const flushMs = opts.flushMs ?? 2000;
    this.#timer = setInterval(() => void this.flush().catch(() => {}), flushMs);
  }

  /** Queues a param; a repeated key with the same value is ignored, a different value refused. */
  param(key: string, value: string): void {
    this.#assertOpen();
    const prev = this.#sentParams.get(key) ?? this.#params.get(key);
    if (prev !== undefined) {
      if (prev !== value) {
        // MLflow refuses to change a logged param; keep the first and say so.
        this.#log?.warn("param logged twice with different values; keeping the first", {
          key,
          first: prev,
          second: value,
        });
      }
      return;
    }
    this.#params.set(key, value);
    if (this.#pending() >= this.#maxBatch) void this.flush().catch(() => {});
  }

  /** Queues one metric value (timestamp: now). */
  metric(key: string, value: number, step: number, timestamp: number = Date.now()): void {
    this.#assertOpen();
    this.#metrics.push({ key, value, step, timestamp });
    if (this.#pending() >= this.#maxBatch) void this.flush().catch(() => {});
  }

  /** Sends what is queued (serialised with any send in progress). */
  flush(): Promise<void> {
    const next = this.#chain.then(() => this.#send());
    this.#chain = next.catch(() => {});
    return next;
  }

  /** Stops the timer, sends the rest; throws `tracking_failed` if values could not be sent. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#closed = true;
    await this.#chain;
    try {
      await this.#send();
    } catch (err) {
      throw new SluiceError(
        "tracking_failed",
        `tracker run ${this.#runId}: expected every metric and param sent, found ` +
          `${this.#pending()} unsent after a last attempt: ${messageOf(err)}`,
        { cause: err },
      );
    }
  }

  #pending(): number {
    return this.#metrics.length + this.#params.size;
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new SluiceError("tracking_closed", `tracker stream of run ${this.#runId} is closed`);
    }
  }

  async #send(): Promise<void> {
    if (this.#pending() === 0) return;
    const metrics = this.#metrics;
    const params = this.#params;
    this.#metrics = [];
    this.#params = new Map();
    try {
      await this.#tracker.logBatch(this.#runId, {
        params: Object.fromEntries(params),
        metrics,
      });
    } catch (err) {
      // Put them back in front of anything queued meanwhile, in the original order.
      this.#metrics = [...metrics, ...this.#metrics];
      this.#params = new Map([...params, ...this.#params]);
      this.stats.failures++;
      this.#log?.warn("sending metrics to the tracker failed; will retry", {
        err: messageOf(err),
        pending: this.#pending(),
      });
      throw err;
    }
    for (const [k, v] of params) this.#sentParams.set(k, v);
    this.stats.batches++;
    this.stats.metrics += metrics.length;
    this.stats.params += params.size;
  }
}
