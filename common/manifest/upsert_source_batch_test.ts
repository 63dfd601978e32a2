/**
 * `upsertSourceObjects` against real databases (SQLite file, throwaway PostgreSQL): the same
 * results as key-by-key `upsertSourceObject`, new keys enqueued for ingest once, unchanged keys
 * not written (a finished ingest stays done), changed etags re-queued, and a key twice in one
 * batch.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ManifestStore, SourceObject } from "./mod.ts";
import { openSqliteManifest } from "./sqlite.ts";
import { openPostgresManifest } from "./postgres.ts";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";

const obj = (i: number, etag = `e${i}`): SourceObject => ({
  sourceUri: `s3://raw/k${String(i).padStart(4, "0")}.jpg`,
  sourceKey: `k${String(i).padStart(4, "0")}.jpg`,
  etag,
  size: 100 + i,
});

async function contract(store: ManifestStore) {
  await store.migrate();
  const first = await store.upsertSourceObjects(Array.from({ length: 1200 }, (_, i) => obj(i)));
  assert.equal(first.length, 1200);
  assert.ok(first.every((r) => r.created && !r.changed && !r.stale));
  assert.deepEqual(first.map((r) => r.image.sourceKey), first.map((_, i) => obj(i).sourceKey));
  assert.equal(first[7].image.sourceEtag, "e7");
  assert.equal(first[7].image.size, 107);
  assert.deepEqual((await store.workCounts("ingest")).ingest, {
    pending: 1200,
    leased: 0,
    done: 0,
    failed: 0,
  });

  // Finish the ingest of key 3: an unchanged re-listing must not re-queue it.
  const [c] = await store.claim("ingest", { max: 1, owner: "w", leaseMs: 60_000 });
  await store.complete(c, {});
  const before = await store.getImage(c.itemId);

  const again = await store.upsertSourceObjects([
    obj(0),
    obj(1, "e1-new"), // changed etag
    { ...obj(2), etag: null }, // no etag: nothing to compare, unchanged
    obj(1200), // new
    obj(1200), // the same new key twice in one batch
    ...first.map((r, i) => ({ ...obj(i), sourceKey: r.image.sourceKey })).filter((o) =>
      o.sourceUri === before?.sourceUri
    ),
  ]);
  assert.deepEqual(
    again.map((r) => [r.created, r.changed, r.stale]),
    [
      [false, false, false],
      [false, true, false],
      [false, false, false],
      [true, false, false],
      [false, false, false],
      [false, false, false],
    ],
  );
  assert.equal(again[1].image.sourceEtag, "e1-new");
  assert.equal(again[3].image.id, again[4].image.id);
  const after = await store.getImage(c.itemId);
  assert.deepEqual(after, before, "an unchanged key is not written");
  const counts = (await store.workCounts("ingest")).ingest;
  assert.deepEqual(counts, { pending: 1200, leased: 0, done: 1, failed: 0 });

  // Same results as the single-key path for the same inputs.
  for (const [i, o] of [obj(0), obj(1, "e1-new"), obj(1200)].entries()) {
    const single = await store.upsertSourceObject(o);
    assert.deepEqual(
      [single.created, single.changed, single.stale, single.image.id],
      [false, false, false, [again[0], again[1], again[3]][i].image.id],
    );
  }
  assert.deepEqual(await store.upsertSourceObjects([]), []);
}

Deno.test("upsertSourceObjects: sqlite file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-upsert-"));
  const store = await openSqliteManifest(`sqlite://${join(dir, "m.db")}`);
  try {
    await contract(store);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

const pg = postgresAvailability();

Deno.test({
  name: "upsertSourceObjects: postgres",
  ignore: !pg.ok,
  async fn() {
    const server = await startPostgres();
    try {
      const store = await openPostgresManifest(server.url);
      try {
        await contract(store);
      } finally {
        await store.close();
      }
    } finally {
      await server.stop();
    }
  },
});
