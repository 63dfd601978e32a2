/**
 * One training run, end to end: snapshot the manifest, write the trainer's inputs to the training
 * store, stage them on NVMe, launch the trainer (local child processes with torch.distributed
 * when `nodes > 1`; or, for `k8s` / `systemd`, write the Job / unit definitions and stop), stream
 * its metrics to the tracker, upload the model and its records as artifacts, register a model
 * version with alias `candidate`, promote it to the approved alias when the rule allows, and
 * record the run in the manifest.
 *
 * `trainNode` is the other half of multi-host runs: what each k8s pod or systemd unit runs
 * (`sluice-train node --plan <key> --rank <r>`). Rank 0 tracks, registers and promotes.
 *
 * @example
 * ```ts
 * const result = await trainOnce(config, { manifest, store, tracker, staging, log });
 * console.log(result.runId, result.modelVersion, result.map50, result.promoted);
 * ```
 * @module
 */
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { writeEvalPictures } from "../../common/eval/pictures.ts";
import { hostname } from "node:os";
import { basename, join } from "node:path";
import { messageOf, reasonOf, SluiceError } from "../../common/errors/mod.ts";
import { redactText } from "../../common/redaction/redact_text.ts";
import type { Logger } from "../../common/log/mod.ts";
import type { ManifestStore } from "../../common/manifest/mod.ts";
import {
  endStaleRuns,
  RUN_HOST_TAG,
  RUN_LAUNCHER_TAG,
  RUN_PID_TAG,
} from "../../common/mlflow/stale_runs.ts";
import type { Tracker } from "../../common/mlflow/tracker.ts";
import { joinArtifactUri } from "../../common/mlflow/model_uri.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import type { Staging } from "../../common/staging/mod.ts";
import { CANDIDATE_ALIAS, type Launcher, type TrainConfig, type TrainSettings } from "./config.ts";
import { snapshotDatasetInput } from "./dataset_input.ts";
import { type K8sOptions, renderK8s } from "./k8s.ts";
import { writeMlflowModel } from "./mlflow_model.ts";
import { MAP50_TAG, promoteIfBetter, type PromotionDecision } from "./promotion.ts";
import { RunObserver, type ShardReport } from "./run_observer.ts";
import { recordSnapshot, selectSnapshot, type Snapshot } from "./snapshot.ts";
import { type StagedInputs, stageInputs } from "./stage_inputs.ts";
import { runSourceTags } from "./run_source_tags.ts";
import { renderSystemd, UNIT_NAME } from "./systemd.ts";
import type { TrainMetrics } from "./train_metrics.ts";
import { TrackerStream } from "./tracker_stream.ts";
import type { SummaryEvent, TrainerEvent } from "./trainer_events.ts";
import {
  assertTrainersSucceeded,
  freePort,
  resolveTrainerCommand,
  runTrainerProcesses,
  type TrainerProcessSpec,
} from "./trainer_process.ts";
import {
  type LaunchPlan,
  readLaunchPlan,
  readSnapshotFile,
  type SnapshotFile,
  writeTrainingInputs,
} from "./training_inputs.ts";

/** What a run needs besides its configuration. */
export interface TrainDeps {
  manifest: ManifestStore;
  /** The dataset store holding the variant images (`config.objectStore.url`). */
  store: ObjectStore;
  /** Where the trainer's inputs and definitions go (`config.stage.trainingUrl`); default `store`. */
  trainingStore?: ObjectStore;
  tracker: Tracker;
  /** Recorded in the manifest's training run row (default: the tracker's kind). */
  trackerUri?: string;
  staging: Staging;
  log: Logger;
  metrics?: TrainMetrics;
  /** Abort to stop the trainer (the run is recorded as killed). */
  signal?: AbortSignal;
  /** Every trainer event, as it arrives (demo, tests). */
  onEvent?: (rank: number, event: TrainerEvent) => void;
  /** Directory relative trainer command paths resolve against first (default: the cwd). */
  cwd?: string;
}

/** What a run produced. Tracking fields are null for `k8s` / `systemd` (nothing ran here). */
export interface TrainingResult {
  launcher: Launcher | "node";
  snapshotId: string;
  layout: string;
  /** The tracker's run id. */
  runId: string | null;
  /** The manifest's training run id. */
  trainingRunId: string | null;
  modelVersion: string | null;
  /** Validation mAP@0.5 (NaN when nothing was evaluated here). */
  map50: number;
  map50_95: number;
  promoted: boolean;
  promotion: PromotionDecision | null;
  /** What each rank reported reading (ranks run here only). */
  shards: ShardReport[];
  summary: SummaryEvent | null;
  /** Keys of the inputs in the training store. */
  keys: LaunchPlan["keys"];
  /** URIs of the written k8s / systemd definitions. */
  definitions: string[];
  /** Ingested images left out of the snapshot (no annotations, no variant, …); null on nodes. */
  excluded: number | null;
}

