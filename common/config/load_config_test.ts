import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError } from "./errors.ts";
import { REDACTED, secret } from "./secret.ts";
import { loadConfig, loadConfigDetailed } from "./load_config.ts";

const IngestSettings = z.object({
  prefix: z.string().min(1).default("images/").describe("Key prefix for dataset objects"),
  variants: z.array(z.object({ name: z.string(), width: z.int().min(1) }).strict()).default([]),
  webhookToken: secret(z.string().min(8)).optional(),
  dryRun: z.boolean().default(false),
});

const base = { stage: "ingest" as const, stageSchema: IngestSettings, hostname: "host1", pid: 7 };

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-config-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `fn`, expecting a ConfigError, and returns it. */
async function configError(fn: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ConfigError) {
      assert.equal(err.code, "invalid_config");
      return err;
    }
    throw err;
  }
  throw new Error("expected a ConfigError, none was thrown");
}

Deno.test("loadConfig defaults", async (t) => {
  await withTempDir(async (cwd) => {
    const cfg = await loadConfig({ ...base, cwd, env: {} });

    await t.step("everything lives under <cwd>/.sluice", () => {
      assert.equal(cfg.objectStore.url, `file://${cwd}/.sluice/objects`);
      assert.equal(cfg.source.url, `file://${cwd}/.sluice/raw`);
      assert.equal(cfg.manifest.url, `sqlite://${cwd}/.sluice/manifest.db`);
      assert.ok(cfg.manifest.url.startsWith("sqlite:///"));
      assert.equal(cfg.staging.fallbackRoot, `${cwd}/.sluice/staging`);
      assert.equal(cfg.mlflow.localDir, `${cwd}/.sluice/mlruns`);
    });

    await t.step("shared defaults", () => {
      assert.deepEqual(cfg.source.suffixes, [".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"]);
      // forcePathStyle stays unset: the object store decides from the endpoint.
      assert.deepEqual(cfg.s3, {
        region: "us-east-1",
        partSizeMb: 8,
        maxAttempts: 5,
      });
      assert.deepEqual(cfg.staging, {
        root: "/mnt/nvme/sluice",
        fallbackRoot: `${cwd}/.sluice/staging`,
        requireNvme: false,
        minFreeMb: 512,
        leaseTimeoutMs: 600000,
      });
      assert.deepEqual(cfg.worker, {
        id: "host1-7",
        concurrency: 2,
        batchSize: 8,
        leaseMs: 60000,
        maxAttempts: 5,
        idlePollMs: 1000,
        completionDelayMs: 10,
        shutdownCallMs: 3000,
      });
      assert.deepEqual(cfg.http, { hostname: "127.0.0.1", port: 9101 });
      assert.deepEqual(cfg.log, { level: "info", format: "auto" });
      assert.equal(cfg.mlflow.trackingUri, undefined);
      assert.equal(cfg.mlflow.experiment, "sluice");
      assert.equal(cfg.mlflow.modelName, "sluice-detector");
    });

    await t.step("the result is typed from the schemas", () => {
      const concurrency: number = cfg.worker.concurrency;
      const level: "debug" | "info" | "warn" | "error" = cfg.log.level;
      const prefix: string = cfg.stage.prefix;
      const token: string | undefined = cfg.stage.webhookToken;
      assert.deepEqual([concurrency, level, prefix, token], [2, "info", "images/", undefined]);
    });

    await t.step("stage section is parsed with its own defaults", () => {
      assert.deepEqual(cfg.stage, { prefix: "images/", variants: [], dryRun: false });
    });

    await t.step("http port default depends on the stage", async () => {
      const ports: Record<string, number> = {};
      for (const stage of ["ingest", "normalize", "train", "infer"] as const) {
        const c = await loadConfig({ stage, stageSchema: z.object({}), cwd, env: {} });
        ports[stage] = c.http.port;
      }
      assert.deepEqual(ports, { ingest: 9101, normalize: 9102, train: 9103, infer: 9104 });
    });
  });
});

