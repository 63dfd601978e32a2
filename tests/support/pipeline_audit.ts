/**
 * The audit every fault case (and the load benchmark) ends with, after ingest and normalize:
 * - sources vs images vs variants per spec: every source has one `ingested` image row, and every
 *   image has exactly one variant row per registered variant spec (latest version per name);
 * - nothing stuck: the `ingest` and `normalize` queues hold only `done` items (none pending,
 *   leased or failed), one per image;
 * - objects written once: with a request-counting proxy's PUT counts, every recorded object
 *   (dataset copy and variant) was PUT exactly once, and nothing else was PUT into the store;
 * - no orphan objects: the store holds exactly the recorded objects (none missing, none extra);
 * - staging empty: no file left under any staging root.
 *
 * It gathers figures and problems rather than throwing, so a test asserts `problems` is empty
 * and a benchmark prints both.
 *
 * @example
 * ```ts
 * const audit = await auditPipeline({ manifest, store, sources: 40, puts: proxy.puts, stagingRoots: [dir] });
 * assert.deepEqual(audit.problems, []);
 * console.log(formatAudit(audit));
 * ```
 * @module
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { ManifestStore, VariantRow } from "../../common/manifest/mod.ts";
import type { ObjectStore } from "../../common/objectstore/mod.ts";
import { uriOfRecorded } from "../../common/objectstore/recorded_key.ts";

/** What the audit looks at. */
export interface PipelineAuditInput {
  manifest: ManifestStore;
  /** The dataset store, read directly (not through a fault proxy). */
  store: ObjectStore;
  /** Source objects put into the raw store. */
  sources: number;
  /**
   * Successful PUTs per `bucket/key` as counted by `tests/harness/s3_fault_proxy.ts` (S3 only);
   * left out, "written once" is not checked.
   */
  puts?: ReadonlyMap<string, number>;
  /** Staging roots of every worker (each must hold no file). */
  stagingRoots?: string[];
}

/** Figures of one audit; `problems` is empty when every check held. */
export interface PipelineAudit {
  sources: number;
  images: number;
  /** Variant spec names at their latest version (`320@v1`). */
  specs: string[];
  variants: number;
  /** Objects in the store, and how many of them the manifest does not reference. */
  objects: number;
  orphans: number;
  /** Recorded objects missing from the store. */
  missing: number;
  /** PUTs counted by the proxy into the dataset store (null: no proxy). */
  puts: number | null;
  /** Recorded objects PUT other than exactly once. */
  notWrittenOnce: number;
  /** Per queue: items by state, the sum and the maximum of attempts. */
  queues: Record<string, { counts: Record<string, number>; attempts: number; maxAttempts: number }>;
  /** Files left under the staging roots. */
  stagingFiles: number;
  problems: string[];
}

const PAGE = 1000;

