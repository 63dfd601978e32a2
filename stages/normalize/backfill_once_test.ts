/**
 * Issue 12 item 4: three normalize workers starting at once with a new variant spec run its
 * backfill once between them, and the backfill never resets an item another worker holds
 * (its lease, token and attempt count survive). Real PostgreSQL, real stores.
 */
import assert from "node:assert/strict";
import { openManifest } from "../../common/manifest/mod.ts";
import { FsObjectStore } from "../../common/objectstore/fs.ts";
import { VariantSpecSchema } from "../../common/images/variant_spec.ts";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";
import { backfillNewSpecs } from "./backfill.ts";
import { registerVariantSpecs } from "./spec_registry.ts";
import { seedIngested, tempDir } from "./_test_fixtures.ts";

Deno.test({
  name: "backfill of a new spec version runs once across three concurrent workers",
  ignore: !postgresAvailability().ok,
  fn: async () => {
    const pg = await startPostgres();
    await using dir = await tempDir();
    const stores = await Promise.all([0, 1, 2, 3].map(() => openManifest(pg.url)));
    const [seedManifest, ...workers] = stores;
    try {
      const store = await FsObjectStore.fromUrl(`file://${dir.path}/data`);
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) {
        const s = await seedIngested(seedManifest, store, {
          name: `img_${i}.jpg`,
          bytes: new TextEncoder().encode(`image ${i}`),
        });
        ids.push(s.id);
      }
      // Another worker holds ten of the items when the new spec arrives.
      const held = await seedManifest.claim("normalize", {
        max: 10,
        leaseMs: 60_000,
        owner: "busy-worker",
      });
      assert.equal(held.length, 10);
      const spec = VariantSpecSchema.parse({ name: "thumb2", width: 32, height: 32 });
      const specs = await registerVariantSpecs(seedManifest, [spec]);

      const results = await Promise.all(workers.map((m) => backfillNewSpecs(m, specs)));
      const ran = results.filter((r) => r !== null);
      assert.equal(ran.length, 1, `expected one backfill, found ${JSON.stringify(results)}`);
      assert.equal(ran[0]!.missing, 30);

      // The held items keep their leases: renewing them loses none.
      const kept = await seedManifest.renew(held, 60_000);
      assert.deepEqual(kept.map((c) => c.itemId).sort(), held.map((c) => c.itemId).sort());
      const rows = await seedManifest.listWork("normalize", undefined, 100);
      const heldIds = new Set(held.map((c) => c.itemId));
      for (const r of rows) {
        assert.equal(r.state, heldIds.has(r.itemId) ? "leased" : "pending", r.itemId);
        assert.equal(r.attempts, heldIds.has(r.itemId) ? 1 : 0, r.itemId);
      }
      // A later start sees the spec version done and does nothing.
      assert.equal(await backfillNewSpecs(workers[0], specs), null);
      await store.close();
    } finally {
      for (const m of stores) await m.close();
      await pg.stop();
    }
  },
});