/** Files that make up the registered model (`runs:/<run>/model`). */
const MODEL_FILES = new Set(["model.onnx", "labels.json", "model_card.json"]);

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * Selects and records the snapshot and writes the trainer's inputs (no training).
 *
 * @example
 * ```ts
 * const { snapshot, plan } = await prepareTraining(config, deps);
 * ```
 */
export async function prepareTraining(
  config: TrainConfig,
  deps: Pick<TrainDeps, "manifest" | "store" | "trainingStore" | "log" | "signal">,
): Promise<{ snapshot: Snapshot; plan: LaunchPlan; snapshotFile: SnapshotFile }> {
  const s = config.stage;
  const { log } = deps;
  deps.signal?.throwIfAborted();
  const snapshot = await selectSnapshot(deps.manifest, deps.store, {
    variant: s.variant,
    valFraction: s.valFraction,
    inputSize: s.inputSize,
  });
  const row = await recordSnapshot(deps.manifest, snapshot);
  log.info("snapshot recorded", {
    snapshot: snapshot.id,
    variant: s.variant,
    train: snapshot.spec.counts.train,
    val: snapshot.spec.counts.val,
    annotations: snapshot.spec.counts.annotations,
    labels: snapshot.labels.size,
    inputSize: snapshot.inputSize,
    excluded: snapshot.excluded.reduce<Record<string, number>>((acc, e) => {
      acc[e.reason] = (acc[e.reason] ?? 0) + 1;
      return acc;
    }, {}),
  });
  deps.signal?.throwIfAborted();
  const trainingStore = deps.trainingStore ?? deps.store;
  const { plan, snapshotFile } = await writeTrainingInputs(trainingStore, snapshot, {
    prefix: s.trainingPrefix,
    datasetStoreUrl: deps.store.url,
    createdAt: row.createdAt,
    settings: s,
  });
  log.info("training inputs written", {
    snapshot: plan.snapshotId,
    layout: plan.layout,
    nodes: plan.settings.nodes,
    imagesPerNode: plan.settings.imagesPerNode,
    dir: trainingStore.uriFor(plan.keys.launch).replace(/\/launch\.json$/, ""),
  });
  return { snapshot, plan, snapshotFile };
}

/**
 * The k8s launcher's options from the train settings: what the Job written at run time uses.
 *
 * @example
 * ```ts
 * launcherK8sOptions(config.stage).namespace; // "default"
 * ```
 */
export function launcherK8sOptions(s: TrainSettings): K8sOptions {
  return {
    namespace: s.k8sNamespace,
    image: s.k8sImage,
    binPath: s.binPath,
    masterPort: s.masterPort || 29500,
    gpusPerNode: s.gpusPerNode,
    ...(s.k8sStagingStorageClass
      ? { stagingClaim: { storageClass: s.k8sStagingStorageClass, size: s.k8sStagingSize } }
      : {}),
  };
}

/**
 * Writes the k8s or systemd definitions of `plan` into its training prefix; returns their URIs.
 *
 * @example
 * ```ts
 * const uris = await writeDefinitions({ ...config, stage: { ...config.stage, launcher: "k8s" } }, store, plan);
 * ```
 */
export async function writeDefinitions(
  config: TrainConfig,
  trainingStore: ObjectStore,
  plan: LaunchPlan,
): Promise<string[]> {
  const s = config.stage;
  const masterPort = s.masterPort || 29500;
  const enc = new TextEncoder();
  const files: [string, string, string][] = [];
  if (s.launcher === "k8s") {
    const d = renderK8s(plan, launcherK8sOptions(s));
    files.push([`${plan.keys.dir}/k8s/job.yaml`, d.job, "application/yaml"]);
    files.push([`${plan.keys.dir}/k8s/service.yaml`, d.service, "application/yaml"]);
  } else if (s.launcher === "systemd") {
    const d = renderSystemd(plan, {
      binPath: s.binPath,
      envFile: s.envFile,
      user: s.systemdUser,
      masterAddr: s.masterAddr ?? hostname(),
      masterPort,
    });
    files.push([`${plan.keys.dir}/systemd/${UNIT_NAME}`, d.unit, "text/plain"]);
    d.envFiles.forEach((text, r) => {
      files.push([`${plan.keys.dir}/systemd/rank-${r}.env`, text, "text/plain"]);
    });
  } else {
    throw new SluiceError(
      "invalid_launcher",
      `definitions: expected launcher k8s or systemd, found ${s.launcher}`,
    );
  }
  const uris: string[] = [];
  for (const [key, text, contentType] of files) {
    await trainingStore.put(key, enc.encode(text), { contentType });
    uris.push(trainingStore.uriFor(key));
  }
  return uris;
}

