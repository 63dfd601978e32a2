import assert from "node:assert/strict";
import { Slots } from "./_slots.ts";

Deno.test("Slots bounds concurrency, keeps order, and honours aborts", async (t) => {
  await t.step("never more than size at once", async () => {
    const seen: number[] = [];
    const slots = new Slots(2, (busy) => seen.push(busy));
    let running = 0, peak = 0;
    const order: number[] = [];
    await Promise.all(Array.from({ length: 6 }, (_, i) =>
      slots.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        order.push(i);
        running--;
      })));
    assert.equal(peak, 2);
    assert.equal(slots.busy, 0);
    assert.equal(Math.max(...seen), 2);
    assert.equal(seen.at(-1), 0);
    assert.deepEqual(order.slice(0, 2).sort(), [0, 1]);
  });

  await t.step("a failing task frees its slot", async () => {
    const slots = new Slots(1);
    await assert.rejects(slots.run(() => Promise.reject(new Error("boom"))), /boom/);
    assert.equal(await slots.run(() => Promise.resolve(7)), 7);
  });

  await t.step("an abort while waiting rejects without running", async () => {
    const slots = new Slots(1);
    let release!: () => void;
    const holder = slots.run(() => new Promise<void>((r) => release = r));
    const ac = new AbortController();
    let ran = false;
    const waiting = slots.run(() => {
      ran = true;
      return Promise.resolve();
    }, ac.signal);
    ac.abort(new Error("stop"));
    await assert.rejects(waiting, /stop/);
    release();
    await holder;
    assert.equal(ran, false);
    assert.equal(slots.busy, 0);
  });

  await t.step("size must be a positive integer", () => {
    assert.throws(() => new Slots(0), RangeError);
    assert.throws(() => new Slots(1.5), RangeError);
  });
});
