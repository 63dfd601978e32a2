/**
 * A throwaway PostgreSQL for tests: a fresh cluster (`initdb` + `pg_ctl`) in a temp dir,
 * listening on 127.0.0.1 on a free port, with fsync off; or, when `SLUICE_TEST_POSTGRES_URL`
 * names an existing server, a fresh database on it.
 *
 * Binaries come from the highest `/usr/lib/postgresql/<version>/bin`, else from `PATH`. initdb
 * refuses to run as root, so as root the cluster runs as the `postgres` OS user (Debian's
 * postgresql package creates it).
 *
 * @example
 * ```ts
 * const pg = await startPostgres();
 * try {
 *   const store = await openManifest(pg.url);
 *   const other = await pg.newDatabase(); // an empty database on the same server
 * } finally {
 *   await pg.stop();
 * }
 * ```
 * @module
 */
import postgres from "postgres";
import { chown, mkdtemp, readFile, rm } from "node:fs/promises";
import { existsSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/** A running PostgreSQL and a database created for the caller. */
export interface PostgresTestServer {
  /** `postgres://postgres@127.0.0.1:<port>/<db>`: a database nobody else uses. */
  url: string;
  /** Creates another empty database on the same server and returns its URL. */
  newDatabase(): Promise<string>;
  /** Stops the cluster and removes its files (external server: drops the databases). */
  stop(): Promise<void>;
  /**
   * `pg_ctl restart -m fast`: every connection is closed, the server is back when this
   * resolves. Absent for an external server (`SLUICE_TEST_POSTGRES_URL`).
   */
  restart?(): Promise<void>;
}

/** PostgreSQL could not be found or started. */
export class PostgresHarnessUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PostgresHarnessUnavailableError";
  }
}

/** Whether PostgreSQL tests can run here: `{ ok: false, reason }` means skip. */
export type PostgresAvailability = { ok: true } | { ok: false; reason: string };

const URL_ENV = "SLUICE_TEST_POSTGRES_URL";

/**
 * Checks, without starting anything, whether {@link startPostgres} can work here: an external
 * server is configured or the binaries exist. When they are missing it warns and returns a
 * reason to skip; with `CI=true` it throws instead, so CI never passes by skipping.
 *
 * @example
 * ```ts
 * const pg = postgresAvailability();
 * Deno.test({ name: "needs postgres", ignore: !pg.ok, fn: async () => {} });
 * ```
 */
export function postgresAvailability(): PostgresAvailability {
  if (Deno.env.get(URL_ENV)) return { ok: true };
  if (findBinDir() !== null) return { ok: true };
  const reason = "PostgreSQL binaries not found (looked in /usr/lib/postgresql/*/bin and PATH " +
    `for initdb and pg_ctl); PostgreSQL tests skipped. Install postgresql or set ${URL_ENV}.`;
  if (Deno.env.get("CI") === "true") {
    throw new PostgresHarnessUnavailableError(`${reason} CI=true makes this fatal.`);
  }
  console.warn(reason);
  return { ok: false, reason };
}

/**
 * Starts a throwaway cluster (or uses `SLUICE_TEST_POSTGRES_URL`) and creates a database.
 *
 * @example
 * ```ts
 * const pg = await startPostgres();
 * await pg.stop();
 * ```
 */
export async function startPostgres(): Promise<PostgresTestServer> {
  const external = Deno.env.get(URL_ENV);
  return external ? await useExternal(external) : await startCluster();
}

/** The highest-versioned PostgreSQL bin dir holding initdb and pg_ctl, or null. */
function findBinDir(): string | null {
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, "bin", "initdb")))
      .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
    if (versions.length > 0) return join(root, versions[0], "bin");
  }
  for (const dir of (Deno.env.get("PATH") ?? "").split(delimiter)) {
    if (!dir) continue;
    const ok = ["initdb", "pg_ctl"].every((b) => {
      try {
        return statSync(join(dir, b)).isFile();
      } catch {
        return false;
      }
    });
    if (ok) return dir;
  }
  return null;
}

let counter = 0;
function databaseName(): string {
  return `sluice_test_${Deno.pid}_${Date.now().toString(36)}_${++counter}`;
}

async function createDatabase(adminUrl: string, name: string): Promise<void> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = "/" + db;
  return u.toString();
}

