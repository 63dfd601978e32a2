/**
 * `deno task compile`: what it builds, and that it fails loudly (non-zero, the reason, the way
 * out) when it cannot build, here for real. Building and running the binaries needs Deno's runtime
 * base (denort), which cannot be downloaded on machines without dl.deno.land: those tests skip
 * and say why.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { compilePlan } from "./compile_plan.ts";
import { elfArch, findDenortBase } from "./denort.ts";
import { missingNativePackages } from "./native_packages.ts";
import { binaryPath, compileArgs, hostTarget, STAGE_BINARIES, TARGETS } from "./stages.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = new URL("./main.ts", import.meta.url).pathname;
const host = hostTarget();
const base = host
  ? await findDenortBase(host)
  : { found: false as const, reason: "no Linux target" };
if (!base.found) console.log(`compiled-binary tests skipped: ${base.reason}`);

async function compileTask(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "sluice-compile-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";

Deno.test("every stage has an entry, and compile embeds the worker and the trainer", async () => {
  for (const s of STAGE_BINARIES) {
    assert.ok((await Deno.stat(join(ROOT, s.entry))).isFile, `${s.entry} exists`);
    for (const target of TARGETS) {
      const args = compileArgs(s, "dist", target);
      assert.deepEqual(args.slice(-3), ["--output", `dist/${target}/${s.binary}`, s.entry]);
      assert.deepEqual(args.slice(3, 5), ["--target", target]);
    }
    for (const p of s.include) assert.ok((await Deno.stat(join(ROOT, p))).isFile, `${p} exists`);
  }
  const train = STAGE_BINARIES.find((s) => s.stage === "train")!;
  assert.ok(train.include.includes("stages/train/trainer/train.py"));
  assert.ok(train.include.every((p) => p.endsWith(".py")), "only the trainer's Python files");
  const infer = STAGE_BINARIES.find((s) => s.stage === "infer")!;
  assert.deepEqual(infer.include, ["stages/infer/_detector_worker.ts"]);
});

Deno.test("the planned deno compile excludes every npm package the stage does not import", async () => {
  // `deno compile` embeds node_modules whole (`--exclude` is its documented way out), and
  // node_modules holds all of deno.lock: test-only and infra-only packages too.
  const notShipped = ["fauxqs@", "@action-validator+core@", "hyparquet-writer@", "cdktf@"];
  for (const s of STAGE_BINARIES) {
    const args = await compilePlan(ROOT, s, "dist", "x86_64-unknown-linux-gnu");
    const excluded = args.flatMap((a, i) => args[i - 1] === "--exclude" ? [a] : []);
    assert.ok(args.indexOf("--exclude") < args.indexOf("--output"), "flags before the entry");
    for (const pkg of notShipped) {
      assert.ok(
        excluded.some((p) => p.startsWith(`node_modules/.deno/${pkg}`)),
        `${s.binary}: expected --exclude node_modules/.deno/${pkg}*, found ${excluded}`,
      );
    }
    assert.ok(
      excluded.includes("node_modules/fauxqs"),
      `${s.binary}: the node_modules/fauxqs link`,
    );
    const graphUses = ["zod@", "yaml@"].concat(s.stage === "train" ? [] : ["sharp@"]);
    for (const pkg of graphUses) {
      assert.ok(
        !excluded.some((p) => p.startsWith(`node_modules/.deno/${pkg}`)),
        `${s.binary} imports ${pkg} but the plan excludes it`,
      );
    }
    for (const p of excluded) assert.ok(existsSync(join(ROOT, p)), `${p} exists`);
  }
});

Deno.test("deno task compile without Deno's runtime base exits 1, says why and the way out", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "dist");
    const r = await compileTask(["--out-dir", out], {
      PATH,
      HOME: dir,
      DENO_DIR: join(dir, "deno-dir"),
      NO_COLOR: "1",
    });
    assert.equal(r.code, 1, r.stderr);
    for (const target of TARGETS) {
      assert.ok(r.stderr.includes(`cannot build ${out}/${target}/sluice-*`), r.stderr);
      assert.ok(r.stderr.includes(`denort-${target}.zip for Deno ${Deno.version.deno}`), r.stderr);
    }
    assert.match(r.stderr, /nothing built/);
    assert.match(r.stderr, /https:\/\/dl\.deno\.land/);
    assert.match(r.stderr, /DENORT_BIN=<path to the denort binary of Deno/);
    assert.match(r.stderr, /DENORT_BIN=\$\(which deno\) does NOT produce a stage binary/);
    assert.equal(r.stdout, "", "no binary reported");
    await assert.rejects(Deno.stat(out), "no dist directory");
  });
});

Deno.test("DENORT_BIN is refused when it cannot make a stage binary", async (t) => {
  await withDir(async (dir) => {
    await t.step("the deno CLI itself", async () => {
      const r = await compileTask(["--target", "x86_64-unknown-linux-gnu", "train"], {
        PATH,
        HOME: dir,
        DENORT_BIN: Deno.execPath(),
      });
      assert.equal(r.code, 1);
      assert.ok(r.stderr.includes(`DENORT_BIN=${Deno.execPath()} is the deno CLI, not denort`));
    });
    await t.step("another architecture's file", async () => {
      const fake = join(dir, "denort-arm");
      const elf = new Uint8Array(64);
      elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
      elf[18] = 0xb7; // EM_AARCH64
      await writeFile(fake, elf);
      assert.equal(elfArch(fake), "aarch64");
      const r = await compileTask(["--target", "x86_64-unknown-linux-gnu"], {
        PATH,
        HOME: dir,
        DENORT_BIN: fake,
      });
      assert.equal(r.code, 1);
      assert.ok(r.stderr.includes(`DENORT_BIN=${fake} is an aarch64 binary; expected the x86_64`));
    });
    await t.step("a path that does not exist", async () => {
      const r = await compileTask(["--target", "x86_64-unknown-linux-gnu"], {
        PATH,
        HOME: dir,
        DENORT_BIN: join(dir, "nope"),
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /DENORT_BIN=.*nope does not exist/);
    });
    await t.step("bad arguments exit 2", async () => {
      const r = await compileTask(["--target", "riscv64-unknown-linux-gnu", "bake"], { PATH });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /found bake, riscv64-unknown-linux-gnu/);
    });
  });
});

Deno.test("a target whose native packages are not installed is named", () => {
  assert.deepEqual(missingNativePackages("x86_64-unknown-linux-gnu", join(ROOT, "no-such-dir")), [
    "@img/sharp-linux-x64",
    "@img/sharp-libvips-linux-x64",
    "onnxruntime-node (bin/napi-v6/linux/x64)",
  ]);
  if (host === "x86_64-unknown-linux-gnu") {
    assert.deepEqual(missingNativePackages(host, ROOT), [], "this machine's packages are there");
  }
});

Deno.test({
  name: "compiled stage binaries run --help and materialise sharp into their runtime cache",
  ignore: !base.found,
  async fn() {
    await withDir(async (dir) => {
      const out = join(dir, "dist");
      const passOn: Record<string, string> = {};
      for (const k of ["HOME", "DENO_DIR", "XDG_CACHE_HOME", "DENORT_BIN"]) {
        const v = Deno.env.get(k);
        if (v !== undefined) passOn[k] = v;
      }
      const r = await compileTask(["--out-dir", out, "--target", host!], { PATH, ...passOn });
      assert.equal(r.code, 0, r.stderr);
      const cache = join(dir, "cache");
      for (const s of STAGE_BINARIES) {
        const bin = binaryPath(s, out, host!);
        const run = await new Deno.Command(bin, {
          args: ["--help"],
          cwd: dir,
          env: { SLUICE_RUNTIME_CACHE_DIR: cache },
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(run.success, `${bin} --help: ${new TextDecoder().decode(run.stderr)}`);
        assert.match(new TextDecoder().decode(run.stdout), new RegExp(s.binary));
        assert.ok((await Deno.lstat(join(out, s.binary))).isSymlink);
      }
      // ingest, normalize and infer import sharp: its addon and libvips came from the cache.
      const sharpDirs = [...Deno.readDirSync(cache)].filter((e) => e.name.startsWith("sharp-"));
      assert.equal(sharpDirs.length, 1);
      assert.ok((await Deno.stat(join(cache, sharpDirs[0].name, ".complete"))).isFile);
    });
  },
});
