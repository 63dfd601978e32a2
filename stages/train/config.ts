/**
 * The `train` section of the configuration (file section `train`, env `SLUICE_TRAIN_<KEY>`,
 * flags `--train-<key>`): what to train on, how long, where the trainer's inputs go, how it is
 * launched, and when a new model is promoted. Everything has a default, so `sluice-train run`
 * works on an empty configuration.
 *
 * @example
 * ```ts
 * import { loadConfig } from "../../common/config/mod.ts";
 * const config = await loadConfig({ stage: "train", stageSchema: TrainSettingsSchema, env: {} });
 * config.stage.variant; // "320"
 * config.stage.trainerCommand; // ["/usr/bin/python3", "stages/train/trainer/train.py"]
 * ```
 * @module
 */
import { z } from "zod";
import type { StageConfig } from "../../common/config/mod.ts";
import { validateKey } from "../../common/objectstore/mod.ts";
import { DEFAULT_IMAGE } from "../../common/release/version.ts";
import { RETRAIN_POLICY_SETTINGS } from "../../common/review/retrain_policy.ts";

/** How the trainer processes are started. */
export const LAUNCHERS = ["local", "k8s", "systemd"] as const;
/** One of {@link LAUNCHERS}. */
export type Launcher = typeof LAUNCHERS[number];

/** The alias every newly registered version gets. */
export const CANDIDATE_ALIAS = "candidate";

/** The default trainer command (relative paths resolve against the cwd, then the checkout). */
export const DEFAULT_TRAINER_COMMAND = "/usr/bin/python3 stages/train/trainer/train.py";

const SCHEME = /^([a-z][a-z0-9+.-]*):/i;

/**
 * A command line: a JSON array of arguments, or a string split on whitespace (no shell, so no
 * quoting: use the JSON form for arguments with spaces).
 */
const commandSchema = z.string().min(1, { error: "expected a command line" }).transform(
  (v, ctx) => {
    const s = v.trim();
    if (s.startsWith("[")) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(s);
      } catch {
        parsed = undefined;
      }
      const r = z.array(z.string().min(1)).min(1).safeParse(parsed);
      if (!r.success) {
        ctx.addIssue({
          code: "custom",
          input: v,
          message: 'expected a JSON array of non-empty strings, e.g. ["python3", "train.py"]',
        });
        return z.NEVER;
      }
      return r.data;
    }
    const parts = s.split(/\s+/).filter((p) => p.length > 0);
    if (parts.length === 0) {
      ctx.addIssue({ code: "custom", input: v, message: "expected a command line" });
      return z.NEVER;
    }
    return parts;
  },
);

const keyPrefix = z.string().refine((p) => {
  try {
    validateKey(p.replace(/\/+$/, ""));
    return true;
  } catch {
    return false;
  }
}, {
  error: 'expected a relative key prefix (no leading "/", no "." or ".." segment)',
}).transform((p) => p.replace(/\/+$/, ""));

