/**
 * The root cause of the shutdown hang after a PostgreSQL restart (issue 12 item 1): when a
 * transaction's backend goes away while its callback is between two queries, `sql.begin()`
 * rejects but the callback runs on. In npm:postgres 3.4.9 its next query went to the same
 * pooled connection object: with the socket gone the bytes were dropped and the query waited
 * for an answer that never came (a worker's claim never returned, so SIGTERM could not stop it);
 * once the pool had reconnected, it ran on the new session outside any transaction
 * (porsager/postgres#1186, #1216). `vendor/postgres` (see SLUICE_PATCH.md) rejects it instead.
 * The third case: 3.4.9 kept the dead backend's FATAL and failed the first query after the
 * reconnect with it; during a restart that parked error sent the waiting query round the
 * reconnect loop under a backoff growing to 20 s a try.
 * Real PostgreSQL through the test harness; the backend is ended with `pg_terminate_backend`,
 * the same FATAL 57P01 that `pg_ctl restart -m fast` sends.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";
import { isConnectionLoss } from "./_connection_loss_guard.ts";

const pg = postgresAvailability();

/** Resolves with `p`'s outcome, or "pending" when it has not settled within `ms`. */
async function settleWithin<T>(p: Promise<T>, ms: number): Promise<T | "pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<"pending">((r) => timer = setTimeout(r, ms, "pending")),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

type Outcome = { ran: unknown } | { rejected: unknown };

/**
 * Opens a transaction on a one-connection pool, ends its backend from another connection, and
 * lets the callback issue one more query once `before()` has run; returns what that query did.
 */
async function orphanedQuery(url: string, before: (sql: postgres.Sql) => Promise<void>) {
  const sql = postgres(url, { max: 1, onnotice: () => {}, fetch_types: false });
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await admin`CREATE TABLE IF NOT EXISTS orphan_rows (n int)`;
    await admin`TRUNCATE orphan_rows`;
    let pid!: (n: number) => void;
    const backendPid = new Promise<number>((r) => pid = r);
    let go!: () => void;
    const resume = new Promise<void>((r) => go = r);
    let report!: (o: Outcome) => void;
    const orphan = new Promise<Outcome>((r) => report = r);
    const tx = sql.begin(async (tx) => {
      const [row] = await tx`SELECT pg_backend_pid() AS pid`;
      pid(row.pid);
      await resume;
      try {
        report({ ran: await tx`INSERT INTO orphan_rows VALUES (1) RETURNING n` });
      } catch (err) {
        report({ rejected: err });
      }
    }).then(() => "committed", (err: unknown) => err);

    await admin`SELECT pg_terminate_backend(${await backendPid})`;
    const began = await settleWithin(tx, 5000);
    assert.ok(isConnectionLoss(began), `begin(): expected a connection loss, found ${began}`);
    await before(sql);
    go();
    const outcome = await settleWithin(orphan, 5000);
    const rows = await admin`SELECT count(*)::int AS n FROM orphan_rows`;
    // The pool must still serve queries afterwards.
    const after = await settleWithin(sql`SELECT 1 AS one`, 5000);
    return { outcome, inserted: rows[0].n as number, after };
  } finally {
    await sql.end({ timeout: 1 });
    await admin.end({ timeout: 1 });
  }
}

function assertRejected(outcome: Outcome | "pending", inserted: number, after: unknown) {
  assert.notEqual(outcome, "pending", "the orphaned query never settled (the hang)");
  assert.ok(
    "rejected" in (outcome as Outcome),
    `expected the orphaned query to be rejected, found it ran: ${JSON.stringify(outcome)}`,
  );
  const err = (outcome as { rejected: unknown }).rejected;
  assert.ok(isConnectionLoss(err), `expected a connection-loss error, found ${err}`);
  assert.equal(inserted, 0, "the orphaned INSERT ran outside its transaction");
  assert.notEqual(after, "pending", "the pool hung after the orphaned query");
  assert.deepEqual([...(after as postgres.RowList<postgres.Row[]>)], [{ one: 1 }]);
}

Deno.test({
  name: "postgres driver: a transaction query after its backend died is rejected (socket gone)",
  ignore: !pg.ok,
  async fn() {
    const server = await startPostgres();
    try {
      // The callback goes on at once, before anything reconnects the pool's one connection.
      const r = await orphanedQuery(server.url, async () => {});
      assertRejected(r.outcome, r.inserted, r.after);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "postgres driver: a transaction query after its backend died is rejected (pool reconnected)",
  ignore: !pg.ok,
  async fn() {
    const server = await startPostgres();
    try {
      // Another caller reconnects the pool first: the orphan must not run on the new session.
      const r = await orphanedQuery(server.url, async (sql) => {
        assert.deepEqual([...await sql`SELECT 2 AS two`], [{ two: 2 }]);
      });
      assertRejected(r.outcome, r.inserted, r.after);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "postgres driver: the first query after a reconnect does not get the old backend's error",
  ignore: !pg.ok,
  async fn() {
    const server = await startPostgres();
    const sql = postgres(server.url, { max: 1, onnotice: () => {}, fetch_types: false });
    const admin = postgres(server.url, { max: 1, onnotice: () => {} });
    try {
      const [{ pid }] = await sql`SELECT pg_backend_pid() AS pid`;
      const sleeping = sql`SELECT pg_sleep(30)`.then(() => "finished", (err: unknown) => err);
      await new Promise((r) => setTimeout(r, 200));
      await admin`SELECT pg_terminate_backend(${pid})`;
      const lost = await settleWithin(sleeping, 5000);
      assert.ok(isConnectionLoss(lost), `the query in flight: expected a connection loss, ${lost}`);
      // The server is fine: the reconnect must answer, not fail with the dead backend's FATAL
      // (57P01 "terminating connection due to administrator command"), which 3.4.9 kept.
      const next = await settleWithin(sql`SELECT 1 AS one`.catch((err: unknown) => err), 5000);
      assert.deepEqual(
        next instanceof Error ? next.message : [...(next as postgres.RowList<postgres.Row[]>)],
        [{ one: 1 }],
      );
    } finally {
      await sql.end({ timeout: 1 });
      await admin.end({ timeout: 1 });
      await server.stop();
    }
  },
});

Deno.test({
  name: "postgres driver: end() returns once the server has closed the connection it waited on",
  ignore: !pg.ok,
  async fn() {
    const server = await startPostgres();
    const sql = postgres(server.url, { max: 1, onnotice: () => {}, fetch_types: false });
    const admin = postgres(server.url, { max: 1, onnotice: () => {} });
    try {
      const [{ pid }] = await sql`SELECT pg_backend_pid() AS pid`;
      const sleeping = sql`SELECT pg_sleep(30)`.catch((err: unknown) => err);
      await new Promise((r) => setTimeout(r, 200));
      // end() waits for the query in flight (its timeout would cut that wait at 20 s)...
      const ended = sql.end({ timeout: 20 }).then(() => "ended");
      await admin`SELECT pg_terminate_backend(${pid})`;
      assert.ok(isConnectionLoss(await settleWithin(sleeping, 5000)));
      // ...and the server ending that query's connection ends the wait (3.4.9: porsager/postgres#1097).
      assert.equal(await settleWithin(ended, 3000), "ended", "end() still waiting after the close");
      await ended;
    } finally {
      await sql.end({ timeout: 1 });
      await admin.end({ timeout: 1 });
      await server.stop();
    }
  },
});
