/**
 * Pre-commit hook: strips outputs from the named `*.ipynb` files in place.
 * Usage: `deno run --allow-read --allow-write tests/hooks/strip_notebooks.ts FILE...`
 * @module
 */
import { formatNotebook, stripNotebook } from "./notebook.ts";

if (import.meta.main) {
  let failed = false;
  for (const path of Deno.args.filter((p) => p.endsWith(".ipynb"))) {
    try {
      const before = await Deno.readTextFile(path);
      const after = formatNotebook(stripNotebook(JSON.parse(before)));
      if (after !== before) {
        await Deno.writeTextFile(path, after);
        console.error(`stripped outputs: ${path}`);
      }
    } catch (err) {
      console.error(`${path}: ${err instanceof Error ? err.message : err}`);
      failed = true;
    }
  }
  Deno.exit(failed ? 1 : 0);
}
