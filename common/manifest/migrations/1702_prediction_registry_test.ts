import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { DatabaseSync } from "node:sqlite";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { postgresAvailability, startPostgres } from "../../../tests/harness/postgres.ts";
import type { ManifestStore } from "../manifest_store.ts";
import { openPostgresManifest } from "../postgres.ts";
import { openSqliteManifest } from "../sqlite.ts";
import { migration as initial } from "./0001_initial.ts";
import { migration as reviews } from "./1601_reviews.ts";

/** The schema as Sluice left it before 1702, with one ingested image predicted by det v1. */
function before1702(dialect: "sqlite" | "postgres"): string {
  return [
    `CREATE TABLE schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL);`,
    ...[initial, reviews].map((m) =>
      `${typeof m.up === "string" ? m.up : m.up(dialect)};
      INSERT INTO schema_migrations VALUES (${m.version}, '${m.name}', 0);`
    ),
    `INSERT INTO images (id, source_uri, source_key, status, created_at, updated_at)
      VALUES ('img-1', 's3://raw/a.jpg', 'a.jpg', 'ingested', 0, 0);
    INSERT INTO predictions (image_id, model_name, model_version, boxes, score, uri, created_at)
      VALUES ('img-1', 'det', '1', '[]', 0.25, NULL, 7);`,
  ].join("\n");
}

async function checkLegacyRow(store: ManifestStore): Promise<void> {
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
  // A registry's own row for the same version now sits beside the legacy one.
  await store.enqueue("setup", ["img-1"]);
  const [c] = await store.claim("setup", { max: 1, owner: "t", leaseMs: 60_000 });
  await store.complete(c, {
    predictions: [{
      imageId: "img-1",
      modelName: "det",
      modelVersion: "1",
      boxes: [],
      score: 0.5,
      registry: "http://mlflow:5000",
    }],
  });
  assert.deepEqual(
    (await store.listPredictions({ modelName: "det" })).map((p) => [p.registry, p.score]),
    [["", 0.25], ["http://mlflow:5000", 0.5]],
  );
}

Deno.test("migration 1702 on SQLite keeps predictions made before it, as legacy rows", async () => {
  const dir = await mkdtemp(join(tmpdir(), "migration-1702-"));
  const path = join(dir, "manifest.db");
  try {
    const old = new DatabaseSync(path);
    old.exec(before1702("sqlite"));
    old.close();
    const store = await openSqliteManifest(`sqlite://${path}`);
    try {
      await checkLegacyRow(store);
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test({
  name: "migration 1702 on PostgreSQL keeps predictions made before it, as legacy rows",
  ignore: !postgresAvailability().ok,
  async fn() {
    const server = await startPostgres();
    try {
      const url = await server.newDatabase();
      const sql = postgres(url, { onnotice: () => {} });
      try {
        await sql.unsafe(before1702("postgres"));
      } finally {
        await sql.end();
      }
      const store = await openPostgresManifest(url);
      try {
        await checkLegacyRow(store);
      } finally {
        await store.close();
      }
    } finally {
      await server.stop();
    }
  },
});
