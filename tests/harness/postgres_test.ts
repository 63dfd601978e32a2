import assert from "node:assert/strict";
import postgres from "postgres";
import { postgresAvailability, startPostgres } from "./postgres.ts";

const pg = postgresAvailability();

Deno.test({
  name: "harness: throwaway PostgreSQL",
  ignore: !pg.ok,
  async fn(t) {
    const server = await startPostgres();
    let stopped = false;
    try {
      await t.step("serves an empty database of its own on loopback", async () => {
        const url = new URL(server.url);
        if (!Deno.env.get("SLUICE_TEST_POSTGRES_URL")) assert.equal(url.hostname, "127.0.0.1");
        const sql = postgres(server.url, { max: 1 });
        try {
          const [{ n }] = await sql`SELECT COUNT(*)::int AS n FROM pg_tables
            WHERE schemaname = 'public'`;
          assert.equal(n, 0);
          await sql`CREATE TABLE t (x int)`;
        } finally {
          await sql.end();
        }
      });
      await t.step("newDatabase gives another, separate database", async () => {
        const other = await server.newDatabase();
        assert.notEqual(other, server.url);
        const sql = postgres(other, { max: 1 });
        try {
          const rows = await sql`SELECT 1 FROM pg_tables WHERE tablename = 't'`;
          assert.equal(rows.length, 0);
        } finally {
          await sql.end();
        }
      });
      await t.step("stop shuts the server down", async () => {
        await server.stop();
        stopped = true;
        if (Deno.env.get("SLUICE_TEST_POSTGRES_URL")) return;
        const port = Number(new URL(server.url).port);
        await assert.rejects(
          Deno.connect({ hostname: "127.0.0.1", port }),
          Deno.errors.ConnectionRefused,
        );
      });
    } finally {
      if (!stopped) await server.stop();
    }
  },
});
