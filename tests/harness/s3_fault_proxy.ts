/**
 * An HTTP proxy in front of an S3 server (the emulator) that counts requests and injects
 * faults, for the fault-injection suite. Listens on 127.0.0.1 on a free port; point the store's
 * `endpoint` at `proxy.endpoint`.
 *
 * Faults, chosen per request by `rate` (0..1, seeded PRNG) among `kinds`:
 * - `slowdown`: answers 503 `SlowDown` without forwarding;
 * - `reset`: forwards nothing and drops the connection (the client sees a reset/EOF);
 * - `cut_body`: forwards, then ends a GET's body after half of it (the rest never comes);
 * - `slow_body`: forwards, delivering the body in small chunks with pauses.
 * `cutNextGet(bytes)` cuts the next GET body after exactly `bytes`, whatever the rate.
 *
 * @example
 * ```ts
 * const proxy = await startS3FaultProxy(s3.endpoint, { rate: 0.1 });
 * const store = S3ObjectStore.fromUrl("s3://b", { ...creds, endpoint: proxy.endpoint });
 * proxy.puts.get("b/key"); // successful PUTs per key
 * await proxy.stop();
 * ```
 * @module
 */

/** A fault the proxy can inject. */
export type FaultKind = "slowdown" | "reset" | "cut_body" | "slow_body";

export interface FaultProxyOptions {
  /** Share of requests that get a fault (default 0). */
  rate?: number;
  kinds?: FaultKind[];
  /** PRNG seed, for repeatable runs. */
  seed?: number;
}

export interface S3FaultProxy {
  endpoint: string;
  /** Requests seen, by method. */
  readonly requests: Record<string, number>;
  /** Successful (2xx) PUT/POST-completions per `bucket/key` path (multipart parts excluded). */
  readonly puts: Map<string, number>;
  /** Faults injected, by kind. */
  readonly faults: Record<FaultKind, number>;
  /** `Range` headers of GETs, in order. */
  readonly ranges: string[];
  /** Open client connections right now (bodies not yet finished or cancelled). */
  readonly openBodies: number;
  /** Cuts the next GET body after `bytes` bytes. */
  cutNextGet(bytes: number): void;
  setRate(rate: number): void;
  stop(): Promise<void>;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SLOWDOWN_XML = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>` +
  `<Message>Please reduce your request rate.</Message></Error>`;

/** Starts the proxy in front of `upstream` (`http://127.0.0.1:<port>`). */
export function startS3FaultProxy(
  upstream: string,
  opts: FaultProxyOptions = {},
): Promise<S3FaultProxy> {
  let rate = opts.rate ?? 0;
  const kinds = opts.kinds ?? ["slowdown", "reset", "cut_body", "slow_body"];
  const random = mulberry32(opts.seed ?? 12);
  const requests: Record<string, number> = {};
  const puts = new Map<string, number>();
  const faults: Record<FaultKind, number> = { slowdown: 0, reset: 0, cut_body: 0, slow_body: 0 };
  const ranges: string[] = [];
  let cutNext: number | null = null;
  let openBodies = 0;
  const up = new URL(upstream);

  const pick = (): FaultKind | null => {
    if (rate <= 0 || random() >= rate) return null;
    return kinds[Math.floor(random() * kinds.length)];
  };

  /** Wraps a body: counts it open until done, optionally cut or slowed. */
  const wrap = (
    body: ReadableStream<Uint8Array>,
    cutAt: number | null,
    slow: boolean,
  ): ReadableStream<Uint8Array> => {
    const reader = body.getReader();
    let sent = 0;
    let closed = false;
    openBodies++;
    const done = () => {
      if (!closed) {
        closed = true;
        openBodies--;
      }
    };
    return new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        const { value, done: end } = await reader.read();
        if (end) {
          done();
          ctrl.close();
          return;
        }
        let chunk = value;
        if (cutAt !== null && sent + chunk.byteLength >= cutAt) {
          chunk = chunk.subarray(0, Math.max(0, cutAt - sent));
          if (chunk.byteLength) ctrl.enqueue(chunk);
          await reader.cancel().catch(() => {});
          done();
          ctrl.error(new Error("fault proxy: body cut"));
          return;
        }
        if (slow) {
          for (let off = 0; off < chunk.byteLength; off += 4096) {
            ctrl.enqueue(chunk.subarray(off, off + 4096));
            await new Promise((r) => setTimeout(r, 2));
          }
        } else ctrl.enqueue(chunk);
        sent += chunk.byteLength;
      },
      async cancel(reason) {
        done();
        await reader.cancel(reason).catch(() => {});
      },
    });
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    requests[req.method] = (requests[req.method] ?? 0) + 1;
    const url = new URL(req.url);
    const fault = pick();
    if (fault === "slowdown") {
      faults.slowdown++;
      await req.body?.cancel().catch(() => {});
      return new Response(SLOWDOWN_XML, {
        status: 503,
        headers: { "content-type": "application/xml", "retry-after": "0" },
      });
    }
    if (fault === "reset") {
      faults.reset++;
      await req.body?.cancel().catch(() => {});
      // Deno.serve drops the connection when the handler throws.
      throw new Error("fault proxy: connection reset");
    }
    const target = new URL(url.pathname + url.search, up);
    const headers = new Headers(req.headers);
    headers.set("host", up.host);
    if (req.method === "GET" && headers.has("range")) ranges.push(headers.get("range")!);
    const body = req.body ? new Uint8Array(await req.arrayBuffer()) : undefined;
    const res = await fetch(target, {
      method: req.method,
      headers,
      body: body && body.byteLength ? body : (req.method === "PUT" ? body : undefined),
      redirect: "manual",
    });
    const isPart = url.searchParams.has("partNumber");
    const isCompletion = req.method === "POST" && url.searchParams.has("uploadId");
    if (res.ok && ((req.method === "PUT" && !isPart) || isCompletion)) {
      const copy = req.headers.has("x-amz-copy-source");
      const key = decodeURIComponent(url.pathname.slice(1)) + (copy ? " (copy)" : "");
      puts.set(key, (puts.get(key) ?? 0) + 1);
    }
    let out: ReadableStream<Uint8Array> | null = res.body;
    if (out && req.method === "GET") {
      const len = Number(res.headers.get("content-length") ?? "0");
      let cutAt: number | null = null;
      if (cutNext !== null) {
        cutAt = cutNext;
        cutNext = null;
      } else if (fault === "cut_body" && len > 1) {
        cutAt = Math.floor(len / 2);
      }
      if (cutAt !== null) faults.cut_body++;
      if (fault === "slow_body") faults.slow_body++;
      out = wrap(out, cutAt, fault === "slow_body");
    }
    return new Response(out, { status: res.status, headers: res.headers });
  });
  const addr = server.addr as Deno.NetAddr;
  return Promise.resolve({
    endpoint: `http://127.0.0.1:${addr.port}`,
    requests,
    puts,
    faults,
    ranges,
    get openBodies() {
      return openBodies;
    },
    cutNextGet(bytes: number) {
      cutNext = bytes;
    },
    setRate(r: number) {
      rate = r;
    },
    async stop() {
      await server.shutdown();
    },
  });
}
