import assert from "node:assert/strict";
import { CloseError, Closers } from "./closers.ts";
import { memoryLog } from "../../tests/support/memory_log.ts";

Deno.test("Closers.close runs every closer in reverse order and returns when all succeed", async () => {
  const { log, lines } = memoryLog();
  const closers = new Closers(log);
  const order: string[] = [];
  closers.add("a", () => void order.push("a"));
  const b = closers.own("b", { close: () => Promise.resolve(void order.push("b")) });
  assert.equal(typeof b.close, "function");
  assert.equal(closers.size, 2);
  await closers.close();
  assert.deepEqual(order, ["b", "a"]);
  assert.equal(lines.length, 0);
  await closers.close(); // a second call runs nothing
  assert.deepEqual(order, ["b", "a"]);
});

Deno.test("Closers.close goes on past failures, logs each and throws one error naming them all", async () => {
  const { log, lines } = memoryLog();
  const closers = new Closers(log);
  const order: string[] = [];
  closers.add("manifest", () => {
    order.push("manifest");
    throw new Error("database is locked");
  });
  closers.add("store", () => void order.push("store"));
  closers.add("tracker", () => {
    order.push("tracker");
    return Promise.reject(new Error("socket hang up"));
  });
  const err = await closers.close().then(() => null, (e) => e);
  assert.ok(err instanceof CloseError);
  assert.ok(err instanceof AggregateError);
  assert.equal(err.code, "close_failed");
  assert.deepEqual(err.failed, ["tracker", "manifest"]);
  assert.equal(err.errors.length, 2);
  assert.match(
    err.message,
    /found 2 failed: tracker: socket hang up; manifest: database is locked/,
  );
  assert.deepEqual(order, ["tracker", "store", "manifest"]);
  assert.deepEqual(
    lines.map((l) => [l.msg, l.resource, l.error]),
    [
      ["close failed", "tracker", "socket hang up"],
      ["close failed", "manifest", "database is locked"],
    ],
  );
});

Deno.test("Closers.closeAfterFailure logs but does not throw", async () => {
  const { log, lines } = memoryLog();
  const closers = new Closers(log);
  closers.add("x", () => {
    throw new Error("boom");
  });
  await closers.closeAfterFailure();
  assert.equal(lines.length, 1);
  assert.equal(lines[0].resource, "x");
});