/**
 * Runs one training (see the module docs) and returns its result. Throws a SluiceError when the
 * dataset is empty, staging fails, or the trainer fails; the tracker run is then marked FAILED
 * (KILLED when aborted) and the manifest row says so.
 *
 * @example
 * ```ts
 * const { modelVersion, promoted } = await trainOnce(config, deps);
 * ```
 */
export async function trainOnce(config: TrainConfig, deps: TrainDeps): Promise<TrainingResult> {
  const s = config.stage;
  const { snapshot, plan, snapshotFile } = await prepareTraining(config, deps);
  const trainingStore = deps.trainingStore ?? deps.store;
  if (s.launcher !== "local") {
    const definitions = await writeDefinitions(config, trainingStore, plan);
    deps.metrics?.runsTotal.inc({ result: "prepared" });
    deps.log.info(`${s.launcher} definitions written; start the run from there`, {
      launcher: s.launcher,
      definitions,
    });
    return {
      launcher: s.launcher,
      snapshotId: plan.snapshotId,
      layout: plan.layout,
      runId: null,
      trainingRunId: null,
      modelVersion: null,
      map50: NaN,
      map50_95: NaN,
      promoted: false,
      promotion: null,
      shards: [],
      summary: null,
      keys: plan.keys,
      definitions,
      excluded: snapshot.excluded.length,
    };
  }
  const nodes = plan.settings.nodes;
  const port = s.masterPort || freePort();
  const result = await executeRun(config, deps, {
    plan,
    snapshotFile,
    ranks: range(nodes),
    track: true,
    launcher: "local",
    env: (rank) => ({
      RANK: String(rank),
      WORLD_SIZE: String(nodes),
      LOCAL_RANK: String(rank),
      LOCAL_WORLD_SIZE: String(nodes),
      MASTER_ADDR: "127.0.0.1",
      MASTER_PORT: String(port),
    }),
  });
  return { ...result, excluded: snapshot.excluded.length };
}

/** Options of {@link trainNode}. */
export interface NodeOptions {
  /** Key of the run's `launch.json` in the training store. */
  planKey: string;
  rank: number;
}

/**
 * Runs one rank of a multi-host run prepared by the `k8s` or `systemd` launcher. The
 * rendezvous (`WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`) comes from the environment the Job or
 * unit sets; rank 0 creates the tracker run, registers and promotes.
 *
 * @example
 * ```ts
 * await trainNode(config, deps, { planKey: "training/snap-…/run-…/launch.json", rank: 0 });
 * ```
 */
export async function trainNode(
  config: TrainConfig,
  deps: TrainDeps,
  opts: NodeOptions,
): Promise<TrainingResult> {
  const trainingStore = deps.trainingStore ?? deps.store;
  const plan = await readLaunchPlan(trainingStore, opts.planKey);
  if (!Number.isInteger(opts.rank) || opts.rank < 0 || opts.rank >= plan.settings.nodes) {
    throw new SluiceError(
      "invalid_rank",
      `rank: expected 0 … ${plan.settings.nodes - 1} for ${opts.planKey}, found ${opts.rank}`,
    );
  }
  if (plan.datasetStore !== deps.store.url) {
    deps.log.warn("the plan's dataset store differs from this node's objectStore.url", {
      plan: plan.datasetStore,
      node: deps.store.url,
    });
  }
  const snapshotFile = await readSnapshotFile(trainingStore, plan.keys.snapshot);
  return await executeRun(config, deps, {
    plan,
    snapshotFile,
    ranks: [opts.rank],
    track: opts.rank === 0,
    launcher: "node",
    env: (rank) => ({
      RANK: String(rank),
      WORLD_SIZE: Deno.env.get("WORLD_SIZE") ?? String(plan.settings.nodes),
      LOCAL_RANK: Deno.env.get("LOCAL_RANK") ?? "0",
      LOCAL_WORLD_SIZE: Deno.env.get("LOCAL_WORLD_SIZE") ?? "1",
    }),
  });
}

