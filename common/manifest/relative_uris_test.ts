import assert from "node:assert/strict";
import { join } from "node:path";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";
import { openObjectStore } from "../objectstore/mod.ts";
import { type ManifestStore, openManifest } from "./mod.ts";
import { relativizeRecordedUris } from "./relative_uris.ts";

const pg = postgresAvailability();

/** Records one ingested image whose dataset copy is `datasetUri`; returns its id. */
async function ingested(manifest: ManifestStore, name: string, datasetUri: string) {
  const up = await manifest.upsertSourceObject({ sourceUri: `s3://raw/${name}`, sourceKey: name });
  const [claim] = await manifest.claim("ingest", { max: 1, leaseMs: 60_000, owner: "t" });
  await manifest.complete(claim, {
    image: { status: "ingested", sha256: name.padEnd(64, "0"), datasetUri, width: 4, height: 4 },
  });
  return up.image.id;
}

async function rewritesOnlyThisStore(url: string, dir: string): Promise<void> {
  const manifest = await openManifest(url);
  const store = await openObjectStore(join(dir, "objects"));
  try {
    const mine = await ingested(manifest, "a.jpg", store.uriFor("images/aa/a.jpg"));
    const encoded = await ingested(manifest, "b.jpg", store.uriFor("images/bb/b c.jpg"));
    const foreign = await ingested(manifest, "c.jpg", "s3://other/images/cc/c.jpg");
    const already = await ingested(manifest, "d.jpg", "images/dd/d.jpg");

    assert.equal(await relativizeRecordedUris(manifest, store), 1);
    const uri = async (id: string) => (await manifest.getImage(id))?.datasetUri;
    assert.equal(await uri(mine), "images/aa/a.jpg");
    // Percent-encoded remainders stay absolute (readers still resolve them).
    assert.equal(await uri(encoded), store.uriFor("images/bb/b c.jpg"));
    assert.equal(await uri(foreign), "s3://other/images/cc/c.jpg");
    assert.equal(await uri(already), "images/dd/d.jpg");
    assert.equal(await relativizeRecordedUris(manifest, store), 0, "done once per store");
    // The rewrite itself is idempotent too, checkpoint aside.
    assert.equal(await manifest.relativizeObjectUris(store.uriFor("x").slice(0, -1)), 0);
  } finally {
    await store.close();
    await manifest.close();
  }
}

Deno.test("relativize: this store's absolute URIs become keys, others stay (SQLite)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-relativize-" });
  try {
    await rewritesOnlyThisStore(`sqlite://${join(dir, "m.db")}`, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "relativize: the same on PostgreSQL",
  ignore: !pg.ok,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-relativize-pg-" });
    const db = await startPostgres();
    try {
      await rewritesOnlyThisStore(db.url, dir);
    } finally {
      await db.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
