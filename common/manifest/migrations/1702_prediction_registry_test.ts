import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { DatabaseSync } from "node:sqlite";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSqliteManifest } from "../sqlite.ts";
import { migration as initial } from "./0001_initial.ts";
import { migration as reviews } from "./1601_reviews.ts";

Deno.test("migration 1702 keeps predictions made before it, as legacy rows of no registry", async () => {
  const dir = await mkdtemp(join(tmpdir(), "migration-1702-"));
  const path = join(dir, "manifest.db");
  try {
    // A manifest as Sluice left it before 1702: one ingested image predicted by det v1.
    const old = new DatabaseSync(path);
    old.exec(`CREATE TABLE schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
    for (const m of [initial, reviews]) {
      old.exec(typeof m.up === "string" ? m.up : m.up("sqlite"));
      old.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
    }
    old.exec(`INSERT INTO images (id, source_uri, source_key, status, created_at, updated_at)
      VALUES ('img-1', 's3://raw/a.jpg', 'a.jpg', 'ingested', 0, 0)`);
    old.exec(`INSERT INTO predictions (image_id, model_name, model_version, boxes, score, uri,
      created_at) VALUES ('img-1', 'det', '1', '[]', 0.25, NULL, 7)`);
    old.close();

    const store = await openSqliteManifest(`sqlite://${path}`);
    try {
      await store.migrate();
      const [row, ...rest] = await store.listPredictions({ modelName: "det" });
      assert.deepEqual(rest, []);
      assert.deepEqual(
        [row.imageId, row.modelVersion, row.score, row.createdAt, row.registry],
        ["img-1", "1", 0.25, 7, ""],
      );
      // The legacy row counts for every registry: nothing to enqueue for any registry's v1.
      for (const registry of ["file:///srv/mlruns", "http://mlflow:5000"]) {
        assert.equal(await store.enqueueForInference("infer:q", "det", "1", { registry }), 0);
      }
      assert.equal((await store.listPredictions({ registry: "http://mlflow:5000" })).length, 1);
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
