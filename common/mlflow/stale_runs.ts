/**
 * Ends Sluice's tracker runs left RUNNING by a trainer that died (kill -9, a lost node, a server
 * that was down when the run ended). A RUNNING run is stale when:
 *
 * - it was started on this host (tag `sluice.host`) by a process (tag `sluice.pid`) that no longer
 *   exists, or
 * - nothing was logged to it (start time, latest metric timestamp) for `staleAfterMs`.
 *
 * Stale runs are ended as KILLED and tagged `sluice.ended_by` with the reason. Only runs that carry
 * `sluice.launcher` (made by Sluice) are touched.
 *
 * @example
 * ```ts
 * const ended = await endStaleRuns(tracker, experimentId, { staleAfterMs: 2 * 3_600_000 });
 * for (const e of ended) console.log(e.runId, e.reason);
 * ```
 * @module
 */
import { hostname } from "node:os";
import type { Run, Tracker } from "./tracker.ts";

/** Tags Sluice puts on its runs so that a sweep can tell whose they are. */
export const RUN_HOST_TAG = "sluice.host";
/** The pid of the process that started the run. */
export const RUN_PID_TAG = "sluice.pid";
/** Set on runs Sluice created (the launcher that ran them). */
export const RUN_LAUNCHER_TAG = "sluice.launcher";
/** Why a sweep ended the run. */
export const ENDED_BY_TAG = "sluice.ended_by";

/** Options of {@link endStaleRuns}. */
export interface StaleRunOptions {
  /** A run with no activity for this long is stale (whatever host started it). */
  staleAfterMs: number;
  /** This host's name (default `os.hostname()`). */
  host?: string;
  /** Whether a pid on this host is alive (default: `/proc/<pid>` exists). */
  isAlive?: (pid: number) => boolean;
  /** The clock (default `Date.now`). */
  now?: () => number;
}

/** One run a sweep ended. */
export interface EndedRun {
  runId: string;
  reason: string;
}

function procAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

function lastActivity(run: Run): number {
  let last = run.info.startTime;
  for (const m of Object.values(run.metrics)) last = Math.max(last, m.timestamp);
  return last;
}

/**
 * Why `run` is stale, or null when it is not (see the module docs).
 *
 * @example
 * ```ts
 * staleReason(run, { staleAfterMs: 3_600_000 }); // "no activity for 3.2 h"
 * ```
 */
export function staleReason(run: Run, opts: StaleRunOptions): string | null {
  if (run.info.status !== "RUNNING" || run.tags[RUN_LAUNCHER_TAG] === undefined) return null;
  const host = opts.host ?? hostname();
  const pid = Number(run.tags[RUN_PID_TAG]);
  if (
    run.tags[RUN_HOST_TAG] === host && Number.isInteger(pid) && pid > 0 && pid !== Deno.pid &&
    !(opts.isAlive ?? procAlive)(pid)
  ) {
    return `its process (pid ${pid} on ${host}) is gone`;
  }
  const idle = (opts.now ?? Date.now)() - lastActivity(run);
  if (idle >= opts.staleAfterMs) return `no activity for ${(idle / 3_600_000).toFixed(1)} h`;
  return null;
}

/**
 * Ends the stale RUNNING runs of an experiment as KILLED; returns what it ended.
 *
 * @example
 * ```ts
 * await endStaleRuns(tracker, "1", { staleAfterMs: 7_200_000 });
 * ```
 */
export async function endStaleRuns(
  tracker: Tracker,
  experimentId: string,
  opts: StaleRunOptions,
): Promise<EndedRun[]> {
  const ended: EndedRun[] = [];
  for (const run of await tracker.findRuns(experimentId, { status: "RUNNING" })) {
    const reason = staleReason(run, opts);
    if (reason === null) continue;
    await tracker.setTag(run.info.runId, ENDED_BY_TAG, `stale-run sweep: ${reason}`);
    await tracker.updateRun(
      run.info.runId,
      "KILLED",
      Math.max(lastActivity(run), run.info.startTime),
    );
    ended.push({ runId: run.info.runId, reason });
  }
  return ended;
}
