/**
 * Test support: a real HTTP server (Deno.serve on 127.0.0.1, port 0) that replays exchanges
 * recorded against MLflow 2.17.2 (`testdata/exchanges-2.17.2.jsonl`). For every request it checks
 * what the client sent against the recording (method, raw path, query, JSON body compared
 * semantically, uploaded bytes, auth header, JSON content type) and answers the recorded status and
 * body. Mismatches answer 418 with an explanation and are collected in `problems`.
 *
 * Two modes:
 * - `sequence`: requests must arrive in exactly the listed order (the replay test).
 * - `match`: each request takes the earliest unused exchange it matches; a GET whose matches are
 *   all used re-answers the last one (GETs are idempotent). Used by the shared contract suite,
 *   which reaches the recorded states in the recorded order but not every recorded request.
 *
 * Values that vary between runs (`start_time`, `end_time`, `timestamp`) must be present and be
 * integers but may differ; ids need no substitution because the client takes them from the
 * recorded responses. A field the recording omits matches the client's explicit proto3 default
 * (`step: 0`, `archive_existing_versions: false`), as it does on the server.
 * @module
 */
import { fileURLToPath } from "node:url";

/** One recorded request/response pair. */
export interface Exchange {
  /** Position in the recording (0-based); derived exchanges use -1. */
  index: number;
  label: string;
  method: string;
  path: string;
  query: Record<string, string | number | string[]> | null;
  request_json: unknown;
  request_body_file: { file: string; bytes: number; sha256: string } | null;
  status: number;
  response_kind: "json" | "text";
  response_json: unknown;
  response_other: unknown;
  response_content_type?: string;
}

/** Loads the recording shipped in `testdata/`. */
export async function loadRecording(): Promise<Exchange[]> {
  const path = fileURLToPath(
    new URL("../../../common/mlflow/testdata/exchanges-2.17.2.jsonl", import.meta.url),
  );
  const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim());
  return lines.map((l, index) => ({
    ...(JSON.parse(quoteBareLiterals(l)) as Omit<Exchange, "index">),
    index,
  }));
}

/**
 * #90 recorded a body with bare NaN/Infinity literals (Python's json module writes them; JSON has
 * none). Outside strings, they become the strings "<literal NaN>" etc. so the line parses.
 */
function quoteBareLiterals(line: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (inString) {
      out += c;
      if (c === "\\") out += line[++i];
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    const m = /^(-?Infinity|NaN)/.exec(line.slice(i, i + 9));
    if (!inString && m) {
      out += `"<literal ${m[1]}>"`;
      i += m[1].length - 1;
      continue;
    }
    out += c;
  }
  return out;
}

