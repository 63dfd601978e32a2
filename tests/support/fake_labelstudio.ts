/**
 * A loopback stand-in for the parts of Label Studio's API that Sluice calls, implementing its
 * authentication as documented (https://labelstud.io/guide/access_tokens):
 *
 * - `POST /api/token/refresh` with `{"refresh": <PAT>}` → `{"access": <JWT>}` (401
 *   `token_not_valid` for an unknown or revoked PAT);
 * - `Authorization: Token <legacy>` and `Authorization: Bearer <access>` on the API, with access
 *   tokens that expire after `accessUses` requests (standing in for their five-minute TTL);
 * - `POST /api/projects/<id>/import`: 404 for an unknown project, 403 for a project the user may
 *   not touch, 400 when a result names a `from_name`/`to_name` the project's config lacks (as
 *   recent Label Studio versions do), 201 `{"task_count": n, ...}` otherwise.
 *
 * @example
 * ```ts
 * const ls = fakeLabelStudio({ legacyToken: "abc", pat: makePat(), projects: { 7: { fromNames: ["label"], toNames: ["image"] } } });
 * // ... ls.url, ls.imports, ls.refreshes
 * await ls.close();
 * ```
 * @module
 */

/** A JWT-shaped token (header `{"alg":"HS256","typ":"JWT"}`), as Label Studio's PATs are. */
export function makeJwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) =>
    btoa(JSON.stringify(o)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}.c2lnbmF0dXJl`;
}

export interface FakeProject {
  /** Control tag names the project's label config has (`from_name`). */
  fromNames: string[];
  /** Object tag names (`to_name`). */
  toNames: string[];
  /** The token's user may not import here (403). */
  forbidden?: boolean;
}

export interface FakeLabelStudioOptions {
  legacyToken?: string;
  pat?: string;
  /** Requests an access token is good for before it "expires" (default unlimited). */
  accessUses?: number;
  projects: Record<number, FakeProject>;
  /** Statuses to answer the next import requests with before behaving normally (e.g. 503). */
  failImports?: number[];
}

export interface FakeLabelStudio {
  url: string;
  /** Task arrays accepted, per request. */
  imports: unknown[][];
  /** Authorization headers seen on import requests, in order. */
  authorizations: string[];
  refreshes: number;
  close(): Promise<void>;
}

type ResultLike = { from_name?: unknown; to_name?: unknown };
type TaskLike = {
  predictions?: { result?: ResultLike[] }[];
  annotations?: { result?: ResultLike[] }[];
};

export function fakeLabelStudio(opts: FakeLabelStudioOptions): FakeLabelStudio {
  const access = new Map<string, number>(); // token → uses left
  const failures = [...(opts.failImports ?? [])];
  let refreshes = 0;
  let issued = 0;
  const imports: unknown[][] = [];
  const authorizations: string[] = [];
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json" },
    });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (req.method === "POST" && url.pathname === "/api/token/refresh") {
      refreshes++;
      let body: { refresh?: unknown } = {};
      try {
        body = await req.json();
      } catch {
        return json(400, { refresh: ["This field is required."] });
      }
      if (typeof body.refresh !== "string" || !opts.pat || body.refresh !== opts.pat) {
        return json(401, { detail: "Token is invalid or expired", code: "token_not_valid" });
      }
      const token = makeJwt({ token_type: "access", jti: ++issued });
      access.set(token, opts.accessUses ?? Infinity);
      return json(200, { access: token });
    }
    const m = /^\/api\/projects\/(\d+)\/import$/.exec(url.pathname);
    if (!m) return json(404, { detail: "Not found." });
    const authz = req.headers.get("authorization") ?? "";
    authorizations.push(authz);
    let ok = false;
    if (authz.startsWith("Token ")) ok = !!opts.legacyToken && authz.slice(6) === opts.legacyToken;
    else if (authz.startsWith("Bearer ")) {
      const left = access.get(authz.slice(7));
      if (left !== undefined && left > 0) {
        access.set(authz.slice(7), left - 1);
        ok = true;
      }
    }
    if (!ok) {
      return json(401, {
        detail: authz ? "Invalid token." : "Authentication credentials were not provided.",
      });
    }
    const project = opts.projects[Number(m[1])];
    if (!project) return json(404, { detail: "Not found." });
    if (project.forbidden) {
      return json(403, { detail: "You do not have permission to perform this action." });
    }
    const status = failures.shift();
    if (status !== undefined) return json(status, { detail: "busy" });
    const tasks = await req.json() as TaskLike[];
    if (!Array.isArray(tasks)) return json(400, { detail: "expected a list of tasks" });
    for (const t of tasks) {
      for (const set of [...(t.predictions ?? []), ...(t.annotations ?? [])]) {
        for (const r of set.result ?? []) {
          if (
            !project.fromNames.includes(String(r.from_name)) ||
            !project.toNames.includes(String(r.to_name))
          ) {
            return json(400, {
              validation_errors: {
                non_field_errors: [
                  `from_name ${r.from_name} / to_name ${r.to_name} not found in the labeling config`,
                ],
              },
            });
          }
        }
      }
    }
    imports.push(tasks);
    return json(201, {
      task_count: tasks.length,
      annotation_count: 0,
      prediction_count: tasks.reduce((n, t) => n + (t.predictions?.length ?? 0), 0),
      project: Number(m[1]),
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    imports,
    authorizations,
    get refreshes() {
      return refreshes;
    },
    close: () => server.shutdown(),
  };
}
