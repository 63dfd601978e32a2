/**
 * Every Terraform template in the synthesized JSON (each string holding `${…}` or `%{…}`) parses
 * as HCL: each is written as a heredoc, which has the same template semantics as a JSON string,
 * and checked by `tofu fmt -` / `terraform fmt -`, which need no providers. This catches broken
 * hand-written expressions (for_each comprehensions, conditionals, escaped quotes) that only
 * `tofu validate` would otherwise see, and that cannot run here (no provider registry).
 * @module
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { variantFile, VARIANTS } from "./variants.ts";

const ROOT = new URL("../../", import.meta.url);

function templates(v: unknown, out: string[] = []): string[] {
  if (typeof v === "string") {
    if (v.includes("${") || v.includes("%{")) out.push(v);
  } else if (Array.isArray(v)) v.forEach((x) => templates(x, out));
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      templates(k, out);
      templates(x, out);
    }
  }
  return out;
}

/** An HCL file with one heredoc local per template. */
export function heredocs(strings: readonly string[]): string {
  const body = strings.map((s, i) => {
    const tag = `SLUICE_TEMPLATE_${i}`;
    assert.ok(!s.split("\n").includes(tag), `template ${i} contains its own delimiter`);
    return `  t${i} = <<${tag}\n${s}\n${tag}\n`;
  });
  return `locals {\n${body.join("")}}\n`;
}

function hclTool(): string | undefined {
  return ["tofu", "terraform"].find((b) => {
    try {
      return new Deno.Command(b, { args: ["version"], stdout: "null", stderr: "null" }).outputSync()
        .success;
    } catch {
      return false;
    }
  });
}

async function fmtErrors(bin: string, hcl: string): Promise<string | undefined> {
  const child = new Deno.Command(bin, {
    args: ["fmt", "-no-color", "-"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(hcl));
  await w.close();
  const r = await child.output();
  if (r.success) return undefined;
  return new TextDecoder().decode(r.stderr).split("\n").filter((l) =>
    /Error|on <stdin>|^\s*\d+:/.test(l)
  )
    .join("\n");
}

Deno.test("every Terraform template in every variant parses as HCL", async (t) => {
  const bin = hclTool();
  if (!bin) {
    console.log(
      "SKIP HCL template check: no tofu or terraform binary on PATH (none can be installed from " +
        "npm or apt); .github/workflows/infra.yml validates every variant with tofu",
    );
    return;
  }
  for (const v of VARIANTS) {
    await t.step(v, async () => {
      const json = JSON.parse(await readFile(new URL(variantFile(v), ROOT), "utf8"));
      const found = templates(json);
      assert.ok(found.length > 10, `${v}: expected templates, found ${found.length}`);
      assert.equal(await fmtErrors(bin, heredocs(found)), undefined, `${v}: template syntax`);
    });
  }
  await t.step("a broken template is caught", async () => {
    const errors = await fmtErrors(bin, heredocs(['${replace(var.x, \\"a\\", "")}']));
    assert.match(errors ?? "", /Error/);
  });
});
