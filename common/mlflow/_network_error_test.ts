import assert from "node:assert/strict";
import { classifyNetworkError, describeNetworkError } from "./_network_error.ts";

async function fetchError(url: string, init?: RequestInit): Promise<unknown> {
  try {
    await (await fetch(url, init)).body?.cancel();
  } catch (err) {
    return err;
  }
  assert.fail(`expected ${url} to fail`);
}

Deno.test("a refused connection is described by its cause and classified refused", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const err = await fetchError(`http://127.0.0.1:${port}/`);
  assert.match(describeNetworkError(err), /^fetch failed: .*Connection refused/);
  assert.equal(classifyNetworkError(err), "refused");
});

Deno.test("https:// against a plain-HTTP server is a protocol failure", async () => {
  const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("x"));
  try {
    const err = await fetchError(`https://127.0.0.1:${s.addr.port}/`);
    assert.match(describeNetworkError(err), /InvalidContentType|corrupt message/);
    assert.equal(classifyNetworkError(err), "protocol");
  } finally {
    await s.shutdown();
  }
});

Deno.test("a timeout is classified timeout; an unexplained failure unknown", () => {
  assert.equal(
    classifyNetworkError(
      new DOMException("The operation was aborted due to timeout", "TimeoutError"),
    ),
    "timeout",
  );
  const reset = new TypeError("fetch failed", { cause: new Error("connection reset by peer") });
  assert.equal(classifyNetworkError(reset), "unknown");
  assert.equal(describeNetworkError(reset), "fetch failed: connection reset by peer");
});
