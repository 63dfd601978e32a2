import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { SluiceError } from "../errors/mod.ts";
import { formatUsage, parseStageArgs, type StageArgsOptions, type StageFlag } from "./cli.ts";
import { configSections, defaultsContext } from "./load_config.ts";
import { REDACTED, secret } from "./secret.ts";

const InferSettings = z.object({
  modelAlias: z.string().default("champion").describe("Registry alias of the model to serve"),
  threshold: z.number().min(0).max(1).default(0.25).describe("Score threshold"),
  apiKey: secret(z.string()).optional().describe("Label Studio API key"),
});
const ownFlags = {
  once: { type: "boolean", description: "Drain the queue once and exit" },
  label: { type: "string", multiple: true, short: "l", description: "Only these labels" },
} satisfies Record<string, StageFlag>;

class Exited extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

/** Runs parseStageArgs capturing what it prints and how it exits. */
async function run(
  argv: string[],
  extra: Partial<StageArgsOptions<typeof InferSettings, typeof ownFlags>> = {},
) {
  const out: string[] = [];
  const err: string[] = [];
  const cwd = await Deno.makeTempDir({ prefix: "sluice-cli-" });
  try {
    const result = await parseStageArgs(argv, {
      stage: "infer",
      stageSchema: InferSettings,
      usage: "sluice-infer [options]\n\nRuns the approved model on new images.",
      flags: ownFlags,
      cwd,
      env: {},
      hostname: "h",
      pid: 1,
      print: (t) => out.push(t),
      printError: (t) => err.push(t),
      exit: (code) => {
        throw new Exited(code);
      },
      ...extra,
    });
    return { result, status: undefined, out: out.join(""), err: err.join(""), cwd };
  } catch (e) {
    if (e instanceof Exited) {
      return { result: undefined, status: e.status, out: out.join(""), err: err.join(""), cwd };
    }
    throw e;
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

Deno.test("parseStageArgs", async (t) => {
  await t.step("returns the config and the stage's own flags", async () => {
    const r = await run(["--once", "-l", "cat", "--label=dog", "--infer-threshold", "0.5"]);
    assert.equal(r.status, undefined);
    assert.deepEqual(r.result!.flags, { once: true, label: ["cat", "dog"] });
    assert.equal(r.result!.config.stage.threshold, 0.5);
    assert.equal(r.result!.config.http.port, 9104);
    assert.equal(r.result!.sources["infer.threshold"], "flag --infer-threshold");
  });

  await t.step("flags default to false / empty", async () => {
    const r = await run([]);
    assert.deepEqual(r.result!.flags, { once: false, label: [] });
  });

  await t.step("--help prints every flag and variable with default and description", async () => {
    const r = await run(["--help", "--not-a-flag"], { env: { SLUICE_HTTP_PORT: "broken" } });
    assert.equal(r.status, 0);
    const help = r.out;
    assert.match(
      help,
      /^Usage: sluice-infer \[options\]\n\nRuns the approved model on new images\./,
    );
    assert.match(help, /-h, --help +Show this help and exit/);
    assert.match(help, /--config <file> +JSON config file .*SLUICE_CONFIG/);
    assert.match(help, /--print-config +Print the effective configuration/);
    assert.match(help, /--once +Drain the queue once and exit/);
    assert.match(help, /-l, --label <value> +Only these labels \(repeatable\)/);
    const ctx = defaultsContext({ stage: "infer", hostname: "h", pid: 1 });
    const { fields } = configSections(ctx, InferSettings);
    assert.ok(fields.length > 30);
    for (const f of fields) {
      assert.ok(help.includes(`--${f.flag}`), `help lacks --${f.flag}`);
      assert.ok(help.includes(`env ${f.env}`), `help lacks ${f.env}`);
      if (f.description) {
        assert.ok(help.includes(f.description), `help lacks ${f.path} description`);
      }
    }
    assert.match(
      help,
      /--worker-concurrency <number>\n +env SLUICE_WORKER_CONCURRENCY\n +default: 2\n/,
    );
    assert.match(
      help,
      /--log-level <debug\|info\|warn\|error>\n +env SLUICE_LOG_LEVEL\n +default: "info"/,
    );
    assert.match(help, /--staging-require-nvme, --no-staging-require-nvme\n/);
    assert.match(help, /--http-port <number>\n +env SLUICE_HTTP_PORT\n +default: 9104/);
    assert.match(
      help,
      /--infer-model-alias <string>\n +env SLUICE_INFER_MODEL_ALIAS\n +default: "champion"/,
    );
    assert.match(help, /env SLUICE_INFER_API_KEY {2}\(secret\)/);
    assert.match(help, /MLFLOW_TRACKING_URI +→ mlflow\.trackingUri/);
    assert.match(help, /AWS_ENDPOINT_URL_S3 +→ s3\.endpoint/);
  });

  await t.step("--print-config prints the effective config with secrets redacted", async () => {
    const r = await run(["--print-config", "--worker-concurrency", "6"], {
      env: {
        SLUICE_S3_SECRET_ACCESS_KEY: "aws-secret",
        SLUICE_S3_ACCESS_KEY_ID: "AKIAEXAMPLE",
        MLFLOW_TRACKING_PASSWORD: "mlflow-pw",
        SLUICE_INFER_API_KEY: "ls-key",
        SLUICE_MANIFEST_URL: "postgres://app:pg-pw@db/sluice",
      },
    });
    assert.equal(r.status, 0);
    const doc = JSON.parse(r.out);
    assert.equal(doc.worker.concurrency, 6);
    assert.equal(doc.s3.accessKeyId, "AKIAEXAMPLE");
    assert.equal(doc.s3.secretAccessKey, REDACTED);
    assert.equal(doc.mlflow.password, REDACTED);
    assert.equal(doc.infer.apiKey, REDACTED);
    assert.equal(doc.infer.threshold, 0.25);
    assert.equal(doc.manifest.url, `postgres://app:${REDACTED}@db/sluice`);
    assert.equal("sessionToken" in doc.s3, false); // unset secrets stay unset
    for (const s of ["aws-secret", "mlflow-pw", "ls-key", "pg-pw"]) assert.ok(!r.out.includes(s));
  });

  await t.step("invalid settings print every problem and exit 2", async () => {
    const r = await run(["--bogus"], { env: { SLUICE_WORKER_CONCURRENCY: "x" } });
    assert.equal(r.status, 2);
    assert.equal(r.out, "");
    assert.match(r.err, /invalid configuration \(2 problems\)/);
    assert.match(
      r.err,
      /argv: expected a known flag; valid flags: .*--once.*--label <value> \(-l\)/,
    );
    assert.match(r.err, /worker\.concurrency: expected a number, found "x"/);
    assert.match(r.err, /Run with --help/);
  });

  await t.step("stage flags may not shadow built-in or setting flags", async () => {
    for (
      const flags of [
        { help: { type: "boolean", description: "x" } },
        { "worker-id": { type: "string", description: "x" } },
        { "no-infer-threshold": { type: "boolean", description: "x" } },
      ] as Record<string, StageFlag>[]
    ) {
      await assert.rejects(
        () =>
          parseStageArgs([], {
            stage: "infer",
            stageSchema: InferSettings,
            usage: "x",
            flags,
            env: {},
          }),
        (e: unknown) => e instanceof SluiceError && e.code === "invalid_flags",
      );
    }
  });
});

Deno.test("formatUsage marks secret defaults and unset values", () => {
  const text = formatUsage({
    stage: "train",
    stageSchema: z.object({ token: secret(z.string()).default("dev-token") }),
    usage: "sluice-train",
  });
  assert.match(
    text,
    /--train-token <string>\n +env SLUICE_TRAIN_TOKEN {2}\(secret\)\n +default: \*\*\*redacted\*\*\*/,
  );
  assert.ok(!text.includes("dev-token"));
  assert.match(text, /--s3-endpoint <string>\n +env SLUICE_S3_ENDPOINT\n +default: unset/);
});

Deno.test("a stage binary: real process exit codes and output", async (t) => {
  const script = fileURLToPath(new URL("./testdata/stage_cli.ts", import.meta.url));
  const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!/^(SLUICE_|MLFLOW_|AWS_)/.test(k)) env[k] = v;
  }
  const cwd = await Deno.makeTempDir({ prefix: "sluice-cli-bin-" });
  const exec = async (args: string[], extraEnv: Record<string, string> = {}) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", config, script, ...args],
      cwd,
      clearEnv: true,
      env: { ...env, ...extraEnv, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };
  try {
    await t.step("--help exits 0", async () => {
      const r = await exec(["--help"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: sluice-normalize \[options\]/);
      assert.match(
        r.stdout,
        /--normalize-quality <number>\n +env SLUICE_NORMALIZE_QUALITY\n +default: 85\n +JPEG quality of variants/,
      );
      assert.match(r.stdout, /default: "file:\/\/.*\/\.sluice\/objects"/);
    });

    await t.step("runs with flags and env", async () => {
      const r = await exec(["--once"], { SLUICE_NORMALIZE_QUALITY: "70" });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { once: true, quality: 70 });
    });

    await t.step("an unknown flag exits 2 listing the valid ones", async () => {
      const r = await exec(["--onse"]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /found --onse/);
      assert.match(r.stderr, /did you mean --once\?/);
      assert.match(
        r.stderr,
        /valid flags: --help \(-h\), --print-config, --once, --config <value>, .*--normalize-quality <value>/,
      );
    });

    await t.step("--print-config hides the secret", async () => {
      const r = await exec(["--print-config"], { SLUICE_NORMALIZE_SIGNING_KEY: "s3cr3t" });
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.equal(doc.normalize.signingKey, REDACTED);
      assert.equal(doc.http.port, 9102);
      assert.ok(!r.stdout.includes("s3cr3t"));
    });
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
