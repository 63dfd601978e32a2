/**
 * The loop every stage runs: claim a batch from the manifest's work queue, process up to
 * `concurrency` items at once while renewing their leases, then record each item's effects
 * (`complete`) or its failure (`fail`, retryable or not). On abort it stops claiming, gives
 * in-flight items a grace period, and releases the rest untouched.
 *
 * @example
 * ```ts
 * const { signal } = shutdownSignal();
 * const summary = await runWorker({
 *   manifest, stage: "normalize", owner: `${host}-${Deno.pid}`, concurrency: 2, log, signal,
 *   process: async (claim, ctx) => {
 *     const variants = await makeVariants(claim.itemId, ctx.signal);
 *     return { variants, enqueue: [] };
 *   },
 * });
 * ```
 * @module
 */
import { z } from "zod";
import { messageOf, reasonOf, SluiceError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import {
  type Claim,
  type Effects,
  LeaseLostError,
  type ManifestStore,
  type QueueName,
} from "../manifest/mod.ts";
import { jitter, Waker } from "./_waker.ts";
import { ABORTED, TIMED_OUT, untilAborted, within } from "./_bounded.ts";
import {
  type CompletionBatchOptions,
  completionBatchSchema,
  completionPath,
} from "./_completion_batcher.ts";
import {
  createProgressReporter,
  ProgressCounter,
  type ProgressOutcome,
  type ProgressReporter,
  type ProgressSnapshot,
} from "./progress.ts";
import { isPermanentFailure } from "./retry_policy.ts";

/**
 * The part of the manifest the loop uses; any `ManifestStore` is one. `completeMany` is used
 * only with `completionBatch`; `pruneDoneWork` by `runQueue`'s work retention.
 */
export type WorkQueue =
  & Pick<ManifestStore, "claim" | "renew" | "complete" | "fail" | "release" | "workCounts">
  & Partial<Pick<ManifestStore, "completeMany" | "pruneDoneWork">>;

/** Given to `process` with each claim. */
export interface ItemContext {
  /** Aborted when the lease is lost or the shutdown grace period ends: stop and throw. */
  signal: AbortSignal;
  /** The worker's logger with `item` and `attempt` fields. */
  log: Logger;
  /** 1 on the first claim of this item, 2 on the first retry, ... */
  attempt: number;
}

/** How one item ended. */
export interface ItemResult {
  outcome: ProgressOutcome;
  /** Failure reason code (`reasonOf(err)`) for `failed` and `retried`. */
  reason?: string;
  message?: string;
}

/** Totals for one `runWorker` call. */
export interface WorkerSummary {
  done: number;
  /** Failed for good (not retryable, or out of attempts). */
  failed: number;
  /** Failed, and sent back to the queue for another attempt. */
  retried: number;
  /** The lease was lost (expired or taken over); nothing was recorded. */
  leaseLost: number;
  /** Given back untouched at shutdown. */
  released: number;
}

export interface ProgressOptions {
  /** Expected items; in `once` mode the default is the queue's pending + leased at start. */
  total?: number;
  /** Report at least every this many finished items (default 100)... */
  everyItems?: number;
  /** ...or this often while something changes or is in flight (default 10 s). */
  everyMs?: number;
  /** Receive snapshots instead of the default log lines / terminal bar. */
  onProgress?: (p: ProgressSnapshot) => void;
}

export interface RunWorkerOptions {
  manifest: WorkQueue;
  stage: QueueName;
  /** Lease owner, unique per process (e.g. `${hostname}-${pid}`). */
  owner: string;
  /** Most items claimed per round trip (default: `concurrency`); never more than free slots. */
  batchSize?: number;
  /** Items processed at once (default 1). */
  concurrency?: number;
  /**
   * Claims held ahead in a local buffer beyond `concurrency` (default 0), so a slot never waits
   * for a claim round trip; buffered claims are renewed, and released at shutdown. `concurrency`
   * is a good value when items are short.
   */
  prefetch?: number;
  /**
   * Record completions in groups (one `completeMany` transaction per group, flushed at
   * `maxItems` or `maxDelayMs`); off by default (one `complete` per item).
   */
  completionBatch?: CompletionBatchOptions;
  /** Lease length; renewed every `leaseMs / 3` (default 60 s). */
  leaseMs?: number;
  /** Claims per item before it goes to `failed` (default 5). */
  maxAttempts?: number;
  /** Sleep between empty polls, ±25 % jitter (default 1 s). */
  idlePollMs?: number;
  /** After abort, how long in-flight items may take to finish before release (default 20 s). */
  graceMs?: number;
  /**
   * After abort, how long each group of shutdown calls to the manifest (releasing claims,
   * recording the last completions, the last renewal) may wait (default 3 s). A call cut short
   * goes on in the background; what it did not record comes back when its lease expires. This
   * bounds SIGTERM when the network to the database went silent.
   */
  shutdownCallMs?: number;
  /** Abort to shut down (see `shutdownSignal`). */
  signal?: AbortSignal;
  log: Logger;
  process: (claim: Claim, ctx: ItemContext) => Promise<Effects | void>;
  /** Called once per finished item with how long it took (e.g. for metrics). */
  onResult?: (claim: Claim, result: ItemResult, ms: number) => void;
  /** Drain mode: return once nothing is pending or leased on the stage. */
  once?: boolean;
  /** Reason codes that are permanent in this stage, besides `PERMANENT_CODES`. */
  permanentCodes?: readonly string[];
  /** Progress reporting; `false` turns it off. */
  progress?: ProgressOptions | false;
  /**
   * Checked before each claim; `false` is back-pressure (e.g. staging below its free-space
   * floor): claim nothing now, look again after `idlePollMs`. See `common/staging/backpressure.ts`.
   */
  canClaim?: () => Promise<boolean>;
  /** Failures that are back-pressure, not the item's fault: released, the attempt not counted. */
  isBackpressure?: (err: unknown) => boolean;
}

const OptionsSchema = z.object({
  stage: z.string().min(1),
  owner: z.string().min(1),
  concurrency: z.number().int().positive().default(1),
  batchSize: z.number().int().positive().optional(),
  prefetch: z.number().int().nonnegative().default(0),
  completionBatch: completionBatchSchema.optional(),
  leaseMs: z.number().int().min(30).default(60_000),
  maxAttempts: z.number().int().positive().default(5),
  idlePollMs: z.number().int().positive().default(1000),
  graceMs: z.number().int().nonnegative().default(20_000),
  shutdownCallMs: z.number().int().positive().default(3000),
  once: z.boolean().default(false),
});

/** How long, after the grace period, to wait for aborted items to notice before returning. */
const SETTLE_AFTER_ABORT_MS = 2000;

interface Held {
  claim: Claim;
  ac: AbortController;
  /** Renewal found the lease gone. */
  lost: boolean;
  /** Given back at shutdown; its result must not be recorded. */
  released: boolean;
  finished: boolean;
  /** `process` has returned: the outcome is being recorded, a renewal no longer applies. */
  recording?: boolean;
}

/**
 * Runs the claim → process → complete loop until `signal` aborts (or, with `once`, until the
 * stage's queue is drained) and returns the totals. Failures are recorded with
 * `reasonOf(err)` as the reason; permanent ones (`isPermanentFailure`) with `retry: false`.
 * A lost lease is logged and counted, never fatal.
 *
 * @example
 * ```ts
 * const s = await runWorker({ manifest, stage: "ingest", owner, log, once: true, process });
 * console.log(`${s.done} done, ${s.failed} failed`);
 * ```
 */
export async function runWorker(options: RunWorkerOptions): Promise<WorkerSummary> {
  const parsed = OptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new SluiceError(
      "invalid_options",
      `worker options: ${
        parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")
      }`,
    );
  }
  return await new WorkerLoop(options, parsed.data).run();
}

