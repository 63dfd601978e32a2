import assert from "node:assert/strict";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderSystemd, UNIT_NAME } from "./systemd.ts";
import { launchPlanFixture } from "./testdata/launch_plan.ts";

const analyze = "/usr/bin/systemd-analyze";
let hasAnalyze = false;
try {
  hasAnalyze = (await Deno.stat(analyze)).isFile;
} catch {
  hasAnalyze = false;
}

async function verify(path: string): Promise<{ code: number; text: string }> {
  const r = await new Deno.Command(analyze, {
    args: ["verify", "--man=no", path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: r.code, text: d.decode(r.stdout) + d.decode(r.stderr) };
}

Deno.test("systemd definitions", async (t) => {
  const plan = launchPlanFixture(2);
  const defs = renderSystemd(plan, {
    binPath: "/bin/true",
    envFile: "/etc/sluice/sluice.env",
    masterAddr: "gpu-1.internal",
    masterPort: 29500,
  });

  await t.step("a template unit whose instance is the rank", () => {
    const lines = defs.unit.split("\n");
    assert.ok(lines.includes("[Service]"));
    assert.ok(lines.includes("EnvironmentFile=/etc/sluice/sluice.env"));
    assert.ok(lines.includes("EnvironmentFile=/etc/sluice/train/rank-%i.env"));
    assert.ok(lines.includes(`ExecStart=/bin/true node --plan ${plan.keys.launch} --rank %i`));
    assert.ok(lines.includes("Restart=no"));
    assert.ok(lines.includes("WantedBy=multi-user.target"));
  });

  await t.step("one environment file per rank with the rendezvous", () => {
    assert.equal(defs.envFiles.length, 2);
    assert.deepEqual(defs.envPaths, [
      "/etc/sluice/train/rank-0.env",
      "/etc/sluice/train/rank-1.env",
    ]);
    for (const [r, text] of defs.envFiles.entries()) {
      const vars = Object.fromEntries(
        text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => {
          const i = l.indexOf("=");
          return [l.slice(0, i), JSON.parse(l.slice(i + 1))];
        }),
      );
      assert.deepEqual(vars, {
        RANK: String(r),
        WORLD_SIZE: "2",
        LOCAL_RANK: "0",
        LOCAL_WORLD_SIZE: "1",
        MASTER_ADDR: "gpu-1.internal",
        MASTER_PORT: "29500",
        SLUICE_TRAIN_PLAN: plan.keys.launch,
      });
    }
  });

  await t.step("values that would break a unit file are refused or escaped", () => {
    assert.throws(
      () =>
        renderSystemd(plan, {
          binPath: "/bin/true\nExecStartPre=/bin/rm -rf /",
          envFile: "/etc/sluice/sluice.env",
          masterAddr: "h",
          masterPort: 1,
        }),
      { code: "invalid_unit" },
    );
    const pct = renderSystemd(plan, {
      binPath: "/opt/100%/sluice-train",
      envFile: "/e",
      masterAddr: "h",
      masterPort: 1,
    });
    assert.match(pct.unit, /ExecStart=\/opt\/100%%\/sluice-train /);
  });

  await t.step({
    name: "systemd-analyze verify accepts the template and an instance",
    ignore: !hasAnalyze,
    fn: async () => {
      const dir = await mkdtemp(join(tmpdir(), "sluice-systemd-"));
      try {
        const template = join(dir, UNIT_NAME);
        await writeFile(template, defs.unit);
        const instance = join(dir, "sluice-train-node@0.service");
        await copyFile(template, instance);
        for (const p of [template, instance]) {
          const r = await verify(p);
          assert.equal(r.code, 0, r.text);
        }
        // The verifier really checks: a missing binary is an error.
        const broken = renderSystemd(plan, {
          binPath: "/nonexistent/sluice-train",
          envFile: "/e",
          masterAddr: "h",
          masterPort: 1,
        });
        await writeFile(instance, broken.unit);
        const r = await verify(instance);
        assert.notEqual(r.code, 0);
        assert.match(r.text, /not executable/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  });
});