interface ExecuteOptions {
  plan: LaunchPlan;
  snapshotFile: SnapshotFile;
  ranks: number[];
  /** Create the tracker run, upload, register, promote, record (rank 0's job). */
  track: boolean;
  launcher: Launcher | "node";
  env: (rank: number) => Record<string, string>;
}

function trainerFlags(plan: LaunchPlan, staged: StagedInputs, rank: number): string[] {
  const st = plan.settings;
  return [
    "--train-coco",
    staged.trainCoco,
    "--val-coco",
    staged.valCoco,
    "--images-root",
    staged.imagesRoot,
    "--shard",
    staged.shards.get(rank)!,
    "--out",
    staged.outDir,
    "--epochs",
    String(st.epochs),
    "--batch-size",
    String(st.batchSize),
    "--lr",
    String(st.learningRate),
    "--input-size",
    String(st.inputSize),
    "--device",
    st.device,
    "--seed",
    String(st.seed),
    ...(st.maxMinutes !== null ? ["--max-minutes", String(st.maxMinutes)] : []),
    ...st.trainerArgs,
  ];
}

/** Creates the tracker run, records it in the manifest as running, and opens its stream. */
async function startTracking(
  config: TrainConfig,
  deps: TrainDeps,
  o: ExecuteOptions,
  launcherParams: Record<string, string>,
  log: Logger,
): Promise<
  { runId: string; runArtifactUri: string; trainingRunId: string; stream: TrackerStream }
> {
  const { tracker, manifest } = deps;
  const { plan } = o;
  const experimentId = await tracker.getOrCreateExperiment(config.mlflow.experiment);
  await sweepStaleRuns(tracker, experimentId, config.mlflow.staleRunMinutes, log);
  const sourceTags = await runSourceTags({
    sourceName: "sluice-train",
    sourceType: o.launcher === "local" ? "LOCAL" : "JOB",
  });
  const run = await tracker.createRun(experimentId, {
    userId: sourceTags["mlflow.user"],
    runName: `train-${plan.snapshotId.slice(5, 15)}-${plan.layout.slice(4, 10)}`,
    // One training, one run: a create whose answer is lost is looked up by this token.
    clientToken: crypto.randomUUID(),
    tags: {
      "sluice.snapshot_id": plan.snapshotId,
      "sluice.layout": plan.layout,
      "sluice.variant": plan.variant,
      [RUN_LAUNCHER_TAG]: o.launcher,
      [RUN_HOST_TAG]: hostname(),
      [RUN_PID_TAG]: String(Deno.pid),
      ...sourceTags,
    },
  });
  const runId = run.runId;
  const trainingRunId = `tr-${runId}`;
  await manifest.upsertTrainingRun({
    id: trainingRunId,
    snapshotId: plan.snapshotId,
    tracker: redactText(deps.trackerUri ?? tracker.kind),
    runId,
    modelName: config.mlflow.modelName,
    modelVersion: null,
    status: "running",
    params: launcherParams,
    metrics: {},
  });
  const stream = new TrackerStream(tracker, runId, { log });
  for (const [k, v] of Object.entries(launcherParams)) stream.param(k, v);
  log.info("tracker run started", { runId, experiment: config.mlflow.experiment });
  return { runId, runArtifactUri: run.artifactUri, trainingRunId, stream };
}

/** Runs the trainer ranks of this host to completion; throws unless every one exited 0. */
async function launchTrainers(
  s: TrainConfig["stage"],
  deps: TrainDeps,
  o: ExecuteOptions,
  staged: StagedInputs,
  obs: RunObserver,
  log: Logger,
): Promise<{ command: string[]; specs: TrainerProcessSpec[] }> {
  const { plan } = o;
  const command = resolveTrainerCommand(s.trainerCommand, deps.cwd);
  const specs: TrainerProcessSpec[] = o.ranks.map((rank) => ({
    rank,
    command,
    args: trainerFlags(plan, staged, rank),
    env: o.env(rank),
  }));
  const budgetMs = plan.settings.maxMinutes !== null
    ? (plan.settings.maxMinutes * 1.5 + 10) * 60_000
    : undefined;
  log.info("launching trainer", {
    ranks: o.ranks,
    worldSize: plan.settings.nodes,
    command: command.join(" "),
    epochs: plan.settings.epochs,
    batchSize: plan.settings.batchSize,
    device: plan.settings.device,
  });
  const exits = await runTrainerProcesses(specs, {
    onEvent: (rank, ev) => obs.onEvent(rank, ev),
    onLog: (rank, line) => log.info(line, { rank, source: "trainer" }),
    onInvalid: (rank, problem) => log.warn("unexpected trainer output", { rank, problem }),
    signal: deps.signal,
    deadline: budgetMs === undefined ? undefined : Date.now() + budgetMs,
  });
  assertTrainersSucceeded(exits);
  return { command, specs };
}

