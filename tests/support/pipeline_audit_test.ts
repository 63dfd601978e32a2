import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openManifest } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import {
  drawImage,
  encodeImage,
  seedIngested,
  tempDir,
  testConfig,
} from "../../stages/normalize/_test_fixtures.ts";
import { runNormalizeOnce } from "../../stages/normalize/stage.ts";
import { auditPipeline, formatAudit } from "./pipeline_audit.ts";

Deno.test("pipeline audit: holds on a clean run and names each kind of breakage", async () => {
  await using dir = await tempDir("sluice-audit-");
  const config = await testConfig(dir.path);
  const manifest = await openManifest(config.manifest.url);
  const store = await openObjectStore(config.objectStore.url);
  try {
    for (let i = 0; i < 2; i++) {
      const bytes = await encodeImage(drawImage(300 + i * 40, 200, [[20, 20, 30, 30]]));
      await seedIngested(manifest, store, { name: `a${i}.jpg`, bytes });
    }
    await runNormalizeOnce(config, { manifest, store });
    const staging = join(dir.path, "staging-audit");
    const input = { manifest, store, sources: 2, stagingRoots: [staging] };

    const clean = await auditPipeline(input);
    assert.deepEqual(clean.problems, [], formatAudit(clean));
    assert.equal(clean.images, 2);
    assert.equal(clean.variants, 2 * clean.specs.length);
    assert.equal(clean.objects, 2 + clean.variants);

    // A source that never became an image.
    assert.match((await auditPipeline({ ...input, sources: 3 })).problems.join("\n"), /sources 3/);

    // An orphan object, a staging leftover.
    await store.put("variants/stray.jpg", new Uint8Array([1]));
    await mkdir(join(staging, "normalize", "w1", "x"), { recursive: true });
    await writeFile(join(staging, "normalize", "w1", "x", "input"), "x");
    const dirty = await auditPipeline(input);
    assert.equal(dirty.orphans, 1);
    assert.equal(dirty.stagingFiles, 1);
    assert.match(dirty.problems.join("\n"), /orphan objects, found .*stray\.jpg/);
    assert.match(dirty.problems.join("\n"), /staging empty, found .*input/);
    await store.delete("variants/stray.jpg");

    // PUT counts: a recorded object written twice, and one never counted.
    const [v] = await manifest.listVariants({});
    const puts = new Map([[v.uri, 2]]);
    const counted = await auditPipeline({ ...input, stagingRoots: [], puts });
    assert.match(counted.problems.join("\n"), /PUT counts given for a store that is not S3/);

    // A recorded variant whose object is gone; an item left pending.
    await store.delete(v.uri);
    await manifest.enqueue("normalize", ["img_stuck"]);
    const broken = await auditPipeline({ ...input, stagingRoots: [] });
    assert.equal(broken.missing, 1);
    assert.match(broken.problems.join("\n"), /missing from the store/);
    assert.match(broken.problems.join("\n"), /normalize: expected nothing pending.*img_stuck/);
  } finally {
    await store.close();
    await manifest.close();
  }
});