Deno.test("loadConfig precedence: default < file < env < flag", async (t) => {
  await withTempDir(async (cwd) => {
    const file = join(cwd, "sluice.json");
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        worker: { concurrency: 3, batchSize: 16, leaseMs: 5000 },
        http: { port: 8000 },
        ingest: { prefix: "from-file/" },
        normalize: { whatever: true },
      }),
    );
    const env = {
      SLUICE_CONFIG: file,
      SLUICE_WORKER_BATCH_SIZE: "32",
      SLUICE_HTTP_PORT: "8001",
      SLUICE_INGEST_PREFIX: "from-env/",
    };
    const argv = ["--http-port", "8002", "--ingest-prefix=from-flag/"];
    const { config, sources, configFile } = await loadConfigDetailed({ ...base, cwd, env, argv });

    await t.step("each layer overrides the one below", () => {
      assert.equal(config.worker.idlePollMs, 1000); // default
      assert.equal(config.worker.leaseMs, 5000); // file only
      assert.equal(config.worker.concurrency, 3); // file only
      assert.equal(config.worker.batchSize, 32); // env over file
      assert.equal(config.http.port, 8002); // flag over env over file
      assert.equal(config.stage.prefix, "from-flag/");
    });

    await t.step("sources name where each value came from", () => {
      assert.equal(configFile, file);
      assert.equal(sources["worker.leaseMs"], `file ${file}`);
      assert.equal(sources["worker.batchSize"], "env SLUICE_WORKER_BATCH_SIZE");
      assert.equal(sources["http.port"], "flag --http-port");
      assert.equal(sources["worker.idlePollMs"], undefined);
    });

    await t.step("--config wins over SLUICE_CONFIG, relative to cwd", async () => {
      await Deno.writeTextFile(join(cwd, "other.json"), JSON.stringify({ worker: { leaseMs: 7 } }));
      const c = await loadConfig({ ...base, cwd, env, argv: ["--config", "other.json"] });
      assert.equal(c.worker.leaseMs, 7);
      assert.equal(c.worker.batchSize, 32);
    });
  });
});

