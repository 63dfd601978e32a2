/**
 * The settings every stage shares, as zod schemas with defaults that run everything on one
 * machine under `<cwd>/.sluice/` when nothing is configured. Stage-specific sections live with
 * their stage and are passed to `loadConfig` as `stageSchema`.
 *
 * Defaults depend on where and as what the process runs (cwd, stage, host, pid), so the schema is
 * built from a {@link DefaultsContext}.
 *
 * @example
 * ```ts
 * const schema = sharedSchema({ cwd: Deno.cwd(), stage: "ingest", hostname: "h1", pid: 42 });
 * const cfg = schema.parse({}); // every default
 * cfg.manifest.url; // "sqlite:///.../.sluice/manifest.db"
 * ```
 * @module
 */
import { z } from "zod";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { secret } from "./secret.ts";

/** The four pipeline stages. */
export const STAGES = ["ingest", "normalize", "train", "infer"] as const;
/** One of {@link STAGES}. */
export type StageName = typeof STAGES[number];

/** Default HTTP port (health, readiness, metrics, webhooks) of each stage. */
export const DEFAULT_HTTP_PORTS: Readonly<Record<StageName, number>> = {
  ingest: 9101,
  normalize: 9102,
  train: 9103,
  infer: 9104,
};

/** What the defaults are computed from. */
export interface DefaultsContext {
  /** Absolute directory that `./.sluice/` and relative paths are resolved against. */
  cwd: string;
  stage: StageName;
  hostname: string;
  pid: number;
}

/** Log levels, lowest first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** Log formats: `auto` is pretty on a terminal, JSON otherwise. */
export const LOG_FORMATS = ["auto", "json", "pretty"] as const;

const SUFFIX = /^\.[a-z0-9]+$/;
const WORKER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
// RFC 1035-ish bucket names, as S3 accepts them for path-style and virtual-hosted access.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const SCHEME = /^([a-z][a-z0-9+.-]*):/i;

/** A directory path; relative paths are resolved against `cwd`. */
function dirPath(cwd: string) {
  return z.string().min(1, { error: "expected a non-empty directory path" }).transform((p) =>
    resolve(cwd, p)
  );
}

/**
 * An object store location: `file:///abs/dir`, `s3://bucket[/prefix]`, or a directory path
 * (normalised to a `file://` URL).
 */
function storeUrl(cwd: string) {
  const expected = "expected file:///absolute/dir, s3://bucket[/prefix] or a directory path";
  return z.string().min(1, { error: expected }).transform((v, ctx) => {
    const scheme = SCHEME.exec(v)?.[1]?.toLowerCase();
    if (scheme === undefined || /^[a-z]:[\\/]/i.test(v)) return pathToFileURL(resolve(cwd, v)).href;
    if (scheme === "s3") {
      const m = /^s3:\/\/([^/]+)(\/.*)?$/i.exec(v);
      if (!m || !BUCKET.test(m[1])) {
        ctx.addIssue({
          code: "custom",
          input: v,
          message: "expected s3://bucket[/prefix] with a valid bucket name (3-63 of a-z 0-9 . -)",
        });
        return z.NEVER;
      }
      return v.replace(/\/+$/, "");
    }
    if (scheme === "file") {
      try {
        return pathToFileURL(fileURLToPath(v)).href;
      } catch {
        ctx.addIssue({ code: "custom", input: v, message: "expected file:///absolute/dir" });
        return z.NEVER;
      }
    }
    ctx.addIssue({ code: "custom", input: v, message: expected });
    return z.NEVER;
  });
}

/**
 * A manifest location: `sqlite:///abs.db`, `sqlite:relative.db` (resolved against `cwd`),
 * `sqlite::memory:`, `postgres://…` / `postgresql://…`, or a plain file path (SQLite).
 */