type WorkerConfig = z.infer<typeof OptionsSchema>;

/** One `runWorker` call's state: its held claims, slots, lease renewal and progress. */
class WorkerLoop {
  readonly #options: RunWorkerOptions;
  readonly #cfg: WorkerConfig;
  readonly #batchSize: number;
  readonly #manifest: WorkQueue;
  readonly #signal: AbortSignal | undefined;
  readonly #log: Logger;
  readonly #permanentCodes: readonly string[];
  readonly #completer: ReturnType<typeof completionPath>;
  readonly #summary: WorkerSummary = { done: 0, failed: 0, retried: 0, leaseLost: 0, released: 0 };
  readonly #held = new Map<string, Held>();
  readonly #queued: Held[] = [];
  readonly #running = new Set<Promise<void>>();
  readonly #waker = new Waker();
  readonly #onAbort = () => this.#waker.wake();
  readonly #progressOpts: ProgressOptions | null;
  readonly #counter: ProgressCounter;
  #reporter: ProgressReporter | null = null;
  #progressTimer: ReturnType<typeof setInterval> | undefined;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #renewing: Promise<void> | null = null;
  readonly #renewEvery: number;
  /** Shutdown: when the manifest calls made after the grace period must be done. */
  #deadline = Infinity;

  constructor(options: RunWorkerOptions, cfg: WorkerConfig) {
    this.#options = options;
    this.#cfg = cfg;
    this.#batchSize = cfg.batchSize ?? cfg.concurrency;
    this.#manifest = options.manifest;
    this.#signal = options.signal;
    this.#log = options.log.child({ owner: cfg.owner });
    this.#permanentCodes = options.permanentCodes ?? [];
    this.#completer = completionPath(this.#manifest, cfg.completionBatch);
    this.#signal?.addEventListener("abort", this.#onAbort);
    this.#progressOpts = options.progress === false ? null : (options.progress ?? {});
    this.#counter = new ProgressCounter(this.#progressOpts?.total);
    this.#renewEvery = Math.max(10, Math.floor(cfg.leaseMs / 3));
  }

