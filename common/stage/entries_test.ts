import assert from "node:assert/strict";
import { serveEntry } from "./entries.ts";

function from(hostname: string): Deno.ServeHandlerInfo {
  return {
    remoteAddr: { transport: "tcp", hostname, port: 40000 },
    completed: Promise.resolve(),
  };
}

Deno.test("serveEntry refuses other hosts before starting the stage (loopback bind)", async () => {
  const saved = Deno.env.get("SLUICE_HTTP_HOSTNAME");
  Deno.env.delete("SLUICE_HTTP_HOSTNAME");
  try {
    let starts = 0;
    const entry = serveEntry(() => {
      starts++;
      return Promise.reject(new Error("must not start"));
    });
    const res = await entry.fetch(new Request("http://sluice/healthz"), from("10.1.2.3"));
    assert.equal(res.status, 403);
    const body = await res.json();
    assert.equal(body.error, "refused");
    assert.match(body.message, /found 10\.1\.2\.3/);
    assert.equal(starts, 0, "a refused request must not start the stage");
    // A loopback request goes through to the stage (whose start fails here: 503, retried later).
    const local = await entry.fetch(new Request("http://sluice/healthz"), from("127.0.0.1"));
    assert.equal(local.status, 503);
    await local.body?.cancel();
    assert.equal(starts, 1);
  } finally {
    if (saved !== undefined) Deno.env.set("SLUICE_HTTP_HOSTNAME", saved);
  }
});
