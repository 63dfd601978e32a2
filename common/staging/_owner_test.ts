import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { currentOwner, type LeaseOwner, ownerIsGone, startTicksOf } from "./_owner.ts";

Deno.test("startTicksOf reads field 22 after a command name with spaces and parentheses", () => {
  const rest =
    "S 1 2 3 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
  assert.equal(startTicksOf(`42 (deno) ${rest}`), 987654);
  assert.equal(startTicksOf(`42 (a (b) c) d) ${rest}`), 987654);
  assert.equal(startTicksOf("garbage"), undefined);
  assert.equal(startTicksOf("42 (x) S 1"), undefined);
});

async function statTicks(pid: number): Promise<number> {
  const t = startTicksOf(await readFile(`/proc/${pid}/stat`, "utf8"));
  assert.ok(t !== undefined);
  return t;
}

Deno.test({
  name: "lease owners on this machine (real /proc, real processes)",
  ignore: Deno.build.os !== "linux",
  async fn(t) {
    const me = await currentOwner();

    await t.step("currentOwner describes this process", async () => {
      assert.equal(me.host, hostname());
      assert.equal(me.pid, Deno.pid);
      assert.equal(me.bootId, (await readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim());
      assert.match(me.pidNs ?? "", /^pid:\[\d+\]$/);
      assert.equal(me.startTicks, await statTicks(Deno.pid));
    });

    await t.step("this process is not gone", async () => {
      assert.equal(await ownerIsGone(me, me), false);
    });

    await t.step(
      "an exited process is gone; a running one is not, unless its pid was reused",
      async () => {
        const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
        try {
          const running: LeaseOwner = {
            ...me,
            pid: sleeper.pid,
            startTicks: await statTicks(sleeper.pid),
          };
          assert.equal(await ownerIsGone(running, me), false);
          assert.equal(
            await ownerIsGone({ ...running, startTicks: running.startTicks! - 1 }, me),
            true,
            "same pid, another start time: the recorded process is gone",
          );
        } finally {
          sleeper.kill();
          await sleeper.status;
        }
        const exited = new Deno.Command("true").spawn();
        await exited.status;
        assert.equal(await ownerIsGone({ ...me, pid: exited.pid, startTicks: 1 }, me), true);
      },
    );

    await t.step("what cannot be judged from here counts as alive", async () => {
      const deadPid: LeaseOwner = { ...me, pid: 0x3fffff, startTicks: 1 };
      assert.equal(await ownerIsGone(deadPid, me), true, "baseline: this record is gone");
      assert.equal(await ownerIsGone({ ...deadPid, host: `${me.host}-other` }, me), false);
      assert.equal(await ownerIsGone({ ...deadPid, pidNs: "pid:[1]" }, me), false);
      const { bootId: _b, ...noBoot } = deadPid;
      assert.equal(await ownerIsGone(noBoot, me), false);
      const { pidNs: _n, ...noNs } = deadPid;
      assert.equal(await ownerIsGone(noNs, me), false);
    });

    await t.step("another boot of the same host means gone", async () => {
      assert.equal(
        await ownerIsGone({ ...me, bootId: "00000000-0000-0000-0000-000000000000" }, me),
        true,
      );
    });
  },
});
