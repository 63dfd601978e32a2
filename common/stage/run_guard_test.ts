import assert from "node:assert/strict";
import { SluiceError } from "../errors/mod.ts";
import { RunGuard } from "./run_guard.ts";

Deno.test("RunGuard allows one run at a time and none after close", async () => {
  const guard = new RunGuard("normalize");
  let release!: () => void;
  const first = guard.run(() => new Promise<string>((r) => (release = () => r("first"))));
  assert.equal(guard.running, true);
  await assert.rejects(
    () => guard.run(() => Promise.resolve("second")),
    (e: unknown) =>
      e instanceof SluiceError && e.code === "already_running" &&
      e.message === "normalize: expected one run at a time, found one running",
  );
  release();
  assert.equal(await first, "first");
  assert.equal(guard.running, false);
  assert.equal(await guard.run(() => Promise.resolve(3)), 3);
  assert.equal(guard.close(), true);
  assert.equal(guard.close(), false);
  await assert.rejects(
    () => guard.run(() => Promise.resolve(4)),
    (e: unknown) => e instanceof SluiceError && e.code === "stage_closed",
  );
});

Deno.test("RunGuard is free again after a run that throws", async () => {
  const guard = new RunGuard("infer");
  await assert.rejects(() => guard.run(() => Promise.reject(new Error("no model"))), /no model/);
  assert.equal(guard.running, false);
});