Deno.test("loadConfig environment parsing", async (t) => {
  await withTempDir(async (cwd) => {
    await t.step("numbers, booleans and JSON lists", async () => {
      const c = await loadConfig({
        ...base,
        cwd,
        env: {
          SLUICE_STAGING_MIN_FREE_MB: " 1024 ",
          SLUICE_STAGING_REQUIRE_NVME: "1",
          SLUICE_S3_FORCE_PATH_STYLE: "TRUE",
          SLUICE_INGEST_DRY_RUN: "0",
          SLUICE_SOURCE_SUFFIXES: '[".JPG", ".heic"]',
          SLUICE_INGEST_VARIANTS: '[{"name":"thumb","width":320}]',
          SLUICE_OBJECT_STORE_URL: "s3://dataset-bucket/prefix/",
          SLUICE_MANIFEST_URL: "postgres://app@db.internal:5432/sluice",
          SLUICE_STAGING_ROOT: "relative/staging",
        },
      });
      assert.equal(c.staging.minFreeMb, 1024);
      assert.equal(c.staging.requireNvme, true);
      assert.equal(c.s3.forcePathStyle, true);
      assert.equal(c.stage.dryRun, false);
      assert.deepEqual(c.source.suffixes, [".jpg", ".heic"]);
      assert.deepEqual(c.stage.variants, [{ name: "thumb", width: 320 }]);
      assert.equal(c.objectStore.url, "s3://dataset-bucket/prefix");
      assert.equal(c.manifest.url, "postgres://app@db.internal:5432/sluice");
      assert.equal(c.staging.root, join(cwd, "relative/staging"));
    });

    await t.step("relative store and manifest paths become absolute URLs", async () => {
      const c = await loadConfig({
        ...base,
        cwd,
        env: { SLUICE_OBJECT_STORE_URL: "data/objects", SLUICE_MANIFEST_URL: "sqlite:m.db" },
        argv: ["--source-url", "file:///srv/raw"],
      });
      assert.equal(c.objectStore.url, `file://${cwd}/data/objects`);
      assert.equal(c.manifest.url, `sqlite://${cwd}/m.db`);
      assert.equal(c.source.url, "file:///srv/raw");
    });

    await t.step("empty values count as unset", async () => {
      const c = await loadConfig({
        ...base,
        cwd,
        env: { SLUICE_WORKER_CONCURRENCY: "", SLUICE_S3_ENDPOINT: "" },
      });
      assert.equal(c.worker.concurrency, 2);
      assert.equal(c.s3.endpoint, undefined);
    });

    await t.step("standard MLFLOW_* and AWS_* variables; SLUICE_* wins", async () => {
      const env = {
        MLFLOW_TRACKING_URI: "http://mlflow:5000",
        MLFLOW_TRACKING_TOKEN: "tok",
        MLFLOW_TRACKING_USERNAME: "ann",
        MLFLOW_TRACKING_PASSWORD: "pw",
        AWS_ENDPOINT_URL: "http://generic:1",
        AWS_ENDPOINT_URL_S3: "http://rustfs:9000",
        AWS_REGION: "eu-west-1",
      };
      const c = await loadConfig({ ...base, cwd, env });
      assert.equal(c.mlflow.trackingUri, "http://mlflow:5000");
      assert.equal(c.mlflow.token, "tok");
      assert.equal(c.mlflow.username, "ann");
      assert.equal(c.mlflow.password, "pw");
      assert.equal(c.s3.endpoint, "http://rustfs:9000");
      assert.equal(c.s3.region, "eu-west-1");
      const d = await loadConfig({
        ...base,
        cwd,
        env: { ...env, SLUICE_S3_REGION: "ap-south-1", SLUICE_MLFLOW_TRACKING_URI: "https://m" },
      });
      assert.equal(d.s3.region, "ap-south-1");
      assert.equal(d.mlflow.trackingUri, "https://m");
    });

    await t.step("unknown SLUICE_* variables warn with a suggestion", async () => {
      const warnings: string[] = [];
      await loadConfig({
        ...base,
        cwd,
        env: {
          SLUICE_WORKER_CONCURENCY: "4",
          SLUICE_TOTALLY_UNRELATED: "x",
          SLUICE_NORMALIZE_VARIANTS: "[]", // another stage's section: expected in shared envs
          SLUICE_CONFIG: "",
          HOME: "/root",
        },
        onWarning: (m) => warnings.push(m),
      });
      assert.equal(warnings.length, 2, warnings.join("\n"));
      assert.match(warnings[0], /SLUICE_WORKER_CONCURENCY.*did you mean SLUICE_WORKER_CONCURRENCY/);
      assert.match(warnings[1], /unknown environment variable SLUICE_TOTALLY_UNRELATED/);
    });
  });
});

