/**
 * Output stripping for Jupyter notebooks (Python's nbstripout is not available here): clears
 * code-cell outputs and execution counts and drops volatile metadata, so notebooks diff cleanly.
 *
 * @example
 * ```ts
 * const clean = stripNotebook(JSON.parse(await Deno.readTextFile("x.ipynb")));
 * ```
 * @module
 */

/** A notebook as JSON; only the fields we touch are typed. */
export interface Notebook {
  cells?: {
    cell_type?: string;
    outputs?: unknown[];
    execution_count?: number | null;
    metadata?: Record<string, unknown>;
  }[];
  metadata?: Record<string, unknown>;
  [k: string]: unknown;
}

const VOLATILE_CELL_METADATA = ["execution", "collapsed", "scrolled", "ExecuteTime"];

/** Returns a copy of the notebook with outputs, execution counts and volatile metadata removed. */
export function stripNotebook(nb: Notebook): Notebook {
  if (typeof nb !== "object" || nb === null || !Array.isArray(nb.cells)) {
    throw new Error("notebook: expected an object with a `cells` array, found something else");
  }
  const copy: Notebook = structuredClone(nb);
  for (const cell of copy.cells ?? []) {
    if (cell.cell_type === "code") {
      cell.outputs = [];
      cell.execution_count = null;
    }
    if (cell.metadata) {
      for (const k of VOLATILE_CELL_METADATA) delete cell.metadata[k];
    }
  }
  if (copy.metadata) delete copy.metadata["widgets"];
  return copy;
}

/** Serialises like Jupyter does (1-space indent, trailing newline) so stripping is a fixed point. */
export function formatNotebook(nb: Notebook): string {
  return JSON.stringify(nb, null, 1) + "\n";
}
