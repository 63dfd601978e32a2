// Issue 12 item 9: data survives a move. A corpus is ingested and normalized with `.sluice/`
// (manifest + objects) in one directory; the directory is copied elsewhere and the original
// removed; normalize (a new variant, so every dataset copy is read again) and a training
// snapshot then work from the copy without a single `foreign_uri`. Rows recorded the old way
// (absolute `file://` URIs) are rewritten to keys when a stage opens, before the move.
import assert from "node:assert/strict";
import { cp } from "node:fs/promises";
import { join } from "node:path";
import { loadConfig } from "../common/config/mod.ts";
import { openManifest } from "../common/manifest/mod.ts";
import { openObjectStore } from "../common/objectstore/mod.ts";
import { IngestSettingsSchema } from "../stages/ingest/config.ts";
import { runIngestOnce } from "../stages/ingest/run_once.ts";
import { makeImage } from "../stages/ingest/_test_env.ts";
import {
  drawImage,
  encodeImage,
  seedIngested,
  testConfig,
} from "../stages/normalize/_test_fixtures.ts";
import { runNormalizeOnce } from "../stages/normalize/stage.ts";
import { selectSnapshot } from "../stages/train/snapshot.ts";
import { s3Availability, startS3Server } from "./harness/s3.ts";

const V1 = [{ name: "v1", width: 64, height: 64, mode: "letterbox" as const }];
const V2 = [...V1, { name: "v2", width: 32, height: 32, mode: "fit" as const }];

async function ingestConfig(root: string) {
  return await loadConfig({
    stage: "ingest",
    stageSchema: IngestSettingsSchema,
    cwd: root,
    env: {
      SLUICE_SOURCE_URL: `file://${join(root, "corpus")}`,
      SLUICE_MANIFEST_URL: `sqlite://${join(root, ".sluice", "manifest.db")}`,
      SLUICE_OBJECT_STORE_URL: join(root, ".sluice", "objects"),
      SLUICE_STAGING_ROOT: join(root, "staging"),
      SLUICE_STAGING_MIN_FREE_MB: "0",
      SLUICE_HTTP_PORT: "0",
      SLUICE_WORKER_IDLE_POLL_MS: "20",
      SLUICE_LOG_LEVEL: "error",
    },
  });
}

Deno.test("relocation: .sluice/ copied elsewhere normalizes and snapshots with no foreign_uri", async () => {
  const a = await Deno.makeTempDir({ prefix: "sluice-move-a-" });
  const b = await Deno.makeTempDir({ prefix: "sluice-move-b-" });
  try {
    await Deno.mkdir(join(a, "corpus"), { recursive: true });
    for (let i = 0; i < 4; i++) {
      await Deno.writeFile(
        join(a, "corpus", `img${i}.jpg`),
        await makeImage({ rgb: [60 * i, 90, 30] }),
      );
    }
    // One row written by an older version: an absolute file:// URI of the store in `a`.
    await Deno.mkdir(join(a, ".sluice"), { recursive: true });
    {
      const manifest = await openManifest(`sqlite://${join(a, ".sluice", "manifest.db")}`);
      const store = await openObjectStore(join(a, ".sluice", "objects"));
      const legacy = await seedIngested(manifest, store, {
        name: "legacy.jpg",
        bytes: await encodeImage(drawImage(80, 60)),
      });
      assert.equal((await manifest.getImage(legacy.id))?.datasetUri, store.uriFor(legacy.key));
      await store.close();
      await manifest.close();
    }

    const ingested = await runIngestOnce(await ingestConfig(a), { progress: false });
    assert.equal(ingested.worker.done, 4);

    const first = await runNormalizeOnce(await testConfig(join(a, ".sluice"), V1));
    assert.equal(first.done, 5);
    assert.equal(first.failed, 0);

    await cp(join(a, ".sluice"), join(b, ".sluice"), { recursive: true });
    await Deno.remove(a, { recursive: true });

    const manifest = await openManifest(`sqlite://${join(b, ".sluice", "manifest.db")}`);
    try {
      for (const img of await manifest.listImages({ limit: 100 })) {
        assert.ok(
          img.datasetUri !== null && !img.datasetUri.includes("://"),
          `${img.sourceKey}: expected a store-relative key, found ${img.datasetUri}`,
        );
      }
      const moved = await runNormalizeOnce(await testConfig(join(b, ".sluice"), V2));
      assert.equal(moved.failed, 0, "no item fails (foreign_uri) after the move");
      assert.equal(moved.done, 5);
      const variants = await manifest.listVariants({ name: "v2" });
      assert.equal(variants.length, 5);
      for (const v of variants) assert.ok(!v.uri.includes("://"), `variant ${v.uri}`);

      for (const img of await manifest.listImages({ status: "ingested", limit: 100 })) {
        await manifest.replaceAnnotations(img.id, "human", [{
          label: "box",
          bbox: [4, 4, 20, 20],
        }]);
      }
      const store = await openObjectStore(join(b, ".sluice", "objects"));
      try {
        const snap = await selectSnapshot(manifest, store, { variant: "v1", valFraction: 0.2 });
        assert.deepEqual(snap.excluded, [], "every image is in the snapshot, read from b");
        for (const v of variants) assert.ok(await store.head(v.uri), `${v.uri} readable in b`);
      } finally {
        await store.close();
      }
    } finally {
      await manifest.close();
    }
  } finally {
    await Deno.remove(a, { recursive: true }).catch(() => {});
    await Deno.remove(b, { recursive: true });
  }
});

