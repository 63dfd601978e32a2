import assert from "node:assert/strict";
import { isLoopback, refuseOtherHosts } from "./serve_entry_guard.ts";

const from = (hostname: string): Deno.ServeHandlerInfo => ({
  remoteAddr: { transport: "tcp", hostname, port: 40000 },
  completed: Promise.resolve(),
});

Deno.test("isLoopback", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"]) {
    assert.equal(isLoopback(h), true, h);
  }
  for (const h of ["0.0.0.0", "10.0.0.5", "::", "192.168.1.1", "example.com"]) {
    assert.equal(isLoopback(h), false, h);
  }
});

Deno.test("refuseOtherHosts honours SLUICE_HTTP_HOSTNAME (default loopback)", async () => {
  const refused = refuseOtherHosts(from("10.1.2.3"), {});
  assert.equal(refused?.status, 403);
  assert.match(await refused!.text(), /SLUICE_HTTP_HOSTNAME is 127\.0\.0\.1.*found 10\.1\.2\.3/);
  assert.equal(refuseOtherHosts(from("127.0.0.1"), {}), undefined);
  assert.equal(refuseOtherHosts(from("10.1.2.3"), { SLUICE_HTTP_HOSTNAME: "0.0.0.0" }), undefined);
  assert.equal(refuseOtherHosts(from("10.1.2.3"), { SLUICE_HTTP_HOSTNAME: "::1" })?.status, 403);
});

for (const stage of ["ingest", "normalize", "train", "infer"]) {
  Deno.test(`deno serve entry of ${stage} refuses other hosts before starting anything`, async () => {
    const prev = Deno.env.get("SLUICE_HTTP_HOSTNAME");
    Deno.env.delete("SLUICE_HTTP_HOSTNAME");
    try {
      const mod = await import(`../../stages/${stage}/mod.ts`);
      const res: Response = await mod.default.fetch(
        new Request("http://10.0.0.9:9100/events", { method: "POST", body: "{}" }),
        from("10.1.2.3"),
      );
      assert.equal(res.status, 403);
      await res.body?.cancel();
    } finally {
      if (prev !== undefined) Deno.env.set("SLUICE_HTTP_HOSTNAME", prev);
    }
  });
}
