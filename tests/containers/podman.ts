/**
 * podman for the container tests: the repository's containers.conf (runc, cgroupfs, no default
 * ulimits; ENVIRONMENT.md), the cached Debian base, and image builds from
 * infra/container/Containerfile with the host's CA bundle as a build secret.
 *
 * @example
 * ```ts
 * await ensureBase();
 * await buildImage("deno", "localhost/sluice:test-deno");
 * const r = await podman(["run", "--rm", "localhost/sluice:test-deno", "sluice-ingest", "--help"]);
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The repository root (the build context). */
export const REPO = fileURLToPath(new URL("../../", import.meta.url));
/** The base every target builds on, made by infra/container/make_base.sh. */
export const BASE_IMAGE = "localhost/debian:bookworm-min";
const CONF = `${REPO}infra/container/containers.conf`;
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/** What a finished command printed. */
export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

function env(): Record<string, string> {
  return { CONTAINERS_CONF: Deno.env.get("CONTAINERS_CONF") ?? CONF };
}

/** Runs `podman args…` and returns its exit code and output. */
export async function podman(args: string[], opts: { timeoutMs?: number } = {}): Promise<Output> {
  const r = await new Deno.Command("podman", {
    args,
    env: env(),
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(opts.timeoutMs ?? 600_000),
  }).output();
  const d = new TextDecoder();
  return { code: r.code, stdout: d.decode(r.stdout), stderr: d.decode(r.stderr) };
}

/** Like {@link podman}, but throws with the output when the command fails. */
export async function podmanOk(args: string[], opts: { timeoutMs?: number } = {}): Promise<Output> {
  const r = await podman(args, opts);
  if (r.code !== 0) {
    throw new Error(
      `podman ${args.join(" ")}: expected exit 0, found ${r.code}\n${r.stdout.slice(-4000)}\n${
        r.stderr.slice(-4000)
      }`,
    );
  }
  return r;
}

/** Makes the Debian base with debootstrap unless podman already has it (make_base.sh skips). */
export async function ensureBase(): Promise<string> {
  const r = await new Deno.Command(`${REPO}infra/container/make_base.sh`, {
    args: ["--tag", BASE_IMAGE],
    env: env(),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  if (!r.success) {
    throw new Error(`make_base.sh failed (${r.code}): ${d.decode(r.stdout)}${d.decode(r.stderr)}`);
  }
  return d.decode(r.stdout).trim();
}

/** Builds one target of the Containerfile as `tag` (layers cached between runs). */
export async function buildImage(target: string, tag: string): Promise<void> {
  const args = [
    "build",
    "--network",
    "host",
    "--layers",
    "-f",
    `${REPO}infra/container/Containerfile`,
    "--target",
    target,
    "--build-arg",
    `BASE=${BASE_IMAGE}`,
    "-t",
    tag,
  ];
  if (existsSync(CA_BUNDLE)) args.push("--secret", `id=ca-bundle,src=${CA_BUNDLE}`);
  await podmanOk([...args, REPO], { timeoutMs: 900_000 });
}