const s3 = await s3Availability();

Deno.test({
  name: "relocation: the same manifest works from S3 after the objects are synced there",
  ignore: !s3.ok && Deno.env.get("CI") !== "true",
  fn: async () => {
    const a = await Deno.makeTempDir({ prefix: "sluice-sync-a-" });
    const server = await startS3Server();
    try {
      await Deno.mkdir(join(a, "corpus"), { recursive: true });
      for (let i = 0; i < 3; i++) {
        await Deno.writeFile(
          join(a, "corpus", `img${i}.jpg`),
          await makeImage({ rgb: [30, 70 * i, 90] }),
        );
      }
      assert.equal(
        (await runIngestOnce(await ingestConfig(a), { progress: false })).worker.done,
        3,
      );
      await runNormalizeOnce(await testConfig(join(a, ".sluice"), V1));

      // "aws s3 sync .sluice/objects s3://synced/data": every object, same key.
      await server.createBucket("synced");
      const s3Settings = {
        endpoint: server.endpoint,
        region: server.region,
        forcePathStyle: true,
        accessKeyId: server.accessKeyId,
        secretAccessKey: server.secretAccessKey,
      };
      const local = await openObjectStore(join(a, ".sluice", "objects"));
      const remote = await openObjectStore("s3://synced/data", { s3: s3Settings });
      let synced = 0;
      for await (const o of local.list({ prefix: "" })) {
        await remote.put(o.key, await local.getBytes(o.key));
        synced++;
      }
      await local.close();
      await Deno.remove(join(a, ".sluice", "objects"), { recursive: true });

      const moved = await runNormalizeOnce(
        await testConfig(join(a, ".sluice"), V2, {
          SLUICE_OBJECT_STORE_URL: "s3://synced/data",
          SLUICE_S3_ENDPOINT: server.endpoint,
          SLUICE_S3_REGION: server.region,
          SLUICE_S3_FORCE_PATH_STYLE: "true",
          SLUICE_S3_ACCESS_KEY_ID: server.accessKeyId,
          SLUICE_S3_SECRET_ACCESS_KEY: server.secretAccessKey,
        }),
      );
      assert.equal(moved.failed, 0, "no item fails (foreign_uri) from S3");
      assert.equal(moved.done, 3);
      const manifest = await openManifest(`sqlite://${join(a, ".sluice", "manifest.db")}`);
      try {
        const v2 = await manifest.listVariants({ name: "v2" });
        assert.equal(v2.length, 3);
        for (const v of v2) assert.ok(await remote.head(v.uri), `${v.uri} written to S3`);
      } finally {
        await manifest.close();
        await remote.close();
      }
      console.log(`relocation to S3: ${synced} objects synced, ${moved.done} images normalized`);
    } finally {
      await server.stop();
      await Deno.remove(a, { recursive: true });
    }
  },
});
