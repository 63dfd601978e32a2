import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createLogger } from "../log/mod.ts";
import { createStageMetrics } from "../metrics/mod.ts";
import { createStageHandler } from "./stage_handler.ts";
import { type HttpLimits, serveStage } from "./serve_stage.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function withServer(
  limits: HttpLimits,
  fn: (port: number) => Promise<void>,
): Promise<void> {
  const log = createLogger({ stage: "ingest", json: true, sink: () => {} });
  const handler = createStageHandler({
    stage: "ingest",
    metrics: createStageMetrics("ingest", { processMetrics: false }),
    log,
    routes: {
      "POST /echo": async (req) => new Response(await req.text()),
    },
  });
  const ac = new AbortController();
  const server = serveStage(handler, {
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    log,
    limits,
  });
  try {
    await fn(server.addr.port);
  } finally {
    ac.abort();
    await server.finished;
  }
}

/** Reads until the server closes the connection; returns what came and how long it took. */
async function readToClose(conn: Deno.Conn, capMs: number): Promise<{ text: string; ms: number }> {
  const start = Date.now();
  const buf = new Uint8Array(4096);
  let text = "";
  const timer = setTimeout(() => conn.close(), capMs); // a bounded wait: never hang the test
  try {
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      text += dec.decode(buf.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
  try {
    conn.close();
  } catch {
    // closed by the cap
  }
  return { text, ms: Date.now() - start };
}

const LIMITS = { headerTimeoutMs: 300, bodyTimeoutMs: 300, idleTimeoutMs: 300 };

Deno.test("serveStage bounds slow and idle clients", async (t) => {
  await withServer(LIMITS, async (port) => {
    await t.step("a client that never sends is closed after the header time", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const r = await readToClose(conn, 5000);
      assert.ok(r.ms >= 250 && r.ms < 3000, `closed after ${r.ms} ms`);
    });

    await t.step("slow headers are cut off", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(enc.encode("GET /healthz HTTP/1.1\r\nhost: x\r\n"));
      const r = await readToClose(conn, 5000);
      assert.ok(r.ms < 3000, `closed after ${r.ms} ms`);
      assert.ok(!r.text.includes("200"), r.text);
    });

    await t.step("a slow body is cut off", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(
        enc.encode("POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789"),
      );
      const r = await readToClose(conn, 5000);
      assert.ok(r.ms < 3000, `closed after ${r.ms} ms`);
      assert.ok(!r.text.includes("200"), r.text);
    });

    await t.step("a kept-alive connection is closed after the idle time", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(enc.encode("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"));
      const r = await readToClose(conn, 5000);
      assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(r.text, /\r\n\r\nok\n$/);
      assert.ok(r.ms >= 250 && r.ms < 3000, `closed after ${r.ms} ms`);
    });

    await t.step(
      "keep-alive serves several requests; bodies and chunked bodies arrive",
      async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(enc.encode(
          "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello" +
            "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" +
            "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        ));
        const r = await readToClose(conn, 5000);
        const answers = r.text.split(/(?=HTTP\/1\.1 )/);
        assert.equal(answers.length, 3, r.text);
        assert.match(answers[0], /\r\n\r\nhello$/);
        assert.match(answers[1], /\r\n\r\nabcde$/);
        assert.match(answers[2], /connection: close/);
      },
    );

    await t.step("fetch works as a client", async () => {
      const res = await fetch(`http://127.0.0.1:${port}/echo`, {
        method: "POST",
        body: "x".repeat(70_000),
      });
      assert.equal((await res.text()).length, 70_000);
    });
  });
});

Deno.test("serveStage limits open connections and answers 503 beyond", async () => {
  await withServer({ ...LIMITS, headerTimeoutMs: 5000, maxConnections: 4 }, async (port) => {
    const held = await Promise.all(
      Array.from({ length: 4 }, () => Deno.connect({ hostname: "127.0.0.1", port })),
    );
    try {
      await new Promise((r) => setTimeout(r, 100)); // let the server accept them
      const extra = await Deno.connect({ hostname: "127.0.0.1", port });
      const r = await readToClose(extra, 3000);
      assert.match(r.text, /^HTTP\/1\.1 503 /);
    } finally {
      for (const c of held) c.close();
    }
    // Once they are gone, requests are served again.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  });
});

Deno.test("serveStage survives running out of file descriptors (ulimit -n 256)", async () => {
  const child = fileURLToPath(new URL("./testdata/serve_child.ts", import.meta.url));
  // maxConnections above the descriptor limit: accept itself fails with EMFILE.
  const limits = JSON.stringify({ headerTimeoutMs: 1500, maxConnections: 1000 });
  const proc = new Deno.Command("bash", {
    args: ["-c", `ulimit -n 256 && exec "$0" run -A "$1" "$2"`, Deno.execPath(), child, limits],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(proc.stderr).text();
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const conns: Deno.Conn[] = [];
  let exited = false;
  const status = proc.status.then((s) => {
    exited = true;
    return s;
  });
  try {
    const first = await reader.read();
    const port = JSON.parse(String(first.value).split("\n")[0]).port as number;
    for (let i = 0; i < 400; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await new Promise((r) => setTimeout(r, 2500)); // past the header time: idle ones are closed
    for (const c of conns.splice(0)) c.close();
    if (exited) assert.fail(`the server died: ${await stderr}`);
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.text()).then(
        (t) => t === "ok\n",
        () => false,
      );
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ok, "the server answers /healthz again");
    if (exited) assert.fail(`the server died: ${await stderr}`);
  } finally {
    for (const c of conns) c.close();
    if (!exited) proc.kill("SIGTERM");
    await status;
    await reader.cancel().catch(() => {});
  }
  assert.match(await stderr, /accept failed/, "the EMFILE path was exercised");
});
