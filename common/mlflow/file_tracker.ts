/**
 * {@link FileTracker}: the embedded default {@link Tracker} (used when no MLflow server is
 * configured). It writes MLflow's own file-store layout, so `mlflow ui --backend-store-uri ./mlruns`
 * (or `mlflow server` on the same directory) shows the runs and the registry:
 *
 * ```
 * mlruns/
 *   .trash/                              deleted experiments
 *   0/meta.yaml                          the "Default" experiment
 *   <exp_id>/meta.yaml                   name, artifact_location, lifecycle_stage, times
 *   <exp_id>/tags/<key>                  experiment tags (one file each, the value as content)
 *   <exp_id>/<run_id>/meta.yaml          run info (status as MLflow's integer enum)
 *   <exp_id>/<run_id>/params/<key>       the value
 *   <exp_id>/<run_id>/metrics/<key>      one line per value: "<timestamp> <value> <step>"
 *   <exp_id>/<run_id>/tags/<key>         the value
 *   <exp_id>/<run_id>/artifacts/…        artifact files
 *   models/<name>/meta.yaml              registered model
 *   models/<name>/tags/<key>
 *   models/<name>/aliases/<alias>        the version number
 *   models/<name>/version-<n>/meta.yaml  model version (source, run_id, current_stage, …)
 *   models/<name>/version-<n>/tags/<key>
 * ```
 *
 * Safe for concurrent processes on one host: every file is written through a temporary file and
 * renamed into place (temporaries live where MLflow's readers do not look); params are created
 * with an exclusive hard link (so a conflicting value is detected, never overwritten); metric lines
 * are appended with single `O_APPEND` writes; a model version number is claimed by renaming a
 * complete version directory onto `version-<n>`, which fails when another process already holds
 * it (the claim is exclusive and a reader never sees a half-written version). Experiment ids are
 * derived from the name, so processes racing to create the same experiment converge on one id.
 *
 * @example
 * ```ts
 * const tracker = new FileTracker({ root: "./mlruns" });
 * const exp = await tracker.getOrCreateExperiment("sluice");
 * const run = await tracker.createRun(exp, { runName: "local" });
 * await tracker.logMetric(run.runId, "loss", 0.5);
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import {
  copyFileAtomic,
  createFileExclusive,
  isTempName,
  tempPath,
  walkFiles,
  writeFileAtomic,
} from "./_atomic.ts";
import { normalizeBatch, paramString } from "./_batch.ts";
import {
  downloadLocalFile,
  downloadLocalTree,
  fileUriToPath,
  listLocal,
  localArtifactPath,
} from "./_local_artifacts.ts";
import { downloadModel, resolveModelUri } from "./_resolve.ts";
import { parseMetricString } from "./_wire.ts";
import { parseYamlMapping, toYaml, type YamlValue } from "../yaml/mod.ts";
import { ErrorCodes, MlflowError } from "./errors.ts";
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
  ModelVersionStatus,
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

/** Options of {@link FileTracker}, validated at construction. */
export const FileTrackerOptionsSchema = z.object({
  /** The store directory (`./mlruns`), as a path or a `file://` URL. */
  root: z.string().min(1),
});

/** What the constructor accepts. */
export type FileTrackerOptions = z.input<typeof FileTrackerOptionsSchema>;

const META = "meta.yaml";
const TRASH = ".trash";
const MODELS = "models";
const DEFAULT_EXPERIMENT_ID = "0";
const STATUS_TO_INT: Record<RunStatus, number> = {
  RUNNING: 1,
  SCHEDULED: 2,
  FINISHED: 3,
  FAILED: 4,
  KILLED: 5,
};
const INT_TO_STATUS = Object.fromEntries(
  Object.entries(STATUS_TO_INT).map(([k, v]) => [v, k as RunStatus]),
) as Record<number, RunStatus>;
/** MLflow's `SourceType.LOCAL`. */
const SOURCE_TYPE_LOCAL = 4;
const STAGES: ModelStage[] = ["None", "Staging", "Production", "Archived"];
const DELETED_STAGE = "Deleted_Internal";
const RUN_ID = /^[A-Za-z0-9][\w-]{0,255}$/;
const ADJECTIVES = ["amber", "brisk", "calm", "deft", "eager", "fleet", "grand", "keen"];
const NOUNS = ["heron", "otter", "lynx", "finch", "panda", "wren", "bison", "gecko"];

type Meta = Record<string, YamlValue>;

/** A `meta.yaml` as MLflow's `write_yaml` writes it: keys sorted. */
function metaYaml(meta: Meta): string {
  return toYaml(meta, { sortKeys: true });
}

function invalid(message: string): MlflowError {
  return new MlflowError(message, { errorCode: ErrorCodes.invalidParameter });
}

function notFound(message: string): MlflowError {
  return new MlflowError(message, { errorCode: ErrorCodes.notFound });
}

function str(v: YamlValue | undefined): string {
  return v === null || v === undefined ? "" : String(v);
}

function num(v: YamlValue | undefined): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^-?\d+$/.test(v)) return Number(v);
  return undefined;
}

