/**
 * The systemd units and `install.sh`: every unit passes `systemd-analyze verify` in an installed
 * tree, carries the hardening it promises, and the install script's dry run, real run and second
 * (idempotent) run do what they print. shellcheck keeps the shell scripts clean.
 */
import assert from "node:assert/strict";
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { hostTools } from "../../tests/harness/host_tools.ts";

const dir = fileURLToPath(new URL(".", import.meta.url));
const repo = join(dir, "..", "..");
const INSTALL = join(dir, "install.sh");
const UNITS = [
  "sluice-infer.service",
  "sluice-ingest-events.service",
  "sluice-ingest-poll.service",
  "sluice-normalize.service",
  "sluice-train-node@.service",
  "sluice-train-worker.service",
];
const STAGES = ["ingest", "normalize", "train", "infer"] as const;

async function run(
  cmd: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** `[Section] Key=value` pairs of a unit file (repeated keys keep every value). */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const sec = line.match(/^\[(\w+)\]$/);
    if (sec) {
      section = sec[1];
      continue;
    }
    const i = line.indexOf("=");
    assert.ok(i > 0, `expected Key=value in [${section}], found ${JSON.stringify(line)}`);
    const key = `${section}.${line.slice(0, i)}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(i + 1)]);
  }
  return out;
}

/** Path → "mode uid:gid sha256|link target" for every entry under `root`. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of await readdir(root, { recursive: true })) {
    const p = join(root, rel);
    const st = await Deno.lstat(p);
    const what = st.isSymlink
      ? `-> ${await Deno.readLink(p)}`
      : st.isFile
      ? createHash("sha256").update(await readFile(p)).digest("hex")
      : "dir";
    out[rel] = `${(st.mode ?? 0).toString(8)} ${st.uid}:${st.gid} ${st.mtime?.getTime()} ${what}`;
  }
  return out;
}

Deno.test("systemd units: the promised names, user, mount, restart and hardening", async () => {
  const found = (await readdir(dir)).filter((f) => f.endsWith(".service")).sort();
  assert.deepEqual(found, UNITS);
  for (const name of UNITS) {
    const d = directives(await readFile(join(dir, name), "utf8"));
    const one = (k: string) => d.get(k)?.join(" ");
    assert.equal(one("Unit.RequiresMountsFor"), "/mnt/nvme/sluice", name);
    assert.equal(one("Service.User"), "sluice", name);
    assert.equal(one("Service.NoNewPrivileges"), "yes", name);
    assert.equal(one("Service.ProtectSystem"), "strict", name);
    assert.equal(one("Service.PrivateTmp"), "yes", name);
    assert.equal(one("Service.ReadWritePaths"), "/mnt/nvme/sluice /var/cache/sluice", name);
    assert.match(one("Service.MemoryMax") ?? "", /^\d+[KMGT]$/, name);
    assert.ok(d.get("Service.EnvironmentFile")?.includes("/etc/sluice/sluice.env"), name);
    const exec = one("Service.ExecStart") ?? "";
    assert.match(exec, /^\/usr\/local\/bin\/sluice-(ingest|normalize|train|infer) /, name);
    // Ranks of a distributed run must not restart alone; every long-running stage does.
    assert.equal(one("Service.Restart"), name.includes("@") ? "no" : "on-failure", name);
  }
  const node = directives(await readFile(join(dir, "sluice-train-node@.service"), "utf8"));
  assert.deepEqual(node.get("Service.ExecStart"), [
    "/usr/local/bin/sluice-train node --plan ${SLUICE_TRAIN_PLAN} --rank %i",
  ]);
  assert.ok(node.get("Service.EnvironmentFile")?.includes("/etc/sluice/train/rank-%i.env"));
});

const host = await hostTools(["systemd-analyze", "systemd-sysusers", "systemctl"], { root: true });
if (!host.ok) console.log(`SKIP install.sh / systemd-analyze tests: ${host.reason}`);

Deno.test({
  name: "install.sh: dry run prints the plan and changes nothing; bad arguments are refused",
  ignore: !host.ok,
  fn: async () => {
    const root = await mkdtemp(join(tmpdir(), "sluice-systemd-dry-"));
    try {
      const bin = join(root, "..", `${root.split("/").pop()}-bin`);
      await writeFile(bin, "#!/bin/sh\necho sluice-train\n", { mode: 0o755 });
      try {
        const r = await run(INSTALL, [
          "--stage",
          "train",
          "--binary",
          bin,
          "--dry-run",
          "--root",
          root,
        ]);
        assert.equal(r.code, 0, r.err);
        assert.deepEqual(r.out.trim().split("\n"), [
          "would create /usr/lib/sysusers.d/sluice.conf",
          "would create user sluice",
          "would create /usr/local/bin/sluice-train",
          "would create /etc/systemd/system/sluice-train-worker.service",
          "would create /etc/systemd/system/sluice-train-node@.service",
          "would create /etc/sluice/sluice.env",
          "would create directory /mnt/nvme/sluice",
          "would create directory /var/cache/sluice",
          "would enable sluice-train-worker.service",
          "dry run: 9 change(s) planned, nothing done",
        ]);
        assert.deepEqual(await readdir(root), []);

        const bad = await run(INSTALL, ["--stage", "ingestt", "--binary", bin, "--root", root]);
        assert.equal(bad.code, 2);
        assert.match(
          bad.err,
          /--stage: expected ingest, normalize, train or infer, found 'ingestt'/,
        );
        const noBin = await run(INSTALL, ["--stage", "infer", "--binary", `${bin}.nope`]);
        assert.equal(noBin.code, 2);
        assert.match(noBin.err, /--binary: expected a file, found nothing at/);
        const tmpl = await run(INSTALL, [
          "--stage",
          "train",
          "--binary",
          bin,
          "--root",
          root,
          "--enable",
          "sluice-train-node@.service",
        ]);
        assert.equal(tmpl.code, 2);
        assert.match(tmpl.err, /is a template/);
        assert.deepEqual(await readdir(root), []);
      } finally {
        await rm(bin, { force: true });
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
});

Deno.test({
  name: "install.sh into --root twice (second run changes nothing); systemd-analyze verify passes",
  ignore: !host.ok,
  fn: async (t) => {
    const root = await mkdtemp(join(tmpdir(), "sluice-systemd-root-"));
    const bins = await mkdtemp(join(tmpdir(), "sluice-systemd-bins-"));
    try {
      for (const s of STAGES) {
        await writeFile(join(bins, `sluice-${s}`), `#!/bin/sh\necho sluice-${s} "$@"\n`, {
          mode: 0o755,
        });
      }
      await t.step("first run installs every stage", async () => {
        for (const s of STAGES) {
          const r = await run(INSTALL, [
            "--stage",
            s,
            "--binary",
            join(bins, `sluice-${s}`),
            "--root",
            root,
          ]);
          assert.equal(r.code, 0, `${s}: ${r.out}${r.err}`);
          assert.match(r.out, /\d+ change\(s\) made\n$/);
        }
        const passwd = await readFile(join(root, "etc/passwd"), "utf8");
        const user = passwd.split("\n").find((l) => l.startsWith("sluice:"))?.split(":");
        assert.ok(user, `expected a sluice user in ${passwd}`);
        assert.equal(user[6], "/usr/sbin/nologin");
        for (const s of STAGES) {
          assert.equal(
            await readFile(join(root, `usr/local/bin/sluice-${s}`), "utf8"),
            await readFile(join(bins, `sluice-${s}`), "utf8"),
          );
        }
        for (const u of UNITS) {
          assert.equal(
            await readFile(join(root, "etc/systemd/system", u), "utf8"),
            await readFile(join(dir, u), "utf8"),
          );
        }
        const wants = (await readdir(join(root, "etc/systemd/system/multi-user.target.wants")))
          .sort();
        assert.deepEqual(wants, [
          "sluice-infer.service",
          "sluice-ingest-events.service",
          "sluice-normalize.service",
          "sluice-train-worker.service",
        ]);
        const env = await Deno.stat(join(root, "etc/sluice/sluice.env"));
        assert.equal((env.mode ?? 0) & 0o777, 0o640);
        assert.equal(env.gid, Number(user[3]));
        const staging = await Deno.stat(join(root, "mnt/nvme/sluice"));
        assert.equal(staging.uid, Number(user[2]));
      });

      await t.step("second run changes nothing and says so", async () => {
        const before = await snapshot(root);
        for (const s of STAGES) {
          const r = await run(INSTALL, [
            "--stage",
            s,
            "--binary",
            join(bins, `sluice-${s}`),
            "--root",
            root,
          ]);
          assert.equal(r.code, 0, r.err);
          const lines = r.out.trim().split("\n");
          assert.equal(lines.pop(), `nothing to do: stage ${s} is installed and enabled`);
          for (const l of lines) assert.match(l, /^ok /);
        }
        assert.deepEqual(await snapshot(root), before);
      });

      await t.step("an edited env file is kept; a changed binary is updated", async () => {
        await writeFile(
          join(root, "etc/sluice/sluice.env"),
          "SLUICE_MANIFEST_URL=postgres://x/y\n",
        );
        await writeFile(join(bins, "sluice-infer"), "#!/bin/sh\necho v2\n", { mode: 0o755 });
        const r = await run(INSTALL, [
          "--stage",
          "infer",
          "--binary",
          join(bins, "sluice-infer"),
          "--root",
          root,
        ]);
        assert.equal(r.code, 0, r.err);
        assert.match(r.out, /^update \/usr\/local\/bin\/sluice-infer$/m);
        assert.match(r.out, /^ok \/etc\/sluice\/sluice\.env$/m);
        assert.equal(
          await readFile(join(root, "etc/sluice/sluice.env"), "utf8"),
          "SLUICE_MANIFEST_URL=postgres://x/y\n",
        );
        assert.equal(
          await readFile(join(root, "usr/local/bin/sluice-infer"), "utf8"),
          "#!/bin/sh\necho v2\n",
        );
      });

      await t.step("systemd-analyze verify passes on every installed unit", async () => {
        // verify resolves dependencies (sysinit.target, ...) inside --root: give it the host's units.
        await cp("/lib/systemd/system", join(root, "usr/lib/systemd/system"), {
          recursive: true,
          verbatimSymlinks: true,
        });
        const names = UNITS.map((u) => u.replace("@.service", "@0.service"));
        const r = await run("systemd-analyze", ["verify", `--root=${root}`, ...names]);
        assert.equal(r.code, 0, r.err);
        assert.equal(r.err.trim(), "", "systemd-analyze printed warnings");

        // And the check can fail: a bad limit and a stray line are reported.
        const bad = join(root, "etc/systemd/system/sluice-normalize.service");
        await writeFile(
          bad,
          (await readFile(bad, "utf8")).replace(/MemoryMax=.*/, "MemoryMax=lots") + "oops\n",
        );
        const broken = await run("systemd-analyze", [
          "verify",
          `--root=${root}`,
          "sluice-normalize.service",
        ]);
        assert.match(broken.err, /Invalid memory limit 'lots'/);
        assert.match(broken.err, /Missing '='/);
      });
    } finally {
      await rm(root, { recursive: true, force: true });
      await rm(bins, { recursive: true, force: true });
    }
  },
});

