import assert from "node:assert/strict";
import { DownloadInterruptedError, resumableBody } from "./_resumable_body.ts";

const policy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 };
const data = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);

/** A stream of `data` from `offset` that fails after `failAfter` bytes (or never). */
function source(offset: number, failAfter: number | null): ReadableStream<Uint8Array> {
  let pos = offset;
  return new ReadableStream({
    pull(ctrl) {
      if (failAfter !== null && pos - offset >= failAfter) {
        ctrl.error(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
        return;
      }
      if (pos >= data.length) return ctrl.close();
      const n = Math.min(100, data.length - pos, failAfter ?? Infinity);
      ctrl.enqueue(data.slice(pos, pos + n));
      pos += n;
    },
  });
}

Deno.test("resumableBody: reopens at the first missing byte and delivers every byte once", async () => {
  const offsets: number[] = [];
  const body = resumableBody({
    first: source(0, 300),
    total: data.length,
    name: "s3://b/k",
    policy,
    reopen: (offset) => {
      offsets.push(offset);
      return Promise.resolve(source(offset, offsets.length === 1 ? 200 : null));
    },
  });
  const got = new Uint8Array(await new Response(body).arrayBuffer());
  assert.deepEqual(offsets, [300, 500]);
  assert.deepEqual(got, data);
});

Deno.test("resumableBody: a body that ends short of the size is resumed", async () => {
  const short = new ReadableStream<Uint8Array>({
    start(ctrl) {
      ctrl.enqueue(data.slice(0, 400));
      ctrl.close();
    },
  });
  const offsets: number[] = [];
  const body = resumableBody({
    first: short,
    total: data.length,
    name: "s3://b/k",
    policy,
    reopen: (offset) => (offsets.push(offset), Promise.resolve(source(offset, null))),
  });
  assert.deepEqual(new Uint8Array(await new Response(body).arrayBuffer()), data);
  assert.deepEqual(offsets, [400]);
});

Deno.test("resumableBody: no progress for maxAttempts tries names the failure", async () => {
  const body = resumableBody({
    first: source(0, 200),
    total: data.length,
    name: "s3://b/k",
    policy,
    reopen: (offset) => Promise.resolve(source(offset, 0)),
  });
  const err = await new Response(body).arrayBuffer().then(() => null, (e) => e);
  assert.ok(err instanceof DownloadInterruptedError);
  assert.equal(err.code, "download_interrupted");
  assert.equal(err.message, "download of s3://b/k interrupted after 200 of 1000 bytes: aborted");
});

Deno.test("resumableBody: cancel reaches the current response", async () => {
  let cancelled: unknown = null;
  const first = new ReadableStream<Uint8Array>({
    pull(ctrl) {
      ctrl.enqueue(data.slice(0, 10));
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  const body = resumableBody({
    first,
    name: "s3://b/k",
    policy,
    reopen: () => Promise.reject(new Error("not expected")),
  });
  await body.cancel("staging full");
  assert.equal(cancelled, "staging full");
});
