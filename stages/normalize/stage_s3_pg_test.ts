// The normalize stage on the distributed backends: the S3 emulator over HTTP and a throwaway
// PostgreSQL, both opened by the stage from its configuration, then a second run that must
// write nothing.
import assert from "node:assert/strict";
import { openManifest } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";
import { s3Availability, startS3Server } from "../../tests/harness/s3.ts";
import {
  captureLogger,
  countingStore,
  decodeImage,
  drawImage,
  encodeImage,
  seedIngested,
  tempDir,
  testConfig,
  totalWrites,
} from "./_test_fixtures.ts";
import { runNormalizeOnce } from "./stage.ts";

const pg = postgresAvailability();
const s3 = await s3Availability();

Deno.test({
  name: "normalize on S3 + PostgreSQL: variants recorded, second run writes nothing",
  ignore: !pg.ok || !s3.ok,
  fn: async () => {
    await using dir = await tempDir();
    const server = await startS3Server();
    const postgres = await startPostgres();
    try {
      await server.createBucket("sluice-normalize");
      const config = await testConfig(dir.path, undefined, {
        SLUICE_MANIFEST_URL: postgres.url,
        SLUICE_OBJECT_STORE_URL: "s3://sluice-normalize/dataset",
        SLUICE_S3_ENDPOINT: server.endpoint,
        SLUICE_S3_REGION: server.region,
        SLUICE_S3_FORCE_PATH_STYLE: "true",
        SLUICE_S3_ACCESS_KEY_ID: server.accessKeyId,
        SLUICE_S3_SECRET_ACCESS_KEY: server.secretAccessKey,
      });
      const manifest = await openManifest(config.manifest.url);
      const store = await openObjectStore(config.objectStore.url, {
        s3: {
          endpoint: server.endpoint,
          region: server.region,
          forcePathStyle: true,
          accessKeyId: server.accessKeyId,
          secretAccessKey: server.secretAccessKey,
        },
      });
      try {
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          const s = await seedIngested(manifest, store, {
            name: `s3/${i}.jpg`,
            bytes: await encodeImage(drawImage(800 - i * 100, 600, [[100, 100, 80, 60]])),
          });
          ids.push(s.id);
        }
        const bad = await seedIngested(manifest, store, {
          name: "s3/missing.jpg",
          bytes: await encodeImage(drawImage(50, 50)),
          writeObject: false,
        });

        // First run: the stage opens the manifest and the S3 store from its configuration.
        const first = await runNormalizeOnce(config, { log: captureLogger().log });
        assert.equal(first.done, 3);
        assert.equal(first.failed, 1);
        assert.deepEqual(first.failures.map((f) => [f.itemId, f.reason]), [[
          bad.id,
          "source_missing",
        ]]);
        assert.equal(first.variantsWritten, 9);

        const rows = await manifest.listVariants({ imageIds: ids });
        assert.equal(rows.length, 9);
        for (const r of rows) {
          // Recorded relative to the store (issue 12 item 9); the store names it in its bucket.
          assert.ok(r.uri.startsWith("variants/"), r.uri);
          const key = r.uri;
          assert.ok(store.uriFor(key).startsWith("s3://sluice-normalize/dataset/variants/"));
          const head = await store.head(key);
          assert.equal(head?.size, r.bytes);
          assert.equal(head?.contentType, "image/jpeg");
          const img = await decodeImage(await store.getBytes(key));
          assert.deepEqual([img.width, img.height], [r.width, r.height]);
        }
        const letterboxed = rows.find((r) => r.imageId === ids[2] && r.name === "640")!;
        // 600×600 source into a 640 letterbox: never cropped, scaled up to fill exactly.
        assert.deepEqual([letterboxed.transform.padX, letterboxed.transform.padY], [0, 0]);

        // Second run through a counting decorator: nothing to claim, nothing written.
        const counted = countingStore(store);
        const again = await runNormalizeOnce(config, {
          manifest,
          store: counted.store,
          log: captureLogger().log,
        });
        assert.equal(again.done + again.failed, 0);
        assert.equal(totalWrites(counted.writes), 0);
        assert.deepEqual(await manifest.listVariants({ imageIds: ids }), rows);
      } finally {
        await store.close();
        await manifest.close();
      }
    } finally {
      await postgres.stop();
      await server.stop();
    }
  },
});
