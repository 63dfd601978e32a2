/**
 * Pre-commit check: every named file uses LF line endings and ends with a newline.
 * Usage: `deno run --allow-read tests/hooks/check_text_files.ts FILE...`
 * @module
 */
import { textFileProblems } from "./text_files.ts";

if (import.meta.main) {
  const problems: string[] = [];
  for (const path of Deno.args) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch {
      continue; // deleted in this commit
    }
    problems.push(...textFileProblems(path, bytes));
  }
  for (const p of problems) console.error(p);
  Deno.exit(problems.length ? 1 : 0);
}
