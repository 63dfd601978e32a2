import assert from "node:assert/strict";
import { createLogger } from "../log/mod.ts";
import { MlflowError } from "./errors.ts";
import { MlflowRestTracker, proxyPathOf } from "./rest_client.ts";

const encoder = new TextEncoder();

/**
 * A raw TCP server: `plan(n)` decides what the n-th connection gets — "drop" (closed at once),
 * "hang" (read, never answered) or a raw HTTP response.
 */
function tcpServer(plan: (n: number) => "drop" | "hang" | string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  let accepted = 0;
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        const what = plan(++accepted);
        if (what === "drop") {
          conn.close();
          continue;
        }
        await conn.read(new Uint8Array(64 * 1024));
        if (what === "hang") {
          held.push(conn);
          continue;
        }
        await conn.write(encoder.encode(what));
        conn.close();
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    get accepted() {
      return accepted;
    },
    async close() {
      listener.close();
      await loop;
      for (const c of held) c.close();
    },
  };
}

const quiet = () => {
  const lines: string[] = [];
  return { lines, logger: createLogger({ stage: "test", json: true, sink: (l) => lines.push(l) }) };
};

Deno.test("MlflowRestTracker retries after a dropped connection", async () => {
  const ok =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\n2.17.2";
  const server = tcpServer((n) => (n === 1 ? "drop" : ok));
  const { lines, logger } = quiet();
  const client = new MlflowRestTracker({ trackingUri: server.url, baseDelayMs: 1, logger });
  try {
    assert.equal(await client.serverVersion(), "2.17.2");
    assert.equal(server.accepted, 2);
    assert.equal(lines.length, 1);
    assert.match(JSON.parse(lines[0]).msg, /retrying/);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("MlflowRestTracker gives up on a silent server after its attempts", async () => {
  const server = tcpServer(() => "hang");
  const { logger } = quiet();
  const client = new MlflowRestTracker({
    trackingUri: server.url,
    timeoutMs: 150,
    maxAttempts: 2,
    baseDelayMs: 1,
    logger,
  });
  try {
    let caught: unknown;
    try {
      await client.getRun("abc");
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof MlflowError);
    assert.equal(caught.code, "unavailable");
    assert.equal(caught.errorCode, "NETWORK_ERROR");
    assert.equal(caught.status, undefined);
    assert.match(caught.message, /after 2 attempt/);
    assert.equal(server.accepted, 2);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("MlflowRestTracker validates its options", () => {
  const bad = [
    { trackingUri: "mlflow:5000" },
    { trackingUri: "ftp://host" },
    { trackingUri: "http://h", token: "t", username: "u" },
    { trackingUri: "http://h", password: "p" },
    { trackingUri: "http://h", maxAttempts: 0 },
  ];
  for (const opts of bad) {
    assert.throws(
      () => new MlflowRestTracker(opts),
      (e: unknown) =>
        e instanceof MlflowError && e.code === "invalid_argument" && /options/.test(e.message),
      JSON.stringify(opts),
    );
  }
});

Deno.test("proxyPathOf maps mlflow-artifacts URIs to proxy paths", () => {
  assert.equal(proxyPathOf("mlflow-artifacts:/1/abc/artifacts/model"), "1/abc/artifacts/model");
  assert.equal(proxyPathOf("mlflow-artifacts://mlflow:5000/1/abc/artifacts"), "1/abc/artifacts");
  assert.throws(() => proxyPathOf("mlflow-artifacts:/1/abc/artifacts/../../x"), MlflowError);
});

Deno.test("MlflowRestTracker restarts a download that broke off mid-body", async () => {
  const body = "0123456789".repeat(10);
  const head = (n: number) =>
    `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${n}\r\n` +
    `Connection: close\r\n\r\n`;
  // First answer promises 100 bytes and sends 10; the second is whole.
  const server = tcpServer((n) => (n === 1 ? head(100) + body.slice(0, 10) : head(100) + body));
  const { logger } = quiet();
  const client = new MlflowRestTracker({ trackingUri: server.url, baseDelayMs: 1, logger });
  const tmp = await Deno.makeTempDir({ prefix: "mlflow-dl-" });
  try {
    const dest = `${tmp}/x.bin`;
    await client.downloadArtifact("mlflow-artifacts:/1/abc/artifacts/x.bin", dest);
    assert.equal(await Deno.readTextFile(dest), body);
    assert.equal(server.accepted, 2);
    const left = [];
    for await (const e of Deno.readDir(tmp)) left.push(e.name);
    assert.deepEqual(left, ["x.bin"], "no partial or temporary file is left");
  } finally {
    await client.close();
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
