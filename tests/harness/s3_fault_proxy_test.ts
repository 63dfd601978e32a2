import assert from "node:assert/strict";
import { startS3FaultProxy } from "./s3_fault_proxy.ts";

/** A plain upstream standing in for S3's transport: answers GET with 64 KiB, PUT with 200. */
function upstream() {
  const body = new Uint8Array(64 * 1024).fill(7);
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.body?.cancel();
    return new Response(req.method === "GET" ? body : null, { status: 200 });
  });
}

Deno.test("fault proxy: each fault kind is what it says at the transport", async (t) => {
  const up = upstream();
  const origin = `http://127.0.0.1:${(up.addr as Deno.NetAddr).port}`;
  try {
    await t.step("reset drops the connection: no HTTP status at all", async () => {
      const proxy = await startS3FaultProxy(origin, { rate: 1, kinds: ["reset"] });
      try {
        const err = await fetch(`${proxy.endpoint}/b/k`).then((r) => r, (e) => e);
        assert.ok(err instanceof TypeError, `expected a network error, found ${err}`);
        assert.equal(proxy.faults.reset, 1);
      } finally {
        await proxy.stop();
      }
    });
    await t.step("slowdown answers 503 SlowDown", async () => {
      const proxy = await startS3FaultProxy(origin, { rate: 1, kinds: ["slowdown"] });
      try {
        const r = await fetch(`${proxy.endpoint}/b/k`);
        assert.equal(r.status, 503);
        assert.match(await r.text(), /<Code>SlowDown<\/Code>/);
      } finally {
        await proxy.stop();
      }
    });
    await t.step("cut_body ends the body half way; slow_body delivers it whole", async () => {
      const proxy = await startS3FaultProxy(origin, { rate: 1, kinds: ["cut_body"] });
      try {
        const r = await fetch(`${proxy.endpoint}/b/k`);
        assert.equal(r.status, 200);
        await assert.rejects(r.arrayBuffer());
        assert.equal(proxy.faults.cut_body, 1);
        proxy.setRate(0);
        const put = await fetch(`${proxy.endpoint}/b/k`, { method: "PUT", body: "x" });
        await put.body?.cancel();
        assert.deepEqual([...proxy.puts], [["b/k", 1]]);
      } finally {
        await proxy.stop();
      }
      const slow = await startS3FaultProxy(origin, { rate: 1, kinds: ["slow_body"] });
      try {
        const r = await fetch(`${slow.endpoint}/b/k`);
        assert.equal((await r.arrayBuffer()).byteLength, 64 * 1024);
        assert.equal(slow.faults.slow_body, 1);
      } finally {
        await slow.stop();
      }
    });
  } finally {
    await up.shutdown();
  }
});