/** An object store URL; relative directory paths are left to `openObjectStore` to resolve. */
const storeUrl = z.string().min(1).refine((v) => {
  const scheme = SCHEME.exec(v)?.[1]?.toLowerCase();
  return scheme === undefined || scheme === "file" || scheme === "s3";
}, { error: "expected file:///dir, s3://bucket[/prefix] or a directory path" });

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The stage's own settings. */
export const TrainSettingsSchema = z.strictObject({
  epochs: z.int().min(1).max(100_000).default(30).describe("Training epochs"),
  imagesPerNode: z.int().min(1).optional().describe(
    "Images in each node's shard per epoch, sampled by a seeded shuffle (wraps around when the " +
      "train split is smaller); unset = the train split divided evenly between nodes",
  ),
  nodes: z.int().min(1).max(1024).default(1).describe(
    "Trainer processes (local) or hosts (k8s, systemd); > 1 uses torch.distributed",
  ),
  batchSize: z.int().min(1).max(4096).default(16).describe("Images per step per node"),
  learningRate: z.number().positive().max(10).default(3e-3).describe("Peak learning rate"),
  variant: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
    error: "expected a variant name (1-64 of A-Z a-z 0-9 _ . -)",
  }).default("320").describe("Image variant trained on (its size is the model's input size)"),
  inputSize: z.int().min(64).max(4096).refine((v) => v % 32 === 0, {
    error: "expected a multiple of 32",
  }).optional().describe(
    "Model input side in pixels (unset = the variant's larger side, rounded up to 32)",
  ),
  valFraction: z.number().min(0).max(0.9).default(0.2).describe(
    "Share of images in the validation split (by a hash of the image id, so stable as data grows)",
  ),
  seed: z.int().min(0).max(2 ** 31 - 1).default(0).describe(
    "Seed of the shard shuffle and of the trainer",
  ),
  trainingUrl: storeUrl.optional().describe(
    "Store for the trainer's inputs (COCO files, shard lists, job definitions); unset = objectStore.url",
  ),
  trainingPrefix: keyPrefix.default("training").describe(
    "Key prefix in the training store: <prefix>/<snapshot>/...",
  ),
  trainerCommand: commandSchema.prefault(DEFAULT_TRAINER_COMMAND).describe(
    "Trainer command: a string split on whitespace or a JSON array; the launcher appends its flags",
  ),
  trainerArgs: z.array(z.string()).default([]).describe(
    'Extra trainer flags (JSON list), e.g. ["--width", "0.5"]',
  ),
  device: z.enum(["auto", "cpu", "cuda"]).default("auto").describe(
    "Trainer device: cuda when available (auto), or forced",
  ),
  launcher: z.enum(LAUNCHERS).default("local").describe(
    "local: trainer child processes here; k8s / systemd: write job / unit definitions for " +
      "multi-host runs into the training prefix",
  ),
  masterPort: z.int().min(0).max(65535).default(0).describe(
    "torch.distributed rendezvous port (0 = a free port locally, 29500 for k8s / systemd)",
  ),
  masterAddr: z.string().min(1).optional().describe(
    "systemd: host name of rank 0 (unset = this host); k8s derives it from the headless service",
  ),
  promotionThreshold: z.number().min(0).max(1).default(0.5).describe(
    "Validation mAP@0.5 a candidate must reach to be promoted",
  ),
  approvedAlias: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,254}$/, {
    error: "expected an alias name (letters, digits, _ and -, not starting with a digit)",
  }).refine((v) => v !== CANDIDATE_ALIAS && !/^v\d+$/i.test(v), {
    error: `expected a name other than "${CANDIDATE_ALIAS}" and other than v<number>`,
  }).default("champion").describe("Alias a promoted version gets (the one inference serves)"),
  maxMinutes: z.number().positive().max(100_000).optional().describe(
    "Wall-time budget of the training loop in minutes (the schedule anneals inside it)",
  ),
  k8sNamespace: z.string().regex(DNS_LABEL, { error: "expected a DNS label" }).default(
    "default",
  ).describe("k8s: namespace of the Job and Service"),
  k8sImage: z.string().min(1).default(DEFAULT_IMAGE).describe(
    "k8s: container image with sluice-train and the trainer (the release's image by default)",
  ),
  k8sStagingStorageClass: z.string().regex(DNS_LABEL, { error: "expected a DNS label" }).optional()
    .describe(
      "k8s: give each rank an ephemeral volume of this StorageClass instead of the node's " +
        "/mnt/nvme hostPath (OpenShift's restricted SCC refuses hostPath)",
    ),
  k8sStagingSize: z.string().regex(/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/, {
    error: "expected a Kubernetes quantity like 100Gi",
  }).default("100Gi").describe("k8s: size of each rank's ephemeral staging volume"),
  gpusPerNode: z.int().min(0).max(16).default(0).describe(
    "k8s: nvidia.com/gpu per pod (0 = CPU)",
  ),
  binPath: z.string().min(1).default("/usr/local/bin/sluice-train").describe(
    "k8s / systemd: path of the sluice-train binary on the nodes",
  ),
  envFile: z.string().min(1).default("/etc/sluice/sluice.env").describe(
    "systemd: the shared environment file (manifest, stores, MLflow settings) on every host",
  ),
  systemdUser: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/i, {
    error: "expected a user name like sluice",
  }).default("sluice").describe(
    "systemd: the user the trainer units run as (root only when set to root)",
  ),
  ...RETRAIN_POLICY_SETTINGS,
});

/** What the section parses to. */
export type TrainSettings = z.output<typeof TrainSettingsSchema>;
/** What the section accepts (defaults may be left out). */
export type TrainSettingsInput = z.input<typeof TrainSettingsSchema>;
/** The whole configuration the train stage runs with. */
export type TrainConfig = StageConfig<typeof TrainSettingsSchema>;