/** How a run ended, for its manifest row. */
interface RunOutcome {
  trainingRunId: string;
  runId: string | null;
  modelVersion: string | null;
  status: "finished" | "failed" | "killed";
  summary: SummaryEvent | null;
  params: Record<string, string>;
  error: unknown;
  promotion: PromotionDecision | null;
}

/** Writes the run's final manifest row; a failure to write it is logged, not thrown. */
async function recordTrainingRun(
  config: TrainConfig,
  deps: TrainDeps,
  o: ExecuteOptions,
  r: RunOutcome,
  log: Logger,
): Promise<void> {
  const runMetrics: Record<string, number> = {};
  if (r.summary) {
    Object.assign(runMetrics, {
      map50: r.summary.map50,
      map50_95: r.summary.map50_95,
      images_per_sec: r.summary.images_per_sec,
      train_seconds: r.summary.train_seconds,
      steps: r.summary.steps,
      epochs: r.summary.epochs,
      train_images: r.summary.train_images,
      val_images: r.summary.val_images,
    });
  }
  const params = { ...r.params };
  if (r.error !== undefined) {
    params.error = `${reasonOf(r.error)}: ${messageOf(r.error)}`.slice(0, 500);
  }
  if (r.promotion) params.promotion = r.promotion.reason;
  try {
    await deps.manifest.upsertTrainingRun({
      id: r.trainingRunId,
      snapshotId: o.plan.snapshotId,
      tracker: redactText(deps.trackerUri ?? deps.tracker.kind),
      runId: r.runId,
      modelName: config.mlflow.modelName,
      modelVersion: r.modelVersion,
      status: r.status,
      params,
      metrics: runMetrics,
    });
  } catch (err) {
    log.warn("could not record the training run", {
      trainingRunId: r.trainingRunId,
      err: messageOf(err),
    });
  }
}

/** The run's parameters, as logged to the tracker and recorded in the manifest. */
function runParams(o: ExecuteOptions, trainingStore: ObjectStore): Record<string, string> {
  const { plan } = o;
  return {
    snapshot_id: plan.snapshotId,
    layout: plan.layout,
    variant: plan.variant,
    launcher: o.launcher,
    nodes: String(plan.settings.nodes),
    images_per_node: String(plan.settings.imagesPerNode),
    train_images: String(plan.counts.train),
    val_images: String(plan.counts.val),
    training_inputs: trainingStore.uriFor(plan.keys.launch),
  };
}

/** Promotes `version` to the approved alias when it clears the threshold and the champion. */
async function promote(
  config: TrainConfig,
  tracker: Tracker,
  version: string,
  summary: SummaryEvent,
  log: Logger,
): Promise<PromotionDecision> {
  const s = config.stage;
  const promotion = await promoteIfBetter(tracker, {
    modelName: config.mlflow.modelName,
    version,
    map50: summary.map50,
    threshold: s.promotionThreshold,
    approvedAlias: s.approvedAlias,
  });
  log.info(promotion.promote ? "model promoted" : "model not promoted", {
    version,
    alias: s.approvedAlias,
    reason: promotion.reason,
    map50: summary.map50,
    threshold: s.promotionThreshold,
    champion: promotion.champion,
  });
  return promotion;
}

/** What {@link registerRun} needs of a finished run. */
interface FinishedRun {
  runId: string;
  /** The run's resolved artifact location ("" when the tracker gave none). */
  runArtifactUri: string;
  stream: TrackerStream;
  obs: RunObserver;
  staged: StagedInputs;
  command: string[];
  specs: TrainerProcessSpec[];
  plan: LaunchPlan;
}

