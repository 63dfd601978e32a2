/**
 * Progress for long work: counts, rate and ETA, shown as a redrawn bar on a terminal or as
 * plain, throttled log lines elsewhere (CI logs, journald, Kubernetes).
 *
 * @example
 * ```ts
 * const counter = new ProgressCounter(total);
 * const reporter = createProgressReporter({ label: "ingest", log });
 * for (const item of items) {
 *   await work(item);
 *   counter.record("done");
 *   reporter.update(counter.snapshot());
 * }
 * reporter.finish(counter.snapshot());
 * ```
 * @module
 */
import type { Logger } from "../log/mod.ts";

/** Where an item ended up; `retried` and `released` items come back later. */
export type ProgressOutcome = "done" | "failed" | "retried" | "lease_lost" | "released";

/** A point-in-time view of progress. */
export interface ProgressSnapshot {
  done: number;
  failed: number;
  retried: number;
  leaseLost: number;
  released: number;
  /** Items finished for good (done + failed). */
  processed: number;
  /** Items being worked on now. */
  inFlight: number;
  /** Expected number of items to process, when known. */
  total?: number;
  elapsedMs: number;
  /** Finished items per second since the start. */
  ratePerSec: number;
  /** Estimated time to finish `total`, when both the total and a rate are known. */
  etaMs?: number;
}

/** Counts outcomes and derives rate and ETA. */
export class ProgressCounter {
  #counts = { done: 0, failed: 0, retried: 0, leaseLost: 0, released: 0 };
  #start: number;
  #now: () => number;
  inFlight = 0;

  /**
   * @param total expected items, when known (may be raised later with {@link setTotal}).
   * @param now a clock in ms; tests pass a fake one.
   */
  constructor(public total?: number, now: () => number = () => performance.now()) {
    this.#now = now;
    this.#start = now();
  }

  /** Sets or changes the expected total. */
  setTotal(total: number | undefined): void {
    this.total = total;
  }

  /** Counts one finished item. */
  record(outcome: ProgressOutcome): void {
    if (outcome === "lease_lost") this.#counts.leaseLost++;
    else this.#counts[outcome]++;
  }

