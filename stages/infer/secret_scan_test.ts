/**
 * Regression for issue 18 items 1 and 7: with a credential set in every supported place, none of
 * them appears in `--print-config` (any stage), `/status`, `/readyz`, `/healthz`, `/metrics`, the
 * log lines or the manifest rows of a running infer stage whose MLflow server is unreachable
 * (the error that used to embed the tracking URL with its password).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import postgres from "postgres";
import { postgresAvailability, startPostgres } from "../../tests/harness/postgres.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const pg = postgresAvailability();

/** A loopback port nobody listens on. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Each secret, and the forms in which it would leak (raw and percent-encoded). */
const SECRETS = {
  mlflowUriPassword: "MlUri@Pw-7f3k", // an "@" inside the password
  mlflowPassword: "MlPw-Q9x2v",
  mlflowToken: "MlTok-Z8c1w",
  postgresPassword: "PgPw-L4m6n",
  s3SecretKey: "S3Key-H2j5p/Qq",
  s3SessionToken: "S3Tok-T7y8u",
  webhookToken: "Hook-R3e4t5y6",
  labelStudioToken: "LsTok-W1q2e3",
  labelStudioUrlPassword: "LsPw-K9l8j",
};

function leaks(text: string): string[] {
  const found: string[] = [];
  for (const [name, value] of Object.entries(SECRETS)) {
    for (const form of [value, encodeURIComponent(value), ...value.split("@")]) {
      if (form.length >= 6 && text.includes(form)) found.push(`${name} (${form})`);
    }
  }
  return [...new Set(found)];
}

Deno.test({
  name: "no secret in --print-config, /status, /readyz, /metrics, logs or manifest rows",
  ignore: !pg.ok,
  async fn(t) {
    const server = await startPostgres();
    const dir = await mkdtemp(join(tmpdir(), "sluice-secret-scan-"));
    try {
      const pgUrl = new URL(server.url);
      pgUrl.password = SECRETS.postgresPassword; // the harness trusts loopback: any password works
      const mlPort = closedPort();
      const env: Record<string, string> = {
        SLUICE_MANIFEST_URL: pgUrl.href,
        SLUICE_OBJECT_STORE_URL: pathToFileURL(join(dir, "objects")).href,
        SLUICE_SOURCE_URL: pathToFileURL(join(dir, "raw")).href,
        SLUICE_STAGING_FALLBACK_ROOT: join(dir, "staging"),
        SLUICE_LOG_FORMAT: "json",
        SLUICE_LOG_LEVEL: "debug",
        MLFLOW_TRACKING_URI: `http://mluser:${SECRETS.mlflowUriPassword}@127.0.0.1:${mlPort}`,
        MLFLOW_TRACKING_USERNAME: "mluser",
        MLFLOW_TRACKING_PASSWORD: SECRETS.mlflowPassword,
        MLFLOW_TRACKING_TOKEN: SECRETS.mlflowToken,
        // The model load must fail (and report its error) within the test's wait, not ride out
        // the default one-minute-plus retry budget meant for server restarts.
        SLUICE_MLFLOW_RETRY_BUDGET_SECONDS: "2",
        SLUICE_S3_ACCESS_KEY_ID: "AKIDEXAMPLE",
        SLUICE_S3_SECRET_ACCESS_KEY: SECRETS.s3SecretKey,
        SLUICE_S3_SESSION_TOKEN: SECRETS.s3SessionToken,
        SLUICE_INGEST_WEBHOOK_TOKEN: SECRETS.webhookToken,
        SLUICE_INFER_LABEL_STUDIO_URL:
          `http://ls:${SECRETS.labelStudioUrlPassword}@127.0.0.1:${closedPort()}`,
        SLUICE_INFER_LABEL_STUDIO_TOKEN: SECRETS.labelStudioToken,
        SLUICE_INFER_LABEL_STUDIO_PROJECT_ID: "7",
      };
      const dec = new TextDecoder();

      for (const stage of ["ingest", "normalize", "train", "infer"]) {
        await t.step(`sluice-${stage} --print-config`, async () => {
          const out = await new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", join(ROOT, "stages", stage, "main.ts"), "--print-config"],
            cwd: ROOT,
            env,
            stdout: "piped",
            stderr: "piped",
          }).output();
          const text = dec.decode(out.stdout) + dec.decode(out.stderr);
          assert.equal(out.code, 0, text);
          assert.deepEqual(leaks(text), [], text);
          assert.ok(text.includes("***redacted***"), text);
        });
      }

      await t.step("a running infer stage: endpoints, logs, manifest rows", async () => {
        // A token and a user/password together are refused; print-config above had both.
        const { MLFLOW_TRACKING_TOKEN: _token, ...runEnv } = env;
        const port = closedPort();
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", join(ROOT, "stages", "infer", "main.ts"), "run"],
          cwd: ROOT,
          env: { ...runEnv, SLUICE_HTTP_HOSTNAME: "127.0.0.1", SLUICE_HTTP_PORT: String(port) },
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const stdout = new Response(child.stdout).text();
        const stderr = new Response(child.stderr).text();
        const base = `http://127.0.0.1:${port}`;
        let exited = false;
        void child.status.then(() => exited = true);
        const bodies: string[] = [];
        try {
          // Wait until the model load has failed against the unreachable MLflow server.
          const end = Date.now() + 60_000;
          let readyz = "";
          while (Date.now() < end && !exited) {
            try {
              readyz = await (await fetch(`${base}/readyz`)).text();
              if (readyz.includes("no model loaded:")) break;
            } catch {
              // not listening yet
            }
            await new Promise((r) => setTimeout(r, 200));
          }
          bodies.push(readyz);
          for (const path of ["/status", "/healthz", "/metrics", "/"]) {
            bodies.push(await (await fetch(`${base}${path}`)).text());
          }
        } finally {
          try {
            child.kill("SIGTERM");
          } catch {
            // it exited already: its output says why
          }
          await child.status;
        }
        const logs = (await stdout) + (await stderr);
        assert.match(bodies[0], /no model loaded: .*127\.0\.0\.1/, `${bodies[0]}\n${logs}`);
        const status = JSON.parse(bodies[1]);
        assert.match(String(status.lastLoadError), /mluser:\*\*\*redacted\*\*\*@127\.0\.0\.1/);
        assert.deepEqual(leaks(bodies.join("\n")), [], bodies.join("\n"));
        assert.ok(logs.includes("mlflow"), logs);
        assert.deepEqual(leaks(logs), [], logs);

        const sql = postgres(server.url, { onnotice: () => {} });
        try {
          const tables = await sql<{ table_name: string }[]>`
            SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`;
          assert.ok(tables.length > 3);
          let dump = "";
          for (const { table_name } of tables) {
            const rows = await sql.unsafe(
              `SELECT row_to_json(t)::text AS j FROM "${table_name}" t`,
            );
            dump += rows.map((r) => r.j).join("\n");
          }
          assert.deepEqual(leaks(dump), [], dump);
        } finally {
          await sql.end();
        }
      });
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
});