/** Uploads the run's artifacts and registers its model as the candidate; returns the version. */
async function registerRun(
  config: TrainConfig,
  tracker: Tracker,
  r: FinishedRun,
  log: Logger,
): Promise<string> {
  const modelName = config.mlflow.modelName;
  const summary = r.obs.summary;
  if (!summary) {
    throw new SluiceError(
      "trainer_no_summary",
      "trainer rank 0: expected a summary event before exit 0, found none",
    );
  }
  await r.stream.close();
  const pictures = await drawEvalPictures(r.obs.artifacts, r.staged, log);
  await uploadArtifacts(tracker, r.runId, [...r.obs.artifacts, ...pictures], r.staged.outDir, {
    settings: config.stage,
    plan: r.plan,
    command: r.command,
    args: Object.fromEntries(r.specs.map((sp) => [String(sp.rank), sp.args])),
    summary,
    shards: r.obs.shards,
  });
  const modelVersion = await registerCandidate(tracker, {
    modelName,
    runId: r.runId,
    runArtifactUri: r.runArtifactUri,
    summary,
    plan: r.plan,
  });
  log.info("model version registered", {
    model: modelName,
    version: modelVersion,
    alias: CANDIDATE_ALIAS,
    map50: summary.map50,
  });
  return modelVersion;
}

/** Ends the tracker run with the run's status; a failure to end it is logged, not thrown. */
async function endTrackerRun(
  tracker: Tracker,
  runId: string,
  status: "finished" | "failed" | "killed",
  log: Logger,
): Promise<void> {
  try {
    await tracker.updateRun(
      runId,
      status === "finished" ? "FINISHED" : status === "killed" ? "KILLED" : "FAILED",
    );
  } catch (err) {
    log.warn("could not end the tracker run", { runId, err: messageOf(err) });
  }
}

/** The result of a finished run (shards aside). */
function resultOf(
  o: ExecuteOptions,
  r: {
    runId: string | null;
    trainingRunId: string | null;
    modelVersion: string | null;
    summary: SummaryEvent | null;
    promotion: PromotionDecision | null;
  },
): Omit<TrainingResult, "shards"> {
  const { plan } = o;
  return {
    launcher: o.launcher,
    snapshotId: plan.snapshotId,
    layout: plan.layout,
    runId: r.runId,
    trainingRunId: r.trainingRunId,
    modelVersion: r.modelVersion,
    map50: r.summary?.map50 ?? NaN,
    map50_95: r.summary?.map50_95 ?? NaN,
    promoted: r.promotion?.promote ?? false,
    promotion: r.promotion,
    summary: r.summary,
    keys: plan.keys,
    definitions: [],
    excluded: null,
  };
}

/** Counts and logs how a run ended; rethrows its error when it failed. */
function reportRun(
  metrics: TrainMetrics | undefined,
  log: Logger,
  r: {
    error: unknown;
    runId: string | null;
    modelVersion: string | null;
    summary: SummaryEvent | null;
    promotion: PromotionDecision | null;
  },
): void {
  const { error, runId, summary, promotion } = r;
  metrics?.running.set(0);
  if (error !== undefined) {
    metrics?.runsTotal.inc({ result: "failed" });
    metrics?.stage.errorsTotal.inc({ reason: reasonOf(error) });
    log.error("training failed", { reason: reasonOf(error), err: messageOf(error), runId });
    throw error;
  }
  metrics?.runsTotal.inc({ result: promotion?.promote ? "promoted" : "candidate" });
  log.info("training finished", {
    runId,
    modelVersion: r.modelVersion,
    map50: summary?.map50 ?? null,
    map50_95: summary?.map50_95 ?? null,
    promoted: promotion?.promote ?? false,
  });
}

