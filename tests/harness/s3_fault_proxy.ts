/**
 * An HTTP proxy in front of an S3 server (the emulator) that counts requests and injects
 * faults, for the fault-injection suite. Listens on 127.0.0.1 on a free port; point the store's
 * `endpoint` at `proxy.endpoint`.
 *
 * Faults, chosen per request by `rate` (0..1, seeded PRNG) among `kinds`:
 * - `slowdown`: answers 503 `SlowDown` without forwarding;
 * - `reset`: forwards nothing and destroys the connection before any response byte (the client
 *   sees the socket closed, as on a TCP reset; not an HTTP error status);
 * - `cut_body`: forwards, then destroys the connection after half of a GET's body;
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
 * The server side is `node:http` because `Deno.serve` cannot drop a connection: a handler that
 * throws there is answered `500 Internal Server Error`.
 *
 * @module
 */
import http from "node:http";
import { once } from "node:events";

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
export async function startS3FaultProxy(
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

  /** Streams `body` to the client: counted open until done or gone, optionally cut or slowed. */
  const stream = async (
    body: ReadableStream<Uint8Array>,
    res: http.ServerResponse,
    cutAt: number | null,
    slow: boolean,
  ): Promise<void> => {
    const reader = body.getReader();
    let sent = 0;
    let gone = false;
    openBodies++;
    const onClose = () => gone = true;
    res.on("close", onClose);
    const write = async (chunk: Uint8Array) => {
      if (res.write(chunk) || gone) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || gone) break;
        if (cutAt !== null && sent + value.byteLength >= cutAt) {
          const part = value.subarray(0, Math.max(0, cutAt - sent));
          if (part.byteLength) await write(part);
          res.destroy();
          return;
        }
        if (slow) {
          for (let off = 0; off < value.byteLength && !gone; off += 4096) {
            await write(value.subarray(off, off + 4096));
            await new Promise((r) => setTimeout(r, 2));
          }
        } else await write(value);
        sent += value.byteLength;
      }
      if (!gone) res.end();
    } finally {
      openBodies--;
      res.off("close", onClose);
      await reader.cancel().catch(() => {});
    }
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const method = req.method ?? "GET";
    requests[method] = (requests[method] ?? 0) + 1;
    const url = new URL(req.url ?? "/", "http://proxy");
    const fault = pick();
    if (fault === "reset") {
      faults.reset++;
      req.socket.destroy();
      return;
    }
    const chunks: Uint8Array[] = [];
    for await (const c of req) chunks.push(c as Uint8Array);
    if (fault === "slowdown") {
      faults.slowdown++;
      res.writeHead(503, { "content-type": "application/xml", "retry-after": "0" });
      res.end(SLOWDOWN_XML);
      return;
    }
    const target = new URL(url.pathname + url.search, up);
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
    }
    headers.set("host", up.host);
    if (method === "GET" && headers.has("range")) ranges.push(headers.get("range")!);
    const body = chunks.length ? new Uint8Array(Buffer.concat(chunks)) : undefined;
    const upRes = await fetch(target, {
      method,
      headers,
      body: body ?? (method === "PUT" ? new Uint8Array() : undefined),
      redirect: "manual",
    });
    const isPart = url.searchParams.has("partNumber");
    const isCompletion = method === "POST" && url.searchParams.has("uploadId");
    if (upRes.ok && ((method === "PUT" && !isPart) || isCompletion)) {
      const copy = headers.has("x-amz-copy-source");
      const key = decodeURIComponent(url.pathname.slice(1)) + (copy ? " (copy)" : "");
      puts.set(key, (puts.get(key) ?? 0) + 1);
    }
    const outHeaders: Record<string, string> = {};
    upRes.headers.forEach((v, k) => outHeaders[k] = v);
    res.writeHead(upRes.status, outHeaders);
    if (!upRes.body) {
      res.end();
      return;
    }
    if (method !== "GET") {
      res.end(new Uint8Array(await upRes.arrayBuffer()));
      return;
    }
    const len = Number(upRes.headers.get("content-length") ?? "0");
    let cutAt: number | null = null;
    if (cutNext !== null) {
      cutAt = cutNext;
      cutNext = null;
    } else if (fault === "cut_body" && len > 1) {
      cutAt = Math.floor(len / 2);
    }
    if (cutAt !== null) faults.cut_body++;
    if (fault === "slow_body") faults.slow_body++;
    await stream(upRes.body, res, cutAt, fault === "slow_body");
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const addr = server.address() as { port: number };
  return {
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
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}
