/**
 * The dev stack (.devcontainer/): podman-compose parses the compose file, the devcontainer file
 * names a service of it, pulled images are pinned, every mounted file exists, and the RustFS
 * webhook target, its allowed origin and the init service's notification ARN agree. Building the
 * images this repository defines is in tests/containers/dev_images_test.ts.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { hostTools } from "../../tests/harness/host_tools.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DEV = join(REPO, ".devcontainer");
const COMPOSE = join(DEV, "compose.yaml");

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  command?: string | string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout) + d.decode(r.stderr) };
}

const tools = await hostTools(["podman-compose", "/usr/bin/python3"]);
if (!tools.ok) console.log(`SKIP dev stack compose checks: ${tools.reason}`);

/** The compose file as podman-compose's YAML loader (PyYAML) reads it, merge keys resolved. */
async function loadCompose(path: string): Promise<Compose> {
  const r = await run("/usr/bin/python3", [
    "-c",
    "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
    path,
  ]);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.out);
}

Deno.test({
  name: "dev stack: podman-compose parses the compose file (and refuses a broken one)",
  ignore: !tools.ok,
  fn: async () => {
    // podman-compose 1.0.x (Debian 12) has no `config`; `--dry-run ... ps` loads and resolves the
    // whole file with the same parser and only prints the podman command it would run.
    const help = await run("podman-compose", ["--help"]);
    const args = /\bconfig\b/.test(help.out)
      ? ["-f", COMPOSE, "config"]
      : ["--dry-run", "-p", "sluice-dev-check", "-f", COMPOSE, "ps"];
    const ok = await run("podman-compose", args);
    assert.equal(ok.code, 0, ok.out);
    const broken = await Deno.makeTempFile({ suffix: ".yaml" });
    try {
      await Deno.writeTextFile(broken, "services:\n  a: [\n");
      const bad = await run("podman-compose", args.map((a) => a === COMPOSE ? broken : a));
      assert.notEqual(bad.code, 0, "a broken compose file must be refused");
    } finally {
      await Deno.remove(broken);
    }
  },
});

Deno.test({
  name: "dev stack: services, pinned images, mounts that exist, webhook wiring",
  ignore: !tools.ok,
  fn: async () => {
    const c = await loadCompose(COMPOSE);
    assert.deepEqual(Object.keys(c.services).sort(), [
      "dev",
      "grafana",
      "init",
      "mlflow",
      "postgres",
      "prometheus",
      "rustfs",
    ]);
    const built = new Set(
      Object.values(c.services).filter((s) => s.build).map((s) => s.image),
    );
    for (const [name, s] of Object.entries(c.services)) {
      assert.ok(s.image, `${name}: expected an image name`);
      if (s.build) {
        const dockerfile = resolve(DEV, s.build.context, s.build.dockerfile);
        assert.ok(existsSync(dockerfile), `${name}: ${dockerfile} missing`);
        continue;
      }
      if (built.has(s.image)) continue; // runs an image built by another service
      const tag = s.image.split("/").pop()!.split(":")[1] ?? "";
      assert.match(tag, /\d/, `${name}: expected a pinned version tag, found ${s.image}`);
      assert.notEqual(tag, "latest", name);
    }
    for (const [name, s] of Object.entries(c.services)) {
      for (const v of s.volumes ?? []) {
        const src = v.split(":")[0];
        if (!src.startsWith(".")) {
          assert.ok(c.volumes && src in c.volumes, `${name}: named volume ${src} not declared`);
          continue;
        }
        assert.ok(existsSync(resolve(DEV, src)), `${name}: mount source ${src} missing`);
      }
    }

    const rustfs = c.services.rustfs.environment ?? {};
    assert.equal(rustfs.RUSTFS_NOTIFY_ENABLE, "true");
    const ids = Object.keys(rustfs)
      .map((k) => k.match(/^RUSTFS_NOTIFY_WEBHOOK_ENABLE_(\w+)$/)?.[1])
      .filter((x): x is string => !!x);
    assert.deepEqual(ids, ["INGEST"]);
    const endpoint = new URL(rustfs.RUSTFS_NOTIFY_WEBHOOK_ENDPOINT_INGEST);
    assert.equal(endpoint.pathname, "/events", "the ingest stage's webhook path");
    assert.ok(
      rustfs.RUSTFS_OUTBOUND_ALLOW_ORIGINS.split(",").includes(endpoint.origin),
      "RustFS refuses private targets whose origin is not allowed",
    );
    const dev = c.services.dev.environment ?? {};
    assert.equal(dev.SLUICE_INGEST_WEBHOOK_TOKEN, rustfs.RUSTFS_NOTIFY_WEBHOOK_AUTH_TOKEN_INGEST);
    assert.equal(endpoint.hostname, "dev");
    assert.equal(endpoint.port, "9101", "ingest's default HTTP port");
    const init = c.services.init.environment ?? {};
    assert.equal(init.SLUICE_DEV_NOTIFY_ARN, `arn:rustfs:sqs:${init.AWS_REGION}:ingest:webhook`);
    assert.ok(init.SLUICE_DEV_BUCKETS.split(",").includes(init.SLUICE_DEV_NOTIFY_BUCKET));
    assert.equal(`s3://${init.SLUICE_DEV_NOTIFY_BUCKET}`, dev.SLUICE_SOURCE_URL);
    const cmd = c.services.init.command as string[];
    assert.ok(existsSync(join(REPO, cmd[cmd.length - 1])), `init runs ${cmd.join(" ")}`);

    // The manifest's server bounds a dropped client's row locks (README: tcp_keepalives_idle).
    const pg = (c.services.postgres.command as string[]).join(" ");
    assert.match(pg, /^postgres /);
    assert.match(pg, /-c tcp_keepalives_idle=60\b/);
    assert.match(pg, /-c tcp_keepalives_count=\d+/);

    const mlflowfile = await readFile(
      resolve(DEV, c.services.mlflow.build!.context, c.services.mlflow.build!.dockerfile),
      "utf8",
    );
    assert.match(mlflowfile, /psycopg2-binary==\d/);
    assert.match(mlflowfile, /boto3==\d/);
    assert.match(c.services.mlflow.build!.args!.MLFLOW_IMAGE, /mlflow:v\d+\.\d+\.\d+\}?$/);
  },
});

Deno.test("devcontainer.json: parses and opens the compose file's dev service", async () => {
  const dc = JSON.parse(await readFile(join(DEV, "devcontainer.json"), "utf8"));
  assert.deepEqual(dc.dockerComposeFile, ["compose.yaml"]);
  assert.equal(dc.service, "dev");
  const compose = await readFile(COMPOSE, "utf8");
  assert.match(compose, /^ {2}dev:$/m);
  assert.ok(existsSync(join(dirname(COMPOSE), dc.dockerComposeFile[0])));
});