/** A failure answered before the exchange at some position is served. */
export interface Injected {
  status: number;
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

/** How the server behaves. */
export interface ReplayOptions {
  mode: "sequence" | "match";
  /** The exchanges to serve (in order, for `sequence`). */
  exchanges: Exchange[];
  /** Bytes the client must upload for a recorded `request_body_file.file`. */
  payloads?: Map<string, Uint8Array>;
  /** Payload files that are stand-ins (the originals were not recorded): their sha256 differs. */
  substituted?: Set<string>;
  /** The body to answer for an exchange whose recording kept only its size and hash. */
  downloads?: Map<number, Uint8Array>;
  /** The exact `Authorization` header every request must carry. */
  authorization?: string;
  /** Failures answered, in order, before serving the exchange at a position of `exchanges`. */
  inject?: Map<number, Injected[]>;
}

const VARIABLE = new Set(["start_time", "end_time", "timestamp"]);

function isDefault(v: unknown): boolean {
  return v === 0 || v === "" || v === false || (Array.isArray(v) && v.length === 0);
}

/** Compares a sent JSON value with a recorded one; returns the first difference or undefined. */
export function jsonDiff(sent: unknown, recorded: unknown, at = "$"): string | undefined {
  if (Array.isArray(recorded)) {
    if (!Array.isArray(sent) || sent.length !== recorded.length) {
      return `${at}: expected ${JSON.stringify(recorded)}, found ${JSON.stringify(sent)}`;
    }
    for (let i = 0; i < recorded.length; i++) {
      const d = jsonDiff(sent[i], recorded[i], `${at}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (recorded !== null && typeof recorded === "object") {
    if (sent === null || typeof sent !== "object" || Array.isArray(sent)) {
      return `${at}: expected an object, found ${JSON.stringify(sent)}`;
    }
    const r = recorded as Record<string, unknown>;
    const s = sent as Record<string, unknown>;
    for (const k of new Set([...Object.keys(r), ...Object.keys(s)])) {
      const where = `${at}.${k}`;
      if (!(k in r)) {
        if (isDefault(s[k])) continue;
        return `${where}: not in the recording, found ${JSON.stringify(s[k])}`;
      }
      if (!(k in s)) return `${where}: missing (recorded ${JSON.stringify(r[k])})`;
      if (VARIABLE.has(k)) {
        const ok = typeof r[k] === "string"
          ? typeof s[k] === "string" && /^\d+$/.test(s[k] as string)
          : Number.isSafeInteger(s[k]);
        if (!ok) return `${where}: expected an integer, found ${JSON.stringify(s[k])}`;
        continue;
      }
      const d = jsonDiff(s[k], r[k], where);
      if (d) return d;
    }
    return undefined;
  }
  return Object.is(sent, recorded)
    ? undefined
    : `${at}: expected ${JSON.stringify(recorded)}, found ${JSON.stringify(sent)}`;
}

function queryDiff(url: URL, recorded: Exchange["query"]): string | undefined {
  const sent: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) (sent[k] ??= []).push(v);
  const want: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(recorded ?? {})) {
    want[k] = Array.isArray(v) ? v.map(String) : [String(v)];
  }
  const a = JSON.stringify(Object.fromEntries(Object.entries(sent).sort()));
  const b = JSON.stringify(Object.fromEntries(Object.entries(want).sort()));
  return a === b ? undefined : `query: expected ${b}, found ${a}`;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Sluice tags every run and model version it creates with `sluice.client_token` (idempotent
 * creation); the recording predates that tag. For runs/create and model-versions/create, one
 * such tag (a non-empty string) is taken out of the sent body before comparing; the recorded tags
 * must still match exactly.
 */
function withoutClientToken(sent: unknown, ex: Exchange): unknown {
  if (!/\/(runs|model-versions)\/create$/.test(ex.path)) return sent;
  if (sent === null || typeof sent !== "object" || Array.isArray(sent)) return sent;
  const tags = (sent as { tags?: unknown }).tags;
  if (!Array.isArray(tags)) return sent;
  const kept = tags.filter((t) =>
    !(t && typeof t === "object" && (t as { key?: unknown }).key === "sluice.client_token" &&
      typeof (t as { value?: unknown }).value === "string" && (t as { value: string }).value)
  );
  return { ...sent, tags: kept };
}

/** The replay server; close it at the end of the test. */
export class ReplayServer {
  readonly problems: string[] = [];
  /** Recording indices answered, in order (injected failures excluded). */
  readonly served: number[] = [];
  /** How many injected failures were answered. */
  injectedServed = 0;
  /** Every request received (`METHOD path?query`). */
  readonly received: string[] = [];
  readonly #opts: ReplayOptions;
  readonly #used = new Set<number>();
  readonly #pendingInjections = new Map<number, Injected[]>();
  #next = 0;
  #server?: Deno.HttpServer<Deno.NetAddr>;

  constructor(opts: ReplayOptions) {
    this.#opts = opts;
    for (const [k, v] of opts.inject ?? []) this.#pendingInjections.set(k, [...v]);
  }

  /** Starts listening on 127.0.0.1 (random port). */
  start(): this {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => this.#handle(req),
    );
    return this;
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    if (!this.#server) throw new Error("replay server not started");
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  /** Positions (in `exchanges`) not served yet, in sequence mode. */
  get remaining(): number {
    return this.#opts.exchanges.length - this.#next;
  }

  async close(): Promise<void> {
    await this.#server?.shutdown();
  }

  async #check(
    req: Request,
    url: URL,
    body: Uint8Array,
    ex: Exchange,
  ): Promise<string | undefined> {
    if (req.method !== ex.method) return `method: expected ${ex.method}, found ${req.method}`;
    if (url.pathname !== ex.path) return `path: expected ${ex.path}, found ${url.pathname}`;
    const q = queryDiff(url, ex.query);
    if (q) return q;
    const auth = this.#opts.authorization;
    if (auth !== undefined && req.headers.get("authorization") !== auth) {
      return `authorization: expected ${JSON.stringify(auth)}, found ${
        JSON.stringify(req.headers.get("authorization"))
      }`;
    }
    const text = new TextDecoder().decode(body);
    if (ex.request_body_file) {
      const file = ex.request_body_file;
      const want = this.#opts.payloads?.get(file.file);
      if (!want) return `no payload registered for ${file.file}`;
      if (!equalBytes(body, want)) {
        return `body: expected the ${want.length} bytes of ${file.file}, found ${body.length} other bytes`;
      }
      if (body.length !== file.bytes) {
        return `body: recorded ${file.bytes} bytes, found ${body.length}`;
      }
      if (!this.#opts.substituted?.has(file.file) && (await sha256Hex(body)) !== file.sha256) {
        return `body: sha256 differs from the recorded ${file.file}`;
      }
      return undefined;
    }
    if (ex.request_json === null || ex.request_json === "") {
      return body.length === 0
        ? undefined
        : `body: expected none, found ${JSON.stringify(text.slice(0, 200))}`;
    }
    if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) {
      return `content-type: expected application/json, found ${req.headers.get("content-type")}`;
    }
    let sent: unknown;
    try {
      sent = JSON.parse(text);
    } catch {
      return `body: expected JSON, found ${JSON.stringify(text.slice(0, 200))}`;
    }
    const d = jsonDiff(withoutClientToken(sent, ex), ex.request_json);
    return d ? `body ${d}` : undefined;
  }

  #answer(ex: Exchange): Response {
    if (ex.response_kind === "json") {
      return new Response(JSON.stringify(ex.response_json ?? {}), {
        status: ex.status,
        headers: { "content-type": "application/json" },
      });
    }
    const other = ex.response_other;
    if (typeof other === "string") {
      return new Response(other, {
        status: ex.status,
        headers: { "content-type": ex.response_content_type ?? "text/plain" },
      });
    }
    const bytes = this.#opts.downloads?.get(ex.index);
    const size = (other as { bytes?: number } | null)?.bytes;
    if (!bytes || bytes.length !== size) {
      return this.#problem(`exchange #${ex.index}: no ${size}-byte download body registered`);
    }
    return new Response(bytes as Uint8Array<ArrayBuffer>, {
      status: ex.status,
      headers: { "content-type": "application/octet-stream" },
    });
  }

  #problem(message: string): Response {
    this.problems.push(message);
    return new Response(JSON.stringify({ error_code: "REPLAY_MISMATCH", message }), {
      status: 418,
      headers: { "content-type": "application/json" },
    });
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const body = new Uint8Array(await req.arrayBuffer());
    this.received.push(`${req.method} ${url.pathname}${url.search}`);
    const { exchanges } = this.#opts;
    if (this.#opts.mode === "sequence") {
      const ex = exchanges[this.#next];
      if (!ex) {
        return this.#problem(
          `unexpected request after the last exchange: ${req.method} ${url.pathname}`,
        );
      }
      const diff = await this.#check(req, url, body, ex);
      if (diff) return this.#problem(`exchange #${ex.index} (${ex.label}): ${diff}`);
      const pending = this.#pendingInjections.get(this.#next);
      if (pending?.length) {
        const inj = pending.shift()!;
        this.injectedServed++;
        return new Response(inj.body ?? "", {
          status: inj.status,
          headers: { "content-type": inj.contentType ?? "text/html", ...inj.headers },
        });
      }
      this.#next++;
      this.served.push(ex.index);
      return this.#answer(ex);
    }
    let lastMatch: number | undefined;
    const near: string[] = [];
    for (let i = 0; i < exchanges.length; i++) {
      const ex = exchanges[i];
      const diff = await this.#check(req, url, body, ex);
      if (diff) {
        if (ex.method === req.method && ex.path === url.pathname && !this.#used.has(i)) {
          near.push(`#${ex.index}: ${diff}`);
        }
        continue;
      }
      if (!this.#used.has(i)) {
        this.#used.add(i);
        this.served.push(ex.index);
        return this.#answer(ex);
      }
      lastMatch = i;
    }
    if (lastMatch !== undefined && req.method === "GET") {
      this.served.push(exchanges[lastMatch].index);
      return this.#answer(exchanges[lastMatch]);
    }
    return this.#problem(
      `no unused recorded exchange matches ${req.method} ${url.pathname}${url.search}` +
        (near.length ? `; nearest: ${near.slice(0, 3).join(" | ")}` : ""),
    );
  }
}

