/**
 * Full staging disk as back-pressure, not as the item's fault: while the staging filesystem is
 * below its free-space floor the worker claims nothing (`canClaim`), and an item that meets a
 * full disk after it was claimed (`StagingFullError`) is released with its attempt uncounted
 * (`isBackpressure`). Claiming resumes by itself once space is back. Each pause and resume is
 * logged once, not per poll.
 *
 * @example
 * ```ts
 * const bp = stagingBackpressure({ root: staging.root, minFreeBytes: staging.minFreeBytes, log });
 * await runWorker({ ...opts, canClaim: bp.canClaim, isBackpressure: bp.isBackpressure });
 * ```
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { availableBytes } from "./_fs.ts";
import { StagingFullError } from "./errors.ts";

export interface StagingBackpressureOptions {
  /** The staging root (any path on the filesystem to watch). */
  root: string;
  /** The floor: claiming stops while free bytes are below it. */
  minFreeBytes: number;
  log: Logger;
  /** Free bytes on `root`'s filesystem; default `statfs`. Tests inject a full disk here. */
  freeBytes?: (root: string) => Promise<number>;
  /**
   * After an item met a full disk, claim nothing for this long even if the floor is met (the
   * item needed more than the floor leaves), so a refused item is not re-claimed in a tight
   * loop. Default 1 s.
   */
  holdMs?: number;
}

export interface StagingBackpressure {
  /** False while the staging filesystem is below the floor. */
  canClaim(): Promise<boolean>;
  /** True for a full-staging failure (anywhere in the error's cause chain). */
  isBackpressure(err: unknown): boolean;
  /** Times claiming was paused so far. */
  readonly pauses: number;
  /** Whether claiming is paused now. */
  readonly paused: boolean;
}

/** Whether `err`, or an error it wraps, is a full-staging failure. */
export function isStagingFull(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    if (e instanceof StagingFullError) return true;
    e = e.cause;
  }
  return false;
}

/** Creates the claim gate for one staging root (see module doc). */
export function stagingBackpressure(opts: StagingBackpressureOptions): StagingBackpressure {
  const probe = opts.freeBytes ?? availableBytes;
  let paused = false;
  let pauses = 0;
  let holdUntil = 0;
  const holdMs = opts.holdMs ?? 1000;
  return {
    async canClaim() {
      if (performance.now() < holdUntil) return false;
      let free: number;
      try {
        free = await probe(opts.root);
      } catch (err) {
        // Cannot tell: do not stop the worker on a failed probe; the write guard still holds.
        opts.log.warn("staging free-space probe failed; claiming anyway", {
          root: opts.root,
          error: err instanceof Error ? err.message : String(err),
        });
        return true;
      }
      const below = free < opts.minFreeBytes;
      if (below && !paused) {
        paused = true;
        pauses++;
        opts.log.warn("staging below its free-space floor: not claiming until space is back", {
          root: opts.root,
          freeBytes: free,
          minFreeBytes: opts.minFreeBytes,
        });
      } else if (!below && paused) {
        paused = false;
        opts.log.info("staging free space is back: claiming again", {
          root: opts.root,
          freeBytes: free,
          minFreeBytes: opts.minFreeBytes,
        });
      }
      return !below;
    },
    isBackpressure(err: unknown) {
      if (!isStagingFull(err)) return false;
      holdUntil = performance.now() + holdMs;
      return true;
    },
    get pauses() {
      return pauses;
    },
    get paused() {
      return paused;
    },
  };
}
