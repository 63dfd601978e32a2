/**
 * `infra/<variant>/terraform.tfvars.example`: every variable it sets is declared by the variant,
 * every variable without a default is set (except secrets, which come from TF_VAR_*), no secret
 * is written in it, and it parses as HCL where a tofu/terraform binary exists.
 * @module
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { variantFile, VARIANTS } from "./variants.ts";

const ROOT = new URL("../../", import.meta.url);

interface Variable {
  default?: unknown;
  sensitive?: boolean;
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

Deno.test("terraform.tfvars.example of every variant", async (t) => {
  const bin = hclTool();
  if (!bin) {
    console.log("SKIP HCL parse of the tfvars examples: no tofu or terraform binary on PATH");
  }
  for (const v of VARIANTS) {
    await t.step(v, async () => {
      const vars = JSON.parse(await readFile(new URL(variantFile(v), ROOT), "utf8"))
        .variable as Record<
          string,
          Variable
        >;
      const text = await readFile(new URL(`infra/${v}/terraform.tfvars.example`, ROOT), "utf8");
      const set = [...text.matchAll(/^([a-z_][a-z0-9_]*)\s*=/gm)].map((m) => m[1]);
      for (const k of set) assert.ok(k in vars, `${v}: ${k} is not a variable of the variant`);
      for (const [k, d] of Object.entries(vars)) {
        if (d.sensitive) {
          assert.ok(!set.includes(k), `${v}: secret ${k} written in the example`);
        } else if (!("default" in d)) {
          assert.ok(set.includes(k), `${v}: required variable ${k} missing from the example`);
        }
      }
      if (bin) {
        const child = new Deno.Command(bin, {
          args: ["fmt", "-no-color", "-"],
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const w = child.stdin.getWriter();
        await w.write(new TextEncoder().encode(text));
        await w.close();
        const r = await child.output();
        assert.ok(r.success, `${v}: ${new TextDecoder().decode(r.stderr)}`);
        assert.equal(new TextDecoder().decode(r.stdout), text, `${v}: not in ${bin} fmt form`);
      }
    });
  }
});