function manifestUrl(cwd: string) {
  const expected =
    "expected sqlite:///path/to.db, sqlite::memory:, postgres://user@host/db or a .db file path";
  return z.string().min(1, { error: expected }).transform((v, ctx) => {
    const scheme = SCHEME.exec(v)?.[1]?.toLowerCase();
    if (v === "sqlite::memory:") return v;
    if (scheme === "sqlite") {
      // As the manifest's own parser reads them: sqlite:///abs, sqlite:rel (against cwd);
      // sqlite://host/... names a host, which SQLite cannot use.
      const rest = v.slice("sqlite:".length);
      const abs = rest.startsWith("///") ? rest.slice(2) : rest.startsWith("//") ? "" : rest;
      let path: string;
      try {
        path = decodeURIComponent(abs);
      } catch {
        path = "";
      }
      if (path.length === 0) {
        ctx.addIssue({ code: "custom", input: v, message: expected });
        return z.NEVER;
      }
      return sqliteUrl(resolve(cwd, path));
    }
    if (scheme === "postgres" || scheme === "postgresql") {
      if (!URL.canParse(v) || new URL(v).hostname === "") {
        ctx.addIssue({
          code: "custom",
          input: v,
          message: "expected postgres://user@host[:port]/db",
        });
        return z.NEVER;
      }
      return v;
    }
    if (scheme === undefined) return sqliteUrl(resolve(cwd, v));
    ctx.addIssue({ code: "custom", input: v, message: expected });
    return z.NEVER;
  });
}

/** `sqlite://` + the absolute path, percent-encoded like a file URL (the manifest decodes it). */
function sqliteUrl(absPath: string): string {
  return "sqlite:" + pathToFileURL(absPath).href.slice("file:".length);
}

/** An absolute http(s) URL. */
function httpUrl(what: string) {
  const expected = `expected an http:// or https:// URL of ${what}`;
  return z.string().refine((v) => {
    if (!URL.canParse(v)) return false;
    const u = new URL(v);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
  }, { error: expected });
}

function positiveInt() {
  return z.int({ error: "expected an integer" }).min(1, { error: "expected an integer >= 1" });
}

function nonNegativeInt() {
  return z.int({ error: "expected an integer" }).min(0, { error: "expected an integer >= 0" });
}

/** The credential fields of the `s3` section, which must be given together. */
interface S3Credentials {
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
}

/**
 * Refuses half a credential: a key id without its secret (or the reverse), or a session token
 * without both. Each problem names the missing field, so the error says which setting to add.
 */
function withCredentialPairs<T extends z.ZodType<S3Credentials>>(section: T): T {
  return section.superRefine((v, ctx) => {
    const missing = (field: keyof S3Credentials, wanted: string) =>
      ctx.addIssue({
        code: "custom",
        path: [field],
        input: v[field],
        message: `expected ${wanted} (or no credentials at all, for the AWS SDK's default ` +
          "credential chain)",
      });
    if (v.accessKeyId === undefined && v.secretAccessKey !== undefined) {
      missing("accessKeyId", "s3.accessKeyId to be set with s3.secretAccessKey");
    } else if (v.accessKeyId !== undefined && v.secretAccessKey === undefined) {
      missing("secretAccessKey", "s3.secretAccessKey to be set with s3.accessKeyId");
    } else if (v.accessKeyId === undefined && v.sessionToken !== undefined) {
      missing(
        "accessKeyId",
        "s3.accessKeyId and s3.secretAccessKey to be set with s3.sessionToken",
      );
    }
  });
}

/**
 * The `worker` section's fields: identity, claims, leases, queue batching, shutdown, retention.
 *
 * @example
 * ```ts
 * z.strictObject(workerShape({ cwd: "/srv", stage: "ingest", hostname: "h", pid: 1 })).parse({}).id; // "h-1"
 * ```
 */
function workerShape(ctx: DefaultsContext) {
  return {
    id: z.string().regex(WORKER_ID, {
      error: "expected 1-128 of A-Z a-z 0-9 . _ - (it names directories), starting alphanumeric",
    }).default(`${ctx.hostname}-${ctx.pid}`).describe(
      "Worker identity: lease owner and staging directory name",
    ),
    concurrency: positiveInt().default(2).describe("Items processed at once"),
    batchSize: positiveInt().default(8).describe("Items claimed per claim"),
    leaseMs: positiveInt().default(60_000).describe("Lease length (ms); renewed while working"),
    maxAttempts: positiveInt().default(5).describe("Attempts before an item is marked failed"),
    idlePollMs: positiveInt().default(1_000).describe("Wait (ms) between claims when idle"),
    prefetch: nonNegativeInt().optional().describe(
      "Claims held ahead of the busy slots (unset = concurrency; 0 = claim only for free slots)",
    ),
    completionGroup: positiveInt().max(10_000, { error: "expected an integer <= 10000" })
      .optional().describe(
        "Most completions recorded in one transaction (unset = min(64, concurrency); " +
          "1 = one transaction per item)",
      ),
    completionDelayMs: nonNegativeInt().max(10_000, { error: "expected an integer <= 10000" })
      .default(10).describe("Longest a finished item waits for its completion group (ms)"),
    graceMs: nonNegativeInt().max(3_600_000, { error: "expected an integer <= 3600000" })
      .optional().describe(
        "On SIGTERM, how long in-flight items may finish before they are released (ms; unset = " +
          "the stage's default: 20000, train 30000). Keep it 10 s under the supervisor's stop " +
          "timeout (90 s in the shipped systemd units and Kubernetes pods)",
      ),
    shutdownCallMs: positiveInt().max(60_000, { error: "expected an integer <= 60000" })
      .default(3_000).describe(
        "On SIGTERM, how long each group of calls to the manifest (releases, last completions, " +
          "last renewal) may wait when the database does not answer (ms)",
      ),
    doneRetentionMs: positiveInt().optional().describe(
      "Delete the queue's done work rows older than this (ms), in batches while it runs " +
        "(unset = keep them)",
    ),
  };
}

