/**
 * The experiment-tracking and model-registry operations Sluice needs, as one interface with two
 * implementations: `MlflowRestTracker` (an MLflow tracking server over REST, see `rest_client.ts`)
 * and `FileTracker` (MLflow's own file-store layout in a local `mlruns/` directory, the embedded
 * default, see `file_tracker.ts`). `tests/support/mlflow/tracker_contract.ts` holds the scenario both must pass
 * (`contract_test.ts`); `openTracker` in `mod.ts` picks one from configuration.
 *
 * Conventions shared by both: ids and model versions are strings; parameter values are sent and
 * returned as strings; metric values may be NaN or ±Infinity; a missing alias is `null`, not an
 * error; failures are {@link MlflowError}s carrying MLflow's `error_code`.
 *
 * @example
 * ```ts
 * const tracker = openTracker({ localDir: "./mlruns" });
 * const exp = await tracker.getOrCreateExperiment("sluice");
 * const run = await tracker.createRun(exp, { runName: "train-1", tags: { snapshot: "s1" } });
 * await tracker.logParams(run.runId, { lr: 0.01, epochs: 10 });
 * await tracker.logMetrics(run.runId, [{ key: "loss", value: 0.5, step: 0 }]);
 * await tracker.logArtifact(run.runId, "/tmp/out/model.onnx", "model");
 * await tracker.updateRun(run.runId, "FINISHED");
 * await tracker.getOrCreateRegisteredModel("sluice-detector");
 * const v = await tracker.createModelVersion("sluice-detector", `runs:/${run.runId}/model`, run.runId);
 * await tracker.setAlias("sluice-detector", "champion", v);
 * await tracker.downloadModel("models:/sluice-detector@champion", "/tmp/model");
 * await tracker.close();
 * ```
 * @module
 */

/** A run's lifecycle status, as MLflow names it. */
export type RunStatus = "RUNNING" | "SCHEDULED" | "FINISHED" | "FAILED" | "KILLED";
/** The statuses a run can end in. */
export type TerminalRunStatus = "FINISHED" | "FAILED" | "KILLED";
/** A model version's registration status. */
export type ModelVersionStatus = "PENDING_REGISTRATION" | "FAILED_REGISTRATION" | "READY";
/** The legacy registry stages (still read as a fallback where no alias or tag is set). */
export type ModelStage = "None" | "Staging" | "Production" | "Archived";
/** Parameter values are stored as strings; numbers and booleans are converted with `String()`. */
export type ParamValue = string | number | boolean;

/** An experiment. */
export interface Experiment {
  experimentId: string;
  name: string;
  /** Where runs of this experiment keep artifacts (`mlflow-artifacts:/1`, `file:///…`, `s3://…`). */
  artifactLocation: string;
  lifecycleStage: "active" | "deleted";
  creationTime?: number;
  lastUpdateTime?: number;
  tags: Record<string, string>;
}

/**
 * The tag that makes creation idempotent: a run or model version created with a client token
 * carries it, so a create whose answer was lost can be looked up instead of repeated.
 */
export const CLIENT_TOKEN_TAG = "sluice.client_token";

/** What {@link Tracker.createRun} accepts. */
export interface CreateRunOptions {
  /**
   * Identifies this creation (tag {@link CLIENT_TOKEN_TAG}); a retried create finds the run made
   * by a lost earlier attempt instead of making a second. Default: a fresh UUID.
   */
  clientToken?: string;
  runName?: string;
  tags?: Record<string, string>;
  /** Milliseconds since the epoch; default now. */
  startTime?: number;
  userId?: string;
}

/** A run's metadata. `createRun` returns it; `artifactUri` is the root of the run's artifacts. */
export interface RunInfo {
  runId: string;
  experimentId: string;
  runName: string;
  userId: string;
  status: RunStatus;
  startTime: number;
  endTime?: number;
  /** `mlflow-artifacts:/<exp>/<run>/artifacts`, `s3://…/artifacts` or `file:///…/artifacts`. */
  artifactUri: string;
  lifecycleStage: "active" | "deleted";
}

/** One metric value. NaN and ±Infinity are allowed. */
export interface Metric {
  key: string;
  value: number;
  /** Milliseconds since the epoch. */
  timestamp: number;
  step: number;
}

/** A metric to log: `step` defaults to 0 and `timestamp` to now. */
export interface MetricInput {
  key: string;
  value: number;
  step?: number;
  timestamp?: number;
}

/** A dataset as MLflow records it (`mlflow.entities.Dataset`). */
export interface Dataset {
  name: string;
  /** A short content hash: the same data gives the same digest. */
  digest: string;
  /** Where the data lives, e.g. `s3`, `local`, `http`. */
  sourceType: string;
  /** A JSON document describing the source (MLflow's convention), e.g. `{"uri": "s3://…"}`. */
  source: string;
  /** A JSON document describing the records' schema. */
  schema?: string;
  /** A JSON document of summary statistics (counts). */
  profile?: string;
}

