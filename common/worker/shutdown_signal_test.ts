import assert from "node:assert/strict";

// Signals go to a child process: sending SIGTERM to the test runner itself would reach every
// test module running in parallel with this one.
const CHILD = `
import { shutdownSignal } from ${JSON.stringify(import.meta.resolve("./shutdown_signal.ts"))};
const s = shutdownSignal();
s.signal.addEventListener("abort", () => console.log("aborted: " + s.signal.reason.message));
console.log("ready");
setInterval(() => {}, 1000);
`;

Deno.test("shutdownSignal: first SIGTERM aborts, a second one exits with 143", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", CHILD],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const until = async (text: string) => {
    while (!out.includes(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`child ended before printing ${JSON.stringify(text)}: ${out}`);
      out += value;
    }
  };
  try {
    await until("ready");
    child.kill("SIGTERM");
    await until("aborted: received SIGTERM");
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.code, 143);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await reader.cancel();
    await child.status;
  }
});