async function executeRun(
  config: TrainConfig,
  deps: TrainDeps,
  o: ExecuteOptions,
): Promise<TrainingResult> {
  const { tracker, metrics } = deps;
  const { plan } = o;
  const s = config.stage;
  const log = deps.log.child({ snapshot: plan.snapshotId, layout: plan.layout });
  const trainingStore = deps.trainingStore ?? deps.store;
  const launcherParams = runParams(o, trainingStore);
  let runId: string | null = null;
  let runArtifactUri = "";
  let trainingRunId: string | null = null;
  let stream: TrackerStream | null = null;
  let modelVersion: string | null = null;
  let observer: RunObserver | null = null;
  let status: "finished" | "failed" | "killed" = "failed";
  let error: unknown;
  metrics?.running.set(1);
  metrics?.progress.set(0);
  try {
    if (o.track) {
      ({ runId, runArtifactUri, trainingRunId, stream } = await startTracking(
        config,
        deps,
        o,
        launcherParams,
        log,
      ));
    }
    observer = new RunObserver({
      log,
      metrics,
      stream: stream ?? undefined,
      epochs: plan.settings.epochs,
      onEvent: deps.onEvent,
    });
    const obs = observer;

    await using lease = await deps.staging.lease(`${plan.snapshotId}-${plan.layout}`);
    const staged = await stageInputs(lease, {
      plan,
      snapshot: o.snapshotFile,
      trainingStore,
      datasetStore: deps.store,
      ranks: o.ranks,
      log,
      signal: deps.signal,
    });
    if (runId !== null) {
      await logSnapshotInput(tracker, runId, {
        plan,
        snapshotUri: trainingStore.uriFor(plan.keys.snapshot),
        trainCoco: staged.trainCoco,
        valCoco: staged.valCoco,
        log,
      });
    }
    const { command, specs } = await launchTrainers(s, deps, o, staged, obs, log);

    if (o.track) {
      modelVersion = await registerRun(config, tracker, {
        runId: runId!,
        runArtifactUri,
        stream: stream!,
        obs,
        staged,
        command,
        specs,
        plan,
      }, log);
    }
    status = "finished";
  } catch (err) {
    error = err;
    status = deps.signal?.aborted || reasonOf(err) === "trainer_aborted" ? "killed" : "failed";
  }

  // Promotion and records happen after the run is finished (so a failed promotion still leaves
  // a complete run and version behind).
  let promotion: PromotionDecision | null = null;
  const summary = observer?.summary ?? null;
  try {
    if (stream) {
      await stream.close().catch((e) => log.warn("tracker stream", { err: messageOf(e) }));
    }
    if (status === "finished" && o.track && modelVersion !== null && summary) {
      promotion = await promote(config, tracker, modelVersion, summary, log);
    }
  } catch (err) {
    error ??= err;
    status = "failed";
  }
  if (runId !== null) await endTrackerRun(tracker, runId, status, log);
  if (trainingRunId !== null) {
    await recordTrainingRun(config, deps, o, {
      trainingRunId,
      runId,
      modelVersion,
      status,
      summary,
      params: launcherParams,
      error,
      promotion,
    }, log);
  }
  reportRun(metrics, log, { error, runId, modelVersion, summary, promotion });
  return {
    ...resultOf(o, { runId, trainingRunId, modelVersion, summary, promotion }),
    shards: observer?.shards ?? [],
  };
}

/**
 * Logs the snapshot as the run's dataset input (best effort: a server without `log-inputs`, MLflow
 * before 2.4, gets a warning, not a failed training).
 */
async function logSnapshotInput(
  tracker: Tracker,
  runId: string,
  o: { plan: LaunchPlan; snapshotUri: string; trainCoco: string; valCoco: string; log: Logger },
): Promise<void> {
  const input = snapshotDatasetInput({
    snapshotId: o.plan.snapshotId,
    variant: o.plan.variant,
    inputSize: o.plan.settings.inputSize,
    snapshotUri: o.snapshotUri,
    train: JSON.parse(await readFile(o.trainCoco, "utf8")),
    val: JSON.parse(await readFile(o.valCoco, "utf8")),
  });
  try {
    await tracker.logInputs(runId, [input]);
  } catch (err) {
    o.log.warn("could not log the snapshot as a dataset input", { runId, err: messageOf(err) });
  }
}

/**
 * PR curves, a confusion matrix and a contact sheet of the validation set (`eval/*.png` in the
 * run), from the trainer's `val_predictions.json`. Best effort: a failure is logged, the training
 * goes on.
 */
async function drawEvalPictures(
  artifacts: readonly string[],
  staged: StagedInputs,
  log: Logger,
): Promise<string[]> {
  const predictionsPath = artifacts.find((p) => basename(p) === "val_predictions.json");
  if (!predictionsPath) {
    log.warn("no evaluation pictures: the trainer wrote no val_predictions.json");
    return [];
  }
  try {
    const gt = JSON.parse(await readFile(staged.valCoco, "utf8"));
    const predictions = JSON.parse(await readFile(predictionsPath, "utf8"));
    const dir = join(staged.outDir, "eval-pictures");
    await mkdir(dir, { recursive: true });
    return await writeEvalPictures(dir, {
      gt,
      predictions,
      image: (img) => Deno.readFile(join(staged.imagesRoot, String(img.file_name ?? img.id))),
    });
  } catch (err) {
    log.warn("could not draw the evaluation pictures", { err: messageOf(err) });
    return [];
  }
}