/**
 * Builds the schema of the shared sections with defaults for `ctx`.
 *
 * @example
 * ```ts
 * const s = sharedSchema({ cwd: "/srv", stage: "infer", hostname: "h", pid: 1 });
 * s.parse({}).http.port; // 9104
 * ```
 */
export function sharedSchema(ctx: DefaultsContext) {
  const cwd = resolve(ctx.cwd);
  const home = resolve(cwd, ".sluice");
  // Every field has a default, so an absent section parses as {}; the cast is needed only because
  // TypeScript cannot see that through the generic shape.
  const section = <T extends z.ZodRawShape>(shape: T) =>
    z.strictObject(shape).prefault({} as z.input<z.ZodObject<T, z.core.$strict>>);
  return z.strictObject({
    objectStore: section({
      url: storeUrl(cwd).default(pathToFileURL(resolve(home, "objects")).href).describe(
        "Dataset object store: file:///dir, s3://bucket/prefix, or a directory path",
      ),
    }),
    source: section({
      url: storeUrl(cwd).default(pathToFileURL(resolve(home, "raw")).href).describe(
        "Raw bucket that ingest reads: file:///dir, s3://bucket/prefix, or a directory path",
      ),
      suffixes: z.array(
        z.string().toLowerCase().regex(SUFFIX, { error: 'expected a suffix like ".jpg"' }),
      ).min(1, { error: "expected at least one suffix" })
        .default([".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"])
        .describe("File name suffixes ingest accepts (JSON array, case-insensitive)"),
    }),
    manifest: section({
      url: manifestUrl(cwd).default(sqliteUrl(resolve(home, "manifest.db"))).describe(
        "Manifest and work queue: sqlite:///path.db or postgres://user@host/db",
      ),
    }),
    s3: withCredentialPairs(section({
      endpoint: httpUrl("an S3-compatible endpoint").optional().describe(
        "S3 endpoint for RustFS/MinIO/emulators (unset = AWS); also AWS_ENDPOINT_URL_S3",
      ),
      region: z.string().min(1, { error: "expected a region name" }).default("us-east-1")
        .describe("S3 region; also AWS_REGION"),
      // No fixed default: the object store turns it on with a custom endpoint (RustFS, MinIO
      // and emulators need it) and leaves it off for AWS.
      forcePathStyle: z.boolean().optional().describe(
        "Path-style addressing (http://host/bucket/key); unset = on when endpoint is set, else off",
      ),
      accessKeyId: z.string().min(1).optional().describe(
        "Access key id (unset = the AWS SDK's default credential chain)",
      ),
      secretAccessKey: secret(z.string().min(1)).optional().describe("Secret access key"),
      sessionToken: secret(z.string().min(1)).optional().describe("Session token"),
      partSizeMb: z.int({ error: "expected an integer" })
        .min(5, { error: "expected an integer >= 5 (S3's smallest multipart part)" })
        .max(5120, { error: "expected an integer <= 5120 (S3's largest part)" })
        .default(8).describe("Multipart upload part size in MiB"),
      maxAttempts: positiveInt().default(5).describe("Attempts per S3 call on retryable errors"),
    })),
    staging: section({
      root: dirPath(cwd).default("/mnt/nvme/sluice").describe(
        "Local staging directory, ideally on NVMe",
      ),
      fallbackRoot: dirPath(cwd).default(resolve(home, "staging")).describe(
        "Staging directory used when root is unavailable (and requireNvme is false)",
      ),
      requireNvme: z.boolean().default(false).describe(
        "Refuse to start unless root is on an NVMe device",
      ),
      minFreeMb: nonNegativeInt().default(512).describe(
        "Free space (MiB) to keep on the staging filesystem before claiming more work",
      ),
      leaseTimeoutMs: positiveInt().default(600_000).describe(
        "Age (ms) after which a staging directory of this worker is swept at start-up",
      ),
    }),
    runtime: section({
      cacheDir: dirPath(cwd).optional().describe(
        "Where a binary materialises its native libraries and trainer on first start (unset = " +
          "<staging.root>/runtime-cache when that exists, else $XDG_CACHE_HOME/sluice)",
      ),
    }),
    worker: section(workerShape(ctx)),
    http: section({
      hostname: z.string().min(1, { error: "expected a hostname or IP address" })
        .default("127.0.0.1").describe("Address the HTTP server binds (0.0.0.0 in deployments)"),
      port: z.int({ error: "expected an integer" })
        .min(0, { error: "expected a port 0-65535" })
        .max(65535, { error: "expected a port 0-65535" })
        .default(DEFAULT_HTTP_PORTS[ctx.stage])
        .describe("HTTP port for /healthz, /readyz, /metrics (0 = no HTTP server)"),
    }),
    log: section({
      level: z.enum(LOG_LEVELS).default("info").describe("Lowest level logged"),
      format: z.enum(LOG_FORMATS).default("auto").describe(
        "json, pretty, or auto (pretty on a terminal)",
      ),
    }),
    mlflow: section({
      trackingUri: z.string().refine((v) => {
        if (!URL.canParse(v)) return false;
        const p = new URL(v).protocol;
        return p === "http:" || p === "https:" || p === "file:";
      }, { error: "expected an http(s):// URL of an MLflow server or a file:/// URL" })
        .optional().describe(
          "MLflow tracking server (unset = embedded file store in localDir); also MLFLOW_TRACKING_URI",
        ),
      localDir: dirPath(cwd).default(resolve(home, "mlruns")).describe(
        "Embedded MLflow file store used when trackingUri is unset",
      ),
      token: secret(z.string().min(1)).optional().describe(
        "Bearer token; also MLFLOW_TRACKING_TOKEN",
      ),
      username: z.string().min(1).optional().describe(
        "Basic-auth user; also MLFLOW_TRACKING_USERNAME",
      ),
      password: secret(z.string().min(1)).optional().describe(
        "Basic-auth password; also MLFLOW_TRACKING_PASSWORD",
      ),
      experiment: z.string().min(1).default("sluice").describe("Experiment name"),
      modelName: z.string().min(1).default("sluice-detector").describe("Registered model name"),
      retryBudgetSeconds: z.number().nonnegative().default(120).describe(
        "Seconds a failing MLflow call keeps being retried (rides through a server restart)",
      ),
      staleRunMinutes: z.number().positive().default(120).describe(
        "A RUNNING tracker run with no activity for this long is ended as KILLED",
      ),
    }),
  });
}

/** The shared schema's type (for any context). */
export type SharedSchema = ReturnType<typeof sharedSchema>;
/** The parsed shared configuration. */
export type SharedConfig = z.output<SharedSchema>;

/**
 * Standard environment variables honoured besides `SLUICE_*`, lowest precedence first: a
 * `SLUICE_*` variable for the same field wins over these.
 */
export const STANDARD_ENV: ReadonlyArray<{ env: string; path: string }> = [
  { env: "AWS_ENDPOINT_URL", path: "s3.endpoint" },
  { env: "AWS_ENDPOINT_URL_S3", path: "s3.endpoint" },
  { env: "AWS_REGION", path: "s3.region" },
  { env: "MLFLOW_TRACKING_URI", path: "mlflow.trackingUri" },
  { env: "MLFLOW_TRACKING_TOKEN", path: "mlflow.token" },
  { env: "MLFLOW_TRACKING_USERNAME", path: "mlflow.username" },
  { env: "MLFLOW_TRACKING_PASSWORD", path: "mlflow.password" },
];

/** Whether a value is one of {@link STAGES}. */
export function isStageName(v: unknown): v is StageName {
  return typeof v === "string" && (STAGES as readonly string[]).includes(v);
}
