/**
 * The GitHub workflows under .github/workflows validate against the workflow schema
 * (@action-validator/core, a test-only package), and what they run exists here: every
 * `make <target>` in the Makefile, every `deno task <name>` in deno.json, every stage in the
 * compile matrix.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { validateWorkflow } from "@action-validator/core";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DIR = join(REPO, ".github/workflows");
const STAGES = ["infer", "ingest", "normalize", "train"];

async function workflows(): Promise<[string, string][]> {
  const names = (await readdir(DIR)).filter((f) => /\.ya?ml$/.test(f)).sort();
  return await Promise.all(
    names.map(async (n) => [n, await readFile(join(DIR, n), "utf8")] as [string, string]),
  );
}

Deno.test("workflows: each validates against the GitHub workflow schema", async () => {
  const all = await workflows();
  const names = all.map(([n]) => n);
  for (const want of ["ci.yml", "compile.yml", "containers.yml", "dev-stack.yml"]) {
    assert.ok(names.includes(want), `expected .github/workflows/${want}, found ${names}`);
  }
  for (const [name, src] of all) {
    const state = validateWorkflow(src);
    assert.equal(state.actionType, "workflow");
    assert.deepEqual(state.errors, [], `${name}: ${JSON.stringify(state.errors, null, 2)}`);
  }
});

Deno.test("workflows: the validator rejects a broken workflow", () => {
  const state = validateWorkflow("name: x\non: push\njobs:\n  a:\n    steps: [{ run: true }]\n");
  assert.ok(state.errors.length > 0, "a job without runs-on must not validate");
});

Deno.test("workflows: make targets, deno tasks and compile stages they use exist", async () => {
  const makefile = await readFile(join(REPO, "Makefile"), "utf8");
  const targets = new Set([...makefile.matchAll(/^([a-z][a-z-]*):/gm)].map((m) => m[1]));
  const deno = JSON.parse(await readFile(join(REPO, "deno.json"), "utf8"));
  const used = new Set<string>();
  for (const [name, src] of await workflows()) {
    // `make` as a command (line start, after run:, && or an env assignment), not a package name.
    for (
      const m of src.matchAll(/(?:^\s*|run:\s*|&&\s*|CI=true\s+)make((?:[ \t]+[a-z][a-z-]*)+)/gm)
    ) {
      for (const t of m[1].trim().split(/\s+/)) {
        assert.ok(targets.has(t), `${name}: make ${t} is not a Makefile target`);
        used.add(t);
      }
    }
    for (const m of src.matchAll(/\bdeno task ([a-z][a-z:-]*)/g)) {
      assert.ok(m[1] in deno.tasks, `${name}: deno task ${m[1]} is not in deno.json`);
    }
  }
  for (const t of ["deps", "dev-up", "dev-down", "functional", "system-deps", "test-containers"]) {
    assert.ok(used.has(t), `expected a workflow to run make ${t}; found ${[...used]}`);
  }
  const compile = (await workflows()).find(([n]) => n === "compile.yml")![1];
  const matrix = compile.match(/stage: \[([^\]]+)\]/)?.[1].split(",").map((s) => s.trim()).sort();
  assert.deepEqual(matrix, STAGES);
});
