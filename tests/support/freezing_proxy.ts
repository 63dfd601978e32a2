/**
 * A TCP proxy that can go silent: it forwards bytes both ways until `freeze()`, then forwards
 * nothing more and closes nothing, like a host or a NAT entry that vanished (no FIN, no RST).
 * Used to put a "silent network drop" between a worker and PostgreSQL.
 *
 * @example
 * ```ts
 * const proxy = startFreezingProxy(5432);
 * // connect to 127.0.0.1:${proxy.port} ...
 * proxy.freeze();
 * await proxy.close();
 * ```
 * @module
 */

export interface FreezingProxy {
  port: number;
  /** Stops forwarding, keeping every socket open. */
  freeze(): void;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Closes the listener and every connection, both sides (idempotent). */
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port to `127.0.0.1:targetPort`. */
export function startFreezingProxy(targetPort: number): FreezingProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const pumps: Promise<void>[] = [];
  let frozen = false;
  let closing: Promise<void> | null = null;
  let connections = 0;
  let release!: () => void;
  const thawed = new Promise<void>((r) => (release = r));

  async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        if (frozen) return await thawed;
        const n = await from.read(buf);
        if (n === null) break;
        // Bytes read after the freeze are swallowed: the wire went silent mid-exchange.
        if (frozen) return await thawed;
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch { /* a side closed */ }
    await to.closeWrite().catch(() => {/* already closed */});
  }

  const accepting = (async () => {
    for await (const client of listener) {
      connections++;
      let server: Deno.Conn;
      try {
        server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      } catch {
        client.close();
        continue;
      }
      open.add(client);
      open.add(server);
      pumps.push(pump(client, server), pump(server, client));
    }
  })().catch(() => {});

  return {
    port: (listener.addr as Deno.NetAddr).port,
    get connections() {
      return connections;
    },
    freeze() {
      frozen = true;
    },
    async close() {
      if (closing) return await closing;
      closing = shutDown();
      await closing;
    },
  };

  async function shutDown(): Promise<void> {
    listener.close();
    release();
    for (const c of open) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await accepting;
    await Promise.allSettled(pumps);
  }
}
