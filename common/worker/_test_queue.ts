// TEST DOUBLE, for the worker loop's tests only. It is NOT a manifest adapter: it implements
// just the queue methods `runWorker` calls (claim, renew, complete, fail, release, workCounts),
// in memory, following the semantics documented on `ManifestStore` (leases expire, tokens fence
// writes, attempts and backoff). The real adapters (common/manifest/sqlite.ts, postgres.ts) are
// held to the same semantics by their own contract tests.
import {
  type Claim,
  type Effects,
  type FailOptions,
  LeaseLostError,
  type StageName,
  type WorkState,
} from "../manifest/mod.ts";
import type { WorkQueue } from "./run_worker.ts";

export interface TestRow {
  stage: StageName;
  itemId: string;
  state: WorkState;
  owner: string | null;
  token: string | null;
  leaseUntil: number;
  attempts: number;
  notBefore: number;
  lastError: string | null;
  effects: Effects | null;
  /** Every `fail` call recorded against this row. */
  failures: { reason: string; message: string; retry: boolean }[];
}

export class TestQueue implements WorkQueue {
  readonly rows = new Map<string, TestRow>();
  /** Number of calls per method. */
  readonly calls = { claim: 0, renew: 0, complete: 0, fail: 0, release: 0, workCounts: 0 };
  /** Item ids sent to each `renew` call. */
  readonly renewals: string[][] = [];
  /** Backoff after a retryable failure when `fail` is given no delay. */
  retryDelayMs = 10;
  #nextToken = 1;

  #key(stage: StageName, itemId: string): string {
    return `${stage}\u0000${itemId}`;
  }

  /** Adds pending items (existing rows untouched). */
  add(stage: StageName, itemIds: string[]): void {
    for (const itemId of itemIds) {
      const k = this.#key(stage, itemId);
      if (this.rows.has(k)) continue;
      this.rows.set(k, {
        stage,
        itemId,
        state: "pending",
        owner: null,
        token: null,
        leaseUntil: 0,
        attempts: 0,
        notBefore: 0,
        lastError: null,
        effects: null,
        failures: [],
      });
    }
  }

  row(stage: StageName, itemId: string): TestRow {
    const r = this.rows.get(this.#key(stage, itemId));
    if (!r) throw new Error(`test queue: no row ${stage}/${itemId}`);
    return r;
  }

  /** Simulates another worker taking the item over (its lease expired and was re-claimed). */
  steal(stage: StageName, itemId: string, owner = "thief", leaseMs = 60_000): Claim {
    const r = this.row(stage, itemId);
    r.state = "leased";
    r.owner = owner;
    r.token = `t${this.#nextToken++}`;
    r.leaseUntil = Date.now() + leaseMs;
    r.attempts++;
    return this.#claimOf(r);
  }

  #claimOf(r: TestRow): Claim {
    return {
      stage: r.stage,
      itemId: r.itemId,
      owner: r.owner!,
      token: r.token!,
      attempts: r.attempts,
      leaseUntil: r.leaseUntil,
    };
  }

  #holds(claim: Claim): TestRow | null {
    const r = this.rows.get(this.#key(claim.stage, claim.itemId));
    if (!r || r.state !== "leased" || r.token !== claim.token || r.leaseUntil < Date.now()) {
      return null;
    }
    return r;
  }

  // deno-lint-ignore require-await
  async claim(
    stage: StageName,
    opts: { max: number; leaseMs: number; owner: string; maxAttempts?: number },
  ): Promise<Claim[]> {
    this.calls.claim++;
    const now = Date.now();
    const maxAttempts = opts.maxAttempts ?? 5;
    const out: Claim[] = [];
    for (const r of this.rows.values()) {
      if (out.length >= opts.max) break;
      if (r.stage !== stage) continue;
      const claimable = (r.state === "pending" && r.notBefore <= now) ||
        (r.state === "leased" && r.leaseUntil < now);
      if (!claimable) continue;
      if (r.attempts >= maxAttempts) {
        r.state = "failed";
        r.lastError = `attempts_exhausted: claimed ${r.attempts} times without completing`;
        r.owner = r.token = null;
        continue;
      }
      r.state = "leased";
      r.owner = opts.owner;
      r.token = `t${this.#nextToken++}`;
      r.leaseUntil = now + opts.leaseMs;
      r.attempts++;
      out.push(this.#claimOf(r));
    }
    return out;
  }

  // deno-lint-ignore require-await
  async renew(claims: Claim[], leaseMs: number): Promise<Claim[]> {
    this.calls.renew++;
    this.renewals.push(claims.map((c) => c.itemId));
    const out: Claim[] = [];
    for (const c of claims) {
      const r = this.#holds(c);
      if (!r) continue;
      r.leaseUntil = Date.now() + leaseMs;
      out.push(this.#claimOf(r));
    }
    return out;
  }

  // deno-lint-ignore require-await
  async complete(claim: Claim, effects: Effects = {}): Promise<void> {
    this.calls.complete++;
    const r = this.#holds(claim);
    if (!r) throw new LeaseLostError(claim);
    r.state = "done";
    r.owner = r.token = null;
    r.effects = effects;
  }

  // deno-lint-ignore require-await
  async fail(
    claim: Claim,
    reason: string,
    message: string,
    opts: FailOptions = {},
  ): Promise<WorkState> {
    this.calls.fail++;
    const r = this.#holds(claim);
    if (!r) throw new LeaseLostError(claim);
    const retry = opts.retry ?? true;
    r.failures.push({ reason, message, retry });
    r.lastError = `${reason}: ${message}`;
    r.owner = r.token = null;
    if (!retry || r.attempts >= (opts.maxAttempts ?? 5)) {
      r.state = "failed";
    } else {
      r.state = "pending";
      r.notBefore = Date.now() + (opts.delayMs ?? this.retryDelayMs);
    }
    return r.state;
  }

  // deno-lint-ignore require-await
  async release(claim: Claim): Promise<void> {
    this.calls.release++;
    const r = this.#holds(claim);
    if (!r) return;
    r.state = "pending";
    r.owner = r.token = null;
    r.attempts = Math.max(0, r.attempts - 1);
  }

  // deno-lint-ignore require-await
  async workCounts(stage?: StageName): Promise<Record<string, Record<WorkState, number>>> {
    this.calls.workCounts++;
    const out: Record<string, Record<WorkState, number>> = {};
    for (const r of this.rows.values()) {
      if (stage !== undefined && r.stage !== stage) continue;
      out[r.stage] ??= { pending: 0, leased: 0, done: 0, failed: 0 };
      out[r.stage][r.state]++;
    }
    return out;
  }
}
