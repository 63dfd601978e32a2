import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createLogger } from "../log/mod.ts";
import { LeaseReleasedError, StagingFullError } from "./errors.ts";
import { openStaging, type StagingOptions } from "./staging_root.ts";
import { skipUnless } from "../../tests/harness/requirement.ts";

const log = createLogger({ stage: "test", json: true, sink: () => {} });

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function withStaging(
  extra: Partial<StagingOptions>,
  fn: (s: Awaited<ReturnType<typeof openStaging>>, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-lease-"));
  try {
    const s = await openStaging({
      root: dir,
      stage: "ingest",
      workerId: "w1",
      minFreeMb: 0,
      log,
      ...extra,
    });
    await fn(s, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A stream the test feeds by hand, to observe the disk between chunks. */
function manualStream() {
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => void (ctl = c) });
  return { stream, ctl };
}

function bytesOf(n: number, fill = 7): Uint8Array {
  return new Uint8Array(n).fill(fill);
}

async function* chunks(total: number, size: number): AsyncGenerator<Uint8Array> {
  for (let sent = 0; sent < total; sent += size) yield bytesOf(Math.min(size, total - sent));
}

Deno.test("StagingLease lifecycle", async (t) => {
  await t.step("lease dir, record, publish, release (idempotent)", async () => {
    const gauges: { staged: number[]; free: number[] } = { staged: [], free: [] };
    await withStaging({
      metrics: {
        setStagedBytes: (n) => gauges.staged.push(n),
        setFreeBytes: (n) => gauges.free.push(n),
      },
    }, async (s, dir) => {
      const lease = await s.lease("img_42");
      assert.equal(dirname(lease.dir), join(dir, "ingest", "w1"));
      const rec = JSON.parse(await readFile(join(lease.dir, ".lease.json"), "utf8"));
      assert.equal(rec.itemId, "img_42");
      assert.equal(rec.leaseId, lease.id);
      assert.equal(rec.workerId, "w1");
      assert.ok(Math.abs(rec.startedAt - Date.now()) < 10_000);

      const other = await s.lease("img_42");
      assert.notEqual(other.dir, lease.dir, "each lease gets its own random directory");

      const pub = await lease.publish("raw/photo.jpg", bytesOf(1000));
      assert.equal(pub.bytes, 1000);
      assert.equal(pub.path, lease.path("raw/photo.jpg"));
      assert.deepEqual(new Uint8Array(await readFile(pub.path)), bytesOf(1000));
      const staged = await s.stagedBytes();
      assert.ok(staged >= 1000 && staged < 2000, `staged ${staged}`);
      assert.ok(gauges.staged.at(-1)! >= 1000);
      assert.ok(gauges.free.at(-1)! > 0);

      await lease.release();
      assert.equal(await exists(lease.dir), false);
      assert.equal(lease.released, true);
      await lease.release();
      assert.throws(() => lease.path("x"), LeaseReleasedError);
      await assert.rejects(lease.publish("x", bytesOf(1)), LeaseReleasedError);
      await other.release();
      assert.equal(await s.stagedBytes(), 0);
      assert.equal(gauges.staged.at(-1), 0);
    });
  });

  await t.step("await using releases when the item throws", async () => {
    await withStaging({}, async (s) => {
      let dir = "";
      await assert.rejects(async () => {
        await using lease = await s.lease("img_bad");
        dir = lease.dir;
        await lease.publish("a", bytesOf(5));
        throw new Error("decode failed");
      }, /decode failed/);
      assert.notEqual(dir, "");
      assert.equal(await exists(dir), false);
    });
  });
});

Deno.test("StagingLease.path keeps hostile names inside the lease", async () => {
  await withStaging({}, async (s, dir) => {
    const lease = await s.lease("img_1");
    const hostile = [
      "../../etc/passwd",
      "/etc/passwd",
      "..",
      ".",
      "",
      "a/../../../b",
      "x\0y",
      "..\\..\\boot.ini",
      ".lease.json",
      "../w2/lease/.lease.json",
      "%2e%2e%2fetc",
      "\u202e gnp.exe",
      "a".repeat(4000),
    ];
    const seen = new Set<string>();
    for (const name of hostile) {
      const p = lease.path(name);
      assert.equal(dirname(resolve(p)), lease.dir, `${JSON.stringify(name.slice(0, 30))} → ${p}`);
      assert.notEqual(p, join(lease.dir, ".lease.json"));
      seen.add(p);
      await lease.publish(name, new TextEncoder().encode(name));
    }
    assert.equal(seen.size, hostile.length, "distinct names map to distinct files");
    // Everything landed inside the lease directory; nothing anywhere else under the root.
    const files = await readdir(lease.dir);
    assert.equal(files.length, hostile.length + 1);
    assert.deepEqual(await readdir(dir), ["ingest"]);
    assert.deepEqual(await readdir(join(dir, "ingest", "w1")), [lease.id]);
    const rec = JSON.parse(await readFile(join(lease.dir, ".lease.json"), "utf8"));
    assert.equal(rec.itemId, "img_1", "the lease record was not overwritten");
    await lease.release();
  });
});

Deno.test("StagingLease.publish is atomic", async (t) => {
  await t.step("nothing appears under the final name until the stream ends", async () => {
    await withStaging({}, async (s) => {
      const lease = await s.lease("img_1");
      const { stream, ctl } = manualStream();
      const done = lease.publish("big.bin", stream);
      ctl.enqueue(bytesOf(4096, 1));
      // Let the first chunk reach the disk.
      while (!(await readdir(lease.dir)).some((f) => f.startsWith(".tmp-"))) {
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.equal(await exists(lease.path("big.bin")), false);
      ctl.enqueue(bytesOf(4096, 2));
      ctl.close();
      const pub = await done;
      assert.equal(pub.bytes, 8192);
      const got = new Uint8Array(await readFile(pub.path));
      assert.equal(got[0], 1);
      assert.equal(got[8191], 2);
      assert.deepEqual((await readdir(lease.dir)).filter((f) => f.startsWith(".tmp-")), []);
      await lease.release();
    });
  });

  await t.step("a stream failing midway publishes nothing and keeps the old file", async () => {
    await withStaging({}, async (s) => {
      const lease = await s.lease("img_1");
      await lease.publish("a.jpg", bytesOf(100, 9));
      const failing = ReadableStream.from((async function* () {
        yield bytesOf(5000, 1);
        throw new Error("connection reset");
      })());
      await assert.rejects(lease.publish("a.jpg", failing), /connection reset/);
      assert.deepEqual(new Uint8Array(await readFile(lease.path("a.jpg"))), bytesOf(100, 9));
      const names = (await readdir(lease.dir)).map((f) => join(lease.dir, f)).sort();
      assert.deepEqual(names, [join(lease.dir, ".lease.json"), lease.path("a.jpg")].sort());
      await lease.release();
    });
  });
});

Deno.test("StagingLease free-space guard", async (t) => {
  await t.step("minFreeMb above the free space refuses before writing", async () => {
    await withStaging({ minFreeMb: 1e9 }, async (s) => {
      const lease = await s.lease("img_1");
      await assert.rejects(lease.publish("a.jpg", bytesOf(10)), (err: StagingFullError) => {
        assert.ok(err instanceof StagingFullError);
        assert.equal(err.code, "staging_full");
        assert.equal(err.neededBytes, 10);
        assert.equal(err.minFreeBytes, 1e9 * 1024 * 1024);
        assert.ok(err.freeBytes > 0);
        assert.ok(err.message.includes(s.root));
        return true;
      });
      assert.deepEqual(await readdir(lease.dir), [".lease.json"]);
      await lease.release();
    });
  });

  await t.step("an ENOSPC from the write path becomes StagingFullError, nothing left", async () => {
    // Stands in for a full disk where mounting a tmpfs is not permitted.
    await withStaging({}, async (s) => {
      const lease = await s.lease("img_1");
      const enospc = ReadableStream.from((async function* () {
        yield bytesOf(3000);
        throw Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
      })());
      await assert.rejects(lease.publish("a.jpg", enospc), StagingFullError);
      assert.deepEqual(await readdir(lease.dir), [".lease.json"]);
      await lease.release();
    });
  });
});

Deno.test("the free-space guard without privileges (injected statfs)", async (t) => {
  // A 2 MiB disk with `free` bytes left, as statfs(2) would report it.
  let free = 2 * 1024 * 1024;
  const statfs = () => Promise.resolve({ bavail: Math.floor(free / 4096), bsize: 4096 });

  await t.step("a known size that would break minFreeMb is refused before writing", async () => {
    await withStaging({ minFreeMb: 1, statfs }, async (s) => {
      const lease = await s.lease("img");
      await assert.rejects(
        lease.publish("a.bin", bytesOf(1536 * 1024)),
        (err: StagingFullError) => {
          assert.ok(err instanceof StagingFullError, String(err));
          assert.equal(err.neededBytes, 1536 * 1024);
          assert.equal(err.freeBytes, 2 * 1024 * 1024);
          return true;
        },
      );
      const body = ReadableStream.from(chunks(1536 * 1024, 64 * 1024));
      await assert.rejects(
        lease.publish("b.bin", body, { expectedBytes: 1536 * 1024 }),
        StagingFullError,
      );
      assert.deepEqual(await readdir(lease.dir), [".lease.json"]);
      // What fits beside the reserve is published.
      assert.equal((await lease.publish("c.bin", bytesOf(512 * 1024))).bytes, 512 * 1024);
      await lease.release();
    });
  });

  await t.step("s.freeBytes() reports the injected figure", async () => {
    free = 3 * 1024 * 1024;
    await withStaging({ statfs }, async (s) => assert.equal(await s.freeBytes(), free));
  });
});

async function mountTmpfs(dir: string, size: string): Promise<string | null> {
  try {
    // SLUICE_TEST_MOUNT points elsewhere only to prove that CI fails without mount rights.
    const out = await new Deno.Command(Deno.env.get("SLUICE_TEST_MOUNT") ?? "mount", {
      args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
      stdout: "null",
      stderr: "piped",
    }).output();
    return out.success ? null : new TextDecoder().decode(out.stderr).trim() || `exit ${out.code}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

async function umount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: [dir], stdout: "null", stderr: "null" }).output();
}

Deno.test("StagingLease on a really full disk (2 MiB tmpfs)", async (t) => {
  const base = await mkdtemp(join(tmpdir(), "sluice-tmpfs-"));
  const mnt = join(base, "mnt");
  await mkdir(mnt);
  const why = await mountTmpfs(mnt, "2m");
  try {
    const ignore = skipUnless("tmpfs steps", why === null ? null : `mount not permitted (${why})`);

    await t.step({
      name: "a streamed body larger than the disk fails with ENOSPC → StagingFullError",
      ignore,
      fn: async () => {
        const s = await openStaging({
          root: mnt,
          stage: "ingest",
          workerId: "w",
          minFreeMb: 0,
          log,
        });
        const lease = await s.lease("img_big");
        const body = ReadableStream.from(chunks(3 * 1024 * 1024, 64 * 1024));
        await assert.rejects(lease.publish("big.bin", body), (err: StagingFullError) => {
          assert.ok(err instanceof StagingFullError, String(err));
          assert.equal(err.code, "staging_full");
          assert.ok(err.neededBytes >= 1024 * 1024, `needed ${err.neededBytes}`);
          return true;
        });
        assert.deepEqual(await readdir(lease.dir), [".lease.json"]);
        // The space came back: a small publish works after the failure.
        const ok = await lease.publish("small.bin", bytesOf(100 * 1024));
        assert.equal(ok.bytes, 100 * 1024);
        await lease.release();
        assert.equal(await s.stagedBytes(), 0);
      },
    });

    await t.step({
      name: "known sizes are refused up front when they would break minFreeMb",
      ignore,
      fn: async () => {
        const s = await openStaging({
          root: mnt,
          stage: "ingest",
          workerId: "w",
          minFreeMb: 1,
          log,
        });
        const lease = await s.lease("img");
        await assert.rejects(
          lease.publish("a.bin", bytesOf(1536 * 1024)),
          (err: StagingFullError) => {
            assert.ok(err instanceof StagingFullError);
            assert.equal(err.neededBytes, 1536 * 1024);
            assert.ok(err.freeBytes <= 2 * 1024 * 1024 && err.freeBytes > 1024 * 1024);
            return true;
          },
        );
        const body = ReadableStream.from(chunks(1536 * 1024, 64 * 1024));
        await assert.rejects(
          lease.publish("b.bin", body, { expectedBytes: 1536 * 1024 }),
          StagingFullError,
        );
        assert.deepEqual(await readdir(lease.dir), [".lease.json"]);
        const ok = await lease.publish("c.bin", bytesOf(512 * 1024));
        assert.equal(ok.bytes, 512 * 1024);
        await lease.release();
      },
    });
  } finally {
    if (why === null) await umount(mnt);
    await rm(base, { recursive: true, force: true });
  }
});
