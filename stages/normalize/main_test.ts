// The command line (`main.ts`) and the `deno serve` entry (`mod.ts`), run as real processes.
import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { openManifest } from "../../common/manifest/mod.ts";
import { openObjectStore } from "../../common/objectstore/mod.ts";
import { drawImage, encodeImage, seedIngested, tempDir, testConfig } from "./_test_fixtures.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));
const MAIN = fromFileUrl(new URL("./main.ts", import.meta.url));
const MOD = fromFileUrl(new URL("./mod.ts", import.meta.url));

function envFor(dir: string): Record<string, string> {
  return {
    SLUICE_MANIFEST_URL: `sqlite://${dir}/manifest.db`,
    SLUICE_OBJECT_STORE_URL: `${dir}/objects`,
    SLUICE_STAGING_ROOT: `${dir}/staging`,
    SLUICE_STAGING_MIN_FREE_MB: "0",
    SLUICE_HTTP_PORT: "0",
    SLUICE_LOG_FORMAT: "json",
    SLUICE_WORKER_IDLE_POLL_MS: "50",
    SLUICE_NORMALIZE_RESIZER: "cpu",
    SLUICE_NORMALIZE_VARIANTS: JSON.stringify([{ name: "s", width: 48, height: 48 }]),
  };
}

async function runMain(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, MAIN, ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("sluice-normalize: --help, bad modes, backfill then once", async (t) => {
  await using dir = await tempDir();
  const env = envFor(dir.path);

  await t.step("--help lists the modes and the stage settings", async () => {
    const r = await runMain(["--help"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sluice-normalize \[run\|once\|backfill\]/);
    assert.match(r.stdout, /--normalize-variants/);
    assert.match(r.stdout, /SLUICE_NORMALIZE_KEY_TEMPLATE/);
  });

  await t.step("an unknown mode is a usage error", async () => {
    const r = await runMain(["sideways"], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /expected one mode of run, once, backfill/);
  });

  await t.step("a key template without the spec's identity is refused", async () => {
    const r = await runMain(["once"], {
      ...env,
      SLUICE_NORMALIZE_KEY_TEMPLATE: "{prefix}/{variant}/{sha256}.{ext}",
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /expected \{stem\}, \{specHash\} or \{version\}/);
  });

  const ids: string[] = [];
  {
    const config = await testConfig(dir.path);
    const manifest = await openManifest(config.manifest.url);
    const store = await openObjectStore(config.objectStore.url);
    try {
      for (let i = 0; i < 2; i++) {
        const s = await seedIngested(manifest, store, {
          name: `m${i}.jpg`,
          bytes: await encodeImage(drawImage(120 + i, 90)),
          enqueue: false,
        });
        ids.push(s.id);
      }
    } finally {
      await store.close();
      await manifest.close();
    }
  }

  await t.step("backfill enqueues the images and prints what it did", async () => {
    const r = await runMain(["backfill"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { scanned: 2, missing: 2, enqueued: 2 });
    assert.match(r.stderr, /"msg":"resizer selected"/);
  });

  await t.step("once drains the queue and prints the summary", async () => {
    const r = await runMain(["once"], env);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.done, 2);
    assert.equal(summary.variantsWritten, 2);
    assert.equal(summary.resizer.kind, "cpu");
    assert.equal(summary.backfill, null, "the backfill above already covered these specs");
    const manifest = await openManifest(`sqlite://${dir.path}/manifest.db`);
    try {
      const rows = await manifest.listVariants({ imageIds: ids });
      assert.deepEqual(rows.map((v) => [v.name, v.width, v.height]), [["s", 48, 36], [
        "s",
        48,
        36,
      ]]);
    } finally {
      await manifest.close();
    }
  });
});

Deno.test("deno serve mod.ts answers health and status, and stops on SIGTERM", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["serve", "-A", "--config", `${ROOT}deno.json`, "--port", String(port), MOD],
    cwd: ROOT,
    env: envFor(dir.path),
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  const reading = (async () => {
    for (;;) {
      const { value, done } = await stderr.read();
      if (done) return;
      log += value;
    }
  })();
  try {
    let status: { resizer?: { kind: string } } | undefined;
    const deadline = Date.now() + 30_000;
    while (status === undefined && Date.now() < deadline) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/status`);
        if (res.ok) status = await res.json();
        else await res.body?.cancel();
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    assert.ok(status, `no /status answer within 30 s; stderr:\n${log}`);
    assert.equal(status.resizer?.kind, "cpu");
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(await health.text(), "ok\n");
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
  } finally {
    child.kill("SIGTERM");
    const { code } = await child.status;
    await reading;
    assert.equal(code, 0, `exit code ${code}; stderr:\n${log}`);
  }
  assert.match(log, /"msg":"worker stopped"/);
});

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
