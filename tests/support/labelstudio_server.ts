/**
 * A loopback Label Studio for tests: it holds tasks and annotations, sends webhooks in the
 * payload shapes of labelstud.io/guide/webhook_reference (ANNOTATION_CREATED / _UPDATED:
 * `{ action, task, annotation, project }`; ANNOTATIONS_DELETED: `{ action, annotations: [{ id }],
 * project }`; TASKS_DELETED: `{ action, tasks: [{ id }], project }`) and serves the project
 * export API (`GET /api/projects/<id>/export?exportType=JSON`, `Authorization: Token <key>`),
 * which answers the tasks with their `annotations` the way Label Studio's JSON export does.
 * Webhook delivery can be switched off to play a missed webhook.
 *
 * @example
 * ```ts
 * const ls = startLabelStudio({ apiToken: "k", webhookUrl, webhookHeaders: { authorization: "Bearer t" } });
 * const task = ls.addTask({ image: "s3://raw/a.jpg", sluice_image_id: id });
 * await ls.annotate(task.id, [rect("cat", 0, 0, 10, 10, 100, 100)]);
 * await ls.stop();
 * ```
 * @module
 */

export interface FakeTask {
  id: number;
  data: Record<string, unknown>;
  predictions: unknown[];
  annotations: FakeAnnotation[];
}

export interface FakeAnnotation {
  id: number;
  task: number;
  result: unknown[];
  completed_by: number;
  was_cancelled: boolean;
  created_at: string;
  updated_at: string;
}

/** A rectangle result in Label Studio's percent coordinates, from pixels. */
export function rect(
  label: string,
  x: number,
  y: number,
  w: number,
  h: number,
  width: number,
  height: number,
): Record<string, unknown> {
  return {
    id: crypto.randomUUID().slice(0, 10),
    type: "rectanglelabels",
    from_name: "label",
    to_name: "image",
    original_width: width,
    original_height: height,
    image_rotation: 0,
    value: {
      x: (x / width) * 100,
      y: (y / height) * 100,
      width: (w / width) * 100,
      height: (h / height) * 100,
      rotation: 0,
      rectanglelabels: [label],
    },
  };
}

export interface FakeLabelStudio {
  url: string;
  projectId: number;
  /** Whether webhooks are sent (false plays a missed delivery). */
  deliver: boolean;
  /** Responses of the webhooks sent, in order. */
  deliveries: { action: string; status: number; body: unknown }[];
  addTask(data: Record<string, unknown>, predictions?: unknown[]): FakeTask;
  annotate(taskId: number, result: unknown[], user?: number): Promise<FakeAnnotation>;
  update(annotationId: number, result: unknown[]): Promise<FakeAnnotation>;
  deleteAnnotation(annotationId: number): Promise<void>;
  deleteTask(taskId: number): Promise<void>;
  /** Sends a payload as is (to replay or reorder deliveries). */
  send(payload: Record<string, unknown>): Promise<{ status: number; body: unknown }>;
  /** The payload an annotation's webhook carries. */
  annotationPayload(action: string, a: FakeAnnotation): Record<string, unknown>;
  stop(): Promise<void>;
}

export function startLabelStudio(opts: {
  apiToken: string;
  webhookUrl: string;
  webhookHeaders: Record<string, string>;
  projectId?: number;
}): FakeLabelStudio {
  const projectId = opts.projectId ?? 7;
  const tasks = new Map<number, FakeTask>();
  let nextTask = 100;
  let nextAnnotation = 500;
  // Strictly increasing timestamps, one second apart.
  let clock = Date.parse("2026-12-07T03:00:00.000Z");
  const stamp = () => new Date(clock += 1000).toISOString();
  const project = () => ({ id: projectId, title: "sluice review", task_number: tasks.size });

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    const m = /^\/api\/projects\/(\d+)\/export$/.exec(url.pathname);
    if (req.method !== "GET" || !m) return new Response("not found", { status: 404 });
    if (req.headers.get("authorization") !== `Token ${opts.apiToken}`) {
      return Response.json({ detail: "Authentication credentials were not provided." }, {
        status: 401,
      });
    }
    if (Number(m[1]) !== projectId || url.searchParams.get("exportType") !== "JSON") {
      return Response.json({ detail: "Not found." }, { status: 404 });
    }
    return Response.json([...tasks.values()].map((t) => ({
      id: t.id,
      data: t.data,
      predictions: t.predictions,
      annotations: t.annotations,
      project: projectId,
    })));
  });
  const addr = server.addr as Deno.NetAddr;

  const ls: FakeLabelStudio = {
    url: `http://127.0.0.1:${addr.port}`,
    projectId,
    deliver: true,
    deliveries: [],
    addTask(data, predictions = []) {
      const t: FakeTask = { id: nextTask++, data, predictions, annotations: [] };
      tasks.set(t.id, t);
      return t;
    },
    annotationPayload(action, a) {
      const t = tasks.get(a.task);
      return {
        action,
        annotation: { ...a, lead_time: 3.5, ground_truth: false, parent_prediction: null },
        task: t
          ? { id: t.id, data: t.data, is_labeled: true, project: projectId }
          : { id: a.task, data: {} },
        project: project(),
      };
    },
    async send(payload) {
      // Read at send time: the receiver may start after this server.
      const res = await fetch(opts.webhookUrl, {
        method: "POST",
        headers: { "content-type": "application/json", ...opts.webhookHeaders },
        body: JSON.stringify(payload),
      });
      const body = await res.json();
      ls.deliveries.push({ action: String(payload.action), status: res.status, body });
      return { status: res.status, body };
    },
    async annotate(taskId, result, user = 1) {
      const t = tasks.get(taskId);
      if (!t) throw new Error(`task ${taskId}: expected an existing task, found none`);
      const now = stamp();
      const a: FakeAnnotation = {
        id: nextAnnotation++,
        task: taskId,
        result,
        completed_by: user,
        was_cancelled: false,
        created_at: now,
        updated_at: now,
      };
      t.annotations.push(a);
      if (ls.deliver) await ls.send(ls.annotationPayload("ANNOTATION_CREATED", a));
      return a;
    },
    async update(annotationId, result) {
      for (const t of tasks.values()) {
        const a = t.annotations.find((x) => x.id === annotationId);
        if (!a) continue;
        a.result = result;
        a.updated_at = stamp();
        if (ls.deliver) await ls.send(ls.annotationPayload("ANNOTATION_UPDATED", a));
        return { ...a };
      }
      throw new Error(`annotation ${annotationId}: expected an existing annotation, found none`);
    },
    async deleteAnnotation(annotationId) {
      for (const t of tasks.values()) {
        t.annotations = t.annotations.filter((a) => a.id !== annotationId);
      }
      if (ls.deliver) {
        await ls.send({
          action: "ANNOTATIONS_DELETED",
          annotations: [{ id: annotationId }],
          project: project(),
        });
      }
    },
    async deleteTask(taskId) {
      tasks.delete(taskId);
      if (ls.deliver) {
        await ls.send({ action: "TASKS_DELETED", tasks: [{ id: taskId }], project: project() });
      }
    },
    stop: () => server.shutdown(),
  };
  return ls;
}
