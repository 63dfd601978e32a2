import assert from "node:assert/strict";
import { join } from "node:path";
import { SluiceError } from "../../common/errors/mod.ts";
import type { TrainerEvent } from "./trainer_events.ts";
import {
  assertTrainersSucceeded,
  CHECKOUT_ROOT,
  freePort,
  resolveTrainerCommand,
  runTrainerProcesses,
} from "./trainer_process.ts";

const sh = (script: string) => ["/bin/sh", "-c", script];

Deno.test("trainer processes", async (t) => {
  await t.step("events from stdout, logs from stderr, per rank, with the rank's env", async () => {
    const events: [number, TrainerEvent][] = [];
    const logs: [number, string][] = [];
    const invalid: string[] = [];
    const script =
      'echo "{\\"type\\":\\"param\\",\\"key\\":\\"rank\\",\\"value\\":\\"$RANK\\"}"; ' +
      'echo "hello from $RANK" >&2; echo "not json"; printf \'{"type":"metric","key":"m","value":1}\'';
    const exits = await runTrainerProcesses(
      [0, 1].map((rank) => ({
        rank,
        command: sh(script),
        args: [],
        env: { RANK: String(rank) },
      })),
      {
        onEvent: (r, e) => events.push([r, e]),
        onLog: (r, l) => logs.push([r, l]),
        onInvalid: (_r, p) => invalid.push(p),
      },
    );
    assertTrainersSucceeded(exits);
    assert.deepEqual(exits.map((e) => e.code), [0, 0]);
    for (const rank of [0, 1]) {
      assert.ok(
        events.some(([r, e]) => r === rank && e.type === "param" && e.value === String(rank)),
      );
      assert.ok(
        events.some(([r, e]) => r === rank && e.type === "metric"),
        "a last line without a newline still counts",
      );
      assert.ok(logs.some(([r, l]) => r === rank && l === `hello from ${rank}`));
    }
    assert.equal(invalid.length, 2);
  });

  await t.step("a throwing handler neither stops the reading nor the run", async () => {
    const seen: string[] = [];
    const problems: string[] = [];
    const lines = Array.from(
      { length: 2000 },
      (_, i) => `{"type":"metric","key":"m","value":${i}}`,
    );
    const exits = await runTrainerProcesses([{
      rank: 0,
      command: sh(`cat <<'EOF'\n${lines.join("\n")}\nEOF`),
      args: [],
      env: {},
    }], {
      onEvent: (_r, e) => {
        if (e.type === "metric") seen.push(String(e.value));
        throw new Error("tracker closed");
      },
      onInvalid: (_r, p) => problems.push(p),
      onLog: () => {
        throw new Error("log sink broken");
      },
    });
    assert.equal(exits[0].code, 0);
    assert.equal(seen.length, 2000);
    assert.equal(problems.length, 2000);
    assert.match(problems[0], /handler failed/);
  });

  await t.step("when one rank fails, the others are stopped and the failure named", async () => {
    const started = Date.now();
    const exits = await runTrainerProcesses([
      { rank: 0, command: sh("sleep 30"), args: [], env: {} },
      {
        rank: 1,
        command: sh('echo "cuda out of memory" >&2; exit 1'),
        args: [],
        env: {},
      },
    ], { killGraceMs: 2000 });
    assert.ok(Date.now() - started < 15_000, "rank 0 did not run its 30 s");
    assert.equal(exits[0].stopped, true);
    assert.equal(exits[0].signal, "SIGTERM");
    assert.equal(exits[1].code, 1);
    assert.throws(
      () => assertTrainersSucceeded(exits),
      (err: unknown) =>
        err instanceof SluiceError && err.code === "trainer_failed" &&
        /rank 1/.test(err.message) && /out of memory/.test(err.message),
    );
  });

  await t.step("exit 2 with an error event is bad input", async () => {
    const exits = await runTrainerProcesses([{
      rank: 0,
      command: sh(
        'echo \'{"type":"error","code":"invalid_input","message":"no categories"}\'; exit 2',
      ),
      args: [],
      env: {},
    }]);
    assert.deepEqual(exits[0].error, { code: "invalid_input", message: "no categories" });
    assert.throws(() => assertTrainersSucceeded(exits), {
      code: "trainer_invalid_input",
    });
  });

  await t.step("abort stops every rank", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const exits = await runTrainerProcesses(
      [0, 1].map((rank) => ({ rank, command: sh("sleep 30"), args: [], env: {} })),
      { signal: ac.signal, killGraceMs: 2000 },
    );
    assert.ok(exits.every((e) => e.stopped));
    assert.throws(() => assertTrainersSucceeded(exits), { code: "trainer_aborted" });
  });

  await t.step("a deadline stops a rank that ignores SIGTERM", async () => {
    const exits = await runTrainerProcesses([{
      rank: 0,
      command: sh("trap '' TERM; sleep 30 & wait; sleep 30"),
      args: [],
      env: {},
    }], { deadline: Date.now() + 200, killGraceMs: 300 });
    assert.equal(exits[0].signal, "SIGKILL");
  });

  await t.step("a leftover grandchild holding the pipes does not hang the launcher", async () => {
    const started = Date.now();
    const exits = await runTrainerProcesses([{
      rank: 0,
      command: sh('sleep 60 & echo \'{"type":"artifact","path":"/x"}\''),
      args: [],
      env: {},
    }]);
    assert.equal(exits[0].code, 0);
    assert.ok(Date.now() - started < 30_000);
  });

  await t.step("a program that does not exist is reported, not thrown from a child", async () => {
    await assert.rejects(
      runTrainerProcesses([{ rank: 0, command: ["/nonexistent/python"], args: [], env: {} }]),
      { code: "trainer_not_started" },
    );
  });

  await t.step("relative trainer paths resolve against the cwd, then the checkout", () => {
    const cmd = resolveTrainerCommand(
      ["/usr/bin/python3", "stages/train/trainer/train.py", "--flag", "python3"],
      "/",
    );
    assert.deepEqual(cmd, [
      "/usr/bin/python3",
      join(CHECKOUT_ROOT, "stages/train/trainer/train.py"),
      "--flag",
      "python3",
    ]);
    assert.equal(resolveTrainerCommand(["python3"], "/")[0], "python3");
  });

  await t.step("freePort gives a bindable port", () => {
    const port = freePort();
    const l = Deno.listen({ hostname: "127.0.0.1", port });
    l.close();
    assert.ok(port > 0);
  });
});
