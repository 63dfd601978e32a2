import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { loadConfig } from "../config/mod.ts";
import { cacheDirOf, defaultCacheDir, earlyCacheDir, STAGING_CACHE_NAME } from "./cache_dir.ts";

Deno.test("the default cache is under the staging root when it exists, else the XDG cache", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-cache-dir-"));
  try {
    const missing = join(dir, "no-nvme");
    assert.equal(defaultCacheDir(dir, { HOME: "/home/s" }), join(dir, STAGING_CACHE_NAME));
    assert.equal(defaultCacheDir(missing, { XDG_CACHE_HOME: "/x", HOME: "/h" }), "/x/sluice");
    assert.equal(defaultCacheDir(missing, { HOME: "/h" }), "/h/.cache/sluice");
    assert.equal(
      defaultCacheDir(missing, { XDG_CACHE_HOME: "relative", HOME: "/h" }),
      "/h/.cache/sluice",
    );
    assert.match(defaultCacheDir(missing, {}), /^\/tmp\/sluice-cache-/);
  } finally {
    await rm(dir, { recursive: true });
  }
});

Deno.test("earlyCacheDir reads flag > environment > config file > default, like loadConfig", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-cache-dir-"));
  try {
    const nvme = join(dir, "nvme");
    await Deno.mkdir(nvme);
    const file = join(dir, "sluice.json");
    await writeFile(file, JSON.stringify({ runtime: { cacheDir: "from-file" } }));
    const rootFile = join(dir, "root.json");
    await writeFile(rootFile, JSON.stringify({ staging: { root: nvme } }));
    const cases: [string, string[], Record<string, string>, string][] = [
      ["flag", ["run", "--runtime-cache-dir", "/f"], { SLUICE_RUNTIME_CACHE_DIR: "/e" }, "/f"],
      ["flag=value", ["--runtime-cache-dir=/f2", "--config", file], {}, "/f2"],
      ["environment", ["--config", file], { SLUICE_RUNTIME_CACHE_DIR: "/e" }, "/e"],
      ["config file (relative to cwd)", ["--config", file], {}, join(dir, "from-file")],
      ["SLUICE_CONFIG", [], { SLUICE_CONFIG: file }, join(dir, "from-file")],
      [
        "staging root flag",
        ["--staging-root", nvme],
        { HOME: "/h" },
        join(nvme, STAGING_CACHE_NAME),
      ],
      ["staging root env", [], { SLUICE_STAGING_ROOT: nvme }, join(nvme, STAGING_CACHE_NAME)],
      ["staging root in file", ["--config", rootFile], {}, join(nvme, STAGING_CACHE_NAME)],
      [
        "absent staging root",
        ["--staging-root", join(dir, "none")],
        { HOME: "/h" },
        "/h/.cache/sluice",
      ],
    ];
    for (const [name, argv, env, expected] of cases) {
      await t.step(name, async () => {
        assert.equal(earlyCacheDir(argv, env, dir), expected);
        // The full configuration agrees.
        const config = await loadConfig({
          stage: "train",
          stageSchema: z.strictObject({}),
          argv: argv.filter((a) => a !== "run"),
          env,
          cwd: dir,
          onWarning: () => {},
        });
        assert.equal(cacheDirOf(config, env), expected);
      });
    }
  } finally {
    await rm(dir, { recursive: true });
  }
});
