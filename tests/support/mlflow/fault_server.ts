/**
 * Test support: a small stateful MLflow tracking server (the subset Sluice's training uses: runs,
 * run search, log-inputs, log-batch metrics, experiment and registered-model creation, model versions with tags and aliases,
 * get-download-uri, the artifact proxy for uploads and downloads) over raw HTTP/1.1 on 127.0.0.1, with faults an
 * operator meets in production:
 *
 * - `goAway(ms)`: the listener closes (connections are refused) and comes back on the same port
 *   after `ms`, as a restarted server does;
 * - `dropAfterApplying(endpoint)`: the next request to `endpoint` is applied, then the connection
 *   is closed without an answer (a response lost after a create);
 * - `failAfterApplying(endpoint, status)`: the next request is applied, then answered `status`.
 *
 * Responses follow the shapes recorded from MLflow 2.17.2 (`common/mlflow/testdata`). Each
 * connection serves one request (`Connection: close`), so a fault never leaks into a pooled one.
 *
 * @example
 * ```ts
 * const server = await MlflowFaultServer.start();
 * server.dropAfterApplying("runs/create");
 * const tracker = new MlflowRestTracker({ trackingUri: server.url });
 * await tracker.createRun("1");
 * server.runs.size; // 1
 * await server.close();
 * ```
 * @module
 */

/** A run as the server keeps it. */
export interface FaultServerRun {
  runId: string;
  experimentId: string;
  runName: string;
  status: string;
  startTime: number;
  endTime: number | null;
  tags: Record<string, string>;
  /** `runs/log-inputs` dataset inputs, as sent (wire form), one per dataset name + digest. */
  inputs: unknown[];
  /** Latest value of each metric (wire form). */
  metrics: Record<string, { key: string; value: number; timestamp: number; step: number }>;
}

/** A model version as the server keeps it. */
export interface FaultServerVersion {
  name: string;
  version: string;
  source: string;
  runId: string;
  tags: Record<string, string>;
}

interface RawRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: Uint8Array;
}

