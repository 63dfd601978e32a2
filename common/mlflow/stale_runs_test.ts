import assert from "node:assert/strict";
import { FileTracker } from "./file_tracker.ts";
import {
  ENDED_BY_TAG,
  endStaleRuns,
  RUN_HOST_TAG,
  RUN_LAUNCHER_TAG,
  RUN_PID_TAG,
} from "./stale_runs.ts";

Deno.test("endStaleRuns ends Sluice's orphaned RUNNING runs as KILLED and leaves the rest", async () => {
  const root = await Deno.makeTempDir({ prefix: "stale-runs-" });
  const tracker = new FileTracker({ root });
  try {
    const exp = await tracker.getOrCreateExperiment("sluice");
    const now = Date.now();
    const sluice = (pid: number, host = "node-a") => ({
      [RUN_LAUNCHER_TAG]: "local",
      [RUN_HOST_TAG]: host,
      [RUN_PID_TAG]: String(pid),
    });
    // A child process that has exited: its pid is gone.
    const child = new Deno.Command("true").spawn();
    const deadPid = child.pid;
    await child.status;
    const dead = await tracker.createRun(exp, { runName: "dead", tags: sluice(deadPid) });
    const alive = await tracker.createRun(exp, { runName: "alive", tags: sluice(Deno.pid) });
    const otherHost = await tracker.createRun(exp, {
      runName: "other-host",
      tags: sluice(deadPid, "node-b"),
    });
    const idle = await tracker.createRun(exp, {
      runName: "idle",
      tags: sluice(Deno.pid, "node-b"),
      startTime: now - 3 * 3_600_000,
    });
    await tracker.logMetric(idle.runId, "loss", 1, { timestamp: now - 2.5 * 3_600_000 });
    const notOurs = await tracker.createRun(exp, {
      runName: "not-ours",
      startTime: now - 10 * 3_600_000,
    });
    const finished = await tracker.createRun(exp, { runName: "done", tags: sluice(deadPid) });
    await tracker.updateRun(finished.runId, "FINISHED");

    const ended = await endStaleRuns(tracker, exp, {
      staleAfterMs: 2 * 3_600_000,
      host: "node-a",
      now: () => now,
    });
    assert.deepEqual(
      ended.map((e) => e.runId).sort(),
      [dead.runId, idle.runId].sort(),
    );
    const status = async (id: string) => (await tracker.getRun(id)).info.status;
    assert.equal(await status(dead.runId), "KILLED");
    assert.equal(await status(idle.runId), "KILLED");
    assert.equal(await status(alive.runId), "RUNNING");
    assert.equal(
      await status(otherHost.runId),
      "RUNNING",
      "another host's pid is not ours to judge",
    );
    assert.equal(
      await status(notOurs.runId),
      "RUNNING",
      "runs Sluice did not start are left alone",
    );
    assert.equal(await status(finished.runId), "FINISHED");
    const deadRun = await tracker.getRun(dead.runId);
    assert.match(deadRun.tags[ENDED_BY_TAG], new RegExp(`pid ${deadPid} on node-a\\) is gone`));
    const idleRun = await tracker.getRun(idle.runId);
    assert.match(idleRun.tags[ENDED_BY_TAG], /no activity for 2\.5 h/);
    assert.equal(idleRun.info.endTime, now - 2.5 * 3_600_000, "ended at its last activity");
    assert.deepEqual(
      await endStaleRuns(tracker, exp, {
        staleAfterMs: 2 * 3_600_000,
        host: "node-a",
        now: () => now,
      }),
      [],
    );
  } finally {
    await tracker.close();
    await Deno.remove(root, { recursive: true });
  }
});
