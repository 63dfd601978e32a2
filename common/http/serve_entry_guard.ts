/**
 * The `deno serve` entries' bind-address rule. `deno serve` listens on 0.0.0.0 unless told
 * `--host`, and a stage module cannot change that, so each entry's `fetch` asks this guard
 * first: unless `SLUICE_HTTP_HOSTNAME` names a non-loopback address (default `127.0.0.1`),
 * requests from other hosts are refused with 403. Set `SLUICE_HTTP_HOSTNAME=0.0.0.0` (and a
 * webhook token) to serve other hosts on purpose, or pass `deno serve --host 127.0.0.1`.
 *
 * @example
 * ```ts
 * export default {
 *   fetch(req: Request, info?: Deno.ServeHandlerInfo) {
 *     return refuseOtherHosts(info) ?? handler.fetch(req);
 *   },
 * };
 * ```
 * @module
 */

/** Whether an address or host name is the local machine's loopback. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) ||
    /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * The 403 answer for a request from another host when the configured bind address is loopback,
 * else undefined (serve it).
 *
 * @example
 * ```ts
 * const refused = refuseOtherHosts(info, { SLUICE_HTTP_HOSTNAME: "127.0.0.1" });
 * ```
 */
export function refuseOtherHosts(
  info: Deno.ServeHandlerInfo | undefined,
  env: Readonly<Record<string, string | undefined>> = Deno.env.toObject(),
): Response | undefined {
  const bind = env.SLUICE_HTTP_HOSTNAME || "127.0.0.1";
  if (!isLoopback(bind)) return undefined;
  const remote = info?.remoteAddr as Deno.NetAddr | undefined;
  if (remote?.hostname === undefined || isLoopback(remote.hostname)) return undefined;
  return new Response(
    JSON.stringify({
      error: "refused",
      message: `SLUICE_HTTP_HOSTNAME is ${bind} (loopback): expected a request from this host, ` +
        `found ${remote.hostname}; set SLUICE_HTTP_HOSTNAME=0.0.0.0 to serve other hosts`,
    }) + "\n",
    { status: 403, headers: { "content-type": "application/json; charset=utf-8" } },
  );
}