interface Answer {
  status: number;
  json: unknown;
  /** A raw body (artifact downloads), sent instead of `json`. */
  raw?: Uint8Array;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const API = "/api/2.0/mlflow/";
const PROXY = "/api/2.0/mlflow-artifacts/artifacts/";

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function indexOfCrlf2(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

/** Reads one request (Content-Length or chunked body); null when the peer closed first. */
async function readRequest(conn: Deno.Conn): Promise<RawRequest | null> {
  let buf: Uint8Array = new Uint8Array(0);
  const chunk = new Uint8Array(64 * 1024);
  const more = async () => {
    const n = await conn.read(chunk);
    if (n === null) return false;
    buf = concat(buf, chunk.subarray(0, n));
    return true;
  };
  let end: number;
  while ((end = indexOfCrlf2(buf)) < 0) if (!(await more())) return null;
  const head = dec.decode(buf.subarray(0, end)).split("\r\n");
  const [method, target] = head[0].split(" ");
  const headers = new Map<string, string>();
  for (const line of head.slice(1)) {
    const i = line.indexOf(":");
    headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  let rest = buf.subarray(end + 4);
  const fill = async (n: number) => {
    while (rest.length < n) {
      const got = await conn.read(chunk);
      if (got === null) return false;
      rest = concat(rest, chunk.subarray(0, got));
    }
    return true;
  };
  let body: Uint8Array = new Uint8Array(0);
  if (headers.get("transfer-encoding")?.includes("chunked")) {
    for (;;) {
      let nl = -1;
      for (;;) {
        for (let i = 0; i + 1 < rest.length; i++) {
          if (rest[i] === 13 && rest[i + 1] === 10) {
            nl = i;
            break;
          }
        }
        if (nl >= 0) break;
        if (!(await fill(rest.length + 1))) return null;
      }
      const size = parseInt(dec.decode(rest.subarray(0, nl)), 16);
      if (!(await fill(nl + 2 + size + 2))) return null;
      if (size === 0) break;
      body = concat(body, rest.subarray(nl + 2, nl + 2 + size));
      rest = rest.subarray(nl + 2 + size + 2);
    }
  } else {
    const length = Number(headers.get("content-length") ?? "0");
    if (!(await fill(length))) return null;
    body = rest.subarray(0, length);
  }
  const url = new URL(target, "http://x");
  return { method, path: url.pathname, query: url.searchParams, body };
}

function kv(tags: Record<string, string>) {
  return Object.entries(tags).map(([key, value]) => ({ key, value }));
}

/** The server; `close()` it at the end of the test. */
export class MlflowFaultServer {
  readonly runs = new Map<string, FaultServerRun>();
  readonly versions: FaultServerVersion[] = [];
  /** `<model>\u0000<alias>` → version */
  readonly aliases = new Map<string, string>();
  /** Uploaded artifacts by proxy path (`1/<run>/artifacts/model/model.onnx`). */
  readonly artifacts = new Map<string, Uint8Array>();
  /** `METHOD endpoint` of every request received, in order. */
  readonly received: string[] = [];
  /** Connections accepted while the server was up (each carries at most one request). */
  accepted = 0;
  readonly port: number;
  #listener: Deno.Listener | null;
  #loop: Promise<void> = Promise.resolve();
  #drop = new Map<string, number>();
  #fail = new Map<string, number[]>();
  #nextRun = 1;
  #models = new Set<string>();
  #open = new Set<Deno.Conn>();
  #reopen: Promise<void> | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Stalls an upload this long after reading its first body bytes, then goes away (see goAway). */
  #uploadTrap: { downMs: number } | null = null;

  private constructor(listener: Deno.Listener) {
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#loop = this.#accept(listener);
  }

  /** Starts the server on a free loopback port. */
  static start(): Promise<MlflowFaultServer> {
    return Promise.resolve(
      new MlflowFaultServer(Deno.listen({ hostname: "127.0.0.1", port: 0 })),
    );
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Applies the next request to `endpoint` (e.g. `runs/create`), then drops the connection. */
  dropAfterApplying(endpoint: string): void {
    this.#drop.set(endpoint, (this.#drop.get(endpoint) ?? 0) + 1);
  }

  /** Applies the next request to `endpoint`, then answers `status` instead of the result. */
  failAfterApplying(endpoint: string, status: number): void {
    const list = this.#fail.get(endpoint) ?? [];
    list.push(status);
    this.#fail.set(endpoint, list);
  }

  /**
   * The next artifact upload is cut off mid-body: the server closes every connection and stops
   * listening (connections are refused) for `downMs`, then listens again on the same port.
   */
  goAwayDuringNextUpload(downMs: number): void {
    this.#uploadTrap = { downMs };
  }

  /** Stops listening for `ms` (connections are refused), then listens again on the same port. */
  goAway(ms: number): Promise<void> {
    this.#listener?.close();
    this.#listener = null;
    for (const c of this.#open) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    this.#open.clear();
    this.#reopen = new Promise((resolve) => {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        const l = Deno.listen({ hostname: "127.0.0.1", port: this.port });
        this.#listener = l;
        this.#loop = this.#accept(l);
        resolve();
      }, ms);
    });
    return this.#reopen;
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#listener?.close();
    this.#listener = null;
    for (const c of this.#open) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await this.#loop.catch(() => {});
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const conn of listener) {
        this.accepted++;
        this.#open.add(conn);
        this.#serve(conn).catch(() => {}).finally(() => {
          this.#open.delete(conn);
          try {
            conn.close();
          } catch { /* already closed */ }
        });
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    if (this.#uploadTrap) {
      // Peek: an upload to the proxy gets cut off after its first bytes.
      const first = new Uint8Array(4096);
      const n = await conn.read(first);
      if (n === null) return;
      const line = dec.decode(first.subarray(0, Math.min(n, 200)));
      if (line.startsWith("PUT ") && line.includes(PROXY)) {
        const trap = this.#uploadTrap;
        this.#uploadTrap = null;
        this.received.push(`PUT (cut off) ${line.split(" ")[1]}`);
        void this.goAway(trap.downMs);
        return;
      }
      // Not an upload: put the bytes back in front of the rest of the stream.
      return await this.#serveRequest(conn, first.subarray(0, n));
    }
    await this.#serveRequest(conn, new Uint8Array(0));
  }

