/**
 * A small HTTP/1.1 server for the stages' own endpoints, written on `Deno.listen` because
 * `Deno.serve` has no header, body or idle timeouts, no connection limit, and lets an accept
 * error (EMFILE) reject an internal promise that ends the process. Here:
 *
 * - a request's line and headers must arrive within `headerTimeoutMs` (16 KiB at most);
 * - its body within `bodyTimeoutMs` of the headers (`maxBodyBytes` at most; Content-Length or
 *   chunked);
 * - a kept-alive connection waits `idleTimeoutMs` for its next request;
 * - at most `maxConnections` are open; more are answered 503 and closed;
 * - an answer must be taken by the client within `writeTimeoutMs`;
 * - accept errors are logged and retried with backoff, never thrown.
 *
 * Answers are written whole with Content-Length (stage answers are small documents).
 *
 * @example
 * ```ts
 * const server = serveBounded((req) => Promise.resolve(new Response("ok")), {
 *   hostname: "127.0.0.1", port: 0, log,
 * });
 * await server.shutdown();
 * ```
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { messageOf } from "../errors/mod.ts";

/** Limits of {@link serveBounded}; every field has a default. */
export interface HttpLimits {
  /** Request line and headers must be complete within this (default 10 000 ms). */
  headerTimeoutMs?: number;
  /** The body must be complete within this after the headers (default 30 000 ms). */
  bodyTimeoutMs?: number;
  /** A kept-alive connection is closed after this long without a new request (default 5000). */
  idleTimeoutMs?: number;
  /** The client must take the answer within this (default 30 000 ms). */
  writeTimeoutMs?: number;
  /** Open connections at most; more are answered 503 and closed (default 128). */
  maxConnections?: number;
  /** Largest request body accepted (default 16 MiB); larger ones get 413. */
  maxBodyBytes?: number;
}

export interface BoundedServeOptions extends HttpLimits {
  hostname: string;
  port: number;
  signal?: AbortSignal;
  log: Logger;
  onListen?: (addr: Deno.NetAddr) => void;
  /** Answers a handler failure. */
  onError: (err: unknown) => Response;
}

const MAX_HEADER_BYTES = 16 * 1024;
const CRLF2 = new Uint8Array([13, 10, 13, 10]);
const enc = new TextEncoder();
const dec = new TextDecoder();

class Timeout extends Error {}
class Closed extends Error {}
class BadRequest extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** One connection's bytes, read with deadlines. */
class ConnReader {
  #buf: Uint8Array = new Uint8Array(0);
  #chunk = new Uint8Array(16 * 1024);
  constructor(readonly conn: Deno.Conn) {}

  get buffered(): number {
    return this.#buf.length;
  }

