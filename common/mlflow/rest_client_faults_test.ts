/**
 * MLflow failure semantics (issue 12, item 7) against a stateful test server that really goes
 * away, loses answers after applying creates, and speaks plain HTTP to an https:// client.
 */
import assert from "node:assert/strict";
import { MlflowFaultServer } from "../../tests/support/mlflow/fault_server.ts";
import { createLogger } from "../log/mod.ts";
import { MlflowError } from "./errors.ts";
import { MlflowRestTracker } from "./rest_client.ts";
import { CLIENT_TOKEN_TAG } from "./tracker.ts";

function quiet() {
  const lines: string[] = [];
  return { lines, logger: createLogger({ stage: "test", json: true, sink: (l) => lines.push(l) }) };
}

async function withServer(
  fn: (server: MlflowFaultServer, tracker: MlflowRestTracker, lines: string[]) => Promise<void>,
  opts: { retryBudgetMs?: number; https?: boolean; timeoutMs?: number } = {},
) {
  const server = await MlflowFaultServer.start();
  const { lines, logger } = quiet();
  const tracker = new MlflowRestTracker({
    trackingUri: opts.https ? server.url.replace("http:", "https:") : server.url,
    baseDelayMs: 50,
    maxDelayMs: 400,
    retryBudgetMs: opts.retryBudgetMs ?? 30_000,
    timeoutMs: opts.timeoutMs,
    logger,
  });
  try {
    await fn(server, tracker, lines);
  } finally {
    await tracker.close();
    await server.close();
  }
}

async function caught(p: Promise<unknown>): Promise<MlflowError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof MlflowError, `expected an MlflowError, found ${err}`);
    return err;
  }
  assert.fail("expected the call to fail");
}

Deno.test("an artifact upload rides through a server that goes away for 3 s mid-body", async () => {
  await withServer(async (server, tracker, lines) => {
    const dir = await Deno.makeTempDir({ prefix: "mlflow-faults-" });
    try {
      const bytes = crypto.getRandomValues(new Uint8Array(60_000));
      const big = new Uint8Array(600_000);
      for (let i = 0; i < 10; i++) big.set(bytes, i * 60_000);
      await Deno.writeFile(`${dir}/model.onnx`, big);
      server.goAwayDuringNextUpload(3_000);
      const t0 = Date.now();
      await tracker.uploadTo(
        "mlflow-artifacts:/1/abc/artifacts/model/model.onnx",
        `${dir}/model.onnx`,
      );
      const took = Date.now() - t0;
      assert.ok(took >= 2_900, `the upload waited out the outage (${took} ms)`);
      assert.deepEqual(server.artifacts.get("1/abc/artifacts/model/model.onnx"), big);
      assert.equal(
        server.received[0],
        "PUT (cut off) /api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/model.onnx",
      );
      const warnings = lines.map((l) => JSON.parse(l)).filter((l) => /retrying/.test(l.msg));
      assert.ok(
        warnings.some((w) => /Connection refused/.test(w.error)),
        `a retry names the refused connection: ${JSON.stringify(warnings.map((w) => w.error))}`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("an outage longer than the retry budget fails with the underlying cause", async () => {
  await withServer(async (server, tracker) => {
    void server.goAway(3_000);
    const t0 = Date.now();
    const err = await caught(tracker.getRun("run00000001"));
    const took = Date.now() - t0;
    assert.equal(err.errorCode, "NETWORK_ERROR");
    assert.equal(err.code, "unavailable");
    assert.match(err.message, /Connection refused/);
    assert.doesNotMatch(err.message, /^[^:]*: fetch failed$/);
    assert.ok(took < 2_500, `gave up when the 0.8 s budget was spent (${took} ms)`);
  }, { retryBudgetMs: 800 });
});

Deno.test("https:// against a plain-HTTP server that answers garbage with 400 fails at once", async () => {
  // What Deno.serve, uvicorn and most proxies do with a TLS ClientHello.
  const plain = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  const { logger } = quiet();
  const tracker = new MlflowRestTracker({
    trackingUri: `https://127.0.0.1:${plain.addr.port}`,
    baseDelayMs: 50,
    logger,
  });
  try {
    const t0 = Date.now();
    const err = await caught(tracker.health());
    assert.equal(err.errorCode, "PROTOCOL_MISMATCH");
    assert.match(err.message, /InvalidContentType|corrupt message/);
    assert.ok(Date.now() - t0 < 2_000, `no retries (${Date.now() - t0} ms)`);
  } finally {
    await tracker.close();
    await plain.shutdown();
  }
});

Deno.test("https:// against a plain-HTTP server that waits for a request line fails within the handshake deadline", async () => {
  await withServer(async (server, tracker) => {
    const t0 = Date.now();
    const err = await caught(tracker.health());
    const took = Date.now() - t0;
    assert.equal(err.errorCode, "PROTOCOL_MISMATCH");
    assert.match(err.message, /no TLS answer .* within 1.5 s|InvalidContentType|corrupt message/);
    assert.match(err.message, /http:\/\/ or https:\/\//);
    assert.ok(took < 4_000, `one handshake deadline, no retries (${took} ms)`);
    assert.equal(server.accepted, 1, "one connection, no retry");
  }, { https: true, timeoutMs: 1_500 });
});

Deno.test("a run whose create answer is lost is created once", async (t) => {
  for (const fault of ["drop", "500", "503"] as const) {
    await t.step(
      `server applies runs/create, then ${
        fault === "drop" ? "drops the connection" : `answers ${fault}`
      }`,
      async () => {
        await withServer(async (server, tracker) => {
          if (fault === "drop") server.dropAfterApplying("runs/create");
          else server.failAfterApplying("runs/create", Number(fault));
          const info = await tracker.createRun("1", { runName: "train", clientToken: "tok-1" });
          assert.equal(server.runs.size, 1, "exactly one run");
          const [run] = server.runs.values();
          assert.equal(info.runId, run.runId);
          assert.equal(run.tags[CLIENT_TOKEN_TAG], "tok-1");
          assert.deepEqual(server.received, ["POST runs/create", "POST runs/search"]);
        });
      },
    );
  }
  await t.step("a create the server never saw (connection refused) is sent again", async () => {
    await withServer(async (server, tracker) => {
      void server.goAway(1_000);
      const info = await tracker.createRun("1", { runName: "train" });
      assert.equal(server.runs.size, 1);
      assert.equal([...server.runs.values()][0].runId, info.runId);
      assert.ok(
        server.received.filter((r) => r === "POST runs/create").length === 1,
        "refused attempts never reached the server; one create did",
      );
    });
  });
});

Deno.test("a model version whose create answer is lost is registered once", async (t) => {
  for (const fault of ["drop", "500"] as const) {
    await t.step(`server applies model-versions/create, then ${fault}`, async () => {
      await withServer(async (server, tracker) => {
        if (fault === "drop") server.dropAfterApplying("model-versions/create");
        else server.failAfterApplying("model-versions/create", 500);
        const version = await tracker.createModelVersion(
          "det",
          "mlflow-artifacts:/1/r1/artifacts/model",
          "r1",
          { clientToken: "r1/model", tags: { map50: "0.9" } },
        );
        assert.equal(server.versions.length, 1, "exactly one version");
        assert.equal(version, "1");
        assert.deepEqual(server.versions[0].tags, { map50: "0.9", [CLIENT_TOKEN_TAG]: "r1/model" });
        assert.deepEqual(server.received, [
          "POST model-versions/create",
          "GET model-versions/search",
        ]);
      });
    });
  }
});
