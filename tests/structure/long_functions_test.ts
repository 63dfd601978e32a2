/**
 * No product function in `stages/` or `common/` spans more than 120 lines, except the named
 * table-like one (the config schema); and the scanner that checks it finds what it should.
 *
 * @example
 * ```ts
 * // deno test -A tests/structure/long_functions_test.ts
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { longFunctions, scanFunctions } from "./long_functions.ts";

const MAX_LINES = 120;

/**
 * Functions allowed over the limit, `file:name` → why. Table-like code only: a list of metric
 * definitions or a schema of fields reads as one table and is not made clearer by cutting it.
 */
const ALLOWED: Record<string, string> = {
  "common/config/schema.ts:sharedSchema": "zod schema: one field definition after another",
};

Deno.test("long functions: none in stages/ or common/ over 120 lines but the named tables", async () => {
  const found = await longFunctions(["stages", "common"], MAX_LINES);
  const over = found.filter((s) => !(`${s.file}:${s.name}` in ALLOWED));
  assert.deepEqual(
    over.map((s) => `${s.file}:${s.start}-${s.end} ${s.name} (${s.lines} lines)`),
    [],
    `expected no function over ${MAX_LINES} lines outside the allowlist`,
  );
});

Deno.test("long functions: the scanner measures functions, methods and arrows, not strings or types", () => {
  const body = (n: number) =>
    Array.from({ length: n }, (_, i) => `  const v${i} = "{";`).join("\n");
  const source = [
    "export function plain(a: { x: number }): { y: string } {", // 1
    body(3), // 2-4
    "}", // 5
    "const arrow = async (x: number) => {", // 6
    "  const re = /[{]/g; // }", // 7
    "  const t = `${x}{`;", // 8
    "};", // 9
    "class K {", // 10
    "  async #method(v: string): Promise<void> {", // 11
    "    if (v) {", // 12
    "      return;", // 13
    "    }", // 14
    "  }", // 15
    "}", // 16
  ].join("\n");
  const spans = scanFunctions("x.ts", source).map((s) => `${s.name}:${s.start}-${s.end}`);
  assert.deepEqual(spans.sort(), ["#method:11-15", "arrow:6-9", "plain:1-5"]);
});
