import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, type Logger } from "../log/mod.ts";
import { backingDevice } from "./mount_info.ts";
import { openStaging } from "./staging_root.ts";

function collectingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    stage: "test",
    json: true,
    level: "debug",
    sink: (l) => lines.push(JSON.parse(l)),
  });
  return { log, lines };
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-staging-root-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("openStaging", async (t) => {
  await t.step("uses an existing root, or creates it inside an existing parent", async () => {
    await withTemp(async (dir) => {
      const { log, lines } = collectingLogger();
      const root = join(dir, "nvme", "sluice");
      await mkdir(join(dir, "nvme"));
      const s = await openStaging({
        root,
        fallbackRoot: join(dir, "fb"),
        stage: "ingest",
        workerId: "w1",
        log,
      });
      assert.equal(s.root, root);
      assert.equal(s.fallback, false);
      assert.equal(s.workerDir, join(root, "ingest", "w1"));
      assert.ok(await exists(join(root, "ingest")));
      assert.equal(await exists(join(dir, "fb")), false);
      assert.equal(lines.filter((l) => l.level === "warn").length, 0);
      const ready = lines.find((l) => l.msg === "staging ready");
      assert.equal(ready?.root, root);
      assert.equal(ready?.device, s.device);
      assert.ok(await s.freeBytes() > 0);
    });
  });

  await t.step("falls back with a warning naming both paths when the root is absent", async () => {
    await withTemp(async (dir) => {
      const { log, lines } = collectingLogger();
      const root = join(dir, "no-such-mount", "sluice");
      const fallbackRoot = join(dir, "fallback");
      const s = await openStaging({ root, fallbackRoot, stage: "normalize", workerId: "w1", log });
      assert.equal(s.root, fallbackRoot);
      assert.equal(s.fallback, true);
      // The missing mount point must not be created on the parent disk.
      assert.equal(await exists(join(dir, "no-such-mount")), false);
      const warns = lines.filter((l) => l.level === "warn");
      assert.equal(warns.length, 1);
      assert.equal(warns[0].root, root);
      assert.equal(warns[0].fallbackRoot, fallbackRoot);
      assert.match(String(warns[0].msg), new RegExp(`${root}.*${fallbackRoot}`));
      const lease = await s.lease("img_1");
      assert.ok(lease.dir.startsWith(join(fallbackRoot, "normalize", "w1") + "/"));
      await lease.release();
    });
  });

  await t.step("a file where the root should be is unavailable too", async () => {
    await withTemp(async (dir) => {
      const { log, lines } = collectingLogger();
      const root = join(dir, "root-file");
      await writeFile(root, "x");
      const s = await openStaging({
        root,
        fallbackRoot: join(dir, "fb"),
        stage: "ingest",
        workerId: "w",
        log,
      });
      assert.equal(s.fallback, true);
      assert.match(String(lines.find((l) => l.level === "warn")?.msg), /non-directory/);
    });
  });

  await t.step("an unusable fallback fails with both paths named", async () => {
    await withTemp(async (dir) => {
      const { log } = collectingLogger();
      const blocker = join(dir, "file");
      await writeFile(blocker, "x");
      await assert.rejects(
        openStaging({
          root: join(dir, "absent", "sluice"),
          fallbackRoot: join(blocker, "under-a-file"),
          stage: "ingest",
          workerId: "w",
          log,
        }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, "staging_unavailable");
          assert.ok(err.message.includes(join(dir, "absent", "sluice")), err.message);
          assert.ok(err.message.includes(join(blocker, "under-a-file")), err.message);
          return true;
        },
      );
    });
  });

  await t.step("requireNvme: an absent root fails fast instead of falling back", async () => {
    await withTemp(async (dir) => {
      const { log } = collectingLogger();
      const root = join(dir, "absent", "sluice");
      const fallbackRoot = join(dir, "fallback");
      await assert.rejects(
        openStaging({ root, fallbackRoot, requireNvme: true, stage: "ingest", workerId: "w", log }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, "staging_unavailable");
          assert.match(err.message, new RegExp(root));
          return true;
        },
      );
      assert.equal(await exists(fallbackRoot), false);
    });
  });

  await t.step("requireNvme: a root on a non-NVMe device is refused, naming it", async () => {
    await withTemp(async (dir) => {
      const { log } = collectingLogger();
      // The real mount table when the temp dir is not on NVMe (this machine); otherwise a
      // literal one that puts it on a SATA disk.
      const real = await backingDevice(dir);
      const device = real.isNvme
        ? { mountInfoText: "1 0 8:0 / / rw - ext4 /dev/sda1 rw\n", sysRoot: join(dir, "nosys") }
        : undefined;
      const dev = await backingDevice(dir, device);
      assert.equal(dev.isNvme, false);
      await assert.rejects(
        openStaging({
          root: dir,
          fallbackRoot: join(dir, "fb"),
          requireNvme: true,
          stage: "ingest",
          workerId: "w",
          log,
          device,
        }),
        (err: Error & { code?: string; device?: string }) => {
          assert.equal(err.code, "staging_not_nvme");
          assert.equal(err.device, dev.source);
          assert.ok(err.message.includes(dev.source), err.message);
          assert.ok(err.message.includes(dev.fsType), err.message);
          return true;
        },
      );
      assert.equal(await exists(join(dir, "fb")), false, "no fallback either");
    });
  });

  await t.step("requireNvme: accepted when the mount table says NVMe", async () => {
    await withTemp(async (dir) => {
      const { log } = collectingLogger();
      const s = await openStaging({
        root: dir,
        requireNvme: true,
        stage: "ingest",
        workerId: "w",
        log,
        device: { mountInfoText: "1 0 259:0 / / rw - xfs /dev/nvme0n1 rw\n" },
      });
      assert.equal(s.isNvme, true);
      assert.equal(s.device, "/dev/nvme0n1");
      assert.equal(s.fallback, false);
    });
  });

  await t.step("invalid options name the field", async () => {
    const { log } = collectingLogger();
    for (const workerId of ["../x", "", ".hidden", "a/b"]) {
      await assert.rejects(
        openStaging({ root: "/nonexistent", stage: "ingest", workerId, log }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, "invalid_options");
          assert.match(err.message, /workerId/);
          return true;
        },
      );
    }
    await assert.rejects(
      openStaging({ root: "/x", stage: "ingest", workerId: "w", minFreeMb: -1, log }),
      /minFreeMb/,
    );
  });
});

