import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "./main.ts";
import { makeImage } from "./_test_env.ts";

async function run(argv: string[], cwd?: string) {
  let out = "";
  let err = "";
  const code = await main(argv, {
    env: {},
    ...(cwd ? { cwd } : {}),
    print: (t) => out += t,
    printError: (t) => err += t,
  });
  return { code, out, err };
}

Deno.test("sluice-ingest --help and --print-config", async (t) => {
  await t.step("--help lists the commands and the ingest settings", async () => {
    const r = await run(["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /^Usage: sluice-ingest <command>/);
    for (const c of ["once", "poll", "events", "import-annotations", "export"]) {
      assert.match(r.out, new RegExp(`\\n  ${c}\\b`));
    }
    assert.match(r.out, /--ingest-webhook-token <string>/);
    assert.match(r.out, /env SLUICE_INGEST_SQS_QUEUE_URL/);
    assert.match(r.out, /--ingest-label-studio-choose <newest\|oldest\|first\|merge>/);
  });
  await t.step("--print-config shows the ingest section with secrets redacted", async () => {
    const r = await run([
      "--print-config",
      "--ingest-webhook-token",
      "hunter2",
      "--http-port",
      "0",
    ]);
    assert.equal(r.code, 0);
    const doc = JSON.parse(r.out);
    assert.equal(doc.ingest.webhookToken, "***redacted***");
    assert.equal(doc.ingest.augmentCopies, 0);
    assert.equal(doc.ingest.augmentRecipe.name, "default");
    assert.equal(doc.http.port, 0);
    assert.ok(!r.out.includes("hunter2"));
  });
  await t.step("usage errors exit 2 with a message", async () => {
    assert.equal((await run([])).code, 2);
    const unknown = await run(["frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown command "frobnicate"/);
    const exp = await run(["export", "--format", "coco"]);
    assert.equal(exp.code, 2);
    assert.match(exp.err, /--out FILE/);
    const fmt = await run(["import-annotations", "--format", "yaml", "x.json"]);
    assert.equal(fmt.code, 2);
    assert.match(fmt.err, /--format: expected one of labelstudio, coco, yolo, voc, found "yaml"/);
    const dash = await run(["export", "--format", "yolo", "--out", "-"]);
    assert.equal(dash.code, 2);
    assert.match(dash.err, /expected a directory for --out, found "-"/);
    const poly = await run(["export", "--format", "labelstudio", "--out", "-", "--polygons", "x"]);
    assert.equal(poly.code, 2);
    assert.match(poly.err, /--polygons: expected polygon or rectangle, found "x"/);
    const bad = await run(["once", "--ingest-max-pixels", "-3"]);
    assert.equal(bad.code, 2);
  });
});

Deno.test("sluice-ingest once, import-annotations and export on file:// stores", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-ingest-cli-"));
  try {
    await mkdir(join(dir, "raw", "cams"), { recursive: true });
    await mkdir(join(dir, "objects"));
    await Deno.writeFile(
      join(dir, "raw", "cams", "one.jpg"),
      await makeImage({ width: 100, height: 50 }),
    );
    await Deno.writeFile(join(dir, "raw", "cams", "broken.jpg"), new Uint8Array([1, 2, 3]));
    const common = [
      "--source-url",
      join(dir, "raw"),
      "--object-store-url",
      join(dir, "objects"),
      "--manifest-url",
      `sqlite://${join(dir, "manifest.db")}`,
      "--staging-root",
      join(dir, "nvme"),
      "--staging-min-free-mb",
      "0",
      "--http-port",
      "0",
      "--log-level",
      "error",
      "--worker-idle-poll-ms",
      "20",
    ];
    const once = await run(["once", ...common], dir);
    assert.equal(once.code, 0, once.err);
    const summary = JSON.parse(once.out);
    assert.equal(summary.worker.done, 1);
    assert.equal(summary.worker.failed, 1);
    assert.deepEqual(summary.images, { ingested: 1, failed: 1 });

    await Deno.writeTextFile(
      join(dir, "tasks.json"),
      JSON.stringify([{
        data: { image: "/data/local-files/?d=cams/one.jpg" },
        annotations: [{
          result: [{
            type: "rectanglelabels",
            original_width: 100,
            original_height: 50,
            value: { x: 10, y: 10, width: 20, height: 20, rectanglelabels: ["cat"] },
          }],
        }],
      }]),
    );
    // A relative path is read from the working directory.
    const imp = await run([
      "import-annotations",
      "--format",
      "labelstudio",
      "tasks.json",
      ...common,
    ], dir);
    assert.equal(imp.code, 0, imp.err + imp.out);
    assert.equal(JSON.parse(imp.out).matched, 1);

    await Deno.writeTextFile(join(dir, "broken.json"), "[{");
    const broken = await run(["import-annotations", join(dir, "broken.json"), ...common], dir);
    assert.equal(broken.code, 1);
    assert.equal(JSON.parse(broken.out).reason, "bad_annotation_file");

    const out = join(dir, "coco.json");
    const exp = await run(["export", "--format", "coco", "--out", out, ...common], dir);
    assert.equal(exp.code, 0, exp.err);
    const coco = JSON.parse(await Deno.readTextFile(out));
    assert.deepEqual(coco.images.map((i: { file_name: string }) => i.file_name), ["cams/one.jpg"]);
    assert.deepEqual(coco.annotations[0].bbox, [10, 5, 20, 10]);
    assert.equal(coco.categories[0].name, "cat");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("deno serve stages/ingest/mod.ts answers health, HEAD / and webhook requests", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-ingest-serve-"));
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const config = join(dir, "config.json");
  await mkdir(join(dir, "raw"));
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      source: { url: join(dir, "raw") },
      objectStore: { url: join(dir, "objects") },
      manifest: { url: `sqlite://${join(dir, "manifest.db")}` },
      staging: { root: join(dir, "nvme"), minFreeMb: 0 },
      log: { level: "error" },
      ingest: { webhookToken: "tok", eventBucket: "raw" },
    }),
  );
  await mkdir(join(dir, "objects"));
  const mod = fileURLToPath(new URL("./mod.ts", import.meta.url));
  const denoJson = fileURLToPath(new URL("../../deno.json", import.meta.url));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["serve", "-A", "--config", denoJson, "--host", "127.0.0.1", "--port", String(port), mod],
    env: { SLUICE_CONFIG: config },
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    const base = `http://127.0.0.1:${port}`;
    let health: Response | null = null;
    for (let i = 0; i < 300 && health === null; i++) {
      health = await fetch(`${base}/healthz`).catch(() => null);
      if (health === null) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(health, "deno serve did not start");
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const head = await fetch(`${base}/`, { method: "HEAD" });
    assert.equal(head.status, 200);
    const refused = await fetch(`${base}/events`, { method: "POST", body: "{}" });
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const body = {
      Records: [{
        eventName: "s3:ObjectCreated:Put",
        s3: { bucket: { name: "raw" }, object: { key: "a%2Fb.jpg", eTag: "e1", size: 3 } },
      }],
    };
    const ok = await fetch(`${base}/events`, {
      method: "POST",
      headers: { authorization: "Bearer tok" },
      body: JSON.stringify(body),
    });
    assert.equal(ok.status, 200);
    assert.deepEqual((await ok.json()).results, { created: 1 });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /sluice_ingest_events_total\{source="webhook",result="created"\} 1/);
  } finally {
    child.kill("SIGTERM");
    await child.stderr.cancel();
    await child.status;
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("sluice-ingest once without a webhook token logs no webhook error (a backfill takes no events)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-ingest-once-log-"));
  try {
    await mkdir(join(dir, "raw"));
    await Deno.writeFile(join(dir, "raw", "a.jpg"), await makeImage({ width: 64, height: 48 }));
    const main = fileURLToPath(new URL("./main.ts", import.meta.url));
    const args = (mode: string) => [
      "run",
      "-A",
      "--node-modules-dir=manual",
      main,
      mode,
      "--source-url",
      join(dir, "raw"),
      "--object-store-url",
      join(dir, "objects"),
      "--manifest-url",
      `sqlite://${join(dir, "manifest.db")}`,
      "--staging-root",
      join(dir, "nvme"),
      "--staging-min-free-mb",
      "0",
      "--http-port",
      "0",
      "--log-format",
      "json",
      "--log-level",
      "warn",
    ];
    const once = await new Deno.Command(Deno.execPath(), { args: args("once"), cwd: dir }).output();
    const err = new TextDecoder().decode(once.stderr);
    assert.equal(once.code, 0, err);
    assert.doesNotMatch(err, /webhook not served/);
    // `poll` still says it, once, at error level: there the webhook could have been wanted.
    const poll = new Deno.Command(Deno.execPath(), {
      args: args("poll"),
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = poll.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const deadline = Date.now() + 30_000;
    while (!text.includes("webhook not served") && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    poll.kill("SIGTERM");
    await reader.cancel();
    await poll.status;
    assert.match(text, /"level":"error".*webhook not served/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
