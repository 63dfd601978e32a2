import assert from "node:assert/strict";
import { createLogger } from "../log/mod.ts";
import {
  createProgressReporter,
  formatDuration,
  formatProgress,
  ProgressCounter,
  renderBar,
} from "./progress.ts";

function fakeClock(start = 1000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

Deno.test("formatDuration", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(44_600), "45s");
  assert.equal(formatDuration(185_000), "3m05s");
  assert.equal(formatDuration(2 * 3600_000 + 7 * 60_000), "2h07m");
  assert.equal(formatDuration(76 * 3600_000), "3d04h");
  assert.equal(formatDuration(Infinity), "?");
  assert.equal(formatDuration(-1), "?");
});

Deno.test("ProgressCounter: rate and ETA from a fake clock", async (t) => {
  await t.step("with a total", () => {
    const clock = fakeClock();
    const c = new ProgressCounter(100, clock.now);
    assert.equal(c.snapshot().etaMs, undefined, "no rate yet, no ETA");
    for (let i = 0; i < 20; i++) c.record("done");
    c.record("failed");
    c.record("retried");
    c.record("lease_lost");
    clock.advance(10_000);
    const s = c.snapshot();
    assert.equal(s.processed, 21);
    assert.equal(s.done, 20);
    assert.equal(s.retried, 1);
    assert.equal(s.leaseLost, 1);
    assert.equal(s.ratePerSec, 2.1);
    assert.equal(Math.round(s.etaMs!), Math.round((79 / 2.1) * 1000));
  });
  await t.step("without a total: no ETA; more items than the total raise it", () => {
    const clock = fakeClock();
    const c = new ProgressCounter(undefined, clock.now);
    c.record("done");
    clock.advance(1000);
    assert.equal(c.snapshot().etaMs, undefined);
    c.setTotal(0);
    assert.equal(c.snapshot().total, 1);
    assert.equal(c.snapshot().etaMs, 0);
  });
});

Deno.test("renderBar and formatProgress", () => {
  const clock = fakeClock();
  const c = new ProgressCounter(100, clock.now);
  for (let i = 0; i < 45; i++) c.record("done");
  for (let i = 0; i < 2; i++) c.record("failed");
  clock.advance(4000);
  const p = c.snapshot();
  const bar = renderBar("ingest", p, 20);
  assert.equal(bar, "ingest [#########-----------]  47/100  47% 12/s ETA 5s, 2 failed");
  assert.equal(formatProgress("ingest", p), "ingest 47/100 (47%) 12/s ETA 5s, 2 failed");
  const open = new ProgressCounter(undefined, clock.now);
  open.record("done");
  clock.advance(2000);
  assert.equal(renderBar("infer", open.snapshot()), "infer 1 processed 0.5/s");
});

Deno.test("createProgressReporter", async (t) => {
  await t.step("TTY: redraws one line in place, throttled, newline at the end", () => {
    const clock = fakeClock();
    const out: string[] = [];
    const log = createLogger({
      stage: "t",
      json: true,
      sink: () => assert.fail("no log lines on a TTY"),
    });
    const r = createProgressReporter({
      label: "ingest",
      log,
      tty: true,
      write: (s) => out.push(s),
      now: clock.now,
      redrawMs: 100,
    });
    const c = new ProgressCounter(10, clock.now);
    c.record("done");
    r.update(c.snapshot());
    c.record("done");
    r.update(c.snapshot()); // within 100 ms: skipped
    clock.advance(150);
    r.update(c.snapshot());
    r.finish(c.snapshot());
    assert.equal(out.length, 3);
    assert.ok(out.every((s) => s.startsWith("\r") && s.includes("\x1b[K")));
    assert.match(out[0], /1\/10/);
    assert.match(out[1], /2\/10/);
    assert.ok(out[2].endsWith("\n"));
  });

  await t.step("plain: log lines every N items or after a while with work in flight", () => {
    const clock = fakeClock();
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ stage: "t", json: true, sink: (l) => lines.push(JSON.parse(l)) });
    const r = createProgressReporter({
      label: "ingest",
      log,
      tty: false,
      write: () => assert.fail("no bar when not a TTY"),
      now: clock.now,
      everyItems: 3,
      everyMs: 1000,
    });
    const c = new ProgressCounter(10, clock.now);
    c.record("done");
    r.update(c.snapshot()); // first: logged
    c.record("done");
    r.update(c.snapshot()); // 1 more item, too soon: skipped
    c.record("done");
    c.record("done");
    r.update(c.snapshot()); // 3 more items: logged
    clock.advance(5000);
    r.update(c.snapshot()); // nothing changed, nothing in flight: skipped
    c.inFlight = 1;
    r.update(c.snapshot()); // slow item in flight: logged
    r.finish(c.snapshot());
    assert.deepEqual(lines.map((l) => [String(l.msg).split(":")[0], l.done]), [
      ["progress", 1],
      ["progress", 4],
      ["progress", 4],
      ["finished", 4],
    ]);
    assert.equal(lines[1].total, 10);
    assert.equal(lines[1].etaMs, undefined, "no rate yet at t=0");
    assert.equal(lines[2].etaMs, Math.round((6 / (4 / 5)) * 1000));
  });
});
