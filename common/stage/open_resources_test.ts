import assert from "node:assert/strict";
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { loadConfig } from "../config/mod.ts";
import { openManifest } from "../manifest/mod.ts";
import { createStageMetrics } from "../metrics/mod.ts";
import { openResources } from "./open_resources.ts";
import { memoryLog } from "../../tests/support/memory_log.ts";

async function configIn(dir: string) {
  return await loadConfig({
    stage: "ingest",
    stageSchema: z.object({}),
    env: {},
    cwd: dir,
    argv: [
      "--staging-root",
      join(dir, "nvme"),
      "--staging-fallback-root",
      join(dir, "fallback"),
      "--staging-lease-timeout-ms",
      "1000",
      "--worker-id",
      "w1",
    ],
  });
}

Deno.test("openResources opens what is missing, sweeps stale leases and closes only what it opened", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = await configIn(dir);
    const { log, lines } = memoryLog("ingest");
    const metrics = createStageMetrics("ingest");
    // A stale lease of this worker, left by a crash.
    const first = await openResources(config, {}, { stage: "ingest", log, metrics });
    const staleDir = join(first.staging.root, "ingest", "w1", "lease-old");
    await first.close();
    await mkdir(staleDir, { recursive: true });
    const old = new Date(Date.now() - 60_000);
    await Deno.utime(staleDir, old, old);

    const given = await openManifest("sqlite::memory:");
    const res = await openResources(config, { manifest: given }, {
      stage: "ingest",
      log,
      metrics,
      source: true,
      tracker: true,
    });
    assert.equal(res.manifest, given);
    assert.equal(res.store.url, config.objectStore.url);
    assert.equal(res.source.url, config.source.url);
    assert.equal(typeof res.tracker.close, "function");
    await assert.rejects(() => stat(staleDir), /ENOENT/);
    assert.ok(lines.some((l) => l.msg === "removed stale staging leases" && l.removed === 1));
    // source store, tracker and dataset store were opened here; the manifest was given.
    assert.equal(res.closers.size, 3);
    await res.close();
    assert.equal((await given.workCounts("ingest")).ingest?.pending, 0); // still open
    await given.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openResources closes what it opened when a later open fails", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = await configIn(dir);
    const { log } = memoryLog("ingest");
    const bad = { ...config, source: { ...config.source, url: "gopher://nowhere" } };
    await assert.rejects(() =>
      openResources(bad, {}, {
        stage: "ingest",
        log,
        metrics: createStageMetrics("ingest"),
        source: true,
      })
    );
    // The manifest opened before the failure was closed: the file is not locked.
    const again = await openManifest(config.manifest.url);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
