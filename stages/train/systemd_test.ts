import assert from "node:assert/strict";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderSystemd, UNIT_NAME } from "./systemd.ts";
import { launchPlanFixture } from "./testdata/launch_plan.ts";
import { skipUnless } from "../../tests/harness/requirement.ts";

// SLUICE_TEST_SYSTEMD_ANALYZE points elsewhere only to prove that CI fails without the tool.
const analyze = Deno.env.get("SLUICE_TEST_SYSTEMD_ANALYZE") ?? "/usr/bin/systemd-analyze";
let hasAnalyze = false;
try {
  hasAnalyze = (await Deno.stat(analyze)).isFile;
} catch {
  hasAnalyze = false;
}
const noAnalyze = skipUnless(
  "systemd-analyze verify",
  hasAnalyze ? null : `${analyze} not found (apt-get install systemd)`,
);

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
    assert.ok(lines.includes("User=sluice"), "units do not run as root by default");
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

  await t.step("backslashes, spaces and $ cannot break or change a unit", () => {
    const opts = { binPath: "/bin/true", envFile: "/e", masterAddr: "h", masterPort: 1 };
    // A trailing backslash would join the next line onto EnvironmentFile=.
    for (const envFile of ["/etc/sluice/x\\", "/etc/a\\b"]) {
      assert.throws(() => renderSystemd(plan, { ...opts, envFile }), (e: Error) => {
        assert.match(e.message, /envFile: expected no backslash/);
        return true;
      });
    }
    const odd = renderSystemd(plan, { ...opts, binPath: '/opt/my app/$HOME/a\\b"c' });
    const exec = odd.unit.split("\n").find((l) => l.startsWith("ExecStart="));
    assert.equal(
      exec,
      `ExecStart="/opt/my app/$HOME/a\\\\b\\"c" node --plan ${plan.keys.launch} --rank %i`,
    );
    assert.ok(renderSystemd(plan, { ...opts, user: "root" }).unit.includes("\nUser=root\n"));
    assert.throws(() => renderSystemd(plan, { ...opts, user: "root\nExecStartPre=/x" }));
    assert.throws(() => renderSystemd(plan, { ...opts, masterAddr: "h\u0001" }));
  });

  await t.step({
    name: "systemd-analyze verify accepts the template and an instance",
    ignore: noAnalyze,
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
        // A binary whose path has a space and a $ runs as quoted and escaped.
        const odd = join(dir, "my bin $X");
        await Deno.mkdir(odd);
        await copyFile("/bin/true", join(odd, "true"));
        await Deno.chmod(join(odd, "true"), 0o755);
        const quoted = renderSystemd(plan, {
          binPath: join(odd, "true"),
          envFile: "/e",
          masterAddr: "h",
          masterPort: 1,
        });
        await writeFile(instance, quoted.unit);
        const q = await verify(instance);
        assert.equal(q.code, 0, q.text);
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
