import assert from "node:assert/strict";
import { createLogger } from "../log/mod.ts";
import { SluiceError } from "../errors/mod.ts";
import { createStageMetrics, findPromtool, promtoolCheck } from "../metrics/mod.ts";
import { createStageHandler, type StageHandlerOptions } from "./stage_handler.ts";
import { serveStage } from "./serve_stage.ts";

/** Serves a handler on a free loopback port for the duration of `fn`. */
async function withServer(
  opts: Partial<StageHandlerOptions>,
  fn: (base: string, logs: string[]) => Promise<void>,
): Promise<void> {
  const logs: string[] = [];
  const log = createLogger({ stage: "ingest", json: true, sink: (l) => logs.push(l) });
  const handler = createStageHandler({
    stage: "ingest",
    metrics: createStageMetrics("ingest", { version: "9.9.9" }),
    log,
    ...opts,
  });
  const ac = new AbortController();
  const server = serveStage(handler, { hostname: "127.0.0.1", port: 0, signal: ac.signal, log });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, logs);
  } finally {
    ac.abort();
    await server.finished;
  }
}

async function get(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

Deno.test("stage HTTP endpoints over real HTTP", async (t) => {
  let ready: true | string = "manifest not migrated yet";
  const events: string[] = [];
  await withServer({
    ready: () => Promise.resolve(ready),
    routes: {
      "POST /events": async (req) => {
        events.push(await req.text());
        return new Response(null, { status: 204 });
      },
      "/echo": (req) => Promise.resolve(new Response(`${req.method} echo`)),
      "GET /boom": () => Promise.reject(new SluiceError("manifest_down", "manifest unreachable")),
    },
  }, async (base, logs) => {
    await t.step("serveStage logs the bound address with the picked port", () => {
      const line = logs.map((l) => JSON.parse(l)).find((r) => r.msg === "listening");
      assert.ok(line, logs.join("\n"));
      assert.equal(`http://127.0.0.1:${line.port}`, base);
      assert.equal(line.url, `${base}/`);
      assert.notEqual(line.port, 0);
    });

    await t.step("GET /healthz", async () => {
      const r = await get(`${base}/healthz`);
      assert.equal(r.status, 200);
      assert.equal(r.body, "ok\n");
    });

    await t.step("GET /readyz follows ready()", async () => {
      const not = await get(`${base}/readyz`);
      assert.equal(not.status, 503);
      assert.equal(not.body, "not ready: manifest not migrated yet\n");
      ready = true;
      const yes = await get(`${base}/readyz`);
      assert.equal(yes.status, 200);
    });

    await t.step("GET /metrics serves the stage registry", async () => {
      const r = await get(`${base}/metrics`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
      assert.match(r.body, /^sluice_ingest_build_info\{version="9\.9\.9"\} 1$/m);
      assert.match(r.body, /^# TYPE sluice_ingest_items_total counter$/m);
    });

    await t.step("HEAD / and GET / answer 200 (RustFS webhook probe)", async () => {
      const head = await get(`${base}/`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.body, "");
      const root = await get(`${base}/`);
      assert.equal(root.status, 200);
      assert.equal(root.body, "sluice ingest\n");
    });

    await t.step("HEAD works on every GET endpoint", async () => {
      const r = await get(`${base}/metrics`, { method: "HEAD" });
      assert.equal(r.status, 200);
      assert.equal(r.body, "");
      assert.match(r.headers.get("content-type")!, /version=0\.0\.4/);
    });

    await t.step("unknown paths: JSON 404", async () => {
      const r = await get(`${base}/nope?x=1`);
      assert.equal(r.status, 404);
      assert.match(r.headers.get("content-type")!, /^application\/json/);
      assert.deepEqual(JSON.parse(r.body), { error: "not_found", path: "/nope" });
    });

    await t.step("wrong method: JSON 405 with Allow", async () => {
      const r = await get(`${base}/healthz`, { method: "POST", body: "x" });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get("allow"), "GET, HEAD");
      assert.deepEqual(JSON.parse(r.body), {
        error: "method_not_allowed",
        method: "POST",
        path: "/healthz",
        allowed: ["GET", "HEAD"],
      });
      const ev = await get(`${base}/events`);
      assert.equal(ev.status, 405);
      assert.equal(ev.headers.get("allow"), "POST");
    });

    await t.step("stage routes", async () => {
      const r = await get(`${base}/events`, { method: "POST", body: '{"Records":[]}' });
      assert.equal(r.status, 204);
      assert.deepEqual(events, ['{"Records":[]}']);
      assert.equal((await get(`${base}/echo`, { method: "PUT", body: "" })).body, "PUT echo");
    });

    await t.step("a failing route answers JSON 500 with the reason and logs it", async () => {
      const r = await get(`${base}/boom`);
      assert.equal(r.status, 500);
      assert.deepEqual(JSON.parse(r.body), {
        error: "manifest_down",
        message: "manifest unreachable",
      });
      const line = logs.map((l) => JSON.parse(l)).find((x) => x.msg === "request failed");
      assert.equal(line?.reason, "manifest_down");
      assert.equal(line?.path, "/boom");
    });

    const promtool = await findPromtool();
    await t.step({
      name: "the live /metrics passes promtool check metrics",
      ignore: !promtool && Deno.env.get("CI") !== "true",
      fn: async () => {
        assert.ok(promtool, "promtool is required when CI=true: apt-get install -y prometheus");
        const r = await get(`${base}/metrics`);
        const lint = await promtoolCheck(r.body, promtool);
        assert.ok(lint.ok, lint.output);
      },
    });
  });
});

Deno.test("readiness failures and timeouts answer 503 with the reason", async (t) => {
  await t.step("ready() throws", async () => {
    await withServer({ ready: () => Promise.reject(new Error("db down")) }, async (base) => {
      const r = await get(`${base}/readyz`);
      assert.equal(r.status, 503);
      assert.equal(r.body, "not ready: readiness check failed: db down\n");
    });
  });

  await t.step("ready() hangs", async () => {
    let release = () => {};
    const hung = new Promise<true>((resolve) => release = () => resolve(true));
    await withServer({ ready: () => hung, readyTimeoutMs: 50 }, async (base) => {
      const r = await get(`${base}/readyz`);
      assert.equal(r.status, 503);
      assert.equal(r.body, "not ready: readiness check timed out after 50 ms\n");
    });
    release();
  });

  await t.step("no ready() means ready", async () => {
    await withServer({}, async (base) => {
      assert.equal((await get(`${base}/readyz`)).status, 200);
    });
  });
});

Deno.test("route table errors", () => {
  const metrics = createStageMetrics("infer", { processMetrics: false });
  const bad = (routes: StageHandlerOptions["routes"], re: RegExp) =>
    assert.throws(
      () => createStageHandler({ stage: "infer", metrics, routes }),
      (e: unknown) => e instanceof SluiceError && e.code === "invalid_route" && re.test(e.message),
    );
  bad({ "GET /metrics": () => Promise.resolve(new Response()) }, /GET \/metrics.*already routed/);
  bad({ "/healthz": () => Promise.resolve(new Response()) }, /"\/healthz".*already routed/);
  bad(
    { "FETCH /x": () => Promise.resolve(new Response()) },
    /expected "\/path" or "METHOD \/path"/,
  );
  bad({ "events": () => Promise.resolve(new Response()) }, /expected "\/path"/);
  // A different method on a built-in path is fine: POST / next to GET /.
  createStageHandler({
    stage: "infer",
    metrics,
    routes: { "POST /": () => Promise.resolve(new Response()) },
  });
});

Deno.test("the handler works without a server (deno serve default export)", async () => {
  const handler = createStageHandler({ stage: "train", metrics: createStageMetrics("train") });
  const res = await handler.fetch(new Request("http://localhost/healthz"));
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "ok\n");
  const typed: Deno.ServeDefaultExport = handler;
  assert.equal(typeof typed.fetch, "function");
});

Deno.test("serveStage refuses an invalid port", () => {
  const handler = createStageHandler({ stage: "train", metrics: createStageMetrics("train") });
  assert.throws(
    () => serveStage(handler, { hostname: "127.0.0.1", port: 70000 }),
    (e: unknown) => e instanceof SluiceError && e.code === "invalid_port",
  );
});

Deno.test("/readyz is cached: many clients cost one readiness check", async (t) => {
  let calls = 0;
  let answer: true | string = true;
  const ready = async () => {
    calls++;
    await new Promise((r) => setTimeout(r, 20)); // a database round trip
    return answer;
  };
  await withServer({ ready, readyCacheMs: 300 }, async (base) => {
    await t.step("64 concurrent and 64 later requests while ready: one check", async () => {
      const first = await Promise.all(Array.from({ length: 64 }, () => get(`${base}/readyz`)));
      const later = await Promise.all(Array.from({ length: 64 }, () => get(`${base}/readyz`)));
      assert.ok([...first, ...later].every((r) => r.status === 200));
      assert.equal(calls, 1);
    });
    await t.step("after readyCacheMs the check runs again and sees the change", async () => {
      answer = "manifest unreachable";
      await new Promise((r) => setTimeout(r, 350));
      const rs = await Promise.all(Array.from({ length: 16 }, () => get(`${base}/readyz`)));
      assert.ok(rs.every((r) => r.status === 503 && r.body.includes("manifest unreachable")));
      assert.equal(calls, 2);
    });
    await t.step("a negative answer is not reused once settled", async () => {
      answer = true;
      assert.equal((await get(`${base}/readyz`)).status, 200);
      assert.equal(calls, 3);
    });
  });
});

Deno.test("answers never carry credentials (/readyz reasons, /status, errors)", async () => {
  await withServer({
    ready: () => Promise.resolve("no model: GET http://ann:pa@ss@mlflow:5000/api failed"),
    routes: {
      "GET /status": () =>
        Promise.resolve(Response.json({ lastLoadError: "postgres://app:Hunter22@db/x?token=t0k" })),
      "GET /boom": () => Promise.reject(new Error("Basic YW5uOnB3MTIzNA== refused")),
    },
  }, async (base) => {
    const bodies = [
      (await get(`${base}/readyz`)).body,
      (await get(`${base}/status`)).body,
      (await get(`${base}/boom`)).body,
    ].join("\n");
    for (const leaked of ["pa@ss", "ss@mlflow", "Hunter22", "t0k", "YW5uOnB3MTIzNA"]) {
      assert.ok(!bodies.includes(leaked), `${leaked} in ${bodies}`);
    }
    assert.equal(bodies.split("***redacted***").length - 1, 4);
  });
});

Deno.test("/readyz: a closed stage is not ready at once, whatever the readiness cache holds", async () => {
  let closed = false;
  let calls = 0;
  const handler = createStageHandler({
    stage: "normalize",
    metrics: createStageMetrics("normalize"),
    ready: () => {
      calls++;
      return Promise.resolve(true);
    },
    closed: () => closed,
  });
  const readyz = () => handler.fetch(new Request("http://x/readyz"));
  assert.equal((await readyz()).status, 200);
  closed = true;
  const res = await readyz();
  assert.equal(res.status, 503);
  assert.match(await res.text(), /stage closed/);
  assert.equal(calls, 1);
});