  /** The current counts, rate and ETA. */
  snapshot(): ProgressSnapshot {
    const elapsedMs = Math.max(0, this.#now() - this.#start);
    const processed = this.#counts.done + this.#counts.failed;
    const ratePerSec = elapsedMs > 0 ? processed / (elapsedMs / 1000) : 0;
    // Items added after the total was taken would otherwise show as 120/100.
    const total = this.total === undefined ? undefined : Math.max(this.total, processed);
    const snap: ProgressSnapshot = {
      ...this.#counts,
      processed,
      inFlight: this.inFlight,
      total,
      elapsedMs,
      ratePerSec,
    };
    if (total !== undefined && ratePerSec > 0) {
      snap.etaMs = ((total - processed) / ratePerSec) * 1000;
    }
    return snap;
  }
}

/**
 * A short human duration: `45s`, `3m05s`, `2h07m`, `3d04h`.
 *
 * @example
 * ```ts
 * formatDuration(185_000); // "3m05s"
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "?";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, "0")}h`;
}

function rateText(rate: number): string {
  return rate >= 10 ? rate.toFixed(0) : rate.toFixed(1);
}

function problems(p: ProgressSnapshot): string {
  const parts: string[] = [];
  if (p.failed) parts.push(`${p.failed} failed`);
  if (p.retried) parts.push(`${p.retried} retried`);
  if (p.leaseLost) parts.push(`${p.leaseLost} lease lost`);
  return parts.length ? `, ${parts.join(", ")}` : "";
}

/**
 * One plain line: `ingest 45/100 (45%) 12.3/s ETA 4s, 2 failed`.
 *
 * @example
 * ```ts
 * log.info(formatProgress("ingest", counter.snapshot()));
 * ```
 */
export function formatProgress(label: string, p: ProgressSnapshot): string {
  const rate = `${rateText(p.ratePerSec)}/s`;
  if (p.total === undefined) return `${label} ${p.processed} processed ${rate}${problems(p)}`;
  const pct = p.total > 0 ? Math.floor((p.processed / p.total) * 100) : 100;
  const eta = p.etaMs === undefined ? "" : ` ETA ${formatDuration(p.etaMs)}`;
  return `${label} ${p.processed}/${p.total} (${pct}%) ${rate}${eta}${problems(p)}`;
}

/**
 * A bar for terminals: `ingest [#########-----------]  45/100  45% 12.3/s ETA 4s`. Without a
 * total it shows counts and rate only.
 *
 * @example
 * ```ts
 * renderBar("ingest", counter.snapshot(), 20);
 * ```
 */
export function renderBar(label: string, p: ProgressSnapshot, width = 30): string {
  if (p.total === undefined) return formatProgress(label, p);
  const frac = p.total > 0 ? Math.min(1, p.processed / p.total) : 1;
  const filled = Math.round(frac * width);
  const bar = "#".repeat(filled) + "-".repeat(width - filled);
  const count = `${String(p.processed).padStart(String(p.total).length)}/${p.total}`;
  const pct = `${String(Math.floor(frac * 100)).padStart(3)}%`;
  const eta = p.etaMs === undefined ? "" : ` ETA ${formatDuration(p.etaMs)}`;
  return `${label} [${bar}] ${count} ${pct} ${rateText(p.ratePerSec)}/s${eta}${problems(p)}`;
}

export interface ProgressReporterOptions {
  label: string;
  log: Logger;
  /** Draw a bar (default: when stderr is a terminal). */
  tty?: boolean;
  /** Where the bar goes (default stderr). */
  write?: (text: string) => void;
  /** Plain mode: a line at least every this many finished items (default 100)... */
  everyItems?: number;
  /** ...or after this long with something changed or in flight (default 10 s). */
  everyMs?: number;
  /** Bar mode: redraw at most this often (default 100 ms). */
  redrawMs?: number;
  /** Clock in ms; tests pass a fake one. */
  now?: () => number;
}

/** Receives snapshots as often as convenient; decides itself what to show. */
export interface ProgressReporter {
  update(p: ProgressSnapshot): void;
  /** Shows the final state (always) and ends the bar's line. */
  finish(p: ProgressSnapshot): void;
}

const encoder = new TextEncoder();

/**
 * A reporter that redraws a bar in place on a terminal, or logs `progress` lines (with the
 * numbers as fields) every `everyItems` items or `everyMs` milliseconds otherwise.
 *
 * @example
 * ```ts
 * const reporter = createProgressReporter({ label: "backfill", log });
 * reporter.update(counter.snapshot());
 * ```
 */
export function createProgressReporter(opts: ProgressReporterOptions): ProgressReporter {
  const tty = opts.tty ?? Deno.stderr.isTerminal();
  const write = opts.write ?? ((s: string) => Deno.stderr.writeSync(encoder.encode(s)));
  const now = opts.now ?? (() => performance.now());
  const everyItems = opts.everyItems ?? 100;
  const everyMs = opts.everyMs ?? 10_000;
  const redrawMs = opts.redrawMs ?? 100;
  let lastAt = -Infinity;
  let lastKey = "";
  let lastProcessed = 0;

  const keyOf = (p: ProgressSnapshot) =>
    [p.done, p.failed, p.retried, p.leaseLost, p.released, p.total].join(",");

  const logLine = (p: ProgressSnapshot, msg: string) => {
    opts.log.info(msg, {
      done: p.done,
      failed: p.failed,
      retried: p.retried,
      leaseLost: p.leaseLost,
      inFlight: p.inFlight,
      total: p.total,
      ratePerSec: Number(p.ratePerSec.toFixed(2)),
      etaMs: p.etaMs === undefined ? undefined : Math.round(p.etaMs),
    });
  };

  return {
    update(p) {
      const t = now();
      if (tty) {
        if (t - lastAt < redrawMs) return;
        lastAt = t;
        write(`\r${renderBar(opts.label, p)}\x1b[K`);
        return;
      }
      const key = keyOf(p);
      const byItems = p.processed - lastProcessed >= everyItems;
      const byTime = t - lastAt >= everyMs && (key !== lastKey || p.inFlight > 0);
      if (!byItems && !byTime) return;
      lastAt = t;
      lastKey = key;
      lastProcessed = p.processed;
      logLine(p, `progress: ${formatProgress(opts.label, p)}`);
    },
    finish(p) {
      if (tty) {
        write(`\r${renderBar(opts.label, p)}\x1b[K\n`);
        return;
      }
      logLine(p, `finished: ${formatProgress(opts.label, p)}`);
    },
  };
}