/** Ends stale RUNNING runs before starting one (best effort: a failure is logged, not thrown). */
async function sweepStaleRuns(
  tracker: Tracker,
  experimentId: string,
  staleRunMinutes: number,
  log: Logger,
): Promise<void> {
  try {
    for (
      const e of await endStaleRuns(tracker, experimentId, {
        staleAfterMs: staleRunMinutes * 60_000,
      })
    ) {
      log.warn("ended a stale tracker run as KILLED", { runId: e.runId, reason: e.reason });
    }
  } catch (err) {
    log.warn("could not sweep stale tracker runs", { err: messageOf(err) });
  }
}

/**
 * Uploads the trainer's outputs: `model/` (model.onnx, labels.json, model_card.json: what
 * `models:/<name>@<alias>` downloads), `checkpoint/model.pt`, `eval/…` (anything else the trainer
 * wrote), `config/train_config.json` and `metrics/summary.json`.
 */
async function uploadArtifacts(
  tracker: Tracker,
  runId: string,
  artifacts: readonly string[],
  outDir: string,
  record: Record<string, unknown>,
): Promise<void> {
  const names = new Set(artifacts.map((p) => basename(p)));
  for (const required of MODEL_FILES) {
    if (!names.has(required)) {
      throw new SluiceError(
        "trainer_no_model",
        `trainer: expected ${[...MODEL_FILES].join(", ")} among its artifacts, found ` +
          `${[...names].join(", ") || "none"} (no ${required})`,
      );
    }
  }
  for (const path of artifacts) {
    const name = basename(path);
    const dir = MODEL_FILES.has(name) ? "model" : name === "model.pt" ? "checkpoint" : "eval";
    await tracker.logArtifact(runId, path, dir);
  }
  // MLmodel (onnx flavor, signature) and the environment files: an MLflow model.
  const byName = new Map(artifacts.map((p) => [basename(p), p]));
  const card = JSON.parse(await readFile(byName.get("model_card.json")!, "utf8"));
  const mlflowDir = join(outDir, "mlflow-model");
  await mkdir(mlflowDir, { recursive: true });
  for (
    const path of await writeMlflowModel(mlflowDir, {
      runId,
      card,
      modelBytes: (await stat(byName.get("model.onnx")!)).size,
    })
  ) {
    await tracker.logArtifact(runId, path, "model");
  }
  const { summary, shards, ...config } = record;
  const configPath = join(outDir, "train_config.json");
  await writeFile(configPath, JSON.stringify(config, null, 2) + "\n");
  await tracker.logArtifact(runId, configPath, "config");
  const metricsPath = join(outDir, "summary.json");
  await writeFile(metricsPath, JSON.stringify({ summary, shards }, null, 2) + "\n");
  await tracker.logArtifact(runId, metricsPath, "metrics");
}

/**
 * Registers the run's `model` directory as a new version, with the resolved artifact location as
 * its source (`mlflow-artifacts:/<exp>/<run>/artifacts/model`, as MLflow's `register_model`
 * stores it: the UI's get-artifact and get-download-uri need it), waits for READY, sets alias
 * `candidate`.
 */
async function registerCandidate(
  tracker: Tracker,
  o: {
    modelName: string;
    runId: string;
    runArtifactUri: string;
    summary: SummaryEvent;
    plan: LaunchPlan;
  },
): Promise<string> {
  await tracker.getOrCreateRegisteredModel(o.modelName, {
    description: "Sluice object detector (CenterNet, ONNX); see model_card.json",
  });
  const version = await tracker.createModelVersion(
    o.modelName,
    o.runArtifactUri ? joinArtifactUri(o.runArtifactUri, "model") : `runs:/${o.runId}/model`,
    o.runId,
    {
      // One run, one version: a create whose answer is lost is looked up by this token.
      clientToken: `${o.runId}/model`,
      description: `snapshot ${o.plan.snapshotId}, variant ${o.plan.variant}, ` +
        `${o.plan.counts.train} train / ${o.plan.counts.val} val images`,
      tags: {
        [MAP50_TAG]: String(o.summary.map50),
        map50_95: String(o.summary.map50_95),
        snapshot_id: o.plan.snapshotId,
        variant: o.plan.variant,
        input_size: String(o.plan.settings.inputSize),
      },
    },
  );
  await tracker.waitUntilReady(o.modelName, version, { timeoutMs: 300_000 });
  await tracker.setAlias(o.modelName, CANDIDATE_ALIAS, version);
  return version;
}
