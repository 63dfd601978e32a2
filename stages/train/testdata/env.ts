/**
 * A throwaway environment for the train stage's tests: a temp directory with a real SQLite
 * manifest, a real file object store and a real staging root. `close()` removes it all.
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, type Logger } from "../../../common/log/mod.ts";
import { type ManifestStore, openManifest } from "../../../common/manifest/mod.ts";
import { type ObjectStore, openObjectStore } from "../../../common/objectstore/mod.ts";
import { openStaging, type Staging } from "../../../common/staging/mod.ts";

export interface TrainTestEnv {
  dir: string;
  manifest: ManifestStore;
  store: ObjectStore;
  staging: Staging;
  log: Logger;
  /** JSON log lines. */
  lines: string[];
  close(): Promise<void>;
}

/** Opens the environment (`quiet`: keep log lines in `lines` only). */
export async function openTrainTestEnv(opts: { quiet?: boolean } = {}): Promise<TrainTestEnv> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-train-test-"));
  const lines: string[] = [];
  const log = createLogger({
    stage: "train",
    json: true,
    level: "info",
    sink: (l) => {
      lines.push(l);
      if (!opts.quiet) console.error(l);
    },
  });
  const manifest = await openManifest(`sqlite://${join(dir, "manifest.db")}`);
  const store = await openObjectStore(join(dir, "objects"));
  await Deno.mkdir(join(dir, "nvme"));
  const staging = await openStaging({
    stage: "train",
    workerId: "test-worker",
    root: join(dir, "nvme", "sluice"),
    fallbackRoot: join(dir, "fallback"),
    minFreeMb: 0,
    log,
  });
  return {
    dir,
    manifest,
    store,
    staging,
    log,
    lines,
    async close() {
      await store.close();
      await manifest.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
