import assert from "node:assert/strict";
import { ManifestUrlError, openManifest } from "./mod.ts";
import { openPostgresManifest } from "./postgres.ts";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";

Deno.test("openPostgresManifest refuses URLs of other schemes", async () => {
  await assert.rejects(openPostgresManifest("sqlite::memory:"), ManifestUrlError);
});

const pg = postgresAvailability();

Deno.test({
  name: "postgres manifest",
  ignore: !pg.ok,
  async fn(t) {
    const server = await startPostgres();
    try {
      await t.step("openManifest dispatches postgres:// and migrates", async () => {
        const store = await openManifest(server.url);
        try {
          assert.equal(store.kind, "postgres");
          assert.equal(await store.enqueue("q", ["a", "b"]), 2);
          assert.deepEqual((await store.workCounts("q")).q.pending, 2);
        } finally {
          await store.close();
        }
      });
      await t.step("postgresql:// is accepted too", async () => {
        const store = await openManifest(server.url.replace(/^postgres:/, "postgresql:"));
        try {
          assert.equal((await store.workCounts("q")).q.pending, 2);
        } finally {
          await store.close();
        }
      });
      await t.step("an unreachable server fails the open, leaving nothing running", async () => {
        const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const port = (l.addr as Deno.NetAddr).port;
        l.close();
        await assert.rejects(
          openPostgresManifest(`postgres://postgres@127.0.0.1:${port}/x`, { connectTimeoutS: 2 }),
        );
      });
    } finally {
      await server.stop();
    }
  },
});
