import assert from "node:assert/strict";
import { ManifestUrlError, openManifest } from "./mod.ts";
import { openPostgresManifest } from "./postgres.ts";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";

Deno.test("openPostgresManifest refuses URLs of other schemes", async () => {
  await assert.rejects(openPostgresManifest("sqlite::memory:"), ManifestUrlError);
});

Deno.test("openManifest's URL errors never print the password", async () => {
  const err = await openManifest("mysql://app:Pw-9x@db/sluice").then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof ManifestUrlError);
  assert.ok(!err.message.includes("Pw-9x"), err.message);
  assert.match(err.message, /mysql:\/\/app:\*\*\*redacted\*\*\*@db/);
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
      await t.step("the scheme is case-insensitive, as config validation says", async () => {
        const store = await openManifest(server.url.replace(/^postgres:/, "POSTGRES:"));
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