const shellcheck = await hostTools(["shellcheck"]);
if (!shellcheck.ok) console.log(`SKIP shellcheck: ${shellcheck.reason}`);

Deno.test({
  name: "shellcheck: the install and image scripts are clean",
  ignore: !shellcheck.ok,
  fn: async () => {
    const scripts = [
      INSTALL,
      ...(await readdir(join(repo, "infra/container")))
        .filter((f) => f.endsWith(".sh"))
        .map((f) => join(repo, "infra/container", f)),
    ];
    assert.ok(
      scripts.length >= 2,
      `expected install.sh and the container scripts, found ${scripts}`,
    );
    const r = await run("shellcheck", ["--severity=style", ...scripts]);
    assert.equal(r.code, 0, r.out + r.err);
  },
});

Deno.test("sluice.env.example: every stage accepts every variable in it, commented ones too", async () => {
  const env: Record<string, string> = {};
  for (const line of (await readFile(join(dir, "sluice.env.example"), "utf8")).split("\n")) {
    const m = line.match(/^#?([A-Z][A-Z0-9_]*)=(.*)$/);
    if (!m) continue;
    env[m[1]] = m[2] ||
      (/_(URL|ENDPOINT)$/.test(m[1]) ? "http://127.0.0.1:1/q" : "example-0123456789");
  }
  assert.ok(
    Object.keys(env).length >= 10,
    `expected the example's variables, found ${Object.keys(env)}`,
  );
  for (const s of STAGES) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(repo, "stages", s, "main.ts"), "--print-config"],
      cwd: repo,
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "",
        HOME: Deno.env.get("HOME") ?? "/tmp",
        NO_COLOR: "1",
        ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
        ...env,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, `${s}: ${err}`);
    assert.doesNotMatch(err, /unknown environment variable/, `${s}: ${err}`);
    const config = JSON.parse(new TextDecoder().decode(r.stdout));
    assert.equal(config.manifest.url, "postgres://sluice:***redacted***@db.internal:5432/sluice");
  }
});