/** Python's `str(float)` spelling for the special values, so MLflow parses the lines back. */
function metricText(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  return String(v);
}

/**
 * Checks a param/metric/tag key the way MLflow does (it becomes a file path): letters, digits,
 * `_ - . /` and spaces, no empty, `.` or `..` segment, no leading slash.
 */
function checkEntityKey(kind: string, key: string): string[] {
  if (typeof key !== "string" || key.length === 0 || key.length > 250) {
    throw invalid(`${kind} key ${JSON.stringify(key)}: expected 1 to 250 characters`);
  }
  if (!/^[\w\-. /:]+$/.test(key)) {
    throw invalid(
      `${kind} key ${JSON.stringify(key)}: expected only letters, digits, underscores, dashes, ` +
        `periods, spaces, colons and slashes`,
    );
  }
  const segs = key.split("/");
  if (key.startsWith("/") || segs.some((s) => s === "" || s === "." || s === "..")) {
    throw invalid(
      `${kind} key ${JSON.stringify(key)}: expected a relative name without "." or ".." parts`,
    );
  }
  return segs;
}

// deno-lint-ignore no-control-regex
const BAD_MODEL_NAME = /[/\\%\x00-\x1f]/;

function checkModelName(name: string): void {
  if (
    typeof name !== "string" || !name || name === "." || name === ".." || BAD_MODEL_NAME.test(name)
  ) {
    throw invalid(
      `registered model name ${JSON.stringify(name)}: expected a non-empty name without path ` +
        `separators, "%" or control characters`,
    );
  }
}

function checkAlias(alias: string): void {
  if (
    typeof alias !== "string" || !alias || alias.length > 255 || /[/\\]/.test(alias) ||
    alias.startsWith(".")
  ) {
    throw invalid(`alias ${JSON.stringify(alias)}: expected a non-empty name without slashes`);
  }
  if (alias.toLowerCase() === "latest") {
    throw invalid("'latest' alias name (case insensitive) is reserved.");
  }
  if (/^v\d+$/i.test(alias)) throw invalid(`Version alias name '${alias}' is reserved.`);
}

function canonicalStage(stage: string): ModelStage {
  const found = STAGES.find((s) => s.toLowerCase() === String(stage).toLowerCase());
  if (!found) {
    throw invalid(
      `Invalid Model Version stage: ${stage}. Value must be one of ${STAGES.join(", ")}.`,
    );
  }
  return found;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw err;
  }
}

function md5Hex(text: string): string {
  return createHash("md5").update(text, "utf8").digest("hex");
}

async function readMeta(dir: string): Promise<Meta | undefined> {
  const text = await readText(join(dir, META));
  return text === undefined ? undefined : parseYamlMapping(text, join(dir, META));
}

async function listDirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory && !isTempName(e.name)) out.push(e.name);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return out.sort();
}

/** Reads every `<dir>/<key…>` file into a map (keys may contain slashes, as in MLflow). */
async function readKeyFiles(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let files: string[];
  try {
    files = await walkFiles(dir);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return {};
    throw err;
  }
  for (const rel of files) {
    const text = await readText(join(dir, ...rel.split("/")));
    if (text !== undefined) out[rel] = text;
  }
  return out;
}

async function mkdirExclusive(path: string): Promise<boolean> {
  try {
    await Deno.mkdir(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    throw err;
  }
}

/** An id for an experiment name: stable, so racing creators pick the same directory. */
async function experimentIdFor(name: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(name)),
  );
  let n = 0n;
  for (const b of digest.slice(0, 8)) n = (n << 8n) | BigInt(b);
  // 62 bits keeps it positive in a signed int64, like MLflow's own generated ids.
  return String((n & ((1n << 62n) - 1n)) || 1n);
}

/** The {@link Tracker} over a local MLflow file store. */
export class FileTracker implements Tracker {
  readonly kind = "file" as const;
  /** Absolute path of the store directory. */
  readonly root: string;
  #ready?: Promise<void>;
  readonly #runDirs = new Map<string, string>();

  constructor(options: FileTrackerOptions) {
    const parsed = FileTrackerOptionsSchema.safeParse(options);
    if (!parsed.success) {
      throw invalid(`file tracker options: ${z.prettifyError(parsed.error)}`);
    }
    const root = parsed.data.root;
    this.root = root.startsWith("file:") ? fileUriToPath(root) : resolve(root);
  }

  /** The `file://` URL of the store (what `mlflow ui --backend-store-uri` accepts). */
  get uri(): string {
    return pathToFileURL(this.root).href;
  }