async function useExternal(url: string): Promise<PostgresTestServer> {
  const created: string[] = [];
  const newDatabase = async () => {
    const name = databaseName();
    await createDatabase(url, name);
    created.push(name);
    return withDatabase(url, name);
  };
  const first = await newDatabase();
  return {
    url: first,
    newDatabase,
    async stop() {
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        for (const name of created) {
          await sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        }
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  };
}

interface RunResult {
  code: number;
  output: string;
}

async function run(cmd: string, args: string[], asUser: string | null): Promise<RunResult> {
  const [program, argv] = asUser ? ["runuser", ["-u", asUser, "--", cmd, ...args]] : [cmd, args];
  const out = await new Deno.Command(program, {
    args: argv,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    // libpq and the pg tools read PG* variables; keep the caller's from pointing them elsewhere.
    clearEnv: true,
    env: { ...cleanEnv(), LC_ALL: "C" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

function cleanEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => !k.startsWith("PG")),
  );
}

async function must(cmd: string, args: string[], asUser: string | null): Promise<void> {
  const r = await run(cmd, args, asUser);
  if (r.code !== 0) {
    throw new PostgresHarnessUnavailableError(
      `${cmd} ${args.join(" ")}: expected exit code 0, found ${r.code}\n${r.output}`,
    );
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function startCluster(): Promise<PostgresTestServer> {
  const bin = findBinDir();
  if (bin === null) {
    throw new PostgresHarnessUnavailableError(
      `PostgreSQL binaries not found in /usr/lib/postgresql/*/bin or PATH; set ${URL_ENV}`,
    );
  }
  const asUser = Deno.uid() === 0 ? "postgres" : null;
  const dir = await mkdtemp(join(tmpdir(), "sluice-pg-"));
  const data = join(dir, "data");
  const log = join(dir, "server.log");
  const pgCtl = join(bin, "pg_ctl");
  let started = false;
  try {
    if (asUser) {
      const uid = await idOf(asUser, "-u");
      const gid = await idOf(asUser, "-g");
      await chown(dir, uid, gid);
    }
    await must(join(bin, "initdb"), [
      "-A",
      "trust",
      "-U",
      "postgres",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
      "-D",
      data,
    ], asUser);
    // A port freed a moment ago can be taken by someone else; retry on a new one.
    for (let attempt = 1;; attempt++) {
      const port = freePort();
      const opts = `-k ${dir} -p ${port} -h 127.0.0.1 -c fsync=off -c full_page_writes=off ` +
        `-c synchronous_commit=off -c max_connections=200`;
      const r = await run(
        pgCtl,
        ["-D", data, "-o", opts, "-l", log, "-w", "-t", "60", "start"],
        asUser,
      );
      if (r.code === 0) {
        started = true;
        const admin = `postgres://postgres@127.0.0.1:${port}/postgres`;
        const newDatabase = async () => {
          const name = databaseName();
          await createDatabase(admin, name);
          return withDatabase(admin, name);
        };
        const url = await newDatabase();
        return {
          url,
          newDatabase,
          restart: () =>
            must(pgCtl, ["-D", data, "-l", log, "-m", "fast", "-w", "-t", "60", "restart"], asUser),
          async stop() {
            try {
              await must(pgCtl, ["-D", data, "-m", "immediate", "-w", "stop"], asUser);
            } finally {
              await rm(dir, { recursive: true, force: true });
            }
          },
        };
      }
      const serverLog = await readFile(log, "utf8").catch(() => "");
      if (attempt >= 3 || !/could not bind|address already in use/i.test(serverLog)) {
        throw new PostgresHarnessUnavailableError(
          `pg_ctl start: expected a running server, found exit code ${r.code}\n${r.output}\n` +
            serverLog,
        );
      }
    }
  } catch (err) {
    if (started) await run(pgCtl, ["-D", data, "-m", "immediate", "-w", "stop"], asUser);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function idOf(user: string, flag: "-u" | "-g"): Promise<number> {
  const r = await run("id", [flag, user], null);
  const n = Number.parseInt(r.output.trim(), 10);
  if (r.code !== 0 || Number.isNaN(n)) {
    throw new PostgresHarnessUnavailableError(
      `id ${flag} ${user}: expected a numeric id (running as root needs the "${user}" user), ` +
        `found ${JSON.stringify(r.output.trim())}`,
    );
  }
  return n;
}