/** A dataset used by a run, with input tags (`mlflow.data.context`: `training`, `validation`). */
export interface DatasetInput {
  dataset: Dataset;
  tags: Record<string, string>;
}

/** The input tag naming what a dataset was used for. */
export const DATASET_CONTEXT_TAG = "mlflow.data.context";

/** A run with its data: params and tags as maps, and the latest value of each metric. */
export interface Run {
  info: RunInfo;
  params: Record<string, string>;
  tags: Record<string, string>;
  metrics: Record<string, Metric>;
  /** The datasets logged with {@link Tracker.logInputs} (absent when none). */
  inputs?: DatasetInput[];
}

/** What {@link Tracker.logBatch} accepts (any part may be omitted). */
export interface LogBatch {
  params?: Record<string, ParamValue>;
  metrics?: MetricInput[];
  tags?: Record<string, string>;
}

/** One entry of an artifact listing. */
export interface ArtifactEntry {
  /** Relative to the run's artifact root (`model/model.onnx`), as MLflow lists them. */
  path: string;
  isDir: boolean;
  /** Bytes; absent for directories (and for empty files, which MLflow lists without a size). */
  fileSize?: number;
}

/** Where an artifact comes from: a run and a path inside its artifacts, or an artifact URI. */
export type ArtifactSource = string | { runId: string; path: string };

/** A registered model version. */
export interface ModelVersion {
  name: string;
  version: string;
  /** As registered: `runs:/<run>/model`, `mlflow-artifacts:/…`, `s3://…`, `file:///…`. */
  source: string;
  /** Empty when the version was registered without a run. */
  runId: string;
  status: ModelVersionStatus;
  statusMessage?: string;
  currentStage: string;
  description: string;
  tags: Record<string, string>;
  aliases: string[];
  creationTimestamp: number;
  lastUpdatedTimestamp: number;
}

/** A registered model. */
export interface RegisteredModel {
  name: string;
  description: string;
  tags: Record<string, string>;
  /** alias → version */
  aliases: Record<string, string>;
  creationTimestamp: number;
  lastUpdatedTimestamp: number;
}

/** What `models:/…` or `runs:/…` points at, resolved to a concrete artifact location. */
export interface ResolvedModelUri {
  /** The URI that was resolved. */
  uri: string;
  /** A concrete location: `mlflow-artifacts:/…`, `s3://…` or `file:///…`. */
  artifactUri: string;
  /** Set for `models:/` URIs. */
  name?: string;
  /** Set for `models:/` URIs. */
  version?: string;
  /** The run that produced the artifacts, when known. */
  runId?: string;
}

/** A model downloaded by {@link Tracker.downloadModel}. */
export interface DownloadedModel extends ResolvedModelUri {
  /** The local directory holding the model's files. */
  localDir: string;
  /** Relative paths of the downloaded files, sorted. */
  files: string[];
}

/** Options for {@link Tracker.waitUntilReady}. */
export interface WaitOptions {
  /** Give up after this long (default 300 000 ms). */
  timeoutMs?: number;
  /** Poll interval (default 1 000 ms). */
  intervalMs?: number;
}

/** Experiment tracking and model registry, MLflow-compatible. */
export interface Tracker {
  /** `"rest"` for an MLflow server, `"file"` for the embedded file store. */
  readonly kind: "rest" | "file";
  /**
   * Where the store is, without credentials (`file:///…/mlruns`, `https://mlflow:5000`): tells
   * one registry's version 1 from another's (see `registry_identity.ts`).
   */
  readonly uri?: string;

  // Experiments
  /** The experiment's id, creating it (with `tags`) when absent. Safe when racing other creators. */
  getOrCreateExperiment(name: string, tags?: Record<string, string>): Promise<string>;
  /** The experiment, or null when no experiment has that name. */
  getExperimentByName(name: string): Promise<Experiment | null>;