/** Deterministic stand-in bytes (xorshift32) for a payload whose content was not recorded. */
export function standInBytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The upload payloads of the recording, and the download bodies it kept only as size + hash. */
export interface RecordedPayloads {
  payloads: Map<string, Uint8Array>;
  substituted: Set<string>;
  downloads: Map<number, Uint8Array>;
  /** `payload/model.onnx` (a stand-in of the recorded size). */
  modelOnnx: Uint8Array;
  /** `payload/MLmodel`, exactly as recorded (its text came back from `/get-artifact`, #23). */
  mlmodel: Uint8Array;
  /** `payload/blob.bin` (a stand-in of the recorded size). */
  blob: Uint8Array;
  /** `payload/v1.txt` and `payload/v2.txt`, exactly as recorded (v2 came back in #124). */
  v1: Uint8Array;
  v2: Uint8Array;
}

/**
 * Rebuilds the recorded upload payloads: MLmodel and v2.txt from the recorded downloads of the
 * same files, v1.txt from its text; the server checks each against the recorded sha256. The ONNX
 * file and blob.bin were not kept, so same-sized stand-ins take their place (and serve as the body
 * of the recorded model.onnx download, #21).
 */
export function recordedPayloads(rec: Exchange[]): RecordedPayloads {
  const enc = new TextEncoder();
  const text = (i: number) => {
    const v = rec[i].response_other;
    if (typeof v !== "string") throw new Error(`exchange #${i}: expected a recorded text body`);
    return enc.encode(v);
  };
  const modelOnnx = standInBytes(16384, 0x5eed);
  const blob = standInBytes(5007, 0xb10b);
  const mlmodel = text(23);
  const v1 = enc.encode("first version\n");
  const v2 = text(124);
  return {
    payloads: new Map([
      ["payload/model.onnx", modelOnnx],
      ["payload/MLmodel", mlmodel],
      ["payload/blob.bin", blob],
      ["payload/v1.txt", v1],
      ["payload/v2.txt", v2],
    ]),
    substituted: new Set(["payload/model.onnx", "payload/blob.bin"]),
    downloads: new Map([[21, modelOnnx]]),
    modelOnnx,
    mlmodel,
    blob,
    v1,
    v2,
  };
}

/**
 * A GET of the model's MLmodel through the artifact proxy. Not in the recording (which fetched
 * that file through the legacy `/get-artifact`, #23); built from #21's path and #23's body so a
 * whole model directory can be downloaded through the proxy.
 */
export function derivedMlmodelDownload(rec: Exchange[]): Exchange {
  return {
    ...rec[21],
    index: -1,
    label: "derived: download MLmodel via proxy (path of #21, body of #23)",
    path: rec[21].path.replace(/model\.onnx$/, "MLmodel"),
    response_kind: "text",
    response_other: rec[23].response_other,
    response_content_type: "text/plain",
  };
}