  async #serveRequest(conn: Deno.Conn, prefix: Uint8Array): Promise<void> {
    const wrapped = prefix.length
      ? {
        read: async (p: Uint8Array) => {
          if (prefix.length) {
            const n = Math.min(p.length, prefix.length);
            p.set(prefix.subarray(0, n));
            prefix = prefix.subarray(n);
            return n;
          }
          return await conn.read(p);
        },
      } as Deno.Conn
      : conn;
    const req = await readRequest(wrapped);
    if (!req) return;
    const endpoint = req.path.startsWith(API)
      ? req.path.slice(API.length)
      : req.path.startsWith(PROXY)
      ? "artifacts"
      : req.path;
    // ^ proxy uploads (PUT) and downloads (GET) share the endpoint name "artifacts".
    this.received.push(`${req.method} ${endpoint}`);
    const answer = this.#apply(req, endpoint);
    const drops = this.#drop.get(endpoint) ?? 0;
    if (drops > 0) {
      this.#drop.set(endpoint, drops - 1);
      return; // applied; the connection closes without an answer
    }
    const fail = this.#fail.get(endpoint)?.shift();
    const out: Answer = fail !== undefined
      ? { status: fail, json: { error_code: "INTERNAL_ERROR", message: "injected after apply" } }
      : answer;
    const body = out.raw ?? enc.encode(JSON.stringify(out.json));
    await conn.write(enc.encode(
      `HTTP/1.1 ${out.status} X\r\nContent-Type: ${
        out.raw ? "application/octet-stream" : "application/json"
      }\r\n` +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    ));
    await conn.write(body);
  }

  #runJson(r: FaultServerRun) {
    return {
      info: {
        run_uuid: r.runId,
        run_id: r.runId,
        experiment_id: r.experimentId,
        run_name: r.runName,
        user_id: "",
        status: r.status,
        start_time: r.startTime,
        ...(r.endTime !== null ? { end_time: r.endTime } : {}),
        artifact_uri: `mlflow-artifacts:/${r.experimentId}/${r.runId}/artifacts`,
        lifecycle_stage: "active",
      },
      data: { tags: kv(r.tags), metrics: Object.values(r.metrics) },
      inputs: { dataset_inputs: r.inputs },
    };
  }

  #versionJson(v: FaultServerVersion) {
    return {
      name: v.name,
      version: v.version,
      creation_timestamp: 1,
      last_updated_timestamp: 1,
      current_stage: "None",
      description: "",
      source: v.source,
      run_id: v.runId,
      status: "READY",
      tags: kv(v.tags),
      aliases: [...this.aliases].filter(([k, ver]) =>
        k.startsWith(`${v.name}\u0000`) && ver === v.version
      )
        .map(([k]) => k.slice(v.name.length + 1)).sort(),
      run_link: "",
    };
  }

  #apply(req: RawRequest, endpoint: string): Answer {
    const json = (): Record<string, unknown> =>
      req.body.length ? JSON.parse(dec.decode(req.body)) : {};
    const tagsOf = (v: unknown): Record<string, string> =>
      Object.fromEntries(
        ((v as { key: string; value: string }[] | undefined) ?? []).map((t) => [t.key, t.value]),
      );
    const missing = (what: string): Answer => ({
      status: 404,
      json: { error_code: "RESOURCE_DOES_NOT_EXIST", message: `${what} not found` },
    });
    switch (`${req.method} ${endpoint}`) {
      case "POST runs/create": {
        const b = json();
        const runId = `run${String(this.#nextRun++).padStart(8, "0")}`;
        const run: FaultServerRun = {
          runId,
          experimentId: String(b.experiment_id),
          runName: String(b.run_name ?? runId),
          status: "RUNNING",
          startTime: Number(b.start_time),
          endTime: null,
          tags: tagsOf(b.tags),
          inputs: [],
          metrics: {},
        };
        this.runs.set(runId, run);
        return { status: 200, json: { run: this.#runJson(run) } };
      }
      case "GET runs/get": {
        const run = this.runs.get(req.query.get("run_id") ?? "");
        return run ? { status: 200, json: { run: this.#runJson(run) } } : missing("run");
      }
      case "POST runs/search": {
        const b = json();
        const filter = String(b.filter ?? "");
        const conds = filter ? filter.split(/\s+and\s+/i) : [];
        const runs = [...this.runs.values()].filter((r) =>
          (b.experiment_ids as string[]).includes(r.experimentId) &&
          conds.every((c) => {
            const m = /^(tags\.`([^`]+)`|attributes\.status)\s*=\s*'([^']*)'$/.exec(c.trim());
            if (!m) throw new Error(`fault server: unsupported filter ${c}`);
            return m[2] !== undefined ? r.tags[m[2]] === m[3] : r.status === m[3];
          })
        );
        return {
          status: 200,
          json: runs.length ? { runs: runs.map((r) => this.#runJson(r)) } : {},
        };
      }
      case "POST runs/update": {
        const b = json();
        const run = this.runs.get(String(b.run_id));
        if (!run) return missing("run");
        run.status = String(b.status);
        run.endTime = Number(b.end_time);
        return { status: 200, json: { run_info: this.#runJson(run).info } };
      }
      case "POST runs/set-tag": {
        const b = json();
        const run = this.runs.get(String(b.run_id));
        if (!run) return missing("run");
        run.tags[String(b.key)] = String(b.value);
        return { status: 200, json: {} };
      }
      case "POST runs/log-inputs": {
        // Shape per MLflow's REST reference: {run_id, datasets: [{tags: [{key, value}],
        // dataset: {name, digest, source_type, source, schema, profile}}]}.
        const b = json();
        const run = this.runs.get(String(b.run_id));
        if (!run) return missing("run");
        for (const d of (b.datasets as { dataset: { name: string; digest: string } }[]) ?? []) {
          const same = (x: unknown) => {
            const ds = (x as { dataset: { name: string; digest: string } }).dataset;
            return ds.name === d.dataset.name && ds.digest === d.dataset.digest;
          };
          if (!run.inputs.some(same)) run.inputs.push(d);
        }
        return { status: 200, json: {} };
      }
      case "GET model-versions/get-download-uri": {
        const v = this.versions.find((x) =>
          x.name === req.query.get("name") && x.version === req.query.get("version")
        );
        return v ? { status: 200, json: { artifact_uri: v.source } } : missing("version");
      }
      case "POST model-versions/create": {
        const b = json();
        const name = String(b.name);
        const version = String(this.versions.filter((v) => v.name === name).length + 1);
        const v: FaultServerVersion = {
          name,
          version,
          source: String(b.source),
          runId: String(b.run_id ?? ""),
          tags: tagsOf(b.tags),
        };
        this.versions.push(v);
        return { status: 200, json: { model_version: this.#versionJson(v) } };
      }
      case "GET model-versions/search": {
        const m = /^name='([^']*)'$/.exec(req.query.get("filter") ?? "");
        const list = this.versions.filter((v) => m && v.name === m[1]);
        return { status: 200, json: { model_versions: list.map((v) => this.#versionJson(v)) } };
      }
      case "GET model-versions/get": {
        const v = this.versions.find((x) =>
          x.name === req.query.get("name") && x.version === req.query.get("version")
        );
        return v
          ? { status: 200, json: { model_version: this.#versionJson(v) } }
          : missing("version");
      }
      case "POST experiments/create":
        return { status: 200, json: { experiment_id: "1" } };
      case "POST registered-models/create": {
        const name = String(json().name);
        if (this.#models.has(name)) {
          return {
            status: 400,
            json: {
              error_code: "RESOURCE_ALREADY_EXISTS",
              message: `Registered Model (name=${name}) already exists.`,
            },
          };
        }
        this.#models.add(name);
        return {
          status: 200,
          json: { registered_model: { name, creation_timestamp: 1, last_updated_timestamp: 1 } },
        };
      }
      case "GET registered-models/get": {
        const name = req.query.get("name") ?? "";
        return this.#models.has(name)
          ? {
            status: 200,
            json: { registered_model: { name, creation_timestamp: 1, last_updated_timestamp: 1 } },
          }
          : missing("registered model");
      }
      case "POST registered-models/alias": {
        const b = json();
        const name = String(b.name), version = String(b.version);
        if (!this.versions.some((v) => v.name === name && v.version === version)) {
          return missing("version");
        }
        this.aliases.set(`${name}\u0000${b.alias}`, version);
        return { status: 200, json: {} };
      }
      case "GET registered-models/alias": {
        const name = req.query.get("name") ?? "";
        const version = this.aliases.get(`${name}\u0000${req.query.get("alias")}`);
        const v = this.versions.find((x) => x.name === name && x.version === version);
        // MLflow 2.17.2 answers 400 INVALID_PARAMETER_VALUE for a missing alias (recording #44).
        return v ? { status: 200, json: { model_version: this.#versionJson(v) } } : {
          status: 400,
          json: {
            error_code: "INVALID_PARAMETER_VALUE",
            message: `Registered model alias ${req.query.get("alias")} not found.`,
          },
        };
      }
      case "POST model-versions/set-tag": {
        const b = json();
        const v = this.versions.find((x) => x.name === b.name && x.version === String(b.version));
        if (!v) return missing("version");
        v.tags[String(b.key)] = String(b.value);
        return { status: 200, json: {} };
      }
      case "POST runs/log-batch": {
        const b = json();
        const run = this.runs.get(String(b.run_id));
        if (!run) return missing("run");
        for (
          const m
            of (b.metrics as { key: string; value: number; timestamp: number; step: number }[]) ??
              []
        ) {
          run.metrics[m.key] = m;
        }
        return { status: 200, json: {} };
      }
      case "GET artifacts": {
        const bytes = this.artifacts.get(decodeURIComponent(req.path.slice(PROXY.length)));
        if (!bytes) {
          return {
            status: 404,
            json: { error_code: "RESOURCE_DOES_NOT_EXIST", message: "No such file or directory" },
          };
        }
        return { status: 200, json: null, raw: bytes };
      }
      case "PUT artifacts": {
        this.artifacts.set(decodeURIComponent(req.path.slice(PROXY.length)), req.body);
        return { status: 200, json: {} };
      }
      case "GET /api/2.0/mlflow-artifacts/artifacts": {
        // The proxy's listing: the direct children of `path` (shape as recorded, seq 21).
        const dir = `${(req.query.get("path") ?? "").replace(/\/+$/, "")}/`;
        const files = new Map<string, { path: string; is_dir: boolean; file_size?: number }>();
        for (const [key, bytes] of this.artifacts) {
          if (!key.startsWith(dir)) continue;
          const [head, ...rest] = key.slice(dir.length).split("/");
          files.set(
            head,
            rest.length ? { path: head, is_dir: true } : {
              path: head,
              is_dir: false,
              file_size: bytes.byteLength,
            },
          );
        }
        return { status: 200, json: { files: [...files.values()] } };
      }
      case "GET /health":
        return { status: 200, json: "OK" };
    }
    return { status: 404, json: { error_code: "ENDPOINT_NOT_FOUND", message: endpoint } };
  }
}
