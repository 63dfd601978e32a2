import assert from "node:assert/strict";
import type { LabelStudioTask } from "../../common/annotations/mod.ts";
import { labelStudioPusher, LabelStudioPushError } from "./labelstudio_push.ts";
import { labelStudioTasks } from "./outputs.ts";
import { looksLikeJwt } from "./labelstudio_auth.ts";
import { fakeLabelStudio as lsServer, makeJwt } from "../../tests/support/fake_labelstudio.ts";

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
    assert.deepEqual(r, { taskCount: 1, status: 201, batches: 1 });
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
    assert.match(
      err.message,
      /refused the legacy token \(401: .*Invalid token.*labelStudioAuth pat/,
    );
    assert.equal(refused.calls, 1);
  } finally {
    await refused.close();
  }
});

const PAT = makeJwt({ token_type: "refresh", user_id: 1 });
const PROJECTS = {
  7: { fromNames: ["label"], toNames: ["image"] },
  8: { fromNames: ["label"], toNames: ["image"], forbidden: true },
};

Deno.test("token kinds are told apart by shape", () => {
  assert.equal(looksLikeJwt(PAT), true);
  assert.equal(looksLikeJwt("d6f8a2622d39e9d89ff0dfef1a80ad877f4ee9e3"), false);
  assert.equal(looksLikeJwt("a.b.c"), false);
});

Deno.test("Personal Access Token: refresh → Bearer, refresh again once on 401", async () => {
  const ls = lsServer({ pat: PAT, accessUses: 2, projects: PROJECTS });
  try {
    const push = labelStudioPusher({ url: ls.url, token: PAT, projectId: 7, batchSize: 1 });
    const many = Array.from(
      { length: 5 },
      (_, i) => ({ ...TASKS[0], data: { image: `${i}.jpg` } }),
    );
    const r = await push(many);
    // 5 batches; each access token is good for 2 requests, so 3 refreshes in all.
    assert.deepEqual(r, { taskCount: 5, status: 201, batches: 5 });
    assert.equal(ls.refreshes, 3);
    assert.ok(ls.authorizations.every((a) => a.startsWith("Bearer ")));
    assert.deepEqual(ls.imports.map((b) => b.length), [1, 1, 1, 1, 1]);
  } finally {
    await ls.close();
  }
});

Deno.test("legacy token: Authorization: Token, no refresh; auth can be forced", async () => {
  const ls = lsServer({
    legacyToken: "d6f8a2622d39e9d89ff0dfef1a80ad877f4ee9e3",
    pat: PAT,
    projects: PROJECTS,
  });
  try {
    const legacy = labelStudioPusher({
      url: ls.url,
      token: "d6f8a2622d39e9d89ff0dfef1a80ad877f4ee9e3",
      projectId: 7,
    });
    assert.equal((await legacy(TASKS)).taskCount, 1);
    assert.equal(ls.refreshes, 0);
    assert.deepEqual(ls.authorizations, ["Token d6f8a2622d39e9d89ff0dfef1a80ad877f4ee9e3"]);
    // A PAT sent as a legacy token is refused with a hint.
    const wrong = labelStudioPusher({ url: ls.url, token: PAT, auth: "token", projectId: 7 });
    const err = await wrong(TASKS).catch((e) => e);
    assert.equal(err.status, 401);
    assert.match(err.message, /refused the legacy token .*labelStudioAuth pat/);
  } finally {
    await ls.close();
  }
});

Deno.test("clear errors for a revoked PAT, 403, 404 and a config mismatch; retries; batches", async () => {
  const ls = lsServer({ pat: PAT, projects: PROJECTS, failImports: [503, 429] });
  try {
    const revoked = labelStudioPusher({
      url: ls.url,
      token: makeJwt({ jti: "old" }),
      projectId: 7,
    });
    const e1 = await revoked(TASKS).catch((e) => e);
    assert.ok(e1 instanceof LabelStudioPushError);
    assert.equal(e1.status, 401);
    assert.match(e1.message, /token refresh .*found 401.*invalid, expired or revoked/);

    const busy = labelStudioPusher({
      url: ls.url,
      token: PAT,
      projectId: 7,
      baseDelayMs: 1,
      batchSize: 2,
    });
    const three = [TASKS[0], TASKS[0], TASKS[0]];
    assert.deepEqual(await busy(three), { taskCount: 3, status: 201, batches: 2 });
    assert.deepEqual(ls.imports.map((b) => b.length), [2, 1]);

    const forbidden = labelStudioPusher({ url: ls.url, token: PAT, projectId: 8 });
    const e2 = await forbidden(TASKS).catch((e) => e);
    assert.equal(e2.status, 403);
    assert.match(e2.message, /may not import into project 8/);

    const missing = labelStudioPusher({ url: ls.url, token: PAT, projectId: 9 });
    const e3 = await missing(TASKS).catch((e) => e);
    assert.equal(e3.status, 404);
    assert.match(e3.message, /project 9 not found at .*check labelStudioProjectId/);

    const mismatched = labelStudioTasks(
      [{
        id: "img_2",
        url: "s3://d/b.jpg",
        fileName: "b.jpg",
        width: 10,
        height: 10,
        boxes: [{ label: "cat", bbox: [1, 1, 2, 2], score: 0.5 }],
        score: 0.5,
      }],
      { name: "det", version: "3", alias: null },
      { fromName: "bbox", toName: "img" },
    );
    const e4 = await busy([TASKS[0], TASKS[0], ...mismatched]).catch((e) => e);
    assert.equal(e4.status, 400);
    assert.equal(e4.imported, 2, "the first batch went in before the second was refused");
    assert.match(e4.message, /from_name bbox \/ to_name img not found/);
  } finally {
    await ls.close();
  }
});
