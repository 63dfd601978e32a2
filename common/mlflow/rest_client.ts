/**
 * {@link MlflowRestTracker}: the {@link Tracker} for an MLflow tracking server (checked against a
 * recording of MLflow 2.17.2, see `rest_client_replay_test.ts`).
 *
 * - Auth: a bearer token, or username/password (HTTP Basic).
 * - Retries with backoff on network errors, 429 and 5xx; never on other 4xx.
 * - Ids and versions are strings on the wire, params are sent as strings, metrics always carry a
 *   timestamp and a step, NaN/±Infinity go as the strings MLflow accepts ("NaN", "Infinity").
 * - log-batch is chunked within MLflow's limits (1000 metrics, 100 params, 100 tags, 1000 total).
 * - Artifacts: `mlflow-artifacts:` roots go through the server's artifact proxy
 *   (`/api/2.0/mlflow-artifacts/artifacts/<path>`); `s3://` roots go straight to S3 through
 *   `common/objectstore` (S3 settings are passed in the options); `file://` roots are copied
 *   locally (a server on the same host). A missing file behind the proxy (MLflow answers 500) is an
 *   {@link ArtifactNotFoundError}.
 *
 * @example
 * ```ts
 * const tracker = new MlflowRestTracker({ trackingUri: "http://mlflow:5000", token: "t0k" });
 * const exp = await tracker.getOrCreateExperiment("sluice");
 * const run = await tracker.createRun(exp, { runName: "train" });
 * await tracker.logMetric(run.runId, "loss", NaN, { step: 3 });
 * await tracker.close();
 * ```
 * @module
 */
import { basename, join } from "node:path";
import { z } from "zod";
import { createLogger, type Logger } from "../log/mod.ts";
import {
  ObjectNotFoundError,
  type ObjectStore,
  openObjectStore,
  type OpenOptions,
} from "../objectstore/mod.ts";
import { S3SettingsSchema } from "../objectstore/s3_settings.ts";
import { copyFileAtomic, walkFiles, writeStreamAtomic } from "./_atomic.ts";
import { chunkBatch, normalizeBatch, paramString } from "./_batch.ts";
import { HttpTransport, OUTCOME_UNKNOWN, type Query } from "./_http.ts";
import { describeNetworkError } from "./_network_error.ts";
import {
  downloadLocalFile,
  downloadLocalTree,
  fileUriToPath,
  listLocal,
} from "./_local_artifacts.ts";
import { downloadModel, resolveModelUri } from "./_resolve.ts";
import { datasetInputsWire, metricWireValue, Responses, toKeyValues } from "./_wire.ts";
import { ArtifactNotFoundError, ErrorCodes, isNotFound, MlflowError } from "./errors.ts";
import { artifactPathSegments, joinArtifactUri } from "./model_uri.ts";
import { CLIENT_TOKEN_TAG } from "./tracker.ts";
import type {
  ArtifactEntry,
  ArtifactSource,
  CreateRunOptions,
  DatasetInput,
  DownloadedModel,
  Experiment,
  LogBatch,
  Metric,
  MetricInput,
  ModelStage,
  ModelVersion,
  ParamValue,
  RegisteredModel,
  ResolvedModelUri,
  Run,
  RunInfo,
  RunStatus,
  TerminalRunStatus,
  Tracker,
  WaitOptions,
} from "./tracker.ts";
import { sleep } from "../timing/mod.ts";
import { registryIdentity } from "./registry_identity.ts";

/** Options of {@link MlflowRestTracker}, validated at construction. */
export const RestTrackerOptionsSchema = z.object({
  /** `http(s)://host[:port][/prefix]` of the tracking server. */
  trackingUri: z.string().refine((v) => {
    if (!URL.canParse(v)) return false;
    const p = new URL(v).protocol;
    return p === "http:" || p === "https:";
  }, { error: "expected an http(s):// URL of an MLflow tracking server" }),
  token: z.string().min(1).optional(),
  username: z.string().min(1).optional(),
  password: z.string().optional(),
  /** Cap on tries for a transient failure (1 = no retries); unset = what the budget allows. */
  maxAttempts: z.number().int().min(1).optional(),
  /**
   * Wall time (ms) from a call's first attempt during which transient failures are retried; the
   * default rides through a server restart of a minute or so.
   */
  retryBudgetMs: z.number().int().nonnegative().default(120_000),
  /** First retry's delay cap; doubles per retry (full jitter). */
  baseDelayMs: z.number().nonnegative().default(250),
  maxDelayMs: z.number().nonnegative().default(10_000),
  /** Per-request timeout for API calls. */
  timeoutMs: z.number().int().positive().default(60_000),
  /** Per-request timeout for artifact uploads and downloads. */
  artifactTimeoutMs: z.number().int().positive().default(30 * 60_000),
  /** S3 settings for runs whose artifact root is `s3://` (direct access, as MLflow's client does). */
  s3: S3SettingsSchema.optional(),
}).refine((o) => !(o.token && o.username), {
  error: "expected either token or username/password, found both",
}).refine((o) => o.password === undefined || o.username !== undefined, {
  error: "expected a username with the password",
});