  // Runs
  /** Starts a run (status RUNNING). */
  createRun(experimentId: string, opts?: CreateRunOptions): Promise<RunInfo>;
  /** The run with its params, tags and latest metrics. Throws `not_found` when absent. */
  getRun(runId: string): Promise<Run>;
  /** Logs parameters; values become strings. Re-logging a different value fails (MLflow rule). */
  logParam(runId: string, key: string, value: ParamValue): Promise<void>;
  /** Logs many parameters (chunked within MLflow's limits). */
  logParams(runId: string, params: Record<string, ParamValue>): Promise<void>;
  /** Logs one metric value (NaN and ±Infinity allowed). */
  logMetric(
    runId: string,
    key: string,
    value: number,
    opts?: { step?: number; timestamp?: number },
  ): Promise<void>;
  /** Logs many metric values (chunked within MLflow's limits). */
  logMetrics(runId: string, metrics: MetricInput[]): Promise<void>;
  /** Every logged value of one metric, in logging order. */
  getMetricHistory(runId: string, key: string): Promise<Metric[]>;
  /** Sets one tag. */
  setTag(runId: string, key: string, value: string): Promise<void>;
  /** Sets many tags. */
  setTags(runId: string, tags: Record<string, string>): Promise<void>;
  /** Params, metrics and tags together (chunked within MLflow's limits). */
  logBatch(runId: string, batch: LogBatch): Promise<void>;
  /** Runs of an experiment with the given status and exact tag values (all when no filter). */
  findRuns(
    experimentId: string,
    filter?: { status?: RunStatus; tags?: Record<string, string> },
  ): Promise<Run[]>;
  /** Logs datasets as the run's inputs (MLflow's `log-inputs`); logging one twice is a no-op. */
  logInputs(runId: string, inputs: DatasetInput[]): Promise<void>;
  /** Ends a run; `endTime` defaults to now. */
  updateRun(runId: string, status: TerminalRunStatus, endTime?: number): Promise<RunInfo>;

  // Artifacts
  /**
   * Uploads one file to `<artifactPath>/<basename(localPath)>` in the run's artifacts
   * (`artifactPath` is a directory, as in MLflow; omitted = the artifact root).
   */
  logArtifact(runId: string, localPath: string, artifactPath?: string): Promise<void>;
  /** Uploads a directory tree under `artifactPath` (files in sorted, depth-first order). */
  logArtifacts(runId: string, localDir: string, artifactPath?: string): Promise<void>;
  /** The direct children of `path` (default: the root) in the run's artifacts; [] when absent. */
  listArtifacts(runId: string, path?: string): Promise<ArtifactEntry[]>;
  /**
   * Downloads one artifact file to `destPath` (written atomically). Throws `not_found` when absent.
   * Returns `destPath`.
   */
  downloadArtifact(source: ArtifactSource, destPath: string): Promise<string>;
  /** Downloads a directory of artifacts into `destDir`; returns the relative paths written. */
  downloadArtifacts(source: ArtifactSource, destDir: string): Promise<string[]>;

  // Registry
  /** The registered model, creating it when absent. Safe when racing other creators. */
  getOrCreateRegisteredModel(
    name: string,
    opts?: { description?: string; tags?: Record<string, string> },
  ): Promise<RegisteredModel>;
  /** The registered model, or null when absent. */
  getRegisteredModel(name: string): Promise<RegisteredModel | null>;
  /** Registers a new version of `name` from `source`; returns its version (a string, "1", "2"…). */
  createModelVersion(
    name: string,
    source: string,
    runId?: string,
    opts?: { description?: string; tags?: Record<string, string>; clientToken?: string },
  ): Promise<string>;
  /** Polls until the version is READY; throws on FAILED_REGISTRATION or timeout. */
  waitUntilReady(name: string, version: string, opts?: WaitOptions): Promise<ModelVersion>;
  /** One version. Throws `not_found` when absent. */
  getModelVersion(name: string, version: string): Promise<ModelVersion>;
  /** Every version of `name` (with tags and stage), newest first. */
  searchModelVersions(name: string): Promise<ModelVersion[]>;
  /** Points `alias` at `version` (moving it if set). */
  setAlias(name: string, alias: string, version: string): Promise<void>;
  /** The version `alias` points at, or null when the alias (or the model) does not exist. */
  getVersionByAlias(name: string, alias: string): Promise<ModelVersion | null>;
  /** Removes an alias (absent aliases are not an error). */
  deleteAlias(name: string, alias: string): Promise<void>;
  /** Sets a tag on a version (e.g. `approved=true`). */
  setModelVersionTag(name: string, version: string, key: string, value: string): Promise<void>;
  /** Moves a version to a legacy stage; optionally archives the others in that stage. */
  transitionStage(
    name: string,
    version: string,
    stage: ModelStage,
    archiveExistingVersions?: boolean,
  ): Promise<ModelVersion>;
  /** Where the version's files are, as the registry reports it (may be a `runs:/` URI). */
  getDownloadUri(name: string, version: string): Promise<string>;
  /**
   * Resolves `models:/name@alias`, `models:/name/<n>`, `models:/name/latest`,
   * `models:/name/<Stage>` or `runs:/<run>/<path>` to a concrete artifact location.
   */
  resolveModelUri(uri: string): Promise<ResolvedModelUri>;
  /** Resolves `uri` and downloads the model's files into `destDir`. */
  downloadModel(uri: string, destDir: string): Promise<DownloadedModel>;

  /** Releases clients and sockets. */
  close(): Promise<void>;
}