async function allImages(manifest: ManifestStore) {
  const out = [];
  let afterId: string | undefined;
  for (;;) {
    const page = await manifest.listImages({ afterId, limit: PAGE });
    out.push(...page);
    if (page.length < PAGE) return out;
    afterId = page.at(-1)!.id;
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** `s3://bucket/prefix/key` → `bucket/prefix/key` (the proxy's key); other schemes: null. */
function proxyKey(uri: string): string | null {
  return uri.startsWith("s3://") ? uri.slice(5) : null;
}

function sample(xs: Iterable<string>, n = 5): string {
  const all = [...xs];
  return all.slice(0, n).join(", ") + (all.length > n ? `, … (${all.length} in all)` : "");
}

type Image = Awaited<ReturnType<typeof allImages>>[number];

/** Every image has exactly one variant row per spec name at its latest version. */
async function checkVariants(manifest: ManifestStore, ingested: Image[], problems: string[]) {
  const latest = new Map<string, { specHash: string; version: number }>();
  for (const s of await manifest.listVariantSpecs()) {
    const cur = latest.get(s.name);
    if (!cur || s.version > cur.version) latest.set(s.name, s);
  }
  if (latest.size === 0) problems.push("expected registered variant specs, found none");
  const variants: VariantRow[] = [];
  for (let i = 0; i < ingested.length; i += PAGE) {
    const ids = ingested.slice(i, i + PAGE).map((r) => r.id);
    variants.push(...await manifest.listVariants({ imageIds: ids }));
  }
  const perImageSpec = new Map<string, number>();
  for (const v of variants) {
    if (latest.get(v.name)?.specHash !== v.specHash) continue;
    const k = `${v.imageId} ${v.name}`;
    perImageSpec.set(k, (perImageSpec.get(k) ?? 0) + 1);
  }
  const bad: string[] = [];
  for (const img of ingested) {
    for (const name of latest.keys()) {
      const n = perImageSpec.get(`${img.id} ${name}`) ?? 0;
      if (n !== 1) bad.push(`${img.sourceKey}/${name}: ${n}`);
    }
  }
  if (bad.length) problems.push(`expected one variant per image and spec, found ${sample(bad)}`);
  return { variants, specs: [...latest].map(([name, s]) => `${name}@v${s.version}`) };
}

/** Both queues hold only `done` items, as many as expected. */
async function checkQueues(
  manifest: ManifestStore,
  expected: Record<"ingest" | "normalize", number>,
  problems: string[],
): Promise<PipelineAudit["queues"]> {
  const queues: PipelineAudit["queues"] = {};
  for (const stage of ["ingest", "normalize"] as const) {
    const counts: Record<string, number> = (await manifest.workCounts(stage))[stage] ?? {};
    const rows = await manifest.listWork(stage, undefined, expected[stage] + PAGE);
    const attempts = rows.reduce((n, r) => n + r.attempts, 0);
    const maxAttempts = rows.reduce((n, r) => Math.max(n, r.attempts), 0);
    queues[stage] = { counts, attempts, maxAttempts };
    const stuck = (counts.pending ?? 0) + (counts.leased ?? 0) + (counts.failed ?? 0);
    if (stuck > 0) {
      const which = rows.filter((r) => r.state !== "done");
      problems.push(
        `${stage}: expected nothing pending, leased or failed, found ${JSON.stringify(counts)}: ${
          sample(which.map((r) => `${r.itemId} ${r.state} (${r.lastError ?? "-"})`))
        }`,
      );
    }
    if ((counts.done ?? 0) !== expected[stage]) {
      problems.push(`${stage}: expected ${expected[stage]} items done, found ${counts.done ?? 0}`);
    }
  }
  return queues;
}

/** Recorded vs stored objects, and with the proxy's counts, each recorded object PUT once. */
async function checkObjects(
  store: ObjectStore,
  recorded: Set<string>,
  putCounts: ReadonlyMap<string, number> | undefined,
  problems: string[],
) {
  const stored = new Set<string>();
  for await (const o of store.list()) stored.add(store.uriFor(o.key));
  const orphans = [...stored].filter((u) => !recorded.has(u));
  const missing = [...recorded].filter((u) => !stored.has(u));
  if (orphans.length) problems.push(`expected no orphan objects, found ${sample(orphans)}`);
  if (missing.length) problems.push(`recorded objects missing from the store: ${sample(missing)}`);
  let puts: number | null = null;
  const wrong: string[] = [];
  if (putCounts) {
    const base = proxyKey(store.url.replace(/\/?$/, "/"));
    if (base === null) problems.push(`PUT counts given for a store that is not S3: ${store.url}`);
    const counted = new Map([...putCounts].filter(([k]) => base !== null && k.startsWith(base)));
    puts = [...counted.values()].reduce((a, b) => a + b, 0);
    for (const uri of recorded) {
      const n = counted.get(proxyKey(uri) ?? "") ?? 0;
      if (n !== 1) wrong.push(`${uri}: ${n} PUTs`);
    }
    for (const [k, n] of counted) {
      if (!recorded.has(`s3://${k}`)) wrong.push(`s3://${k}: PUT ${n}× but not recorded`);
    }
    if (wrong.length) problems.push(`expected every object PUT exactly once: ${sample(wrong)}`);
  }
  return { objects: stored.size, orphans: orphans.length, missing: missing.length, puts, wrong };
}

/**
 * Runs the audit; see the module documentation.
 *
 * @example
 * ```ts
 * const a = await auditPipeline({ manifest, store, sources: 10 });
 * a.problems; // [] when nothing was lost, duplicated, orphaned or stuck
 * ```
 */
export async function auditPipeline(input: PipelineAuditInput): Promise<PipelineAudit> {
  const { manifest, store } = input;
  const problems: string[] = [];

  const images = await allImages(manifest);
  const ingested = images.filter((i) => i.status === "ingested");
  const other = images.filter((i) => i.status !== "ingested");
  if (ingested.length !== input.sources) {
    problems.push(`sources ${input.sources} vs ingested images ${ingested.length}`);
  }
  if (other.length > 0) {
    problems.push(
      `expected every image ingested, found ${
        sample(other.map((i) => `${i.sourceKey} ${i.status} (${i.error ?? "-"})`))
      }`,
    );
  }
  const { variants, specs } = await checkVariants(manifest, ingested, problems);
  const queues = await checkQueues(
    manifest,
    { ingest: input.sources, normalize: ingested.length },
    problems,
  );
  const recorded = new Set<string>();
  for (const i of ingested) if (i.datasetUri) recorded.add(uriOfRecorded(store, i.datasetUri));
  for (const v of variants) recorded.add(uriOfRecorded(store, v.uri));
  const objects = await checkObjects(store, recorded, input.puts, problems);

  const left: string[] = [];
  for (const root of input.stagingRoots ?? []) left.push(...await filesUnder(root));
  if (left.length) problems.push(`expected staging empty, found ${sample(left)}`);

  return {
    sources: input.sources,
    images: ingested.length,
    specs,
    variants: variants.length,
    objects: objects.objects,
    orphans: objects.orphans,
    missing: objects.missing,
    puts: objects.puts,
    notWrittenOnce: objects.wrong.length,
    queues,
    stagingFiles: left.length,
    problems,
  };
}

/**
 * One line of figures for a test's output or a benchmark's report.
 *
 * @example
 * ```ts
 * formatAudit(audit); // "40 sources → 40 images → 120 variants (320@v1, …); 160 objects …"
 * ```
 */
export function formatAudit(a: PipelineAudit): string {
  const q = (s: string) => {
    const x = a.queues[s];
    return `${s} ${x.counts.done ?? 0} done/${x.counts.failed ?? 0} failed/` +
      `${
        (x.counts.pending ?? 0) + (x.counts.leased ?? 0)
      } pending+leased, attempts ${x.attempts} ` +
      `(max ${x.maxAttempts})`;
  };
  return `${a.sources} sources → ${a.images} images → ${a.variants} variants ` +
    `(${a.specs.join(", ")}); ${a.objects} objects, ${a.orphans} orphans, ${a.missing} missing; ` +
    (a.puts === null ? "" : `${a.puts} PUTs, ${a.notWrittenOnce} not written exactly once; `) +
    `${q("ingest")}; ${q("normalize")}; staging files ${a.stagingFiles}`;
}
