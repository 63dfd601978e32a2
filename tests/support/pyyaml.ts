/**
 * Reads YAML with a real YAML 1.1 implementation: PyYAML in Debian's python3 (what MLflow and
 * most tooling use), for tests that check what the project writes.
 *
 * @example
 * ```ts
 * if (hasPyYaml) assert.deepEqual(await pyYamlLoad("a: 'yes'\n"), { a: "yes" });
 * ```
 * @module
 */
import assert from "node:assert/strict";

const PYTHON = "/usr/bin/python3";

/** Whether Debian's python3 can import PyYAML here. */
export const hasPyYaml: boolean = (() => {
  try {
    return new Deno.Command(PYTHON, { args: ["-c", "import yaml"] }).outputSync().code === 0;
  } catch {
    return false;
  }
})();

/** `yaml.safe_load(text)` as JSON (NaN comes back as the string "NaN"). */
export async function pyYamlLoad(text: string): Promise<unknown> {
  const child = new Deno.Command(PYTHON, {
    args: ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const r = await child.output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  return JSON.parse(new TextDecoder().decode(r.stdout).replace(/\bNaN\b/g, '"NaN"'));
}