/** What the constructor accepts. */
export type RestTrackerOptions = z.input<typeof RestTrackerOptionsSchema> & { logger?: Logger };

const API = "/api/2.0/mlflow";
const PROXY = "/api/2.0/mlflow-artifacts/artifacts";

function encodeSegments(segs: string[]): string {
  return segs.map((s) => encodeURIComponent(s)).join("/");
}

/** The proxy path (`<exp>/<run>/artifacts/…`) of an `mlflow-artifacts:` URI. */
export function proxyPathOf(uri: string): string {
  // mlflow-artifacts:/1/abc/artifacts or mlflow-artifacts://host:port/1/abc/artifacts
  const rest = uri.slice("mlflow-artifacts:".length);
  const path = rest.startsWith("//") ? rest.replace(/^\/\/[^/]*/, "") : rest;
  return artifactPathSegments(path).join("/");
}

function s3Parts(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) {
    throw new MlflowError(`artifact location ${JSON.stringify(uri)}: expected s3://bucket/key`, {
      errorCode: ErrorCodes.invalidParameter,
    });
  }
  return { bucket: m[1], key: m[2].replace(/\/+$/, "") };
}

function isMissingArtifactMessage(message: string): boolean {
  return /No such file or directory|Errno 2|NoSuchKey|Not Found|does not exist|\b404\b/i.test(
    message,
  );
}

function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** The {@link Tracker} for an MLflow tracking server over REST. */
export class MlflowRestTracker implements Tracker {
  readonly kind = "rest" as const;
  readonly #http: HttpTransport;
  readonly #opts: z.output<typeof RestTrackerOptionsSchema>;
  readonly #artifactRoots = new Map<string, string>();
  readonly #stores = new Map<string, Promise<ObjectStore>>();
  readonly #log: Logger;

