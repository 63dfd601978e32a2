import assert from "node:assert/strict";
import {
  backoffDelayMs,
  isRetryableError,
  type RetryPolicy,
  sdkRetryStrategy,
  withRetry,
} from "./_retry.ts";

const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 250 };

function errorWith(fields: Record<string, unknown>): Error {
  return Object.assign(new Error(String(fields.name ?? fields.code ?? "err")), fields);
}

/** Fails with the given errors in order, then returns "ok". */
function flaky(errors: unknown[]): { fn: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    fn: () => {
      const err = errors[calls++];
      return err === undefined ? Promise.resolve("ok") : Promise.reject(err);
    },
    calls: () => calls,
  };
}

Deno.test("backoffDelayMs: full jitter under an exponential cap", async (t) => {
  await t.step("the cap doubles per retry and stops at maxDelayMs", () => {
    const top = () => 0.999999;
    assert.equal(backoffDelayMs(1, policy, top), 99);
    assert.equal(backoffDelayMs(2, policy, top), 199);
    assert.equal(backoffDelayMs(3, policy, top), 249);
    assert.equal(backoffDelayMs(10, policy, top), 249);
  });
  await t.step("jitter spans from zero", () => {
    assert.equal(backoffDelayMs(3, policy, () => 0), 0);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(2, policy);
      assert.ok(d >= 0 && d < 200, `delay ${d} outside [0, 200)`);
    }
  });
});

Deno.test("isRetryableError classifies transient failures only", async (t) => {
  const cases: [string, unknown, boolean][] = [
    ["503 SlowDown", errorWith({ name: "SlowDown", $metadata: { httpStatusCode: 503 } }), true],
    ["500", errorWith({ name: "InternalError", $metadata: { httpStatusCode: 500 } }), true],
    ["429", errorWith({ name: "Whatever", $metadata: { httpStatusCode: 429 } }), true],
    ["throttling name", errorWith({ name: "ThrottlingException" }), true],
    ["ECONNRESET", errorWith({ code: "ECONNRESET" }), true],
    ["ETIMEDOUT in cause", new Error("wrapped", { cause: errorWith({ code: "ETIMEDOUT" }) }), true],
    ["Deno reset", new Deno.errors.ConnectionReset("reset"), true],
    ["socket hang up", new Error("socket hang up"), true],
    ["404 NoSuchKey", errorWith({ name: "NoSuchKey", $metadata: { httpStatusCode: 404 } }), false],
    ["403", errorWith({ name: "AccessDenied", $metadata: { httpStatusCode: 403 } }), false],
    ["501", errorWith({ name: "NotImplemented", $metadata: { httpStatusCode: 501 } }), false],
    ["abort", errorWith({ name: "AbortError", code: "ECONNRESET" }), false],
    ["plain error", new Error("bad input"), false],
    ["not an error", "string", false],
  ];
  for (const [name, err, expected] of cases) {
    await t.step(name, () => assert.equal(isRetryableError(err), expected));
  }
});

Deno.test("withRetry", async (t) => {
  await t.step("retries transient failures, then returns the result", async () => {
    const f = flaky([errorWith({ code: "ECONNRESET" }), errorWith({ name: "SlowDown" })]);
    const waits: number[] = [];
    const retried: number[] = [];
    const got = await withRetry(f.fn, {
      policy,
      sleep: (ms) => (waits.push(ms), Promise.resolve()),
      random: () => 0.5,
      onRetry: (i) => retried.push(i.attempt),
    });
    assert.equal(got, "ok");
    assert.equal(f.calls(), 3);
    assert.deepEqual(waits, [50, 100]);
    assert.deepEqual(retried, [1, 2]);
  });

  await t.step("gives up after maxAttempts with the last error", async () => {
    const errs = [1, 2, 3, 4, 5].map((i) => errorWith({ code: "ETIMEDOUT", message: `t${i}` }));
    const f = flaky(errs);
    await assert.rejects(
      withRetry(f.fn, { policy, sleep: () => Promise.resolve() }),
      (e: unknown) => e === errs[3],
    );
    assert.equal(f.calls(), policy.maxAttempts);
  });

  await t.step("does not retry a permanent error", async () => {
    const notFound = errorWith({ name: "NoSuchKey", $metadata: { httpStatusCode: 404 } });
    const f = flaky([notFound]);
    await assert.rejects(withRetry(f.fn, { policy, sleep: () => Promise.resolve() }), notFound);
    assert.equal(f.calls(), 1);
  });

  await t.step("maxAttempts 1 means one try", async () => {
    const f = flaky([errorWith({ code: "ECONNRESET" })]);
    await assert.rejects(withRetry(f.fn, { policy: { ...policy, maxAttempts: 1 } }));
    assert.equal(f.calls(), 1);
  });

  await t.step("really waits with the default sleep", async () => {
    const f = flaky([errorWith({ code: "ECONNRESET" })]);
    const got = await withRetry(f.fn, {
      policy: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
    });
    assert.equal(got, "ok");
  });
});

Deno.test("sdkRetryStrategy drives the SDK's retry loop with the same policy", async (t) => {
  /** Replays the SDK retry middleware's loop around a flaky request. */
  async function runLikeSdk(
    strategy: ReturnType<typeof sdkRetryStrategy>,
    fn: () => Promise<string>,
    errorType = "TRANSIENT",
  ): Promise<{ result?: string; error?: unknown; delays: number[] }> {
    let tok = await strategy.acquireInitialRetryToken("");
    const delays: number[] = [];
    for (;;) {
      try {
        const result = await fn();
        strategy.recordSuccess(tok);
        return { result, delays };
      } catch (error) {
        try {
          tok = await strategy.refreshRetryTokenForRetry(tok, { error, errorType });
        } catch {
          return { error, delays };
        }
        delays.push(tok.getRetryDelay());
      }
    }
  }

  await t.step("retries 5xx until success", async () => {
    const s = sdkRetryStrategy(policy, { random: () => 0.999999 });
    const e503 = errorWith({ name: "SlowDown", $metadata: { httpStatusCode: 503 } });
    const f = flaky([e503, e503, e503]);
    const r = await runLikeSdk(s, f.fn);
    assert.equal(r.result, "ok");
    assert.deepEqual(r.delays, [99, 199, 249]);
  });

  await t.step("stops at maxAttempts", async () => {
    const s = sdkRetryStrategy(policy, { random: () => 0 });
    const e = errorWith({ code: "ECONNRESET" });
    const f = flaky([e, e, e, e, e, e]);
    const r = await runLikeSdk(s, f.fn);
    assert.equal(r.error, e);
    assert.equal(f.calls(), policy.maxAttempts);
  });

  await t.step("refuses client errors at once", async () => {
    const s = sdkRetryStrategy(policy);
    const e = errorWith({ name: "AccessDenied", $metadata: { httpStatusCode: 403 } });
    const f = flaky([e]);
    const r = await runLikeSdk(s, f.fn, "CLIENT_ERROR");
    assert.equal(r.error, e);
    assert.equal(f.calls(), 1);
  });

  await t.step("a Retry-After hint raises the delay up to maxDelayMs", async () => {
    const s = sdkRetryStrategy(policy, { random: () => 0 });
    const tok = await s.refreshRetryTokenForRetry(await s.acquireInitialRetryToken(""), {
      error: errorWith({ $metadata: { httpStatusCode: 503 } }),
      errorType: "THROTTLING",
      retryAfterHint: new Date(Date.now() + 60_000),
    });
    assert.equal(tok.getRetryDelay(), policy.maxDelayMs);
    assert.equal(tok.getRetryCount(), 1);
  });
});
