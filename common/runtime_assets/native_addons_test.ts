/**
 * The native-addon mechanism of compiled binaries, reproduced under `deno run` in fresh processes
 * (a process can load a library once): an addon copied away from its shared library, as
 * `deno compile` extracts it, fails to load; materialised in its package layout it loads; and a
 * sharp package whose addon cannot find libvips works once its addon comes from the runtime cache.
 */
import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { materialiseFiles } from "./materialise.ts";
import { type NativeAddonSource, onnxRuntimeAddon, sharpAddon } from "./native_addons.ts";

const testdata = (f: string) => fileURLToPath(new URL(`./testdata/${f}`, import.meta.url));
const require = createRequire(import.meta.url);

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

async function child(script: string, args: string[], env: Record<string, string> = {}) {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", testdata(script), ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: o.code, stdout: d.decode(o.stdout), stderr: d.decode(o.stderr) } as Out;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-native-addons-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const CASES: { source: () => NativeAddonSource; library: RegExp }[] = [
  {
    source: () => sharpAddon(),
    library: /libvips-cpp\.so\.[\d.]+: cannot open shared object file/,
  },
  { source: () => onnxRuntimeAddon(), library: /libonnxruntime\.so\.1: cannot open shared object/ },
];

for (const { source, library } of CASES) {
  const s = source();
  Deno.test(`${s.kind}: the addon alone fails to load; materialised with its libraries it loads`, async () => {
    await withDir(async (dir) => {
      const addon = s.files.find((f) => f.to === s.addonRel)!;
      const alone = join(dir, "extracted", basename(addon.from));
      await mkdir(dirname(alone));
      await Deno.copyFile(addon.from, alone);
      const failed = await child("load_addon.ts", [alone]);
      assert.notEqual(failed.code, 0, "an addon copied away from its library must not load");
      assert.match(failed.stderr, library);

      const m = materialiseFiles({ cacheDir: join(dir, "cache"), name: s.name, files: s.files });
      const loaded = await child("load_addon.ts", [join(m.dir, s.addonRel)]);
      assert.equal(loaded.code, 0, loaded.stderr);
      assert.equal(loaded.stdout.trim(), "loaded");
    });
  });
}

/** The directory of the installed package that `file` (a resolved path) belongs to. */
function packageDir(file: string, name: string): string {
  let d = dirname(file);
  while (d !== "/") {
    try {
      if (JSON.parse(Deno.readTextFileSync(join(d, "package.json"))).name === name) return d;
    } catch {
      // Not the package root yet.
    }
    d = dirname(d);
  }
  throw new Error(`package ${name}: expected a package.json above ${file}, found none`);
}

Deno.test("sharp laid out as in a compiled binary fails, and works with its addon from the runtime cache", async () => {
  await withDir(async (dir) => {
    // <dir>/app/node_modules: sharp, its addon package and its JS dependencies, copied. libvips
    // goes to <dir>/node_modules, where require() finds it but the addon's rpath does not: the
    // situation of an addon extracted alone by a compiled binary.
    const sharpEntry = require.resolve("sharp");
    const sharpReq = createRequire(sharpEntry);
    const addon = sharpAddon();
    const libvipsFrom = addon.files.find((f) => f.to.includes("sharp-libvips"))!.from;
    const packages: [string, string][] = [
      ["sharp", packageDir(sharpEntry, "sharp")],
      ["detect-libc", packageDir(sharpReq.resolve("detect-libc"), "detect-libc")],
      ["semver", packageDir(sharpReq.resolve("semver"), "semver")],
      ["@img/colour", packageDir(sharpReq.resolve("@img/colour"), "@img/colour")],
      [
        `@img/sharp-linux-${Deno.build.arch === "x86_64" ? "x64" : "arm64"}`,
        dirname(addon.requireKey),
      ],
    ];
    const appModules = join(dir, "app", "node_modules");
    for (const [name, from] of packages) {
      await cp(from, join(appModules, name), { recursive: true, dereference: true });
    }
    const libvipsPkg = dirname(dirname(libvipsFrom));
    const libvipsName = `@img/${basename(libvipsPkg)}`;
    await cp(libvipsPkg, join(dir, "app", "node_modules", libvipsName), {
      recursive: true,
      dereference: true,
    });
    await mkdir(join(dir, "node_modules", "@img"), { recursive: true });
    await rename(join(appModules, libvipsName), join(dir, "node_modules", libvipsName));
    const entry = join(appModules, "sharp", "dist", "index.cjs");

    const without = await child("sharp_from_tree.ts", [entry]);
    assert.notEqual(without.code, 0, "sharp must not load when its addon cannot find libvips");
    assert.match(without.stderr, /Could not load the "sharp" module/);
    assert.match(without.stderr, /libvips-cpp\.so\.[\d.]+: cannot open shared object file/);

    const cacheDir = join(dir, "cache");
    const withCache = await child("sharp_from_tree.ts", [entry, cacheDir]);
    assert.equal(withCache.code, 0, withCache.stderr);
    const r = JSON.parse(withCache.stdout);
    assert.deepEqual([r.width, r.height, r.format], [32, 24, "jpeg"]);
    assert.ok(r.mapped.length >= 2, `addon and libvips mapped: ${r.mapped}`);
    for (const p of r.mapped) assert.ok(p.startsWith(cacheDir + "/"), `${p} is in the cache`);
  });
});

