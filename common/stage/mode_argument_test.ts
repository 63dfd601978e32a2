import assert from "node:assert/strict";
import { modeArgument } from "./mode_argument.ts";

const MODES = ["run", "once", "request"] as const;

/** Runs `fn` with console.error captured. */
function capture<T>(fn: () => T): { value: T; errors: string[] } {
  const errors: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args.map(String).join(" "));
  try {
    return { value: fn(), errors };
  } finally {
    console.error = original;
  }
}

Deno.test("modeArgument: run by default, a listed mode as given", () => {
  assert.equal(modeArgument("sluice-x", MODES, []), "run");
  assert.equal(modeArgument("sluice-x", MODES, ["once"]), "once");
  assert.equal(
    modeArgument("sluice-x", MODES, ["request", "k"], (m) => m === "request" ? 2 : 1),
    "request",
  );
});

Deno.test("modeArgument: an unknown mode or extra positionals print the usage error", () => {
  const unknown = capture(() => modeArgument("sluice-x", MODES, ["walk"]));
  assert.equal(unknown.value, null);
  assert.equal(
    unknown.errors.join("\n"),
    'sluice-x: expected one mode of run, once, request, found ["walk"]\nRun with --help for usage.',
  );
  const extra = capture(() => modeArgument("sluice-x", MODES, ["once", "more"]));
  assert.equal(extra.value, null);
  assert.match(extra.errors[0], /found \["once","more"\]/);
});