  constructor(options: RestTrackerOptions) {
    const { logger, ...rest } = options;
    const parsed = RestTrackerOptionsSchema.safeParse(rest);
    if (!parsed.success) {
      throw new MlflowError(`MLflow client options: ${z.prettifyError(parsed.error)}`, {
        errorCode: ErrorCodes.invalidParameter,
      });
    }
    this.#opts = parsed.data;
    this.#log = logger ?? createLogger({ stage: "mlflow" });
    const o = parsed.data;
    let authorization: string | undefined;
    if (o.token) authorization = `Bearer ${o.token}`;
    else if (o.username) {
      const bytes = new TextEncoder().encode(`${o.username}:${o.password ?? ""}`);
      authorization = `Basic ${btoa(String.fromCharCode(...bytes))}`;
    }
    this.#http = new HttpTransport({
      baseUrl: o.trackingUri.replace(/\/+$/, ""),
      authorization,
      maxAttempts: o.maxAttempts,
      retryBudgetMs: o.retryBudgetMs,
      baseDelayMs: o.baseDelayMs,
      maxDelayMs: o.maxDelayMs,
      timeoutMs: o.timeoutMs,
      logger: this.#log,
    });
  }

  /** The tracking server's URL without credentials, query or fragment. */
  get uri(): string {
    return registryIdentity(this.#opts.trackingUri);
  }

  /** Calls any MLflow REST endpoint (below `/api/2.0/mlflow/`) and returns its parsed JSON. */
  call(
    method: "GET" | "POST" | "PATCH" | "DELETE",
    endpoint: string,
    opts: { query?: Query; json?: unknown; idempotent?: boolean } = {},
  ): Promise<unknown> {
    return this.#http.json({ method, path: `${API}/${endpoint}`, ...opts });
  }

  async #api<S extends z.ZodType>(
    schema: S,
    method: "GET" | "POST" | "PATCH" | "DELETE",
    endpoint: string,
    opts: { query?: Query; json?: unknown; idempotent?: boolean } = {},
  ): Promise<z.output<S>> {
    const body = await this.call(method, endpoint, opts);
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      throw new MlflowError(
        `${method} ${API}/${endpoint}: unexpected response: ${z.prettifyError(parsed.error)}`,
        { errorCode: "BAD_RESPONSE", request: `${method} ${API}/${endpoint}` },
      );
    }
    return parsed.data;
  }

  /** Whether the server answers its health check. */
  async health(): Promise<boolean> {
    const res = await this.#http.send({ method: "GET", path: "/health" });
    return (await res.text()).trim() === "OK";
  }

  /** The server's MLflow version (`2.17.2`). */
  async serverVersion(): Promise<string> {
    const res = await this.#http.send({ method: "GET", path: "/version" });
    return (await res.text()).trim();
  }

  // ---- experiments ----

  /** Creates an experiment; throws `already_exists` when the name is taken. */
  async createExperiment(name: string, tags?: Record<string, string>): Promise<string> {
    if (!name) {
      throw new MlflowError("experiment name: expected a non-empty name", {
        errorCode: ErrorCodes.invalidParameter,
      });
    }
    const r = await this.#api(Responses.createExperiment, "POST", "experiments/create", {
      json: { name, tags: toKeyValues(tags) },
    });
    return r.experiment_id;
  }

  /** One experiment by id; throws `not_found`. */
  async getExperiment(experimentId: string): Promise<Experiment> {
    const r = await this.#api(Responses.experiment, "GET", "experiments/get", {
      query: { experiment_id: experimentId },
    });
    return r.experiment;
  }

  async getExperimentByName(name: string): Promise<Experiment | null> {
    try {
      const r = await this.#api(Responses.experiment, "GET", "experiments/get-by-name", {
        query: { experiment_name: name },
      });
      return r.experiment;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /**
   * Creates first and falls back to a lookup on RESOURCE_ALREADY_EXISTS (or PERMISSION_DENIED for
   * users who may read but not create), so concurrent creators all end up with the same id.
   */
  async getOrCreateExperiment(name: string, tags?: Record<string, string>): Promise<string> {
    try {
      return await this.createExperiment(name, tags);
    } catch (err) {
      if (
        !(err instanceof MlflowError) ||
        (err.errorCode !== ErrorCodes.alreadyExists &&
          err.errorCode !== ErrorCodes.permissionDenied)
      ) throw err;
      const exp = await this.getExperimentByName(name);
      if (!exp) throw err;
      if (exp.lifecycleStage === "deleted") {
        throw new MlflowError(
          `experiment "${name}" (id ${exp.experimentId}) is deleted: restore it or use another name`,
          { errorCode: ErrorCodes.invalidState },
        );
      }
      return exp.experimentId;
    }
  }

  /** Experiments matching an MLflow filter (`name = 'x'`), all pages up to `maxResults`. */
  async searchExperiments(filter?: string, maxResults?: number): Promise<Experiment[]> {
    const out: Experiment[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.#api(Responses.experiments, "GET", "experiments/search", {
        query: {
          max_results: maxResults === undefined ? undefined : maxResults - out.length,
          filter,
          page_token: pageToken,
        },
      });
      out.push(...r.experiments);
      pageToken = r.next_page_token;
    } while (pageToken && (maxResults === undefined || out.length < maxResults));
    return out;
  }

  // ---- runs ----

  /**
   * Creates a run exactly once: the run carries a client token (`sluice.client_token`, from
   * `opts.clientToken` or a fresh UUID); when the create's outcome is unknown (the answer was lost,
   * a 5xx, a timeout) the run is looked up by its token before another create is sent.
   */
  async createRun(experimentId: string, opts: CreateRunOptions = {}): Promise<RunInfo> {
    const token = opts.clientToken ?? crypto.randomUUID();
    const tags = { ...opts.tags, [CLIENT_TOKEN_TAG]: token };
    const info = await this.#createOnce(
      "runs/create",
      async () => {
        const r = await this.#api(Responses.run, "POST", "runs/create", {
          json: {
            experiment_id: experimentId,
            run_name: opts.runName,
            start_time: opts.startTime ?? Date.now(),
            tags: toKeyValues(tags),
            user_id: opts.userId,
          },
          idempotent: false,
        });
        return r.run.info;
      },
      async () =>
        (await this.findRuns(experimentId, { tags: { [CLIENT_TOKEN_TAG]: token } }))[0]?.info,
    );
    this.#artifactRoots.set(info.runId, info.artifactUri);
    return info;
  }

  /**
   * Runs `create` (a non-idempotent call); on `OUTCOME_UNKNOWN` asks `lookup` whether it was
   * applied after all, and creates again only when it was not, within the retry budget.
   */
  async #createOnce<T>(
    what: string,
    create: () => Promise<T>,
    lookup: () => Promise<T | undefined>,
  ): Promise<T> {
    const startedAt = Date.now();
    for (let attempt = 1;; attempt++) {
      try {
        return await create();
      } catch (err) {
        if (!(err instanceof MlflowError) || err.errorCode !== OUTCOME_UNKNOWN) throw err;
        this.#log.warn("mlflow create: outcome unknown, looking it up by client token", {
          request: what,
          attempt,
          err: err.message,
        });
        const found = await lookup();
        if (found !== undefined) {
          this.#log.info("mlflow create: it had been applied; using it", { request: what });
          return found;
        }
        if (!this.#http.mayRetry(attempt, startedAt)) throw err;
        await sleep(Math.min(2_000, this.#opts.baseDelayMs * attempt));
      }
    }
  }

  /**
   * Runs of an experiment, filtered by status and exact tag values (all pages). Tag keys may hold
   * dots (they are quoted with backticks, as MLflow's search syntax allows).
   */
  async findRuns(
    experimentId: string,
    filter: { status?: RunStatus; tags?: Record<string, string> } = {},
  ): Promise<Run[]> {
    const quote = (v: string) => `'${v.replaceAll("'", "\\'")}'`;
    const parts: string[] = [];
    if (filter.status) parts.push(`attributes.status = ${quote(filter.status)}`);
    for (const [k, v] of Object.entries(filter.tags ?? {})) {
      parts.push(`tags.\`${k.replaceAll("`", "")}\` = ${quote(v)}`);
    }
    return await this.searchRuns([experimentId], {
      filter: parts.length ? parts.join(" and ") : undefined,
    });
  }

  async getRun(runId: string): Promise<Run> {
    const r = await this.#api(Responses.run, "GET", "runs/get", { query: { run_id: runId } });
    this.#artifactRoots.set(r.run.info.runId, r.run.info.artifactUri);
    return r.run;
  }

  /** Marks a run deleted. */
  async deleteRun(runId: string): Promise<void> {
    await this.#api(Responses.empty, "POST", "runs/delete", { json: { run_id: runId } });
  }

  /** Runs of some experiments matching an MLflow filter, all pages up to `maxResults`. */
  async searchRuns(
    experimentIds: string[],
    opts: { filter?: string; maxResults?: number; orderBy?: string[] } = {},
  ): Promise<Run[]> {
    const out: Run[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.#api(Responses.runs, "POST", "runs/search", {
        json: {
          experiment_ids: experimentIds,
          filter: opts.filter,
          max_results: opts.maxResults === undefined ? undefined : opts.maxResults - out.length,
          order_by: opts.orderBy,
          page_token: pageToken,
        },
      });
      out.push(...r.runs);
      pageToken = r.next_page_token;
    } while (pageToken && (opts.maxResults === undefined || out.length < opts.maxResults));
    return out;
  }

  async logParam(runId: string, key: string, value: ParamValue): Promise<void> {
    await this.#api(Responses.empty, "POST", "runs/log-parameter", {
      json: { run_id: runId, key, value: paramString(key, value) },
    });
  }

  logParams(runId: string, params: Record<string, ParamValue>): Promise<void> {
    return this.logBatch(runId, { params });
  }

  async logMetric(
    runId: string,
    key: string,
    value: number,
    opts: { step?: number; timestamp?: number } = {},
  ): Promise<void> {
    const [m] = normalizeBatch({ metrics: [{ key, value, ...opts }] }).metrics;
    await this.#api(Responses.empty, "POST", "runs/log-metric", {
      json: {
        run_id: runId,
        key: m.key,
        value: metricWireValue(m.value),
        timestamp: m.timestamp,
        step: m.step,
      },
    });
  }

  logMetrics(runId: string, metrics: MetricInput[]): Promise<void> {
    return this.logBatch(runId, { metrics });
  }

  async getMetricHistory(runId: string, key: string): Promise<Metric[]> {
    const out: Metric[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.#api(Responses.metricHistory, "GET", "metrics/get-history", {
        query: { run_id: runId, metric_key: key, page_token: pageToken },
      });
      out.push(...r.metrics);
      pageToken = r.next_page_token;
    } while (pageToken);
    return out;
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.#api(Responses.empty, "POST", "runs/set-tag", {
      json: { run_id: runId, key, value },
    });
  }

  setTags(runId: string, tags: Record<string, string>): Promise<void> {
    return this.logBatch(runId, { tags });
  }

  async logBatch(runId: string, batch: LogBatch): Promise<void> {
    for (const chunk of chunkBatch(normalizeBatch(batch))) {
      await this.#api(Responses.empty, "POST", "runs/log-batch", {
        json: {
          run_id: runId,
          params: chunk.params.length ? chunk.params : undefined,
          metrics: chunk.metrics.length
            ? chunk.metrics.map((m) => ({ ...m, value: metricWireValue(m.value) }))
            : undefined,
          tags: chunk.tags.length ? chunk.tags : undefined,
        },
      });
    }
  }

  async logInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    if (inputs.length === 0) return;
    await this.#api(Responses.empty, "POST", "runs/log-inputs", {
      json: { run_id: runId, datasets: datasetInputsWire(inputs) },
    });
  }

  async updateRun(runId: string, status: TerminalRunStatus, endTime?: number): Promise<RunInfo> {
    const r = await this.#api(Responses.runInfo, "POST", "runs/update", {
      json: { run_id: runId, status, end_time: endTime ?? Date.now() },
    });
    return r.run_info;
  }

  /** Renames a run. */
  async setRunName(runId: string, runName: string): Promise<RunInfo> {
    const r = await this.#api(Responses.runInfo, "POST", "runs/update", {
      json: { run_id: runId, run_name: runName },
    });
    return r.run_info;
  }

  // ---- artifacts ----

  async #runArtifactUri(runId: string): Promise<string> {
    const cached = this.#artifactRoots.get(runId);
    if (cached) return cached;
    return (await this.getRun(runId)).info.artifactUri;
  }

  async #sourceUri(source: ArtifactSource): Promise<string> {
    if (typeof source !== "string") {
      artifactPathSegments(source.path);
      return joinArtifactUri(await this.#runArtifactUri(source.runId), source.path);
    }
    if (source.startsWith("runs:/") || source.startsWith("models:/")) {
      return (await this.resolveModelUri(source)).artifactUri;
    }
    return source;
  }

  #store(bucket: string): Promise<ObjectStore> {
    let store = this.#stores.get(bucket);
    if (!store) {
      const s3: OpenOptions["s3"] = this.#opts.s3;
      store = openObjectStore(`s3://${bucket}`, { s3 });
      this.#stores.set(bucket, store);
    }
    return store;
  }

  #unsupported(uri: string): MlflowError {
    return new MlflowError(
      `artifact location ${JSON.stringify(uri)}: expected mlflow-artifacts:/, s3:// or file:// ` +
        `(configure the server with --serve-artifacts for other stores)`,
      { errorCode: ErrorCodes.invalidParameter },
    );
  }

  /** Uploads one local file to an artifact URI (a file location, not a directory). */
  async uploadTo(uri: string, localPath: string): Promise<void> {
    if (uri.startsWith("mlflow-artifacts:")) {
      const path = `${PROXY}/${encodeSegments(proxyPathOf(uri).split("/"))}`;
      const res = await this.#http.send({
        method: "PUT",
        path,
        body: async () => (await Deno.open(localPath, { read: true })).readable,
        timeoutMs: this.#opts.artifactTimeoutMs,
      });
      await res.body?.cancel();
      return;
    }
    if (uri.startsWith("s3://")) {
      const { bucket, key } = s3Parts(uri);
      await (await this.#store(bucket)).putFile(key, localPath);
      return;
    }
    if (uri.startsWith("file:")) {
      await copyFileAtomic(localPath, fileUriToPath(uri));
      return;
    }
    throw this.#unsupported(uri);
  }

  async logArtifact(runId: string, localPath: string, artifactPath = ""): Promise<void> {
    const root = await this.#runArtifactUri(runId);
    artifactPathSegments(artifactPath);
    await this.uploadTo(joinArtifactUri(root, artifactPath, basename(localPath)), localPath);
  }

  async logArtifacts(runId: string, localDir: string, artifactPath = ""): Promise<void> {
    const root = await this.#runArtifactUri(runId);
    artifactPathSegments(artifactPath);
    for (const rel of await walkFiles(localDir)) {
      await this.uploadTo(
        joinArtifactUri(root, artifactPath, rel),
        join(localDir, ...rel.split("/")),
      );
    }
  }

  /**
   * Lists a run's artifacts through the tracking API (`/mlflow/artifacts/list`), or straight from
   * S3 when the run's root is `s3://` and S3 settings were given.
   */
  async listArtifacts(runId: string, path = ""): Promise<ArtifactEntry[]> {
    const segs = artifactPathSegments(path);
    const root = await this.#runArtifactUri(runId);
    if (root.startsWith("s3://") && this.#opts.s3) {
      const prefix = segs.join("/");
      return (await this.listArtifactUri(joinArtifactUri(root, prefix))).map((e) => ({
        ...e,
        path: prefix ? `${prefix}/${e.path}` : e.path,
      }));
    }
    const out: ArtifactEntry[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.#api(Responses.runArtifacts, "GET", "artifacts/list", {
        query: {
          run_id: runId,
          path: segs.length ? segs.join("/") : undefined,
          page_token: pageToken,
        },
      });
      out.push(...r.files);
      pageToken = r.next_page_token;
    } while (pageToken);
    return out;
  }

  /**
   * Lists the direct children of an artifact URI, with paths relative to it (`model.onnx`);
   * [] when it does not exist or is a file.
   */
  async listArtifactUri(uri: string): Promise<ArtifactEntry[]> {
    if (uri.startsWith("mlflow-artifacts:")) {
      const r = await this.#http.json({
        method: "GET",
        path: PROXY,
        query: { path: proxyPathOf(uri) },
      });
      return Responses.proxyArtifacts.parse(r).files.sort(byPath);
    }
    if (uri.startsWith("s3://")) {
      const { bucket, key } = s3Parts(uri);
      const store = await this.#store(bucket);
      const prefix = key ? `${key}/` : "";
      const dirs = new Set<string>();
      const out: ArtifactEntry[] = [];
      for await (const o of store.list({ prefix })) {
        const rel = o.key.slice(prefix.length);
        const slash = rel.indexOf("/");
        if (slash >= 0) dirs.add(rel.slice(0, slash));
        else if (rel) {
          out.push(
            o.size > 0
              ? { path: rel, isDir: false, fileSize: o.size }
              : { path: rel, isDir: false },
          );
        }
      }
      for (const d of dirs) out.push({ path: d, isDir: true });
      return out.sort(byPath);
    }
    if (uri.startsWith("file:")) return await listLocal(fileUriToPath(uri), "");
    throw this.#unsupported(uri);
  }

  async #downloadUri(
    uri: string,
    destPath: string,
    attempt = 1,
    startedAt = Date.now(),
  ): Promise<string> {
    if (uri.startsWith("mlflow-artifacts:")) {
      const path = `${PROXY}/${encodeSegments(proxyPathOf(uri).split("/"))}`;
      const res = await this.#http.send({
        method: "GET",
        path,
        timeoutMs: this.#opts.artifactTimeoutMs,
        classify: (status, errorCode, message) =>
          status === 404 || (status >= 500 && isMissingArtifactMessage(message))
            ? new ArtifactNotFoundError(uri, {
              status,
              request: `GET ${path}`,
              cause: new Error(`${errorCode}: ${message}`),
            })
            : undefined,
      });
      if (!res.body) throw new ArtifactNotFoundError(uri, { status: res.status });
      try {
        await writeStreamAtomic(destPath, res.body);
      } catch (err) {
        // The body broke off mid-stream: start the download over, within the retry budget.
        if (!this.#http.mayRetry(attempt, startedAt)) {
          throw new MlflowError(
            `GET ${path}: the download broke off after ${attempt} attempt(s): ${
              describeNetworkError(err)
            }`,
            { errorCode: "NETWORK_ERROR", request: `GET ${path}`, cause: err },
          );
        }
        return await this.#downloadUri(uri, destPath, attempt + 1, startedAt);
      }
      return destPath;
    }
    if (uri.startsWith("s3://")) {
      const { bucket, key } = s3Parts(uri);
      const store = await this.#store(bucket);
      try {
        await store.download(key, destPath);
      } catch (err) {
        if (err instanceof ObjectNotFoundError) {
          throw new ArtifactNotFoundError(uri, { cause: err });
        }
        throw err;
      }
      return destPath;
    }
    if (uri.startsWith("file:")) return await downloadLocalFile(fileUriToPath(uri), destPath, uri);
    throw this.#unsupported(uri);
  }

  async downloadArtifact(source: ArtifactSource, destPath: string): Promise<string> {
    return await this.#downloadUri(await this.#sourceUri(source), destPath);
  }

  async downloadArtifacts(source: ArtifactSource, destDir: string): Promise<string[]> {
    const uri = await this.#sourceUri(source);
    if (uri.startsWith("file:")) return await downloadLocalTree(fileUriToPath(uri), destDir);
    const files: string[] = [];
    const walk = async (dirUri: string, rel: string) => {
      for (const e of await this.listArtifactUri(dirUri)) {
        const name = e.path.split("/").pop() ?? e.path;
        const childRel = rel ? `${rel}/${name}` : name;
        if (e.isDir) await walk(joinArtifactUri(dirUri, name), childRel);
        else {
          await this.#downloadUri(
            joinArtifactUri(dirUri, name),
            join(destDir, ...childRel.split("/")),
          );
          files.push(childRel);
        }
      }
    };
    await walk(uri, "");
    return files.sort();
  }

  // ---- registry ----

  /** Creates a registered model; throws `already_exists` when the name is taken. */
  async createRegisteredModel(
    name: string,
    opts: { description?: string; tags?: Record<string, string> } = {},
  ): Promise<RegisteredModel> {
    const r = await this.#api(Responses.registeredModel, "POST", "registered-models/create", {
      json: { name, description: opts.description, tags: toKeyValues(opts.tags) },
    });
    return r.registered_model;
  }

  async getRegisteredModel(name: string): Promise<RegisteredModel | null> {
    try {
      const r = await this.#api(Responses.registeredModel, "GET", "registered-models/get", {
        query: { name },
      });
      return r.registered_model;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async getOrCreateRegisteredModel(
    name: string,
    opts: { description?: string; tags?: Record<string, string> } = {},
  ): Promise<RegisteredModel> {
    try {
      return await this.createRegisteredModel(name, opts);
    } catch (err) {
      if (
        !(err instanceof MlflowError) ||
        (err.errorCode !== ErrorCodes.alreadyExists &&
          err.errorCode !== ErrorCodes.permissionDenied)
      ) throw err;
      const model = await this.getRegisteredModel(name);
      if (!model) throw err;
      return model;
    }
  }

  /** Registered models matching an MLflow filter (`name LIKE 'sluice-%'`). */
  async searchRegisteredModels(filter?: string): Promise<RegisteredModel[]> {
    const out: RegisteredModel[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.#api(Responses.registeredModels, "GET", "registered-models/search", {
        query: { filter, page_token: pageToken },
      });
      out.push(...r.registered_models);
      pageToken = r.next_page_token;
    } while (pageToken);
    return out;
  }

  /** Sets a tag on a registered model. */
  async setRegisteredModelTag(name: string, key: string, value: string): Promise<void> {
    await this.#api(Responses.empty, "POST", "registered-models/set-tag", {
      json: { name, key, value },
    });
  }

  /** Changes a registered model's description (MLflow wants PATCH here). */
  async updateRegisteredModel(name: string, description: string): Promise<RegisteredModel> {
    const r = await this.#api(Responses.registeredModel, "PATCH", "registered-models/update", {
      json: { name, description },
    });
    return r.registered_model;
  }

  /**
   * Registers a version exactly once: it carries a client token (`sluice.client_token`, from
   * `opts.clientToken` or a fresh UUID), and when the create's outcome is unknown the versions of
   * `name` are searched for that token before another create is sent.
   */
  async createModelVersion(
    name: string,
    source: string,
    runId?: string,
    opts: { description?: string; tags?: Record<string, string>; clientToken?: string } = {},
  ): Promise<string> {
    const token = opts.clientToken ?? crypto.randomUUID();
    const tags = { ...opts.tags, [CLIENT_TOKEN_TAG]: token };
    return await this.#createOnce(
      "model-versions/create",
      async () => {
        const r = await this.#api(Responses.modelVersion, "POST", "model-versions/create", {
          json: {
            name,
            source,
            run_id: runId || undefined,
            description: opts.description,
            tags: toKeyValues(tags),
          },
          idempotent: false,
        });
        return r.model_version.version;
      },
      async () =>
        (await this.searchModelVersions(name)).find((v) => v.tags[CLIENT_TOKEN_TAG] === token)
          ?.version,
    );
  }

  async getModelVersion(name: string, version: string): Promise<ModelVersion> {
    const r = await this.#api(Responses.modelVersion, "GET", "model-versions/get", {
      query: { name, version: String(version) },
    });
    return r.model_version;
  }

  /** Changes a version's description (MLflow wants PATCH here). */
  async updateModelVersion(
    name: string,
    version: string,
    description: string,
  ): Promise<ModelVersion> {
    const r = await this.#api(Responses.modelVersion, "PATCH", "model-versions/update", {
      json: { name, version: String(version), description },
    });
    return r.model_version;
  }

  async waitUntilReady(
    name: string,
    version: string,
    opts: WaitOptions = {},
  ): Promise<ModelVersion> {
    const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
    const interval = opts.intervalMs ?? 1_000;
    for (;;) {
      const mv = await this.getModelVersion(name, version);
      if (mv.status === "READY") return mv;
      if (mv.status === "FAILED_REGISTRATION") {
        throw new MlflowError(
          `model ${name} version ${version}: registration failed: ${
            mv.statusMessage ?? "no reason given"
          }`,
          { errorCode: ErrorCodes.invalidState },
        );
      }
      if (Date.now() + interval > deadline) {
        throw new MlflowError(
          `model ${name} version ${version}: expected READY within ${
            opts.timeoutMs ?? 300_000
          } ms, ` +
            `found ${mv.status}`,
          { errorCode: "TIMEOUT" },
        );
      }
      await sleep(interval);
    }
  }

  async searchModelVersions(name: string): Promise<ModelVersion[]> {
    const quoted = name.includes("'") ? `"${name.replaceAll('"', '\\"')}"` : `'${name}'`;
    const out: ModelVersion[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.#api(Responses.modelVersions, "GET", "model-versions/search", {
        query: { filter: `name=${quoted}`, page_token: pageToken },
      });
      out.push(...r.model_versions);
      pageToken = r.next_page_token;
    } while (pageToken);
    return out.sort((a, b) => Number(b.version) - Number(a.version));
  }

  /** The newest version in each of `stages` (all stages when omitted). */
  async getLatestVersions(name: string, stages?: string[]): Promise<ModelVersion[]> {
    const r = await this.#api(
      Responses.modelVersions,
      "POST",
      "registered-models/get-latest-versions",
      {
        json: { name, stages },
      },
    );
    return r.model_versions;
  }

  async setAlias(name: string, alias: string, version: string): Promise<void> {
    await this.#api(Responses.empty, "POST", "registered-models/alias", {
      json: { name, alias, version: String(version) },
    });
  }

  async getVersionByAlias(name: string, alias: string): Promise<ModelVersion | null> {
    try {
      const r = await this.#api(Responses.modelVersion, "GET", "registered-models/alias", {
        query: { name, alias },
      });
      return r.model_version;
    } catch (err) {
      // MLflow answers 400 INVALID_PARAMETER_VALUE "Registered model alias X not found." for a
      // missing alias (even of a missing model); other 400s (a malformed alias) still throw.
      if (isNotFound(err)) return null;
      if (
        err instanceof MlflowError && err.errorCode === ErrorCodes.invalidParameter &&
        /alias .* not found/i.test(err.message)
      ) return null;
      throw err;
    }
  }

  async deleteAlias(name: string, alias: string): Promise<void> {
    try {
      // The body, not the query string, carries the arguments (the query form answers 400).
      await this.#api(Responses.empty, "DELETE", "registered-models/alias", {
        json: { name, alias },
      });
    } catch (err) {
      if (
        err instanceof MlflowError && err.errorCode === ErrorCodes.invalidParameter &&
        /alias .* not found/i.test(err.message)
      ) return;
      throw err;
    }
  }

  async setModelVersionTag(
    name: string,
    version: string,
    key: string,
    value: string,
  ): Promise<void> {
    await this.#api(Responses.empty, "POST", "model-versions/set-tag", {
      json: { name, version: String(version), key, value },
    });
  }

  async transitionStage(
    name: string,
    version: string,
    stage: ModelStage,
    archiveExistingVersions = false,
  ): Promise<ModelVersion> {
    const r = await this.#api(Responses.modelVersion, "POST", "model-versions/transition-stage", {
      json: {
        name,
        version: String(version),
        stage,
        archive_existing_versions: archiveExistingVersions,
      },
    });
    return r.model_version;
  }

  async getDownloadUri(name: string, version: string): Promise<string> {
    const r = await this.#api(Responses.downloadUri, "GET", "model-versions/get-download-uri", {
      query: { name, version: String(version) },
    });
    return r.artifact_uri;
  }

  #resolveOps() {
    return {
      getVersionByAlias: (n: string, a: string) => this.getVersionByAlias(n, a),
      getDownloadUri: (n: string, v: string) => this.getDownloadUri(n, v),
      searchModelVersions: (n: string) => this.searchModelVersions(n),
      runArtifactUri: (id: string) => this.#runArtifactUri(id),
      downloadArtifacts: (uri: string, dir: string) => this.downloadArtifacts(uri, dir),
      downloadArtifact: (uri: string, dest: string) => this.#downloadUri(uri, dest),
    };
  }

  resolveModelUri(uri: string): Promise<ResolvedModelUri> {
    return resolveModelUri(this.#resolveOps(), uri);
  }

  downloadModel(uri: string, destDir: string): Promise<DownloadedModel> {
    return downloadModel(this.#resolveOps(), uri, destDir);
  }

  async close(): Promise<void> {
    const stores = [...this.#stores.values()];
    this.#stores.clear();
    for (const s of stores) {
      await (await s).close();
    }
    this.#http.close();
  }
}
