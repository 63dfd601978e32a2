/**
 * Whether the host programs a test needs are here (and, when asked, whether it runs as root).
 * Outside CI a missing tool means "skip, printing why"; under `CI=true` it is an error, because
 * `.ci/run` installs every tool the suite uses.
 *
 * @example
 * ```ts
 * const host = await hostTools(["podman", "debootstrap"], { root: true });
 * Deno.test({ name: "builds the image", ignore: !host.ok, fn: async () => {} });
 * if (!host.ok) console.log(`SKIP image tests: ${host.reason}`);
 * ```
 * @module
 */

/** `{ ok: false, reason }` means skip (never under CI=true: that throws instead). */
export type HostAvailability = { ok: true } | { ok: false; reason: string };

/** Finds `name` on PATH (or an absolute path), as `command -v` would. */
export async function findProgram(name: string): Promise<string | undefined> {
  if (name.includes("/")) {
    try {
      const st = await Deno.stat(name);
      return st.isFile && (st.mode ?? 0o111) & 0o111 ? name : undefined;
    } catch {
      return undefined;
    }
  }
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter(Boolean)) {
    const candidate = `${dir}/${name}`;
    try {
      const st = await Deno.stat(candidate);
      if (st.isFile && (st.mode ?? 0o111) & 0o111) return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Checks that every program in `programs` is on PATH and, with `root: true`, that the test runs
 * as uid 0. Under `CI=true` a missing one throws (naming it), so CI never skips silently.
 *
 * @example
 * ```ts
 * const host = await hostTools(["systemd-analyze"]); // { ok: true } on Debian with systemd
 * ```
 */
export async function hostTools(
  programs: string[],
  opts: { root?: boolean } = {},
): Promise<HostAvailability> {
  const missing: string[] = [];
  for (const p of programs) if (!(await findProgram(p))) missing.push(p);
  const problems: string[] = [];
  if (missing.length) problems.push(`not on PATH: ${missing.join(", ")}`);
  if (opts.root && Deno.uid() !== 0) problems.push(`needs root, running as uid ${Deno.uid()}`);
  if (!problems.length) return { ok: true };
  const reason = problems.join("; ");
  if (Deno.env.get("CI") === "true") {
    throw new Error(`${reason} (CI=true: .ci/run must install these and run as root)`);
  }
  return { ok: false, reason };
}
