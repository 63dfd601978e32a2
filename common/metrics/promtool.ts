/**
 * Lints a text exposition with Prometheus's `promtool check metrics`, for tests of any stage's
 * metrics. `promtool` comes from Debian's `prometheus` package.
 *
 * @example
 * ```ts
 * const path = await findPromtool();
 * if (path) {
 *   const r = await promtoolCheck(await metrics.metrics(), path);
 *   if (!r.ok) throw new Error(r.output);
 * }
 * ```
 * @module
 */

/** Where promtool is looked for, in order (`PROMTOOL` overrides). */
const CANDIDATES = ["/usr/bin/promtool", "/usr/local/bin/promtool"];

/** The path of an executable promtool, or undefined when none is installed. */
export async function findPromtool(): Promise<string | undefined> {
  const own = Deno.env.get("PROMTOOL");
  for (const p of own ? [own, ...CANDIDATES] : CANDIDATES) {
    try {
      const st = await Deno.stat(p);
      if (st.isFile) return p;
    } catch {
      // Not here; try the next place.
    }
  }
  return undefined;
}

/** Result of a lint: `ok` is true when promtool exited 0 and printed no problem. */
export interface PromtoolResult {
  ok: boolean;
  code: number;
  output: string;
}

/**
 * Runs `promtool check metrics` on an exposition.
 *
 * @example
 * ```ts
 * const { ok, output } = await promtoolCheck("# HELP x_total X\n# TYPE x_total counter\nx_total 1\n");
 * ```
 */
export async function promtoolCheck(
  text: string,
  promtool = "/usr/bin/promtool",
): Promise<PromtoolResult> {
  const child = new Deno.Command(promtool, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  const output = (dec.decode(out.stdout) + dec.decode(out.stderr)).trim();
  return { ok: out.code === 0 && output === "", code: out.code, output };
}