Deno.test("loadConfig errors", async (t) => {
  await withTempDir(async (cwd) => {
    await t.step("bad number names field, variable, value and expectation", async () => {
      const err = await configError(() =>
        loadConfig({ ...base, cwd, env: { SLUICE_WORKER_CONCURRENCY: "four" } })
      );
      assert.equal(err.issues.length, 1);
      assert.deepEqual(err.issues[0], {
        path: "worker.concurrency",
        source: "env SLUICE_WORKER_CONCURRENCY",
        found: '"four"',
        expected: "expected a number",
      });
      assert.match(
        err.message,
        /worker\.concurrency: expected a number, found "four" \(from env SLUICE_WORKER_CONCURRENCY\)/,
      );
    });

    await t.step("number out of range and non-integer", async () => {
      const err = await configError(() =>
        loadConfig({
          ...base,
          cwd,
          env: { SLUICE_WORKER_BATCH_SIZE: "0", SLUICE_S3_PART_SIZE_MB: "2.5" },
        })
      );
      const byPath = Object.fromEntries(err.issues.map((i) => [i.path, i]));
      assert.equal(byPath["worker.batchSize"].expected, "expected an integer >= 1");
      assert.equal(byPath["worker.batchSize"].found, "0");
      assert.equal(byPath["s3.partSizeMb"].expected, "expected an integer");
    });

    await t.step("half a credential names the missing field; secrets stay hidden", async () => {
      const cases: [Record<string, string>, string, string][] = [
        [{ SLUICE_S3_ACCESS_KEY_ID: "AKIA1" }, "s3.secretAccessKey", "SLUICE_S3_SECRET_ACCESS_KEY"],
        [{ SLUICE_S3_SECRET_ACCESS_KEY: "hunter2" }, "s3.accessKeyId", "SLUICE_S3_ACCESS_KEY_ID"],
        [{ SLUICE_S3_SESSION_TOKEN: "tok-xyz" }, "s3.accessKeyId", "SLUICE_S3_ACCESS_KEY_ID"],
      ];
      for (const [env, path, variable] of cases) {
        const err = await configError(() => loadConfig({ ...base, cwd, env }));
        assert.equal(err.issues.length, 1, err.message);
        assert.equal(err.issues[0].path, path);
        assert.match(err.issues[0].expected, new RegExp(`expected ${path.replace(".", "\\.")}`));
        assert.match(err.issues[0].source, new RegExp(`not set: use ${variable}`));
        assert.doesNotMatch(err.message, /hunter2|tok-xyz/);
      }
      const ok = await loadConfig({
        ...base,
        cwd,
        env: {
          SLUICE_S3_ACCESS_KEY_ID: "AKIA1",
          SLUICE_S3_SECRET_ACCESS_KEY: "hunter2",
          SLUICE_S3_SESSION_TOKEN: "tok-xyz",
        },
      });
      assert.equal(ok.s3.sessionToken, "tok-xyz");
    });

    await t.step("bad boolean", async () => {
      const err = await configError(() =>
        loadConfig({ ...base, cwd, argv: ["--staging-require-nvme=maybe"], env: {} })
      );
      assert.equal(err.issues[0].path, "staging.requireNvme");
      assert.equal(err.issues[0].source, "flag --staging-require-nvme");
      assert.equal(err.issues[0].expected, "expected true, false, 1 or 0");
    });

    await t.step("bad enum lists the allowed values", async () => {
      const err = await configError(() =>
        loadConfig({ ...base, cwd, env: { SLUICE_LOG_LEVEL: "loud" } })
      );
      assert.equal(err.issues[0].path, "log.level");
      assert.equal(err.issues[0].expected, 'expected one of "debug", "info", "warn", "error"');
      assert.equal(err.issues[0].found, '"loud"');
    });

    await t.step("bad URLs", async () => {
      const err = await configError(() =>
        loadConfig({
          ...base,
          cwd,
          env: {
            SLUICE_S3_ENDPOINT: "ftp://x",
            SLUICE_MANIFEST_URL: "mysql://u:hunter2@h/db",
            SLUICE_OBJECT_STORE_URL: "s3://UPPER",
            MLFLOW_TRACKING_URI: "not a url",
          },
        })
      );
      const paths = err.issues.map((i) => i.path).sort();
      assert.deepEqual(paths, [
        "manifest.url",
        "mlflow.trackingUri",
        "objectStore.url",
        "s3.endpoint",
      ]);
      const manifest = err.issues.find((i) => i.path === "manifest.url")!;
      assert.match(manifest.expected, /sqlite:\/\/\/path\/to\.db/);
      // The password inside a URL never reaches a message.
      assert.equal(manifest.found, `"mysql://u:${REDACTED}@h/db"`);
      assert.ok(!err.message.includes("hunter2"));
      const mlflow = err.issues.find((i) => i.path === "mlflow.trackingUri")!;
      assert.equal(mlflow.source, "env MLFLOW_TRACKING_URI");
    });

    await t.step("unknown file keys and sections are errors", async () => {
      const file = join(cwd, "typo.json");
      await Deno.writeTextFile(
        file,
        JSON.stringify({
          worker: { concurency: 4 },
          objectstore: { url: "x" },
          ingest: { prefx: "a/" },
          train: { epochs: 3 }, // another stage's section is allowed
        }),
      );
      const err = await configError(() =>
        loadConfig({ ...base, cwd, env: {}, argv: ["--config", file] })
      );
      assert.deepEqual(err.issues.map((i) => i.path), [
        "worker.concurency",
        "objectstore",
        "ingest.prefx",
      ]);
      for (const i of err.issues) assert.equal(i.source, `file ${file}`);
      assert.match(err.issues[0].expected, /did you mean "concurrency"/);
      assert.match(err.issues[1].expected, /did you mean "objectStore"/);
      assert.match(err.issues[2].expected, /did you mean "prefix"/);
    });

    await t.step("wrong types in the file", async () => {
      const file = join(cwd, "types.json");
      await Deno.writeTextFile(
        file,
        JSON.stringify({ worker: { concurrency: "4" }, http: [], source: { suffixes: "jpg" } }),
      );
      const err = await configError(() =>
        loadConfig({ ...base, cwd, env: { SLUICE_CONFIG: file } })
      );
      const byPath = Object.fromEntries(err.issues.map((i) => [i.path, i]));
      assert.equal(byPath["worker.concurrency"].expected, "expected an integer");
      assert.equal(byPath["worker.concurrency"].found, '"4"');
      assert.equal(byPath["http"].expected, "expected an object of http settings");
      assert.equal(byPath["source.suffixes"].expected, "expected an array");
    });

    await t.step("missing and malformed config files", async () => {
      const missing = await configError(() =>
        loadConfig({ ...base, cwd, env: { SLUICE_CONFIG: "nope.json" } })
      );
      assert.equal(missing.issues[0].path, "config");
      assert.equal(missing.issues[0].source, "env SLUICE_CONFIG");
      assert.match(missing.issues[0].found!, /nope\.json/);
      const bad = join(cwd, "bad.json");
      await Deno.writeTextFile(bad, "{ worker: ");
      const malformed = await configError(() =>
        loadConfig({ ...base, cwd, argv: ["--config", bad], env: {} })
      );
      assert.match(malformed.issues[0].found!, /^invalid JSON/);
      assert.equal(malformed.issues[0].source, `file ${bad}`);
    });

    await t.step("secrets are redacted in errors", async () => {
      const err = await configError(() =>
        loadConfig({ ...base, cwd, env: { SLUICE_INGEST_WEBHOOK_TOKEN: "short" } })
      );
      assert.equal(err.issues[0].path, "ingest.webhookToken");
      assert.equal(err.issues[0].found, REDACTED);
      assert.equal(err.issues[0].expected, "expected at least 8 characters");
      assert.ok(!err.message.includes("short"));
    });

    await t.step("stage JSON values report nested paths", async () => {
      const err = await configError(() =>
        loadConfig({
          ...base,
          cwd,
          env: { SLUICE_INGEST_VARIANTS: '[{"name":"a","width":0,"height":5}]' },
        })
      );
      const paths = err.issues.map((i) => i.path).sort();
      assert.deepEqual(paths, ["ingest.variants.0.height", "ingest.variants.0.width"]);
      for (const i of err.issues) assert.equal(i.source, "env SLUICE_INGEST_VARIANTS");
      const broken = await configError(() =>
        loadConfig({ ...base, cwd, env: { SLUICE_INGEST_VARIANTS: "[{" } })
      );
      assert.equal(
        broken.issues[0].expected,
        "expected JSON (lists and objects are given as JSON)",
      );
    });

    await t.step("a required stage setting says how to set it", async () => {
      const err = await configError(() =>
        loadConfig({ ...base, stageSchema: z.object({ bucket: z.string() }), cwd, env: {} })
      );
      assert.equal(err.issues[0].path, "ingest.bucket");
      assert.equal(err.issues[0].expected, "expected a string (required)");
      assert.match(err.issues[0].source, /SLUICE_INGEST_BUCKET, --ingest-bucket/);
    });

    await t.step("unknown flags and positionals", async () => {
      const err = await configError(() =>
        loadConfig({
          ...base,
          cwd,
          env: {},
          argv: ["--wroker-concurrency", "3", "--bogus", "--manifest-url"],
        })
      );
      assert.deepEqual(err.issues.map((i) => [i.path, i.found]), [
        ["argv", "--wroker-concurrency"],
        ["argv", '"3"'],
        ["argv", "--bogus"],
        ["manifest.url", undefined],
      ]);
      assert.match(err.issues[0].expected, /did you mean --worker-concurrency\?/);
      assert.match(err.issues[0].expected, /valid flags: .*--config <value>.*--http-port <value>/);
      assert.equal(err.issues[3].expected, "expected a value: --manifest-url <value>");
    });

    await t.step("every problem is listed, not only the first", async () => {
      const err = await configError(() =>
        loadConfig({
          ...base,
          cwd,
          env: {
            SLUICE_WORKER_CONCURRENCY: "x",
            SLUICE_HTTP_PORT: "70000",
            SLUICE_LOG_FORMAT: "xml",
          },
          argv: ["--worker-id", "../escape"],
        })
      );
      assert.equal(err.issues.length, 4);
      assert.match(err.message, /^invalid configuration \(4 problems\):/);
      for (const p of ["worker.concurrency", "http.port", "log.format", "worker.id"]) {
        assert.ok(err.message.includes(`  - ${p}: expected`), `${p} missing from:\n${err.message}`);
      }
    });
  });
});

