// Issue 12 (audit "objects written once"): a normalize worker killed after uploading an image's
// variants and before recording them leaves the objects without rows. The item's next claim
// renders again (for the rows) but PUTs nothing that is already there with the same bytes; a
// first claim (no crash before it) never pays the extra HEADs.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openManifest } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import {
  countingStore,
  drawImage,
  encodeImage,
  seedIngested,
  tempDir,
  testConfig,
  totalWrites,
} from "./_test_fixtures.ts";
import { runNormalizeOnce } from "./stage.ts";

const strip = (rows: { createdAt: number }[]) => rows.map(({ createdAt: _, ...r }) => r);

Deno.test("a retried item whose variants were uploaded but not recorded PUTs nothing again", async () => {
  await using dir = await tempDir();
  const config = await testConfig(dir.path);
  const store = await openObjectStore(config.objectStore.url);
  // The crashed worker's manifest: the variants were uploaded and recorded here.
  const before = await openManifest(`sqlite://${join(dir.path, "before.db")}`);
  const manifest = await openManifest(config.manifest.url);
  try {
    await before.migrate();
    const bytes = [0, 1].map((i) => encodeImage(drawImage(500 - i * 60, 400, [[40, 40, 60, 50]])));
    const ids: string[] = [];
    for (const [i, b] of bytes.entries()) {
      await seedIngested(before, store, { name: `r${i}.jpg`, bytes: await b });
      ids.push((await seedIngested(manifest, store, { name: `r${i}.jpg`, bytes: await b })).id);
    }
    const first = await runNormalizeOnce(config, { manifest: before, store });
    assert.equal(first.variantsWritten, 6);
    const recorded = await before.listVariants({ imageIds: ids });

    // The same objects, no rows: what a kill between upload and record leaves. The items were
    // claimed once already and their lease ran out.
    const lapsed = await manifest.claim("normalize", { max: 2, leaseMs: 1, owner: "killed" });
    assert.equal(lapsed.length, 2);
    await new Promise((r) => setTimeout(r, 20));
    const counted = countingStore(store);
    const retry = await runNormalizeOnce(config, { manifest, store: counted.store });
    assert.equal(retry.done, 2);
    assert.equal(totalWrites(counted.writes), 0, `expected no PUT, found ${counted.writes.keys}`);
    assert.deepEqual(
      strip(await manifest.listVariants({ imageIds: ids })),
      strip(recorded),
      "expected the same rows as the run that uploaded them",
    );

    // A variant object that differs is written again, even on a retry.
    const key = recorded[0].uri;
    await store.put(key, new Uint8Array([1, 2, 3]), { metadata: { sha256: "00" } });
    await manifest.enqueue("normalize", [recorded[0].imageId], { reset: true });
    const lapsed2 = await manifest.claim("normalize", { max: 1, leaseMs: 1, owner: "killed" });
    assert.equal(lapsed2.length, 1);
    await new Promise((r) => setTimeout(r, 20));
    const again = countingStore(store);
    await runNormalizeOnce(config, { manifest, store: again.store });
    assert.deepEqual(again.writes.keys, [key]);
    assert.equal((await store.head(key))?.size, recorded[0].bytes);
  } finally {
    await manifest.close();
    await before.close();
    await store.close();
  }
});
