/**
 * Label Studio's JSON-MIN export, read as the full JSON export's tasks.
 *
 * JSON-MIN (label-studio-sdk `Converter.convert_to_json_min`) writes one flat record per
 * submitted annotation: the task's `data` fields at the top level, `id` (the task id), one key per
 * control tag (`from_name`, e.g. `label`) holding that annotation's regions as a list of their
 * `value` objects with `original_width` / `original_height` added and `type` removed, and
 * `annotator`, `annotation_id`, `created_at`, `updated_at`, `lead_time`. A task with several
 * annotations gives several records (newest first); a task nobody annotated gives one record
 * without output keys and with `annotation_id: null`; cancelled annotations give none.
 *
 * The region type is not written, so it is read from the value's keys: `rectanglelabels` or
 * `polygonlabels` name themselves; `labels` (a `Labels` tag on the image) with `x, y, width,
 * height` is a labelled rectangle and with `points` a labelled polygon; bare geometry is an
 * unlabelled `rectangle` / `polygon` (the shape half of a `Rectangle` + `Labels` pair, whose
 * labelled half carries the same geometry and is the one kept).
 *
 * @example
 * ```ts
 * const tasks = jsonMinToTasks([{ image: "s3://b/a.jpg", id: 7, label: [], annotation_id: 3 }], "image");
 * // [{ task: { id: 7, data: { image: "s3://b/a.jpg" }, annotations: [{ id: 3, result: [] }] }, index: 0 }]
 * ```
 * @module
 */

/** Keys of a JSON-MIN record that describe the annotation, not the task's data. */
const META_KEYS = new Set([
  "id",
  "annotator",
  "annotation_id",
  "created_at",
  "updated_at",
  "lead_time",
  "agreement",
  "history",
  "was_cancelled",
]);

type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

/** True for a record in the JSON-MIN shape (no `data`, no annotations, the image at the top). */
export function isJsonMinRecord(raw: unknown, dataKey: string): boolean {
  return isObject(raw) && !("data" in raw) && !("annotations" in raw) &&
    !("completions" in raw) && dataKey in raw;
}

const hasRect = (v: Obj) => ["x", "y", "width", "height"].every((k) => typeof v[k] === "number");

/** The full export's result type of a JSON-MIN region, and its value; null if not a region. */
function regionResult(v: Obj): { type: string; value: Obj } | null {
  if (Array.isArray(v.rectanglelabels)) return { type: "rectanglelabels", value: v };
  if (Array.isArray(v.polygonlabels)) return { type: "polygonlabels", value: v };
  if (Array.isArray(v.labels) && hasRect(v)) {
    return { type: "rectanglelabels", value: { ...v, rectanglelabels: v.labels } };
  }
  if (Array.isArray(v.labels) && Array.isArray(v.points)) {
    return { type: "polygonlabels", value: { ...v, polygonlabels: v.labels } };
  }
  if (Array.isArray(v.points)) return { type: "polygon", value: v };
  if (hasRect(v)) return { type: "rectangle", value: v };
  return null;
}

const geometry = (v: Obj) =>
  JSON.stringify(hasRect(v) ? [v.x, v.y, v.width, v.height, v.rotation ?? 0] : v.points);

/** The results (full-export shape) of one record's output keys. */
function resultsOf(outputs: [string, Obj[]][]): unknown[] {
  const results: { from: string; type: string; value: Obj; raw: Obj }[] = [];
  for (const [from, regions] of outputs) {
    for (const raw of regions) {
      const r = regionResult(raw);
      // Not a shape (a `Choices` answer written as an object, say): left for the converter to
      // report as a result that is not a box or polygon.
      results.push({
        from,
        raw,
        type: r?.type ?? `${from} (not a region)`,
        value: r?.value ?? raw,
      });
    }
  }
  const labelled = new Set(
    results.filter((r) => r.type.endsWith("labels")).map((r) => geometry(r.value)),
  );
  return results
    // A `Rectangle` + `Labels` pair writes each shape twice: keep the labelled one.
    .filter((r) =>
      !((r.type === "rectangle" || r.type === "polygon") && labelled.has(geometry(r.value)))
    )
    .map((r, i) => {
      const { original_width, original_height, ...value } = r.value;
      return {
        id: `min-${i}`,
        from_name: r.from,
        type: r.type,
        ...(original_width === undefined ? {} : { original_width }),
        ...(original_height === undefined ? {} : { original_height }),
        value,
      };
    });
}

/**
 * Turns JSON-MIN records into full-export tasks (records of one task id merged, one annotation
 * each), leaving any full-export task as it is. `index` is the position of the (first) record in
 * the input, for error paths.
 */
export function jsonMinToTasks(
  list: readonly unknown[],
  dataKey: string,
): { task: unknown; index: number }[] {
  const out: { task: unknown; index: number }[] = [];
  const byTaskId = new Map<string, { data: Obj; annotations: Obj[] }>();
  list.forEach((raw, index) => {
    if (!isJsonMinRecord(raw, dataKey)) return out.push({ task: raw, index });
    const rec = raw as Obj;
    const data: Obj = {};
    const outputs: [string, Obj[]][] = [];
    for (const [k, v] of Object.entries(rec)) {
      if (META_KEYS.has(k)) continue;
      // An output key holds a list of region objects; everything else is the task's data.
      if (k !== dataKey && Array.isArray(v) && v.length > 0 && v.every(isObject)) {
        outputs.push([k, v]);
      } else data[k] = v;
    }
    const annotated = rec.annotation_id !== undefined && rec.annotation_id !== null;
    const annotation: Obj | null = annotated
      ? {
        id: rec.annotation_id,
        created_at: rec.created_at,
        updated_at: rec.updated_at,
        result: resultsOf(outputs),
      }
      : null;
    const taskId = rec.id === undefined || rec.id === null ? null : String(rec.id);
    const known = taskId === null ? undefined : byTaskId.get(taskId);
    if (known) {
      if (annotation) known.annotations.push(annotation);
      return;
    }
    const task = { id: rec.id ?? null, data, annotations: annotation ? [annotation] : [] };
    if (taskId !== null) byTaskId.set(taskId, task);
    out.push({ task, index });
  });
  return out;
}
