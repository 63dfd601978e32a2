/**
 * Synthesizes one cdktf stack to plain Terraform JSON for OpenTofu: cdktf's `//` metadata is
 * dropped (paths and versions would make every synth a diff), the state backend is left to the
 * operator (`tofu init -backend-config=…`, or local state by default), and provider sources are
 * written in full (`hashicorp/aws`) so OpenTofu and Terraform resolve the same providers.
 *
 * @example
 * ```ts
 * const json = synthStack((app) => new AwsStack(app, "aws", settings));
 * ```
 * @module
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, type TerraformStack } from "cdktf";

/** Terraform JSON, as written to `infra/<variant>/main.tf.json`. */
export type TfJson = Record<string, unknown>;

function stripMetadata(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripMetadata);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v).filter(([k]) => k !== "//").map(([k, x]) => [k, stripMetadata(x)]),
    );
  }
  return v;
}

/**
 * Builds the stack in a throw-away App and returns its Terraform JSON.
 *
 * @example
 * ```ts
 * synthStack((app) => new MyStack(app, "x")).resource; // { aws_s3_bucket: { ... } }
 * ```
 */
export function synthStack(build: (app: App) => TerraformStack): TfJson {
  const outdir = mkdtempSync(join(tmpdir(), "sluice-synth-"));
  try {
    const app = new App({ outdir });
    const stack = build(app);
    app.synth();
    const raw = JSON.parse(
      readFileSync(join(outdir, "stacks", stack.node.id, "cdk.tf.json"), "utf8"),
    ) as TfJson;
    const json = stripMetadata(raw) as TfJson & { terraform?: Record<string, unknown> };
    if (json.terraform) {
      delete json.terraform.backend;
      const providers = json.terraform.required_providers as
        | Record<string, { source: string; version: string }>
        | undefined;
      for (const p of Object.values(providers ?? {})) {
        if (!p.source.includes("/")) p.source = `hashicorp/${p.source}`;
      }
      json.terraform.required_version = ">= 1.6.0";
    }
    return json;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
