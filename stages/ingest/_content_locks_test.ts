import assert from "node:assert/strict";
import { ContentLocks } from "./_content_locks.ts";

Deno.test("ContentLocks", async (t) => {
  await t.step("same hash: holders take turns in arrival order", async () => {
    const locks = new ContentLocks();
    const order: string[] = [];
    await locks.acquire("h", "a");
    const b = locks.acquire("h", "b").then(() => order.push("b"));
    const c = locks.acquire("h", "c").then(() => order.push("c"));
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(order, [], "b and c wait while a holds the hash");
    locks.release("a");
    await b;
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(order, ["b"], "c still waits for b");
    locks.release("b");
    await c;
    assert.deepEqual(order, ["b", "c"]);
    locks.release("c");
    assert.equal(locks.size, 0, "nothing is kept once everyone has released");
  });

  await t.step("different hashes do not wait for each other", async () => {
    const locks = new ContentLocks();
    await locks.acquire("h1", "a");
    await locks.acquire("h2", "b");
    assert.equal(locks.size, 2);
    locks.release("a");
    locks.release("b");
    assert.equal(locks.size, 0);
  });

  await t.step("releasing an item that holds nothing is harmless", async () => {
    const locks = new ContentLocks();
    locks.release("nobody");
    await locks.acquire("h", "a");
    locks.release("a");
    locks.release("a");
    await locks.acquire("h", "b");
    locks.release("b");
    assert.equal(locks.size, 0);
  });
});