Deno.test("Staging.sweep", async (t) => {
  await t.step("removes this worker's stale leases only, then its empty directory", async () => {
    await withTemp(async (dir) => {
      const { log } = collectingLogger();
      const common = { root: dir, stage: "ingest", log, leaseTimeoutMs: 60_000 };
      const mine = await openStaging({ ...common, workerId: "w1" });
      const other = await openStaging({ ...common, workerId: "w2" });

      // Stale by its record.
      const stale = await mine.lease("img_stale");
      const rec = JSON.parse(await readFile(join(stale.dir, ".lease.json"), "utf8"));
      rec.startedAt = Date.now() - 120_000;
      await writeFile(join(stale.dir, ".lease.json"), JSON.stringify(rec));
      await stale.publish("a.jpg", new Uint8Array(10));
      // Stale without a record (crash before it was written): judged by mtime.
      const torn = join(mine.workerDir, "torn-lease");
      await mkdir(torn);
      const old = new Date(Date.now() - 120_000);
      await utimes(torn, old, old);
      // Young: kept.
      const young = await mine.lease("img_young");
      // Another worker's stale lease: not ours to remove.
      const theirs = await other.lease("img_theirs");
      const rec2 = JSON.parse(await readFile(join(theirs.dir, ".lease.json"), "utf8"));
      rec2.startedAt = Date.now() - 120_000;
      await writeFile(join(theirs.dir, ".lease.json"), JSON.stringify(rec2));

      // A fresh process with the same worker id sweeps at start-up.
      const restarted = await openStaging({ ...common, workerId: "w1" });
      const res = await restarted.sweep();
      assert.deepEqual(res.removed.sort(), [stale.dir, torn].sort());
      assert.equal(res.kept, 1);
      assert.equal(await exists(stale.dir), false);
      assert.equal(await exists(young.dir), true);
      assert.equal(await exists(theirs.dir), true);

      await young.release();
      const res2 = await restarted.sweep();
      assert.deepEqual(res2, { removed: [], kept: 0 });
      assert.equal(await exists(mine.workerDir), false, "empty worker dir removed");
      assert.deepEqual(await readdir(join(dir, "ingest")), ["w2"]);

      // A lease after the sweep recreates the worker directory.
      const again = await restarted.lease("img_again");
      assert.equal(await exists(again.dir), true);
      await again.release();
      await theirs.release();
      await stale.release();
    });
  });

  await t.step("sweep with nothing staged is a no-op", async () => {
    await withTemp(async (dir) => {
      const { log } = collectingLogger();
      const s = await openStaging({ root: dir, stage: "infer", workerId: "w", log });
      assert.deepEqual(await s.sweep(), { removed: [], kept: 0 });
    });
  });
});

