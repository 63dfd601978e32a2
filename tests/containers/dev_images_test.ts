/**
 * Every image the dev stack builds from this repository builds here: the dev container (also the
 * init service's image), through podman-compose itself, on the local Debian base. The MLflow
 * image builds on ghcr.io/mlflow/mlflow, which no registry here can serve: the dev-stack workflow
 * builds and runs it. Run by `make test-containers` (SLUICE_CONTAINER_TESTS=1), as root.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { hostTools } from "../harness/host_tools.ts";
import { BASE_IMAGE, ensureBase, podmanOk, REPO } from "./podman.ts";

const enabled = Deno.env.get("SLUICE_CONTAINER_TESTS") === "1";
const host = enabled
  ? await hostTools(["podman", "podman-compose", "runc", "debootstrap"], { root: true })
  : { ok: false as const, reason: "run by `make test-containers` (SLUICE_CONTAINER_TESTS=1)" };
if (!host.ok) console.log(`SKIP dev stack image builds: ${host.reason}`);

Deno.test({
  name: "dev stack: podman-compose builds the dev image on the local base, and it has its tools",
  ignore: !host.ok,
  fn: async () => {
    const started = performance.now();
    await ensureBase();
    const ca = "/etc/ssl/certs/ca-certificates.crt";
    const args = ["-p", "sluice-dev", "-f", `${REPO}.devcontainer/compose.yaml`];
    if (existsSync(ca)) args.push("--podman-build-args", `--secret id=ca-bundle,src=${ca}`);
    const r = await new Deno.Command("podman-compose", {
      args: [...args, "build", "dev"],
      env: {
        SLUICE_DEV_BASE: BASE_IMAGE,
        CONTAINERS_CONF: Deno.env.get("CONTAINERS_CONF") ??
          `${REPO}infra/container/containers.conf`,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    assert.equal(r.code, 0, (d.decode(r.stdout) + d.decode(r.stderr)).slice(-4000));
    const tools = await podmanOk([
      "run",
      "--rm",
      "--network",
      "none",
      "localhost/sluice-dev:latest",
      "sh",
      "-c",
      "deno --version | head -1 && /usr/bin/python3 -c 'import torch, onnx, PIL; print(torch.__version__)' " +
      "&& psql --version && promtool --version 2>&1 | head -1 && vipsthumbnail --vips-version",
    ]);
    assert.match(tools.stdout, /^deno 2\.9\.6/m);
    assert.match(tools.stdout, /^1\.13/m, "Debian's torch");
    assert.match(tools.stdout, /psql \(PostgreSQL\) 15/);
    assert.match(tools.stdout, /promtool/);
    console.log(
      "SKIP mlflow image build: its base ghcr.io/mlflow/mlflow:v2.17.2 cannot be pulled here " +
        "(.github/workflows/dev-stack.yml builds and runs it)",
    );
    console.log(`dev image build: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  },
});