  async run(): Promise<WorkerSummary> {
    const cfg = this.#cfg;
    this.#log.info("worker started", {
      stage: cfg.stage,
      concurrency: cfg.concurrency,
      batchSize: this.#batchSize,
      leaseMs: cfg.leaseMs,
      once: cfg.once,
    });
    try {
      await this.#startProgress();
      this.#scheduleRenew();
      await this.#loop();
    } finally {
      await this.#shutdown();
    }
    return this.#summary;
  }

  // ---- leases --------------------------------------------------------------------------

  #scheduleRenew(): void {
    this.#renewTimer = setTimeout(() => {
      this.#renewing = this.#renewAll().finally(() => {
        this.#renewing = null;
        if (this.#renewTimer !== undefined) this.#scheduleRenew();
      });
    }, this.#renewEvery);
  }

  async #renewAll(): Promise<void> {
    const mine = [...this.#held.values()].filter((h) => !h.lost && !h.released && !h.finished);
    if (mine.length === 0) return;
    let kept: Claim[];
    try {
      kept = await this.#manifest.renew(mine.map((h) => h.claim), this.#cfg.leaseMs);
    } catch (err) {
      // The next tick tries again; the lease has two more renewal periods before it expires.
      this.#log.warn("lease renewal failed", { error: messageOf(err), items: mine.length });
      return;
    }
    const byItem = new Map(kept.map((c) => [c.itemId, c]));
    for (const h of mine) {
      const fresh = byItem.get(h.claim.itemId);
      if (fresh) {
        h.claim = fresh;
        continue;
      }
      // Completed (or being recorded) while the renewal was on its way: not lost.
      if (h.finished || h.recording) continue;
      h.lost = true;
      this.#log.warn("lease lost while working", { item: h.claim.itemId });
      h.ac.abort(new LeaseLostError(h.claim));
      const i = this.#queued.indexOf(h);
      if (i >= 0) {
        this.#queued.splice(i, 1);
        this.#finish(h, { outcome: "lease_lost" }, 0);
      }
    }
  }

  // ---- outcomes ------------------------------------------------------------------------

  #finish(h: Held, result: ItemResult, ms: number): void {
    if (h.finished) return;
    h.finished = true;
    this.#held.delete(h.claim.itemId);
    if (result.outcome === "lease_lost") this.#summary.leaseLost++;
    else this.#summary[result.outcome]++;
    this.#counter.record(result.outcome);
    try {
      this.#options.onResult?.(h.claim, result, ms);
    } catch (err) {
      this.#log.warn("onResult callback threw", { error: messageOf(err) });
    }
    this.#reporter?.update(this.#snapshot());
  }

  async #recordFailure(h: Held, err: unknown): Promise<ItemResult> {
    const reason = reasonOf(err);
    const message = messageOf(err);
    const retry = !isPermanentFailure(err, this.#permanentCodes);
    try {
      const state = await this.#manifest.fail(h.claim, reason, message, {
        retry,
        maxAttempts: this.#cfg.maxAttempts,
      });
      const outcome = state === "failed" ? "failed" : "retried";
      this.#log.warn(outcome === "failed" ? "item failed" : "item failed, will retry", {
        item: h.claim.itemId,
        attempt: h.claim.attempts,
        reason,
        error: message,
      });
      return { outcome, reason, message };
    } catch (failErr) {
      if (failErr instanceof LeaseLostError) {
        this.#log.warn("lease lost before the failure was recorded", {
          item: h.claim.itemId,
          reason,
        });
        return { outcome: "lease_lost", reason, message };
      }
      // Unrecorded: the lease runs out and the item is claimed again.
      this.#log.error("could not record item failure", {
        item: h.claim.itemId,
        reason,
        error: message,
        recordError: messageOf(failErr),
      });
      return { outcome: "retried", reason, message };
    }
  }

  #start(h: Held): void {
    const t0 = performance.now();
    const itemLog = this.#log.child({ item: h.claim.itemId, attempt: h.claim.attempts });
    this.#counter.inFlight++;
    const run = async () => {
      let result: ItemResult;
      try {
        const effects = await this.#options.process(h.claim, {
          signal: h.ac.signal,
          log: itemLog,
          attempt: h.claim.attempts,
        });
        h.recording = true;
        result = await this.#recordSuccess(h, effects, itemLog, t0);
      } catch (err) {
        h.recording = true;
        if (h.released) result = { outcome: "released" };
        else if (h.lost) result = { outcome: "lease_lost" };
        else if (this.#options.isBackpressure?.(err)) {
          await this.#releaseHeld(h);
          result = { outcome: "released", reason: reasonOf(err), message: messageOf(err) };
        } else result = await this.#recordFailure(h, err);
      }
      this.#counter.inFlight--;
      this.#finish(h, result, performance.now() - t0);
    };
    const p = run().finally(() => {
      this.#running.delete(p);
      this.#waker.wake();
    });
    this.#running.add(p);
  }

  /** Records a returned item: `complete`, unless it was released or its lease lost meanwhile. */
  async #recordSuccess(
    h: Held,
    effects: Effects | void,
    itemLog: Logger,
    t0: number,
  ): Promise<ItemResult> {
    if (h.released) return { outcome: "released" };
    if (h.lost) return { outcome: "lease_lost" };
    try {
      await this.#completer.complete(h.claim, effects ?? {});
      itemLog.debug("item done", { ms: Math.round(performance.now() - t0) });
      return { outcome: "done" };
    } catch (err) {
      if (err instanceof LeaseLostError) {
        itemLog.warn("lease lost before completion; nothing recorded", { error: err.message });
        return { outcome: "lease_lost", reason: err.code, message: err.message };
      }
      // Abandoned at shutdown while its completion waited: nothing more goes to the manifest.
      if (h.released) return { outcome: "released" };
      itemLog.error("completing the item failed", { error: messageOf(err) });
      return await this.#recordFailure(h, err);
    }
  }

  async #releaseHeld(h: Held): Promise<void> {
    h.released = true;
    try {
      await this.#manifest.release(h.claim);
    } catch (err) {
      // The lease expires on its own; another worker picks the item up then.
      this.#log.warn("could not release claim", { item: h.claim.itemId, error: messageOf(err) });
    }
  }

  #snapshot(): ProgressSnapshot {
    return this.#counter.snapshot();
  }

  async #drained(): Promise<boolean> {
    const counts = (await this.#manifest.workCounts(this.#cfg.stage))[this.#cfg.stage];
    // Adapters may leave out states with no rows.
    return !counts || ((counts.pending ?? 0) === 0 && (counts.leased ?? 0) === 0);
  }

  // ---- the loop ----------------------------------------------------------------------------

  async #startProgress(): Promise<void> {
    const progressOpts = this.#progressOpts;
    const cfg = this.#cfg;
    if (!progressOpts) return;
    if (cfg.once && progressOpts.total === undefined) {
      try {
        const c = (await this.#manifest.workCounts(cfg.stage))[cfg.stage];
        this.#counter.setTotal(c ? (c.pending ?? 0) + (c.leased ?? 0) : 0);
      } catch (err) {
        this.#log.warn("could not count the queue for progress", { error: messageOf(err) });
      }
    }
    this.#reporter = progressOpts.onProgress
      ? callbackReporter(progressOpts.onProgress, progressOpts)
      : createProgressReporter({
        label: cfg.stage,
        log: this.#log,
        tty: cfg.once ? undefined : false,
        everyItems: progressOpts.everyItems,
        everyMs: progressOpts.everyMs,
      });
    this.#progressTimer = setInterval(
      () => this.#reporter?.update(this.#snapshot()),
      Math.min(1000, progressOpts.everyMs ?? 10_000),
    );
  }

  async #loop(): Promise<void> {
    const cfg = this.#cfg;
    const waker = this.#waker;
    while (!this.#signal?.aborted) {
      while (this.#queued.length > 0 && this.#running.size < cfg.concurrency) {
        this.#start(this.#queued.shift()!);
      }
      // Free slots plus the prefetch buffer's room (with no prefetch: the free slots).
      const room = cfg.concurrency + cfg.prefetch - this.#running.size - this.#queued.length;
      if (room <= 0) {
        await waker.wait(cfg.idlePollMs);
        continue;
      }
      if (this.#options.canClaim) {
        const may = await untilAborted(this.#options.canClaim(), this.#signal);
        if (may === ABORTED) break;
        if (!may) {
          await waker.wait(jitter(cfg.idlePollMs));
          continue;
        }
      }
      const claims = await this.#claim(room);
      if (claims === ABORTED) break;
      if (claims === null) {
        await waker.wait(jitter(cfg.idlePollMs));
        continue;
      }
      for (const claim of claims) {
        const h: Held = {
          claim,
          ac: new AbortController(),
          lost: false,
          released: false,
          finished: false,
        };
        this.#held.set(claim.itemId, h);
        this.#queued.push(h);
      }
      if (claims.length > 0) continue;
      if (this.#running.size === 0 && cfg.once) {
        try {
          const drained = await untilAborted(this.#drained(), this.#signal);
          if (drained === ABORTED || drained) break;
        } catch (err) {
          this.#log.warn("could not count the queue", { error: messageOf(err) });
        }
      }
      await waker.wait(jitter(cfg.idlePollMs));
    }
  }

  /**
   * Claims up to `room` items; `null` when the claim failed (logged), `ABORTED` when shutdown
   * began while it waited (claims that still arrive are given back, if the database answers).
   */
  async #claim(room: number): Promise<Claim[] | null | typeof ABORTED> {
    const cfg = this.#cfg;
    try {
      // Never hold more claims than slots plus `prefetch`: a claim waiting in a local buffer
      // keeps its item from idle workers while its lease ticks.
      const pending = this.#manifest.claim(cfg.stage, {
        max: Math.min(this.#batchSize, room),
        leaseMs: cfg.leaseMs,
        owner: cfg.owner,
        maxAttempts: cfg.maxAttempts,
      });
      const claims = await untilAborted(pending, this.#signal);
      if (claims === ABORTED) {
        pending.then((late) => {
          for (const c of late) this.#manifest.release(c).catch(() => {});
        }, () => {});
      }
      return claims;
    } catch (err) {
      this.#log.error("claim failed", { error: messageOf(err) });
      return null;
    }
  }

  // ---- shutdown ------------------------------------------------------------------------

  async #shutdown(): Promise<void> {
    // Claimed but not started: give back at once, while in-flight items use their grace.
    const queued = this.#queued.splice(0);
    const releasing = this.#bounded(
      "releasing unstarted claims",
      queued.map((h) => this.#releaseHeld(h)),
      performance.now() + this.#cfg.shutdownCallMs,
    );
    await this.#awaitInFlight();
    await releasing;
    for (const h of queued) this.#finish(h, { outcome: "released" }, 0);
    await this.#bounded("recording the last completions", [this.#completer.flush()]);
    const timer = this.#renewTimer;
    this.#renewTimer = undefined;
    clearTimeout(timer);
    if (this.#renewing) await this.#bounded("the last lease renewal", [this.#renewing]);
    clearInterval(this.#progressTimer);
    this.#reporter?.finish(this.#snapshot());
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#log.info("worker stopped", { ...this.#summary });
  }

  /** Gives in-flight items the grace period, then aborts and releases what is left. */
  async #awaitInFlight(): Promise<void> {
    const running = this.#running;
    if (running.size > 0) {
      this.#log.info("stopping: waiting for in-flight items", {
        inFlight: running.size,
        graceMs: this.#cfg.graceMs,
      });
      await this.#waitForRunning(this.#cfg.graceMs);
    }
    // Every manifest call from here on shares one budget.
    this.#deadline = performance.now() + this.#cfg.shutdownCallMs;
    if (running.size === 0) return;
    // Unstarted claims were given back already (`#shutdown`); these are the running ones.
    const left = [...this.#held.values()].filter((h) => !h.finished && !h.released);
    this.#log.warn("grace period over: releasing unfinished items", { items: left.length });
    for (const h of left) {
      h.released = true;
      h.ac.abort(new SluiceError("worker_stopping", "worker shutting down; claim released"));
    }
    await this.#bounded("releasing unfinished items", left.map((h) => this.#releaseHeld(h)));
    await this.#waitForRunning(
      Math.min(SETTLE_AFTER_ABORT_MS, Math.max(0, this.#deadline - performance.now())),
    );
    // Items that ignore their signal are abandoned; their late results are discarded.
    for (const h of left) this.#finish(h, { outcome: "released" }, 0);
  }

  /**
   * Waits for shutdown calls until `deadline` (default: the budget that began after the grace
   * period); logs what it stopped waiting for.
   */
  async #bounded(
    what: string,
    calls: Promise<unknown>[],
    deadline = this.#deadline,
  ): Promise<void> {
    if (calls.length === 0) return;
    const ms = Math.max(0, deadline - performance.now());
    if ((await within(Promise.all(calls), ms)) === TIMED_OUT) {
      this.#log.warn("shutdown: the manifest did not answer in time; leases expire instead", {
        waitingFor: what,
        calls: calls.length,
        ms: Math.round(ms),
      });
    }
  }

  async #waitForRunning(ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    while (this.#running.size > 0 && performance.now() < deadline) {
      await this.#waker.wait(deadline - performance.now());
    }
  }
}

function callbackReporter(
  onProgress: (p: ProgressSnapshot) => void,
  opts: ProgressOptions,
): ProgressReporter {
  const everyItems = opts.everyItems ?? 100;
  const everyMs = opts.everyMs ?? 10_000;
  let lastAt = performance.now();
  let lastProcessed = 0;
  return {
    update(p) {
      const now = performance.now();
      if (p.processed - lastProcessed < everyItems && now - lastAt < everyMs) return;
      lastAt = now;
      lastProcessed = p.processed;
      onProgress(p);
    },
    finish(p) {
      onProgress(p);
    },
  };
}
