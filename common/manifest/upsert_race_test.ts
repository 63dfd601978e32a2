// Two ingest workers listing the same source at once upsert the same keys concurrently. On
// PostgreSQL, `ON CONFLICT (id)` covered only the id index: a race on the source URI's unique
// index raised "duplicate key value violates unique constraint images_source_uri_key" and the
// worker exited (found by `deno task bench load` at 10,000 images). Every upsert must settle.
import assert from "node:assert/strict";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";
import { openManifest } from "./mod.ts";

const KEYS = 300;

Deno.test({
  name: "upsertSourceObject: the same keys upserted by two stores at once all settle (PostgreSQL)",
  ignore: !postgresAvailability().ok,
  fn: async () => {
    const pg = await startPostgres();
    const stores = [await openManifest(pg.url), await openManifest(pg.url)];
    try {
      await stores[0].migrate();
      const keys = Array.from({ length: KEYS }, (_, i) => `race/${i}.jpg`);
      // Both stores upsert each key at the same moment, several keys in flight, as two workers
      // applying the same listing page do.
      const upsert = (s: typeof stores[number], key: string) =>
        s.upsertSourceObject({ sourceUri: `s3://raw/${key}`, sourceKey: key });
      const results = (await Promise.all(
        Array.from({ length: 4 }, async (_, lane) => {
          const out: PromiseSettledResult<Awaited<ReturnType<typeof upsert>>>[] = [];
          for (let i = lane; i < KEYS; i += 4) {
            out.push(...await Promise.allSettled(stores.map((s) => upsert(s, keys[i]))));
          }
          return out;
        }),
      )).flat();
      const errors = results.filter((r) => r.status === "rejected").map((r) => String(r.reason));
      assert.deepEqual(errors, [], "expected every concurrent upsert to settle");
      const created = results.filter((r) => r.status === "fulfilled" && r.value.created).length;
      assert.equal(created, KEYS, "expected each key created exactly once");
      assert.equal((await stores[0].listImages({ limit: KEYS + 10 })).length, KEYS);
      const ingest = (await stores[0].workCounts("ingest")).ingest;
      assert.equal(ingest.pending, KEYS);
    } finally {
      for (const s of stores) await s.close();
      await pg.stop();
    }
  },
});