// A real worker process that stages an item and dies without releasing it, as a crash would.
async function crashedWorker(root: string, workerId: string): Promise<string> {
  const mod = new URL("./staging_root.ts", import.meta.url).href;
  const logMod = new URL("../log/mod.ts", import.meta.url).href;
  const program = `
    import { openStaging } from ${JSON.stringify(mod)};
    import { createLogger } from ${JSON.stringify(logMod)};
    const log = createLogger({ stage: "ingest", json: true, sink: () => {} });
    const staging = await openStaging({ root: ${JSON.stringify(root)}, stage: "ingest",
      workerId: ${JSON.stringify(workerId)}.replace("PID", String(Deno.pid)), log });
    const lease = await staging.lease("img_crash");
    await lease.publish("a.jpg", new Uint8Array(1000));
    console.log(lease.dir);
    Deno.exit(3);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", program],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 3, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test({
  name: "Staging.sweep reclaims what a crashed worker process left",
  ignore: Deno.build.os !== "linux",
  async fn(t) {
    await t.step(
      "a restarted worker with a new <host>-<pid> id removes its predecessor's leases",
      async () => {
        await withTemp(async (dir) => {
          const { log } = collectingLogger();
          const common = { root: dir, stage: "ingest", log, leaseTimeoutMs: 600_000 };
          const leftover = await crashedWorker(dir, "host-PID");
          const deadWorkerDir = join(leftover, "..");
          assert.equal(await exists(join(leftover, ".lease.json")), true);
          // A live worker of the same stage (this process) with a young and an old lease.
          const live = await openStaging({ ...common, workerId: "live" });
          const liveYoung = await live.lease("img_live");
          const liveOld = await live.lease("img_live_old");
          const rec = JSON.parse(await readFile(join(liveOld.dir, ".lease.json"), "utf8"));
          rec.startedAt = Date.now() - 3_600_000;
          await writeFile(join(liveOld.dir, ".lease.json"), JSON.stringify(rec));

          const restarted = await openStaging({ ...common, workerId: `host-${Deno.pid}-new` });
          const res = await restarted.sweep();
          assert.deepEqual(res.removed, [leftover]);
          assert.equal(await exists(deadWorkerDir), false, "the gone worker's directory too");
          assert.equal(await exists(liveYoung.dir), true, "a live owner's leases stay, young...");
          assert.equal(await exists(liveOld.dir), true, "...and old");
          await liveYoung.release();
          await liveOld.release();
        });
      },
    );

    await t.step("a stable worker id: young leases of the dead predecessor go too", async () => {
      await withTemp(async (dir) => {
        const { log } = collectingLogger();
        const leftover = await crashedWorker(dir, "pod-7");
        const again = await openStaging({
          root: dir,
          stage: "ingest",
          workerId: "pod-7",
          log,
          leaseTimeoutMs: 600_000,
        });
        const mine = await again.lease("img_new");
        const res = await again.sweep();
        assert.deepEqual(res, { removed: [leftover], kept: 1 });
        assert.equal(await exists(mine.dir), true, "this process's own lease is held");
        assert.equal(await again.stagedBytes(), (await stat(join(mine.dir, ".lease.json"))).size);
        await mine.release();
      });
    });

    await t.step("a stable worker id: a lease its predecessor died creating goes too", async () => {
      await withTemp(async (dir) => {
        const { log } = collectingLogger();
        const workerDir = join(dir, "ingest", "pod-8");
        // Killed between mkdir and the record: an empty record (the old non-atomic write) and
        // no record at all, both made before this process started and so not young twins'.
        const empty = join(workerDir, "lease-empty");
        const none = join(workerDir, "lease-none");
        await mkdir(empty, { recursive: true });
        await mkdir(none);
        await writeFile(join(empty, ".lease.json"), "");
        const before = new Date(performance.timeOrigin - 2000);
        await Deno.utime(empty, before, before);
        await Deno.utime(none, before, before);
        // One made after this process began: perhaps a twin mid-create, so it stays.
        const twin = join(workerDir, "lease-twin");
        await mkdir(twin);
        const again = await openStaging({
          root: dir,
          stage: "ingest",
          workerId: "pod-8",
          log,
          leaseTimeoutMs: 600_000,
        });
        const res = await again.sweep();
        assert.deepEqual(res.removed.sort(), [empty, none].sort());
        assert.equal(res.kept, 1);
        assert.equal(await exists(twin), true);
        // A lease this process creates has a whole record and no temp file beside it.
        const mine = await again.lease("img_new");
        assert.deepEqual((await Array.fromAsync(Deno.readDir(mine.dir))).map((e) => e.name), [
          ".lease.json",
        ]);
        await mine.release();
      });
    });

    await t.step("leases without owner information (older records) are left alone", async () => {
      await withTemp(async (dir) => {
        const { log } = collectingLogger();
        const oldStyle = join(dir, "ingest", "old-worker", "lease-1");
        await mkdir(oldStyle, { recursive: true });
        await writeFile(
          join(oldStyle, ".lease.json"),
          JSON.stringify({ leaseId: "lease-1", itemId: "x", pid: 1, startedAt: 0 }),
        );
        const s = await openStaging({ root: dir, stage: "ingest", workerId: "w", log });
        assert.deepEqual(await s.sweep(), { removed: [], kept: 0 });
        assert.equal(await exists(oldStyle), true);
      });
    });
  },
});
