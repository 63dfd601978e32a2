/**
 * A worker process for claim_test.ts: claims from `stage` in batches until the queue is empty,
 * completes every claim, and prints the completed item ids as one JSON array on stdout.
 *
 * Usage: deno run -A claim_worker.ts <manifest-url> <stage> <owner>
 */
import { openManifest } from "../mod.ts";

const [url, stage, owner] = Deno.args;
const store = await openManifest(url);
const done: string[] = [];
try {
  while (true) {
    const claims = await store.claim(stage, { max: 10, owner, leaseMs: 60_000 });
    if (claims.length === 0) break;
    for (const c of claims) {
      await store.complete(c, { enqueue: [{ stage: `${stage}-next`, itemId: c.itemId }] });
      done.push(c.itemId);
    }
  }
} finally {
  await store.close();
}
console.log(JSON.stringify(done));
