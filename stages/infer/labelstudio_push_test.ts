import assert from "node:assert/strict";
import type { LabelStudioTask } from "../../common/annotations/mod.ts";
import { labelStudioPusher, LabelStudioPushError } from "./labelstudio_push.ts";
import { labelStudioTasks } from "./outputs.ts";

/** A stand-in Label Studio on 127.0.0.1 that checks the import request's shape. */
function fakeLabelStudio(answers: { status: number; body: string }[]) {
  const problems: string[] = [];
  const received: LabelStudioTask[][] = [];
  let calls = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    calls++;
    const url = new URL(req.url);
    if (req.method !== "POST") problems.push(`method: expected POST, found ${req.method}`);
    if (url.pathname !== "/api/projects/7/import") problems.push(`path: found ${url.pathname}`);
    if (req.headers.get("authorization") !== "Token s3cret") {
      problems.push(`authorization: found ${req.headers.get("authorization")}`);
    }
    if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) {
      problems.push(`content-type: found ${req.headers.get("content-type")}`);
    }
    const body = await req.json();
    if (!Array.isArray(body)) problems.push("body: expected a JSON array of tasks");
    for (const task of body as LabelStudioTask[]) {
      if (typeof task.data?.image !== "string") problems.push("task: expected data.image");
      for (const p of task.predictions ?? []) {
        if (typeof p.model_version !== "string" || typeof p.score !== "number") {
          problems.push("prediction: expected model_version and score");
        }
        for (const r of p.result) {
          if (r.type !== "rectanglelabels" || typeof r.original_width !== "number") {
            problems.push("result: expected a rectanglelabels region with original_width");
          }
        }
      }
    }
    received.push(body);
    const a = answers[Math.min(calls - 1, answers.length - 1)];
    return new Response(a.body, {
      status: a.status,
      headers: { "content-type": "application/json" },
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    problems,
    received,
    get calls() {
      return calls;
    },
    close: () => server.shutdown(),
  };
}

const TASKS = labelStudioTasks([{
  id: "img_1",
  url: "s3://data/images/aa/a.jpg",
  fileName: "a.jpg",
  width: 100,
  height: 50,
  boxes: [{ label: "cat", bbox: [10, 5, 20, 10], score: 0.9 }],
  score: 0.9,
}], { name: "det", version: "3", alias: "champion" });

Deno.test("labelStudioPusher imports tasks with a token, as Label Studio's API expects", async () => {
  const ls = fakeLabelStudio([{ status: 201, body: '{"task_count": 1, "annotation_count": 0}' }]);
  try {
    const push = labelStudioPusher({ url: ls.url + "/", token: "s3cret", projectId: 7 });
    const r = await push(TASKS);
    assert.deepEqual(r, { taskCount: 1, status: 201 });
    assert.deepEqual(ls.problems, []);
    assert.deepEqual(ls.received, [TASKS]);
  } finally {
    await ls.close();
  }
});

Deno.test("labelStudioPusher retries a busy server, and fails at once on a refusal", async () => {
  const busy = fakeLabelStudio([
    { status: 503, body: "{}" },
    { status: 201, body: '{"task_count": 1}' },
  ]);
  try {
    const push = labelStudioPusher({
      url: busy.url,
      token: "s3cret",
      projectId: 7,
      baseDelayMs: 1,
    });
    assert.equal((await push(TASKS)).taskCount, 1);
    assert.equal(busy.calls, 2);
  } finally {
    await busy.close();
  }
  const refused = fakeLabelStudio([{ status: 401, body: '{"detail": "Invalid token."}' }]);
  try {
    const push = labelStudioPusher({
      url: refused.url,
      token: "s3cret",
      projectId: 7,
      baseDelayMs: 1,
    });
    const err = await push(TASKS).catch((e) => e);
    assert.ok(err instanceof LabelStudioPushError);
    assert.equal(err.code, "labelstudio_push_failed");
    assert.equal(err.status, 401);
    assert.match(err.message, /expected 2xx, found 401: .*Invalid token/);
    assert.equal(refused.calls, 1);
  } finally {
    await refused.close();
  }
});
