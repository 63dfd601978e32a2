/**
 * `make deno` installs Deno from npm with `npm ci` against tools/deno-bootstrap's package-lock.json,
 * so the binary it fetches is pinned by version and integrity hash (a plain `npm install deno@X`
 * resolves and trusts whatever the registry serves). The lock pins the deno the Makefile names,
 * with a sha512 for each platform package, the same hashes the container image checks, and
 * `npm ci` with it installs a working deno.
 */
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DIR = join(REPO, "tools/deno-bootstrap");

interface LockEntry {
  version?: string;
  integrity?: string;
  optionalDependencies?: Record<string, string>;
}

async function lock(): Promise<Record<string, LockEntry>> {
  const text = await readFile(join(DIR, "package-lock.json"), "utf8");
  return (JSON.parse(text) as { packages: Record<string, LockEntry> }).packages;
}

async function makefileDenoVersion(): Promise<string> {
  const make = await readFile(join(REPO, "Makefile"), "utf8");
  const m = make.match(/^DENO_VERSION := (\S+)$/m);
  assert.ok(m, "Makefile: expected a `DENO_VERSION := X` line");
  return m[1];
}

Deno.test("deno bootstrap lock: pins the Makefile's deno with a sha512 per platform package", async () => {
  const version = await makefileDenoVersion();
  assert.equal(version, "2.9.6");
  const pkg = JSON.parse(await readFile(join(DIR, "package.json"), "utf8"));
  assert.deepEqual(pkg.dependencies, { deno: version }, "package.json: exactly deno@<version>");
  const packages = await lock();
  const deno = packages["node_modules/deno"];
  assert.equal(deno?.version, version, "package-lock.json: node_modules/deno version");
  assert.match(deno.integrity ?? "", /^sha512-[A-Za-z0-9+/]{86}==$/, "deno integrity");
  const platforms = Object.keys(deno.optionalDependencies ?? {});
  for (const want of ["@deno/linux-x64-glibc", "@deno/linux-arm64-glibc"]) {
    assert.ok(platforms.includes(want), `deno's platform packages include ${want}: ${platforms}`);
  }
  for (const name of platforms) {
    const entry = packages[`node_modules/${name}`];
    assert.ok(entry, `package-lock.json: expected an entry for ${name}`);
    assert.equal(entry.version, version, `${name} version`);
    assert.match(entry.integrity ?? "", /^sha512-[A-Za-z0-9+/]{86}==$/, `${name} integrity`);
  }
  // The image checks the same tarballs by hash: the two places must not drift apart.
  const containerfile = await readFile(join(REPO, "infra/container/Containerfile"), "utf8");
  for (const [arg, name] of [["AMD64", "linux-x64-glibc"], ["ARM64", "linux-arm64-glibc"]]) {
    const integrity = packages[`node_modules/@deno/${name}`].integrity!.slice("sha512-".length);
    assert.ok(
      containerfile.includes(`ARG DENO_SHA512_${arg}=${integrity}`),
      `Containerfile: expected DENO_SHA512_${arg}=${integrity} (the lock's @deno/${name})`,
    );
  }
  assert.ok(containerfile.includes(`ARG DENO_VERSION=${version}`), "Containerfile DENO_VERSION");
});

Deno.test("deno bootstrap: the Makefile installs with npm ci from the committed lock", async () => {
  const make = await readFile(join(REPO, "Makefile"), "utf8");
  const recipe = make.slice(make.indexOf("\ndeno:"), make.indexOf("\nsystem-deps:"));
  assert.ok(
    recipe.includes(
      "cp tools/deno-bootstrap/package.json tools/deno-bootstrap/package-lock.json $(TOOLS)/",
    ),
    `Makefile deno target: expected it to copy the bootstrap lock into $(TOOLS); found:${recipe}`,
  );
  assert.match(recipe, /npm ci --prefix \$\(TOOLS\)/, "Makefile deno target: npm ci");
  for (const file of ["Makefile", ".ci/run"]) {
    const text = await readFile(join(REPO, file), "utf8");
    assert.doesNotMatch(text, /npm (install|i) [^\n]*deno/, `${file}: an unlocked npm install`);
  }
});

Deno.test("deno bootstrap: npm ci with the lock installs a working deno", async () => {
  const npm = await new Deno.Command("npm", { args: ["--version"], stdout: "null" }).output()
    .then((r) => r.success, () => false);
  if (!npm) {
    if (Deno.env.get("CI") === "true") throw new Error("npm is missing (`.ci/run` installs it)");
    console.log("SKIP npm ci: npm is not installed");
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), "sluice-deno-bootstrap-"));
  try {
    await cp(join(DIR, "package.json"), join(dir, "package.json"));
    await cp(join(DIR, "package-lock.json"), join(dir, "package-lock.json"));
    const ci = await new Deno.Command("npm", {
      args: ["ci", "--prefix", dir, "--no-audit", "--no-fund"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(ci.success, `npm ci: exit ${ci.code}: ${new TextDecoder().decode(ci.stderr)}`);
    const v = await new Deno.Command(join(dir, "node_modules/.bin/deno"), {
      args: ["--version"],
      stdout: "piped",
    }).output();
    const text = new TextDecoder().decode(v.stdout);
    assert.match(
      text,
      new RegExp(`^deno ${(await makefileDenoVersion()).replaceAll(".", "\\.")} `),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
