/**
 * Label Studio API authentication, both kinds of token Label Studio issues
 * (https://labelstud.io/guide/access_tokens):
 *
 * - legacy tokens: `Authorization: Token <token>`, never expire;
 * - Personal Access Tokens (the default for new organisations): JWT refresh tokens. The client
 *   POSTs `{"refresh": "<PAT>"}` to `/api/token/refresh`, gets `{"access": "<jwt>"}` back and
 *   sends `Authorization: Bearer <access>`. Access tokens live about five minutes; a 401 means
 *   "refresh and try again" (once).
 *
 * `auth: "auto"` tells them apart by shape: a PAT is a JWT (three base64url parts, the first
 * decoding to a JSON header), a legacy token is not.
 *
 * @example
 * ```ts
 * const auth = labelStudioAuth({ url: "https://ls.example", token, auth: "auto" });
 * const res = await fetch(url, { headers: { authorization: await auth.header() } });
 * if (res.status === 401 && await auth.renew()) {  retry once  }
 * ```
 * @module
 */
import { messageOf, SluiceError } from "../../common/errors/mod.ts";

/** Which kind of token is configured. */
export const LABEL_STUDIO_AUTH_KINDS = ["auto", "token", "pat"] as const;
export type LabelStudioAuthKind = typeof LABEL_STUDIO_AUTH_KINDS[number];

/** Authentication failed in a way retrying cannot fix. */
export class LabelStudioAuthError extends SluiceError {
  readonly status?: number;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super("labelstudio_auth_failed", message, options);
    this.name = "LabelStudioAuthError";
    this.status = status;
  }
}

/**
 * True when a token looks like a JWT (a Personal Access Token).
 *
 * @example
 * ```ts
 * looksLikeJwt("d6f8a2622d39e9d89ff0dfef1a80ad877f4ee9e3"); // false
 * ```
 */
export function looksLikeJwt(token: string): boolean {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) return false;
  try {
    const b64 = parts[0].replace(/-/g, "+").replace(/_/g, "/");
    const header = JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)));
    return typeof header === "object" && header !== null && "alg" in header;
  } catch {
    return false;
  }
}

/** The header provider a client uses. */
export interface LabelStudioAuth {
  /** `token` or `pat` (after resolving `auto`). */
  readonly kind: "token" | "pat";
  /** The Authorization header value (refreshes a PAT's access token when there is none). */
  header(): Promise<string>;
  /**
   * After a 401: drops the access token and fetches a new one. Returns false for legacy tokens
   * (nothing to renew), true when a new access token was obtained.
   */
  renew(): Promise<boolean>;
}

export interface LabelStudioAuthOptions {
  url: string;
  token: string;
  auth?: LabelStudioAuthKind;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * Builds the header provider for a server and token.
 *
 * @example
 * ```ts
 * const auth = labelStudioAuth({ url, token: pat, auth: "pat" });
 * await auth.header(); // "Bearer eyJ..."
 * ```
 */
export function labelStudioAuth(opts: LabelStudioAuthOptions): LabelStudioAuth {
  const kind = opts.auth === "token" || opts.auth === "pat"
    ? opts.auth
    : looksLikeJwt(opts.token)
    ? "pat"
    : "token";
  if (kind === "token") {
    return {
      kind,
      header: () => Promise.resolve(`Token ${opts.token}`),
      renew: () => Promise.resolve(false),
    };
  }
  const endpoint = new URL("api/token/refresh", opts.url.replace(/\/*$/, "/"));
  const doFetch = opts.fetch ?? fetch;
  let access: string | null = null;
  let pending: Promise<string> | null = null;
  const refresh = (): Promise<string> => {
    pending ??= (async () => {
      let res: Response;
      try {
        res = await doFetch(endpoint, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify({ refresh: opts.token }),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
        });
      } catch (err) {
        throw new LabelStudioAuthError(
          `Label Studio token refresh ${endpoint}: expected an answer, found ${messageOf(err)}`,
          undefined,
          { cause: err },
        );
      }
      const text = await res.text();
      if (!res.ok) {
        const hint = res.status === 401 || res.status === 400
          ? " (the Personal Access Token is invalid, expired or revoked; a legacy token needs labelStudioAuth token)"
          : res.status === 404
          ? " (this server has no /api/token/refresh: an older Label Studio takes only legacy tokens)"
          : "";
        throw new LabelStudioAuthError(
          `Label Studio token refresh ${endpoint}: expected 200 with an access token, found ${res.status}: ${
            text.slice(0, 200)
          }${hint}`,
          res.status,
        );
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
      const token = (body as { access?: unknown } | null)?.access;
      if (typeof token !== "string" || token === "") {
        throw new LabelStudioAuthError(
          `Label Studio token refresh ${endpoint}: expected {"access": "<token>"}, found ${
            text.slice(0, 200)
          }`,
          res.status,
        );
      }
      access = token;
      return token;
    })().finally(() => {
      pending = null;
    });
    return pending;
  };
  return {
    kind,
    async header() {
      return `Bearer ${access ?? await refresh()}`;
    },
    async renew() {
      access = null;
      await refresh();
      return true;
    },
  };
}