Deno.test("onnxruntime-node loads its binding from the runtime cache and runs a model", async () => {
  await withDir(async (dir) => {
    const cacheDir = join(dir, "cache");
    const r = await child("onnxruntime_run.ts", [], { SLUICE_RUNTIME_CACHE_DIR: cacheDir });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.y, [2, 3.5]);
    assert.ok(out.mapped.some((p: string) => p.endsWith("/libonnxruntime.so.1")), out.mapped);
    for (const p of out.mapped) assert.ok(p.startsWith(cacheDir + "/"), `${p} is in the cache`);
  });
});

Deno.test("the stage entry points load sharp from the runtime cache before sharp is evaluated", async () => {
  await withDir(async (dir) => {
    const cacheDir = join(dir, "cache");
    for (const stage of ["ingest", "normalize", "infer"]) {
      const main = fileURLToPath(new URL(`../../stages/${stage}/main.ts`, import.meta.url));
      // Import the entry's whole module graph (import.meta.main is false: main() does not run),
      // then ask where libvips came from.
      const code = `await import(${JSON.stringify(main)});
        const m = Deno.readTextFileSync("/proc/self/maps").split("\\n")
          .map((l) => l.split(/\\s+/).slice(5).join(" ")).filter((p) => /libvips-cpp/.test(p));
        console.log(JSON.stringify([...new Set(m)]));`;
      const o = await new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        env: { SLUICE_RUNTIME_CACHE_DIR: cacheDir },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const d = new TextDecoder();
      assert.equal(o.code, 0, d.decode(o.stderr));
      const mapped: string[] = JSON.parse(d.decode(o.stdout));
      assert.equal(mapped.length, 1, `${stage}: libvips mapped once: ${mapped}`);
      assert.ok(mapped[0].startsWith(cacheDir + "/"), `${stage}: ${mapped[0]} is in the cache`);
    }
  });
});

Deno.test("the infer detector worker loads onnxruntime's binding from the runtime cache", async () => {
  await withDir(async (dir) => {
    const cacheDir = join(dir, "cache");
    const session = fileURLToPath(
      new URL("../../stages/infer/detector_session.ts", import.meta.url),
    );
    // The worker is a thread of this process: its libraries show in the process's maps.
    const code = `const { DetectorSession } = await import(${JSON.stringify(session)});
      const s = await DetectorSession.open(${
      JSON.stringify(testdata("add_one.onnx"))
    }, { provider: "cpu" });
      const m = Deno.readTextFileSync("/proc/self/maps").split("\\n")
        .map((l) => l.split(/\\s+/).slice(5).join(" "))
        .filter((p) => /onnxruntime[^/]*\\.(node|so[.0-9]*)$/.test(p));
      console.log(JSON.stringify({ inputs: s.graph.inputNames, mapped: [...new Set(m)] }));
      await s.close();`;
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env: { SLUICE_RUNTIME_CACHE_DIR: cacheDir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    assert.equal(o.code, 0, d.decode(o.stderr));
    const r = JSON.parse(d.decode(o.stdout));
    assert.deepEqual(r.inputs, ["x"]);
    assert.ok(r.mapped.some((p: string) => p.endsWith("/libonnxruntime.so.1")), r.mapped);
    assert.ok(r.mapped.some((p: string) => p.endsWith("/onnxruntime_binding.node")), r.mapped);
    for (const p of r.mapped) assert.ok(p.startsWith(cacheDir + "/"), `${p} is in the cache`);
  });
});