  /** Reads more bytes, or throws Timeout at `deadline` / Closed at end of stream. */
  async more(deadline: number): Promise<void> {
    const ms = deadline - Date.now();
    if (ms <= 0) throw new Timeout();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
    try {
      const n = await Promise.race([this.conn.read(this.#chunk), timeout]);
      if (n === "timeout") throw new Timeout();
      if (n === null) throw new Closed();
      this.#buf = concat(this.#buf, this.#chunk.slice(0, n));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Bytes up to and including `needle`, reading until `deadline`; `limit` bounds the wait. */
  async until(needle: Uint8Array, deadline: number, limit: number): Promise<Uint8Array> {
    let from = 0;
    for (;;) {
      const at = indexOf(this.#buf, needle, from);
      if (at >= 0) return this.take(at + needle.length);
      if (this.#buf.length > limit) throw new BadRequest(431, "request headers too large");
      from = Math.max(0, this.#buf.length - needle.length + 1);
      await this.more(deadline);
    }
  }

  async exactly(n: number, deadline: number): Promise<Uint8Array> {
    while (this.#buf.length < n) await this.more(deadline);
    return this.take(n);
  }

  take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array, deadline: number): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    const ms = deadline - Date.now();
    if (ms <= 0) throw new Timeout();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
    try {
      const n = await Promise.race([conn.write(bytes.subarray(off)), timeout]);
      if (n === "timeout") throw new Timeout();
      off += n;
    } finally {
      clearTimeout(timer);
    }
  }
}

interface Head {
  method: string;
  target: string;
  version: string;
  headers: Headers;
}

function parseHead(bytes: Uint8Array): Head {
  const text = dec.decode(bytes.subarray(0, bytes.length - 4));
  const lines = text.split("\r\n");
  const m = /^([A-Z]+) (\S+) HTTP\/(1\.[01])$/.exec(lines[0] ?? "");
  if (!m) throw new BadRequest(400, "expected a request line like GET /path HTTP/1.1");
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const c = line.indexOf(":");
    if (c <= 0) throw new BadRequest(400, "expected header lines like name: value");
    try {
      headers.append(line.slice(0, c).trim(), line.slice(c + 1).trim());
    } catch {
      throw new BadRequest(400, "invalid header");
    }
  }
  return { method: m[1], target: m[2], version: m[3], headers };
}

async function readBody(
  r: ConnReader,
  head: Head,
  deadline: number,
  max: number,
): Promise<Uint8Array | null> {
  const te = head.headers.get("transfer-encoding");
  if (te !== null) {
    if (te.toLowerCase() !== "chunked") throw new BadRequest(501, `transfer-encoding ${te}`);
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const line = dec.decode(await r.until(enc.encode("\r\n"), deadline, 1024)).trim();
      const size = Number.parseInt(line.split(";")[0], 16);
      if (!Number.isFinite(size) || size < 0) throw new BadRequest(400, "bad chunk size");
      if (size === 0) {
        await r.until(enc.encode("\r\n"), deadline, MAX_HEADER_BYTES); // (trailers ignored)
        break;
      }
      total += size;
      if (total > max) throw new BadRequest(413, `body over ${max} bytes`);
      parts.push(await r.exactly(size, deadline));
      await r.exactly(2, deadline);
    }
    return parts.reduce(concat, new Uint8Array(0));
  }
  const cl = head.headers.get("content-length");
  if (cl === null) return null;
  if (!/^\d+$/.test(cl)) throw new BadRequest(400, "bad content-length");
  const n = Number(cl);
  if (n > max) throw new BadRequest(413, `body over ${max} bytes`);
  return await r.exactly(n, deadline);
}

const REASONS: Record<number, string> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

async function encodeResponse(
  res: Response,
  head: boolean,
  keepAlive: boolean,
): Promise<Uint8Array> {
  const body = res.body === null ? new Uint8Array(0) : new Uint8Array(await res.arrayBuffer());
  const lines = [`HTTP/1.1 ${res.status} ${REASONS[res.status] ?? res.statusText ?? "Status"}`];
  let length = String(body.length);
  for (const [k, v] of res.headers) {
    if (k === "content-length") {
      if (head) length = v;
      continue;
    }
    if (k === "transfer-encoding" || k === "connection" || k === "keep-alive") continue;
    lines.push(`${k}: ${v}`);
  }
  lines.push(`content-length: ${length}`, `date: ${new Date().toUTCString()}`);
  lines.push(`connection: ${keepAlive ? "keep-alive" : "close"}`);
  const top = enc.encode(lines.join("\r\n") + "\r\n\r\n");
  return head ? top : concat(top, body);
}

function plain(status: number, message: string): Response {
  return new Response(JSON.stringify({ error: message }) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

type Limits = Required<HttpLimits>;

function limitsOf(opts: HttpLimits): Limits {
  return {
    headerTimeoutMs: opts.headerTimeoutMs ?? 10_000,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? 30_000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 5_000,
    writeTimeoutMs: opts.writeTimeoutMs ?? 30_000,
    maxConnections: opts.maxConnections ?? 128,
    maxBodyBytes: opts.maxBodyBytes ?? 16 * 1024 * 1024,
  };
}

/**
 * Reads one request's head (by `deadline`) and body; answers `100-continue`. A malformed request
 * is answered with its 4xx status and gives `null` (the connection then closes).
 */
async function readRequest(
  r: ConnReader,
  conn: Deno.Conn,
  deadline: number,
  limits: Limits,
): Promise<{ head: Head; body: Uint8Array | null } | null> {
  try {
    const head = parseHead(await r.until(CRLF2, deadline, MAX_HEADER_BYTES));
    if (head.headers.get("expect")?.toLowerCase() === "100-continue") {
      const deadline = Date.now() + limits.writeTimeoutMs;
      await writeAll(conn, enc.encode("HTTP/1.1 100 Continue\r\n\r\n"), deadline);
    }
    const body = await readBody(r, head, Date.now() + limits.bodyTimeoutMs, limits.maxBodyBytes);
    return { head, body };
  } catch (err) {
    if (!(err instanceof BadRequest)) throw err;
    const bytes = await encodeResponse(plain(err.status, err.message), false, false);
    await writeAll(conn, bytes, Date.now() + limits.writeTimeoutMs).catch(() => {});
    return null;
  }
}

/** Whether the client asks to keep the connection open (HTTP/1.1 unless `close`; 1.0 if asked). */
function wantsKeepAlive(head: Head): boolean {
  const connection = head.headers.get("connection")?.toLowerCase() ?? "";
  return head.version === "1.1" ? !connection.includes("close") : connection.includes("keep-alive");
}

function toRequest(
  { head, body }: { head: Head; body: Uint8Array | null },
  addr: Deno.NetAddr,
): Request {
  const host = head.headers.get("host") ?? `${addr.hostname}:${addr.port}`;
  const url = head.target.startsWith("/") ? `http://${host}${head.target}` : head.target;
  return new Request(url, {
    method: head.method,
    headers: head.headers,
    body: head.method === "GET" || head.method === "HEAD" || body === null
      ? null
      : new Uint8Array(body),
  });
}

/** The handler's response to `request`, or `onError`'s when building or handling it throws. */
async function answer(
  handler: (req: Request) => Promise<Response>,
  onError: (err: unknown) => Response,
  request: { head: Head; body: Uint8Array | null },
  addr: Deno.NetAddr,
): Promise<Response> {
  try {
    return await handler(toRequest(request, addr));
  } catch (err) {
    return onError(err);
  }
}

/** A connection's normal ends (timeouts, the peer going away), not worth a warning. */
function isConnectionEnd(err: unknown): boolean {
  return err instanceof Timeout || err instanceof Closed ||
    err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.Interrupted;
}

/**
 * The next connection; accept failures (EMFILE and friends: the connection stays in the
 * backlog) are retried with a growing pause. `null` once the listener is closed for shutdown.
 */
async function acceptWithBackoff(
  listener: Deno.Listener,
  log: Logger,
  stopping: () => boolean,
): Promise<Deno.Conn | null> {
  let backoff = 10;
  for (;;) {
    try {
      return await listener.accept();
    } catch (err) {
      if (stopping() || err instanceof Deno.errors.BadResource) return null;
      log.warn("http accept failed; retrying", { error: messageOf(err), retryMs: backoff });
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(1000, backoff * 2);
    }
  }
}

/** Answers 503 on a connection over the limit and closes it, without waiting for the write. */
async function refuseOverloaded(conn: Deno.Conn): Promise<void> {
  const bytes = await encodeResponse(plain(503, "too many connections"), false, false);
  void writeAll(conn, bytes, Date.now() + 1000).catch(() => {}).finally(() => {
    try {
      conn.close();
    } catch {
      // closed already
    }
  });
}

/**
 * Serves `handler` with the limits above; returns a `Deno.HttpServer`-shaped handle.
 *
 * @example
 * ```ts
 * const s = serveBounded(fetchFn, { hostname: "127.0.0.1", port: 0, log, onError });
 * ```
 */
export function serveBounded(
  handler: (req: Request) => Promise<Response>,
  opts: BoundedServeOptions,
): Deno.HttpServer<Deno.NetAddr> {
  const limits = limitsOf(opts);
  const { headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs, writeTimeoutMs, maxConnections } = limits;
  const log = opts.log;

  const listener = Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
  const addr = listener.addr as Deno.NetAddr;
  const open = new Set<Deno.Conn>();
  const idle = new Set<Deno.Conn>();
  let stopping = false;

  const closeConn = (conn: Deno.Conn) => {
    open.delete(conn);
    idle.delete(conn);
    try {
      conn.close();
    } catch {
      // closed already
    }
  };

  const serveConn = async (conn: Deno.Conn) => {
    const r = new ConnReader(conn);
    const remote = conn.remoteAddr as Deno.NetAddr;
    try {
      for (let first = true;; first = false) {
        // Waiting for a request: the first gets the header time, later ones the idle time.
        const headDeadline = Date.now() + (first ? headerTimeoutMs : idleTimeoutMs);
        if (r.buffered === 0) {
          // Nothing sent yet: shutdown may close this connection at once.
          idle.add(conn);
          if (stopping) return;
          await r.more(headDeadline);
          idle.delete(conn);
        }
        const deadline = first ? headDeadline : Date.now() + headerTimeoutMs;
        const request = await readRequest(r, conn, deadline, limits).catch((err) => {
          if (err instanceof Timeout && (r.buffered > 0 || !first)) {
            log.debug("http request too slow; connection closed", { remote: remote.hostname });
          }
          throw err;
        });
        if (request === null) return;
        const { head } = request;
        const keepAlive = !stopping && wantsKeepAlive(head);
        const res = await answer(handler, opts.onError, request, addr);
        const bytes = await encodeResponse(res, head.method === "HEAD", keepAlive);
        await writeAll(conn, bytes, Date.now() + writeTimeoutMs);
        if (!keepAlive) return;
      }
    } catch (err) {
      if (!isConnectionEnd(err)) {
        log.warn("http connection failed", { remote: remote.hostname, error: messageOf(err) });
      }
    } finally {
      closeConn(conn);
    }
  };

  const inflight = new Set<Promise<void>>();
  const acceptLoop = async () => {
    while (!stopping) {
      const conn = await acceptWithBackoff(listener, log, () => stopping);
      if (conn === null) break;
      if (open.size >= maxConnections) {
        await refuseOverloaded(conn);
        continue;
      }
      open.add(conn);
      const p = serveConn(conn).finally(() => inflight.delete(p));
      inflight.add(p);
    }
  };

  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => resolveFinished = r);
  const loop = acceptLoop();

  const shutdown = async () => {
    if (!stopping) {
      stopping = true;
      try {
        listener.close();
      } catch {
        // closed already
      }
      for (const conn of idle) closeConn(conn);
    }
    await loop;
    // In-flight requests finish; connections still waiting for a request are closed.
    const deadline = Date.now() + Math.max(headerTimeoutMs, bodyTimeoutMs);
    while (inflight.size > 0 && Date.now() < deadline) {
      for (const conn of idle) closeConn(conn);
      await Promise.race([...inflight, new Promise((r) => setTimeout(r, 50))]);
    }
    for (const conn of [...open]) closeConn(conn);
    await Promise.allSettled([...inflight]);
    resolveFinished();
  };

  if (opts.signal) {
    if (opts.signal.aborted) void shutdown();
    else opts.signal.addEventListener("abort", () => void shutdown(), { once: true });
  }
  opts.onListen?.(addr);

  return {
    addr,
    finished,
    shutdown,
    ref: () => listener.ref(),
    unref: () => listener.unref(),
    [Symbol.asyncDispose]: shutdown,
  };
}