Deno.test("boolean flags accept --x, --no-x and --x=false", async () => {
  await withTempDir(async (cwd) => {
    const env = { SLUICE_STAGING_REQUIRE_NVME: "true" };
    const on = await loadConfig({ ...base, cwd, env: {}, argv: ["--staging-require-nvme"] });
    const off = await loadConfig({ ...base, cwd, env, argv: ["--no-staging-require-nvme"] });
    const eq = await loadConfig({ ...base, cwd, env, argv: ["--staging-require-nvme=false"] });
    assert.deepEqual(
      [on.staging.requireNvme, off.staging.requireNvme, eq.staging.requireNvme],
      [true, false, false],
    );
  });
});

Deno.test("secrets: flags warn, loaded secrets are hidden everywhere afterwards", async (t) => {
  await t.step("a secret or a URL password given as a flag warns (visible in ps)", async () => {
    const warnings: string[] = [];
    await loadConfig({
      ...base,
      env: {},
      argv: [
        "--ingest-webhook-token",
        "flag-token-123",
        "--manifest-url",
        "postgres://a:FlagPw1@db/x",
      ],
      onWarning: (m) => warnings.push(m),
    });
    assert.equal(warnings.length, 2, warnings.join("\n"));
    assert.match(warnings[0], /--ingest-webhook-token.*ps.*SLUICE_INGEST_WEBHOOK_TOKEN/);
    assert.match(warnings[1], /--manifest-url.*SLUICE_MANIFEST_URL/);
    assert.ok(!warnings.join("").includes("FlagPw1") && !warnings.join("").includes("flag-token"));
  });

  await t.step("the same values from env or a file do not warn", async () => {
    const warnings: string[] = [];
    await loadConfig({
      ...base,
      env: { SLUICE_INGEST_WEBHOOK_TOKEN: "env-token-123" },
      argv: [],
      onWarning: (m) => warnings.push(m),
    });
    assert.deepEqual(warnings, []);
  });

  await t.step("every loaded secret and URL password is redacted from any text", async () => {
    const { redactText } = await import("../redaction/redact_text.ts");
    await loadConfig({
      ...base,
      env: {
        SLUICE_INGEST_WEBHOOK_TOKEN: "env-token-456",
        SLUICE_MANIFEST_URL: "postgres://app:UrlPw-789@db/sluice",
      },
      argv: [],
      onWarning: () => {},
    });
    assert.equal(redactText("got env-token-456 and UrlPw-789"), `got ${REDACTED} and ${REDACTED}`);
  });
});