  #init(): Promise<void> {
    this.#ready ??= (async () => {
      await Deno.mkdir(join(this.root, TRASH), { recursive: true });
      await Deno.mkdir(join(this.root, MODELS), { recursive: true });
      const dir = join(this.root, DEFAULT_EXPERIMENT_ID);
      await mkdirExclusive(dir);
      if (!(await readMeta(dir))) {
        await this.#writeExperimentMeta(dir, DEFAULT_EXPERIMENT_ID, "Default");
      }
    })();
    return this.#ready;
  }

  async #writeExperimentMeta(dir: string, id: string, name: string): Promise<boolean> {
    const now = Date.now();
    return await createFileExclusive(
      join(dir, META),
      metaYaml({
        artifact_location: pathToFileURL(dir).href,
        creation_time: now,
        experiment_id: id,
        last_update_time: now,
        lifecycle_stage: "active",
        name,
      }),
      dir,
    );
  }

  // ---- experiments ----

  async #experimentFromDir(dir: string, meta: Meta): Promise<Experiment> {
    return {
      experimentId: str(meta.experiment_id),
      name: str(meta.name),
      artifactLocation: str(meta.artifact_location),
      lifecycleStage: meta.lifecycle_stage === "deleted" ? "deleted" : "active",
      creationTime: num(meta.creation_time),
      lastUpdateTime: num(meta.last_update_time),
      tags: await readKeyFiles(join(dir, "tags")),
    };
  }

  /** Every experiment directory (active first, then deleted) with its meta. */
  async #experimentDirs(): Promise<{ dir: string; meta: Meta }[]> {
    await this.#init();
    const out: { dir: string; meta: Meta }[] = [];
    for (const parent of [this.root, join(this.root, TRASH)]) {
      for (const name of await listDirs(parent)) {
        if (parent === this.root && (name === TRASH || name === MODELS)) continue;
        const dir = join(parent, name);
        const meta = await readMeta(dir);
        if (meta && str(meta.experiment_id) === name) out.push({ dir, meta });
      }
    }
    return out;
  }

  async #experimentDir(experimentId: string): Promise<{ dir: string; meta: Meta }> {
    await this.#init();
    if (RUN_ID.test(experimentId)) {
      for (const parent of [this.root, join(this.root, TRASH)]) {
        const dir = join(parent, experimentId);
        const meta = await readMeta(dir);
        if (meta) return { dir, meta };
      }
    }
    throw notFound(`No Experiment with id=${experimentId} exists`);
  }

  async getExperimentByName(name: string): Promise<Experiment | null> {
    for (const { dir, meta } of await this.#experimentDirs()) {
      if (str(meta.name) === name) return await this.#experimentFromDir(dir, meta);
    }
    return null;
  }

  /** One experiment by id; throws `not_found`. */
  async getExperiment(experimentId: string): Promise<Experiment> {
    const { dir, meta } = await this.#experimentDir(experimentId);
    return await this.#experimentFromDir(dir, meta);
  }

  async getOrCreateExperiment(name: string, tags?: Record<string, string>): Promise<string> {
    if (typeof name !== "string" || name.trim() === "") {
      throw invalid("experiment name: expected a non-empty name");
    }
    const existing = await this.getExperimentByName(name);
    if (existing) {
      if (existing.lifecycleStage === "deleted") {
        throw new MlflowError(
          `experiment "${name}" (id ${existing.experimentId}) is deleted: restore it or use another name`,
          { errorCode: ErrorCodes.invalidState },
        );
      }
      return existing.experimentId;
    }
    const id = await experimentIdFor(name);
    const dir = join(this.root, id);
    await mkdirExclusive(dir);
    const created = await this.#writeExperimentMeta(dir, id, name);
    const meta = await readMeta(dir);
    if (!meta || str(meta.name) !== name) {
      throw new MlflowError(
        `experiment "${name}": its id ${id} is taken by "${str(meta?.name)}" (hash collision)`,
        { errorCode: ErrorCodes.alreadyExists },
      );
    }
    if (created) {
      for (const [k, v] of Object.entries(tags ?? {})) {
        const segs = checkEntityKey("tag", k);
        await writeFileAtomic(join(dir, "tags", ...segs), v, dir);
      }
    }
    return id;
  }

  // ---- runs ----

  async #findRunDir(runId: string): Promise<string> {
    if (typeof runId !== "string" || !RUN_ID.test(runId)) {
      throw invalid(`run id ${JSON.stringify(runId)}: expected letters, digits, "_" and "-"`);
    }
    const cached = this.#runDirs.get(runId);
    if (cached && (await readText(join(cached, META))) !== undefined) return cached;
    for (const { dir } of await this.#experimentDirs()) {
      const runDir = join(dir, runId);
      if ((await readText(join(runDir, META))) !== undefined) {
        this.#runDirs.set(runId, runDir);
        return runDir;
      }
    }
    throw notFound(`Run with id=${runId} not found`);
  }

  #runInfo(meta: Meta, tags: Record<string, string>): RunInfo {
    const status = INT_TO_STATUS[num(meta.status) ?? 1] ??
      (typeof meta.status === "string" ? meta.status as RunStatus : "RUNNING");
    const endTime = num(meta.end_time);
    return {
      runId: str(meta.run_id ?? meta.run_uuid),
      experimentId: str(meta.experiment_id),
      runName: str(meta.run_name) || tags["mlflow.runName"] || "",
      userId: str(meta.user_id),
      status,
      startTime: num(meta.start_time) ?? 0,
      ...(endTime !== undefined ? { endTime } : {}),
      artifactUri: str(meta.artifact_uri),
      lifecycleStage: meta.lifecycle_stage === "deleted" ? "deleted" : "active",
    };
  }

  async #activeRun(runId: string): Promise<{ dir: string; meta: Meta }> {
    const dir = await this.#findRunDir(runId);
    const meta = (await readMeta(dir))!;
    if (meta.lifecycle_stage === "deleted") {
      throw invalid(`The run ${runId} must be in the 'active' state. Current state is deleted.`);
    }
    return { dir, meta };
  }

  async createRun(experimentId: string, opts: CreateRunOptions = {}): Promise<RunInfo> {
    const { dir: expDir, meta: expMeta } = await this.#experimentDir(experimentId);
    if (expMeta.lifecycle_stage === "deleted") {
      throw new MlflowError(
        `Could not create run under non-active experiment with ID ${experimentId}.`,
        {
          errorCode: ErrorCodes.invalidState,
        },
      );
    }
    const tags = { ...(opts.tags ?? {}) };
    if (opts.clientToken) tags[CLIENT_TOKEN_TAG] = opts.clientToken;
    const tagName = tags["mlflow.runName"];
    if (opts.runName && tagName && opts.runName !== tagName) {
      throw invalid(
        `Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different ` +
          `values (run_name='${opts.runName}', mlflow.runName='${tagName}').`,
      );
    }
    const pick = (xs: string[]) => xs[Math.floor(Math.random() * xs.length)];
    const runName = opts.runName || tagName ||
      `${pick(ADJECTIVES)}-${pick(NOUNS)}-${Math.floor(Math.random() * 1000)}`;
    tags["mlflow.runName"] = runName;
    for (const k of Object.keys(tags)) checkEntityKey("tag", k);
    const runId = crypto.randomUUID().replaceAll("-", "");
    const runDir = join(expDir, runId);
    await Deno.mkdir(runDir);
    for (const sub of ["metrics", "params", "artifacts", "tags"]) {
      await Deno.mkdir(join(runDir, sub));
    }
    for (const [k, v] of Object.entries(tags)) {
      await writeFileAtomic(join(runDir, "tags", ...k.split("/")), v, runDir);
    }
    const artifactUri = joinArtifactUri(str(expMeta.artifact_location), runId, "artifacts");
    const meta: Meta = {
      artifact_uri: artifactUri,
      deleted_time: null,
      end_time: null,
      entry_point_name: "",
      experiment_id: experimentId,
      lifecycle_stage: "active",
      run_id: runId,
      run_name: runName,
      run_uuid: runId,
      source_name: "",
      source_type: SOURCE_TYPE_LOCAL,
      source_version: "",
      start_time: opts.startTime ?? Date.now(),
      status: STATUS_TO_INT.RUNNING,
      tags: [],
      user_id: opts.userId ?? "",
    };
    // meta.yaml last: a run directory without it is not yet a run, to us and to MLflow.
    await writeFileAtomic(join(runDir, META), metaYaml(meta), runDir);
    this.#runDirs.set(runId, runDir);
    return this.#runInfo(meta, tags);
  }

  async findRuns(
    experimentId: string,
    filter: { status?: RunStatus; tags?: Record<string, string> } = {},
  ): Promise<Run[]> {
    const { dir } = await this.#experimentDir(experimentId);
    const out: Run[] = [];
    for (const name of await listDirs(dir)) {
      if (!RUN_ID.test(name) || (await readMeta(join(dir, name))) === undefined) continue;
      const run = await this.getRun(name);
      if (run.info.lifecycleStage !== "active") continue;
      if (filter.status && run.info.status !== filter.status) continue;
      if (Object.entries(filter.tags ?? {}).some(([k, v]) => run.tags[k] !== v)) continue;
      out.push(run);
    }
    return out.sort((a, b) => b.info.startTime - a.info.startTime);
  }

  async getRun(runId: string): Promise<Run> {
    const dir = await this.#findRunDir(runId);
    const meta = (await readMeta(dir))!;
    const tags = await readKeyFiles(join(dir, "tags"));
    const params = await readKeyFiles(join(dir, "params"));
    const metrics: Record<string, Metric> = {};
    let metricFiles: string[] = [];
    try {
      metricFiles = await walkFiles(join(dir, "metrics"));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    for (const key of metricFiles) {
      const history = await this.#readMetric(dir, key);
      let latest: Metric | undefined;
      for (const m of history) {
        // MLflow's rule: the value at the highest (step, timestamp).
        if (
          !latest || m.step > latest.step ||
          (m.step === latest.step && m.timestamp >= latest.timestamp)
        ) {
          latest = m;
        }
      }
      if (latest) metrics[key] = latest;
    }
    const inputs = await this.#readInputs(dir);
    return {
      info: this.#runInfo(meta, tags),
      params,
      tags,
      metrics,
      ...(inputs.length ? { inputs } : {}),
    };
  }

  async #readMetric(runDir: string, key: string): Promise<Metric[]> {
    const text = await readText(join(runDir, "metrics", ...key.split("/")));
    if (text === undefined) return [];
    const out: Metric[] = [];
    for (const line of text.split("\n")) {
      const parts = line.trim().split(/\s+/);
      if (parts.length < 2 || parts.length > 3 || parts[0] === "") continue;
      const value = parseMetricString(parts[1]);
      if (value === undefined) continue;
      out.push({
        key,
        value,
        timestamp: Number(parts[0]),
        step: parts.length === 3 ? Number(parts[2]) : 0,
      });
    }
    return out;
  }

  async #writeParam(runDir: string, runId: string, key: string, value: string): Promise<void> {
    const segs = checkEntityKey("param", key);
    if (value.length > 6000) {
      throw invalid(`param ${JSON.stringify(key)}: expected a value of at most 6000 characters`);
    }
    const path = join(runDir, "params", ...segs);
    if (await createFileExclusive(path, value, runDir)) return;
    const current = await readText(path);
    if (current !== value) {
      throw invalid(
        `Changing param values is not allowed. Param with key='${key}' was already logged with ` +
          `value='${current}' for run ID='${runId}'. Attempted logging new value '${value}'.`,
      );
    }
  }

  async #appendMetrics(runDir: string, metrics: Metric[]): Promise<void> {
    const byKey = new Map<string, string>();
    for (const m of metrics) {
      checkEntityKey("metric", m.key);
      byKey.set(
        m.key,
        (byKey.get(m.key) ?? "") + `${m.timestamp} ${metricText(m.value)} ${m.step}\n`,
      );
    }
    for (const [key, lines] of byKey) {
      const path = join(runDir, "metrics", ...key.split("/"));
      await Deno.mkdir(dirname(path), { recursive: true });
      // One append per key: concurrent appenders interleave whole lines, never parts of lines.
      await Deno.writeTextFile(path, lines, { append: true });
    }
  }

  async #writeTag(runDir: string, meta: Meta, key: string, value: string): Promise<void> {
    const segs = checkEntityKey("tag", key);
    await writeFileAtomic(join(runDir, "tags", ...segs), value, runDir);
    if (key === "mlflow.runName" && meta.run_name !== value) {
      await writeFileAtomic(join(runDir, META), metaYaml({ ...meta, run_name: value }), runDir);
    }
  }

  async logParam(runId: string, key: string, value: ParamValue): Promise<void> {
    const { dir } = await this.#activeRun(runId);
    await this.#writeParam(dir, runId, key, paramString(key, value));
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
    await this.logBatch(runId, { metrics: [{ key, value, ...opts }] });
  }

  logMetrics(runId: string, metrics: MetricInput[]): Promise<void> {
    return this.logBatch(runId, { metrics });
  }

  async getMetricHistory(runId: string, key: string): Promise<Metric[]> {
    checkEntityKey("metric", key);
    return await this.#readMetric(await this.#findRunDir(runId), key);
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.logBatch(runId, { tags: { [key]: value } });
  }

  setTags(runId: string, tags: Record<string, string>): Promise<void> {
    return this.logBatch(runId, { tags });
  }

  async logBatch(runId: string, batch: LogBatch): Promise<void> {
    const norm = normalizeBatch(batch);
    const { dir, meta } = await this.#activeRun(runId);
    for (const p of norm.params) await this.#writeParam(dir, runId, p.key, p.value);
    await this.#appendMetrics(dir, norm.metrics);
    for (const t of norm.tags) await this.#writeTag(dir, meta, t.key, t.value);
  }

  /**
   * Writes MLflow's file-store layout for inputs: the dataset under
   * `<exp>/datasets/<md5(name + digest)>/meta.yaml`, the link under
   * `<run>/inputs/<md5(dataset id + run id)>/meta.yaml`.
   */
  async logInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    const { dir: runDir, meta } = await this.#activeRun(runId);
    const expDir = dirname(runDir);
    for (const input of inputs) {
      const d = input.dataset;
      for (const k of Object.keys(input.tags)) checkEntityKey("tag", k);
      const datasetId = md5Hex(d.name + d.digest);
      const datasetDir = join(expDir, "datasets", datasetId);
      if ((await readMeta(datasetDir)) === undefined) {
        await Deno.mkdir(datasetDir, { recursive: true });
        await writeFileAtomic(
          join(datasetDir, META),
          toYaml({
            digest: d.digest,
            name: d.name,
            profile: d.profile ?? null,
            schema: d.schema ?? null,
            source: d.source,
            source_type: d.sourceType,
          }),
          datasetDir,
        );
      }
      const inputDir = join(runDir, "inputs", md5Hex(datasetId + str(meta.run_id ?? runId)));
      if ((await readMeta(inputDir)) === undefined) {
        await Deno.mkdir(inputDir, { recursive: true });
        await writeFileAtomic(
          join(inputDir, META),
          toYaml({
            destination_id: runId,
            destination_type: "RUN",
            source_id: datasetId,
            source_type: "DATASET",
            tags: input.tags,
          }),
          inputDir,
        );
      }
    }
  }

  async #readInputs(runDir: string): Promise<DatasetInput[]> {
    const out: DatasetInput[] = [];
    for (const name of await listDirs(join(runDir, "inputs")).catch(() => [] as string[])) {
      const link = await readMeta(join(runDir, "inputs", name));
      if (!link || link.source_type !== "DATASET") continue;
      const ds = await readMeta(join(dirname(runDir), "datasets", str(link.source_id)));
      if (!ds) continue;
      const tags = link.tags && typeof link.tags === "object" && !Array.isArray(link.tags)
        ? Object.fromEntries(Object.entries(link.tags).map(([k, v]) => [k, String(v)]))
        : {};
      out.push({
        tags,
        dataset: {
          name: str(ds.name),
          digest: str(ds.digest),
          sourceType: str(ds.source_type),
          source: str(ds.source),
          ...(typeof ds.schema === "string" ? { schema: ds.schema } : {}),
          ...(typeof ds.profile === "string" ? { profile: ds.profile } : {}),
        },
      });
    }
    return out.sort((a, b) => a.dataset.name.localeCompare(b.dataset.name));
  }

  async updateRun(runId: string, status: TerminalRunStatus, endTime?: number): Promise<RunInfo> {
    if (!(status in STATUS_TO_INT)) {
      throw invalid(`run status ${JSON.stringify(status)}: expected FINISHED, FAILED or KILLED`);
    }
    const { dir, meta } = await this.#activeRun(runId);
    const next: Meta = { ...meta, status: STATUS_TO_INT[status], end_time: endTime ?? Date.now() };
    await writeFileAtomic(join(dir, META), metaYaml(next), dir);
    return this.#runInfo(next, await readKeyFiles(join(dir, "tags")));
  }

  /** Marks a run deleted (as `mlflow.delete_run` does; files stay until `mlflow gc`). */
  async deleteRun(runId: string): Promise<void> {
    const dir = await this.#findRunDir(runId);
    const meta = (await readMeta(dir))!;
    await writeFileAtomic(
      join(dir, META),
      metaYaml({ ...meta, lifecycle_stage: "deleted", deleted_time: Date.now() }),
      dir,
    );
  }

  // ---- artifacts ----

  async #artifactRoot(runId: string): Promise<{ root: string; tmpDir: string; uri: string }> {
    const dir = await this.#findRunDir(runId);
    const uri = str((await readMeta(dir))!.artifact_uri);
    if (!uri.startsWith("file:") && !uri.startsWith("/")) {
      throw invalid(
        `run ${runId}: its artifact root ${uri} is not local; use an MLflow server for it`,
      );
    }
    const root = fileUriToPath(uri);
    return { root, tmpDir: dirname(root), uri };
  }

  async logArtifact(runId: string, localPath: string, artifactPath = ""): Promise<void> {
    await this.#activeRun(runId);
    const { root, tmpDir } = await this.#artifactRoot(runId);
    const dest = localArtifactPath(root, joinArtifactUri(artifactPath, basename(localPath)));
    await copyFileAtomic(localPath, dest, tmpDir);
  }

  async logArtifacts(runId: string, localDir: string, artifactPath = ""): Promise<void> {
    await this.#activeRun(runId);
    const { root, tmpDir } = await this.#artifactRoot(runId);
    artifactPathSegments(artifactPath);
    for (const rel of await walkFiles(localDir)) {
      const dest = localArtifactPath(root, joinArtifactUri(artifactPath, rel));
      await copyFileAtomic(join(localDir, ...rel.split("/")), dest, tmpDir);
    }
  }

  async listArtifacts(runId: string, path = ""): Promise<ArtifactEntry[]> {
    const { root } = await this.#artifactRoot(runId);
    return await listLocal(root, path);
  }

  async #localSource(source: ArtifactSource): Promise<{ path: string; label: string }> {
    if (typeof source !== "string") {
      const { root, uri } = await this.#artifactRoot(source.runId);
      return {
        path: localArtifactPath(root, source.path),
        label: joinArtifactUri(uri, source.path),
      };
    }
    let uri = source;
    if (uri.startsWith("runs:/") || uri.startsWith("models:/")) {
      uri = (await this.resolveModelUri(uri)).artifactUri;
    }
    if (uri.startsWith("file:") || uri.startsWith("/")) {
      return { path: fileUriToPath(uri), label: uri };
    }
    throw invalid(
      `artifact location ${JSON.stringify(uri)}: the file store can only read file:// locations`,
    );
  }

  async downloadArtifact(source: ArtifactSource, destPath: string): Promise<string> {
    const { path, label } = await this.#localSource(source);
    return await downloadLocalFile(path, destPath, label);
  }

  async downloadArtifacts(source: ArtifactSource, destDir: string): Promise<string[]> {
    const { path } = await this.#localSource(source);
    return await downloadLocalTree(path, destDir);
  }

  // ---- registry ----

  #modelDir(name: string): string {
    checkModelName(name);
    return join(this.root, MODELS, name);
  }

  async #modelMeta(name: string): Promise<{ dir: string; meta: Meta }> {
    await this.#init();
    const dir = this.#modelDir(name);
    const meta = await readMeta(dir);
    if (!meta) throw notFound(`Registered Model with name=${name} not found`);
    return { dir, meta };
  }

  async #touchModel(name: string): Promise<void> {
    const { dir, meta } = await this.#modelMeta(name);
    await writeFileAtomic(
      join(dir, META),
      metaYaml({ ...meta, last_updated_timestamp: Date.now() }),
      dir,
    );
  }

  async getOrCreateRegisteredModel(
    name: string,
    opts: { description?: string; tags?: Record<string, string> } = {},
  ): Promise<RegisteredModel> {
    await this.#init();
    const dir = this.#modelDir(name);
    await mkdirExclusive(dir);
    const now = Date.now();
    const created = await createFileExclusive(
      join(dir, META),
      metaYaml({
        aliases: {},
        creation_timestamp: now,
        description: opts.description ?? null,
        last_updated_timestamp: now,
        name,
      }),
      dir,
    );
    if (created) {
      for (const [k, v] of Object.entries(opts.tags ?? {})) {
        await writeFileAtomic(join(dir, "tags", ...checkEntityKey("tag", k)), v, dir);
      }
    }
    return (await this.getRegisteredModel(name))!;
  }

  async getRegisteredModel(name: string): Promise<RegisteredModel | null> {
    await this.#init();
    const dir = this.#modelDir(name);
    const meta = await readMeta(dir);
    if (!meta) return null;
    const aliases = await readKeyFiles(join(dir, "aliases"));
    return {
      name: str(meta.name) || name,
      description: str(meta.description),
      tags: await readKeyFiles(join(dir, "tags")),
      aliases: Object.fromEntries(Object.entries(aliases).map(([a, v]) => [a, v.trim()])),
      creationTimestamp: num(meta.creation_timestamp) ?? 0,
      lastUpdatedTimestamp: num(meta.last_updated_timestamp) ?? 0,
    };
  }

  async #versionFromDir(
    dir: string,
    meta: Meta,
    aliases: Record<string, string>,
  ): Promise<ModelVersion> {
    const version = str(meta.version);
    const mv: ModelVersion = {
      name: str(meta.name),
      version,
      source: str(meta.source),
      runId: str(meta.run_id),
      status: (str(meta.status) || "READY") as ModelVersionStatus,
      currentStage: str(meta.current_stage) || "None",
      description: str(meta.description),
      tags: await readKeyFiles(join(dir, "tags")),
      aliases: Object.entries(aliases).filter(([, v]) => v.trim() === version).map(([a]) => a)
        .sort(),
      creationTimestamp: num(meta.creation_timestamp) ?? 0,
      lastUpdatedTimestamp: num(meta.last_updated_timestamp) ?? 0,
    };
    if (meta.status_message) mv.statusMessage = str(meta.status_message);
    return mv;
  }

  async #versionDir(
    name: string,
    version: string,
  ): Promise<{ dir: string; meta: Meta; modelDir: string }> {
    const { dir: modelDir } = await this.#modelMeta(name);
    const v = String(version);
    if (/^\d+$/.test(v)) {
      const dir = join(modelDir, `version-${Number(v)}`);
      const meta = await readMeta(dir);
      if (meta && meta.current_stage !== DELETED_STAGE) return { dir, meta, modelDir };
    }
    throw notFound(`Model Version (name=${name}, version=${v}) not found`);
  }

  async createModelVersion(
    name: string,
    source: string,
    runId?: string,
    opts: { description?: string; tags?: Record<string, string>; clientToken?: string } = {},
  ): Promise<string> {
    if (opts.clientToken) {
      opts = { ...opts, tags: { ...opts.tags, [CLIENT_TOKEN_TAG]: opts.clientToken } };
    }
    const { dir: modelDir } = await this.#modelMeta(name);
    if (typeof source !== "string" || !source) {
      throw invalid("model version source: expected a URI");
    }
    for (const k of Object.keys(opts.tags ?? {})) checkEntityKey("tag", k);
    const storage = source.startsWith("models:/")
      ? (await this.resolveModelUri(source)).artifactUri
      : source;
    const tmp = tempPath(modelDir);
    await Deno.mkdir(tmp);
    try {
      for (const [k, v] of Object.entries(opts.tags ?? {})) {
        await writeFileAtomic(join(tmp, "tags", ...k.split("/")), v, tmp);
      }
      let n = 1;
      for (const d of await listDirs(modelDir)) {
        const m = /^version-(\d+)$/.exec(d);
        if (m) n = Math.max(n, Number(m[1]) + 1);
      }
      for (let tries = 0;; tries++, n++) {
        const now = Date.now();
        await writeFileAtomic(
          join(tmp, META),
          metaYaml({
            aliases: [],
            creation_timestamp: now,
            current_stage: "None",
            description: opts.description ?? null,
            last_updated_timestamp: now,
            name,
            run_id: runId || null,
            run_link: null,
            source,
            status: "READY",
            status_message: null,
            storage_location: storage,
            user_id: null,
            version: n,
          }),
          tmp,
        );
        const target = join(modelDir, `version-${n}`);
        try {
          // rename(2) onto a non-empty directory fails: the number is ours only if nobody had it.
          await Deno.rename(tmp, target);
          break;
        } catch (err) {
          const taken = await Deno.stat(target).then(() => true, () => false);
          if (!taken || tries >= 1000) throw err;
        }
      }
      await this.#touchModel(name);
      return String(n);
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  }

  async getModelVersion(name: string, version: string): Promise<ModelVersion> {
    const { dir, meta, modelDir } = await this.#versionDir(name, version);
    return await this.#versionFromDir(dir, meta, await readKeyFiles(join(modelDir, "aliases")));
  }

  async waitUntilReady(name: string, version: string, _opts?: WaitOptions): Promise<ModelVersion> {
    // File-store versions are READY as soon as they exist.
    return await this.getModelVersion(name, version);
  }

  async searchModelVersions(name: string): Promise<ModelVersion[]> {
    await this.#init();
    const modelDir = this.#modelDir(name);
    if (!(await readMeta(modelDir))) return [];
    const aliases = await readKeyFiles(join(modelDir, "aliases"));
    const out: ModelVersion[] = [];
    for (const d of await listDirs(modelDir)) {
      if (!/^version-\d+$/.test(d)) continue;
      const meta = await readMeta(join(modelDir, d));
      if (!meta || meta.current_stage === DELETED_STAGE) continue;
      out.push(await this.#versionFromDir(join(modelDir, d), meta, aliases));
    }
    return out.sort((a, b) => Number(b.version) - Number(a.version));
  }

  async setAlias(name: string, alias: string, version: string): Promise<void> {
    checkAlias(alias);
    const { modelDir } = await this.#versionDir(name, version);
    await writeFileAtomic(join(modelDir, "aliases", alias), String(Number(version)), modelDir);
    await this.#touchModel(name);
  }

  async getVersionByAlias(name: string, alias: string): Promise<ModelVersion | null> {
    await this.#init();
    checkModelName(name);
    checkAlias(alias);
    const text = await readText(join(this.#modelDir(name), "aliases", alias));
    if (text === undefined) return null;
    try {
      return await this.getModelVersion(name, text.trim());
    } catch (err) {
      if (err instanceof MlflowError && err.code === "not_found") return null;
      throw err;
    }
  }

  async deleteAlias(name: string, alias: string): Promise<void> {
    checkAlias(alias);
    const { dir } = await this.#modelMeta(name);
    try {
      await Deno.remove(join(dir, "aliases", alias));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    await this.#touchModel(name);
  }

  async setModelVersionTag(
    name: string,
    version: string,
    key: string,
    value: string,
  ): Promise<void> {
    const segs = checkEntityKey("tag", key);
    const { dir } = await this.#versionDir(name, version);
    await writeFileAtomic(join(dir, "tags", ...segs), value, dir);
    await this.#touchModel(name);
  }

  async transitionStage(
    name: string,
    version: string,
    stage: ModelStage,
    archiveExistingVersions = false,
  ): Promise<ModelVersion> {
    const target = canonicalStage(stage);
    if (archiveExistingVersions && target !== "Staging" && target !== "Production") {
      throw invalid(
        `Model version transition cannot archive existing model versions because '${stage}' is ` +
          `not an Active stage. Valid stages are Staging, Production`,
      );
    }
    const { dir, meta, modelDir } = await this.#versionDir(name, version);
    const now = Date.now();
    if (archiveExistingVersions) {
      for (const d of await listDirs(modelDir)) {
        if (!/^version-\d+$/.test(d) || d === basename(dir)) continue;
        const other = await readMeta(join(modelDir, d));
        if (other && other.current_stage === target) {
          await writeFileAtomic(
            join(modelDir, d, META),
            metaYaml({ ...other, current_stage: "Archived", last_updated_timestamp: now }),
            join(modelDir, d),
          );
        }
      }
    }
    const next = { ...meta, current_stage: target, last_updated_timestamp: now };
    await writeFileAtomic(join(dir, META), metaYaml(next), dir);
    await this.#touchModel(name);
    return await this.#versionFromDir(dir, next, await readKeyFiles(join(modelDir, "aliases")));
  }

  async getDownloadUri(name: string, version: string): Promise<string> {
    const { meta } = await this.#versionDir(name, version);
    return str(meta.storage_location) || str(meta.source);
  }

  #resolveOps() {
    return {
      getVersionByAlias: (n: string, a: string) => this.getVersionByAlias(n, a),
      getDownloadUri: (n: string, v: string) => this.getDownloadUri(n, v),
      searchModelVersions: (n: string) => this.searchModelVersions(n),
      runArtifactUri: async (id: string) => (await this.#artifactRoot(id)).uri,
      downloadArtifacts: (uri: string, dir: string) => this.downloadArtifacts(uri, dir),
      downloadArtifact: (uri: string, dest: string) => this.downloadArtifact(uri, dest),
    };
  }

  resolveModelUri(uri: string): Promise<ResolvedModelUri> {
    return resolveModelUri(this.#resolveOps(), uri);
  }

  downloadModel(uri: string, destDir: string): Promise<DownloadedModel> {
    return downloadModel(this.#resolveOps(), uri, destDir);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
