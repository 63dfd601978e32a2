import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SluiceError } from "../errors/mod.ts";
import { COMPLETE_FILE, INDEX_DIR, materialiseFiles } from "./materialise.ts";
import { onnxRuntimeAddon } from "./native_addons.ts";

const CHILD = fileURLToPath(new URL("./testdata/materialise_child.ts", import.meta.url));

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-runtime-assets-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function sha256(path: string): string {
  return createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
}

Deno.test("materialiseFiles writes a content-addressed directory once and reuses it", async () => {
  await withDir(async (dir) => {
    const src = join(dir, "src");
    await Deno.mkdir(src);
    await Deno.writeTextFile(join(src, "train.py"), "print('v1')\n");
    await Deno.writeTextFile(join(src, "lib.so.1"), "ELF?");
    const spec = {
      cacheDir: join(dir, "cache"),
      name: "trainer",
      files: [
        { from: join(src, "train.py"), to: "train.py" },
        { from: join(src, "lib.so.1"), to: "nested/lib/lib.so.1", mode: 0o755 },
      ],
    };
    const first = materialiseFiles(spec);
    assert.equal(first.written, true);
    assert.match(first.dir, /\/cache\/trainer-[0-9a-f]{24}$/);
    assert.equal(await Deno.readTextFile(join(first.dir, "train.py")), "print('v1')\n");
    assert.equal((await Deno.stat(join(first.dir, "nested/lib/lib.so.1"))).mode! & 0o777, 0o755);
    assert.equal((await Deno.stat(join(first.dir, "train.py"))).mode! & 0o777, 0o644);
    const record = JSON.parse(await Deno.readTextFile(join(first.dir, COMPLETE_FILE)));
    assert.deepEqual(record.files.map((f: { path: string }) => f.path), [
      "nested/lib/lib.so.1",
      "train.py",
    ]);

    const again = materialiseFiles(spec);
    assert.deepEqual(again, { dir: first.dir, written: false });
    // The next start finds the directory by the sources' fingerprint (no re-hashing).
    const index = [...Deno.readDirSync(join(spec.cacheDir, INDEX_DIR))];
    assert.equal(index.length, 1);
    assert.equal(
      Deno.readTextFileSync(join(spec.cacheDir, INDEX_DIR, index[0].name)).trim(),
      first.dir.split("/").pop(),
    );

    await Deno.writeTextFile(join(src, "train.py"), "print('v2')\n");
    const changed = materialiseFiles(spec);
    assert.equal(changed.written, true);
    assert.notEqual(changed.dir, first.dir, "new content, new directory");
    assert.equal(await Deno.readTextFile(join(changed.dir, "train.py")), "print('v2')\n");
    // Nothing but the two complete directories: no temporary directories left behind.
    const entries = [...Deno.readDirSync(spec.cacheDir)].map((e) => e.name)
      .filter((n) => n !== INDEX_DIR).sort();
    assert.deepEqual(entries, [first.dir, changed.dir].map((d) => d.split("/").pop()).sort());
  });
});

Deno.test("materialiseFiles replaces a damaged directory instead of trusting it", async () => {
  await withDir(async (dir) => {
    const src = join(dir, "a.py");
    await Deno.writeTextFile(src, "x = 1\n");
    const spec = { cacheDir: join(dir, "cache"), name: "t", files: [{ from: src, to: "a.py" }] };
    const { dir: out } = materialiseFiles(spec);
    await Deno.writeTextFile(join(out, "a.py"), "x = 1\n# truncated or edited by hand\n");
    const fixed = materialiseFiles(spec);
    assert.deepEqual(fixed, { dir: out, written: true });
    assert.equal(await Deno.readTextFile(join(out, "a.py")), "x = 1\n");
  });
});

Deno.test("materialiseFiles names what is wrong", async (t) => {
  await withDir(async (dir) => {
    const src = join(dir, "a.py");
    await Deno.writeTextFile(src, "x = 1\n");
    const cacheDir = join(dir, "cache");
    const fails = (spec: Parameters<typeof materialiseFiles>[0], code: string, re: RegExp) =>
      assert.throws(() => materialiseFiles(spec), (e: unknown) => {
        assert.ok(e instanceof SluiceError);
        assert.equal(e.code, code);
        assert.match(e.message, re);
        return true;
      });
    await t.step("a missing source names the file", () => {
      fails(
        { cacheDir, name: "t", files: [{ from: join(dir, "nope.py"), to: "nope.py" }] },
        "runtime_asset_missing",
        /nope\.py/,
      );
    });
    await t.step("a path escaping the directory", () => {
      fails(
        { cacheDir, name: "t", files: [{ from: src, to: "../a.py" }] },
        "runtime_asset_invalid",
        /relative path inside/,
      );
    });
    await t.step("a bad name", () => {
      fails(
        { cacheDir, name: "../x", files: [{ from: src, to: "a.py" }] },
        "runtime_asset_invalid",
        /name/,
      );
    });
    await t.step("a cache that cannot be created names the setting", () => {
      fails(
        { cacheDir: join(src, "under-a-file"), name: "t", files: [{ from: src, to: "a.py" }] },
        "runtime_cache_unwritable",
        /SLUICE_RUNTIME_CACHE_DIR/,
      );
    });
  });
});

Deno.test("two processes materialising at once agree on one intact directory", async () => {
  const source = onnxRuntimeAddon();
  const expected = new Map(source.files.map((f) => [f.to, sha256(f.from)]));
  for (let round = 0; round < 3; round++) {
    await withDir(async (dir) => {
      const cacheDir = join(dir, "cache");
      const run = () =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", CHILD, cacheDir],
          stdout: "piped",
          stderr: "piped",
        }).output();
      const outs = await Promise.all([run(), run()]);
      const results = outs.map((o) => {
        assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
        return JSON.parse(new TextDecoder().decode(o.stdout)) as { dir: string; written: boolean };
      });
      assert.equal(results[0].dir, results[1].dir, "both use the same directory");
      assert.equal(results.filter((r) => r.written).length, 1, "exactly one copy was put in place");
      for (const [rel, hash] of expected) {
        assert.equal(sha256(join(results[0].dir, rel)), hash, `${rel} intact`);
      }
      const left = [...Deno.readDirSync(cacheDir)].map((e) => e.name).filter((n) =>
        n !== INDEX_DIR
      );
      assert.deepEqual(left, [results[0].dir.split("/").pop()], "no temporary directories left");
    });
  }
});
