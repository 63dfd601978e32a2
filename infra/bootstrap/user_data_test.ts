/**
 * The rendered host bootstrap: small enough for EC2 user data, free of `${` (a Terraform template
 * as is), shellcheck clean, and it unpacks nvme.sh and host.sh byte for byte and runs them.
 * @module
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NvmeSettingsSchema } from "../nvme_settings.ts";
import { hostBootstrapScript, mimeUserData } from "./user_data.ts";

const CI = Deno.env.get("CI") === "true";

async function run(cmd: string, args: string[]) {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

const script = hostBootstrapScript({
  nvme: NvmeSettingsSchema.parse({ mountMethod: "fstab" }),
  release: "1.2.0",
  artifacts: "s3://artifacts-bucket/sluice/1.2.0",
  stages: ["ingest", "normalize"],
  env: { SLUICE_SOURCE_URL: "s3://raw-bucket" },
  envSsm: { SLUICE_MANIFEST_URL: "/sluice/manifest-url" },
});

Deno.test("host bootstrap fits EC2 user data and is a Terraform template as is", () => {
  const size = new TextEncoder().encode(mimeUserData(script)).length;
  assert.ok(size < 16_384, `expected < 16384 bytes of user data, found ${size}`);
  assert.ok(
    !script.includes("${"),
    "the script must not contain ${ (Terraform would interpolate it)",
  );
  assert.equal(
    hostBootstrapScript({ nvme: NvmeSettingsSchema.parse({}) }),
    hostBootstrapScript({ nvme: NvmeSettingsSchema.parse({}) }),
  );
});

Deno.test("host bootstrap unpacks the scripts and runs host.sh (dry run)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "user-data-"));
  try {
    const lsblk = join(dir, "lsblk.txt");
    await writeFile(
      lsblk,
      'NAME="nvme1n1" PATH="/dev/nvme1n1" TYPE="disk" MODEL="Amazon EC2 NVMe Instance Storage" FSTYPE="" LABEL="" MOUNTPOINT="" PKNAME=""\n',
    );
    const file = join(dir, "user-data.sh");
    await writeFile(
      file,
      script.replaceAll("/opt/sluice/bootstrap", join(dir, "b"))
        .replace("host.sh '--release'", "host.sh '--dry-run' '--release'")
        .replace(
          /'--mode' '0750'\n/,
          `'--mode' '0750' --lsblk-file '${lsblk}' --fstab '${join(dir, "fstab")}'\n`,
        ),
    );
    if (await run("sh", ["-c", "command -v shellcheck"]).then((r) => r.code === 0)) {
      const sc = await run("shellcheck", [file]);
      assert.equal(sc.code, 0, sc.out);
    } else if (CI) {
      assert.fail("shellcheck: expected on PATH under CI=true");
    } else console.log("SKIP shellcheck of the user data: not installed");
    const r = await run("bash", [file]);
    assert.equal(r.code, 0, r.out);
    for (const name of ["nvme.sh", "host.sh"]) {
      assert.equal(
        await readFile(join(dir, "b", name), "utf8"),
        await readFile(new URL(`./${name}`, import.meta.url), "utf8"),
        `${name} unpacked byte for byte`,
      );
    }
    assert.match(r.out, /plan: make xfs on \/dev\/nvme1n1/);
    assert.match(
      r.out,
      /aws s3 cp --recursive --only-show-errors s3:\/\/artifacts-bucket\/sluice\/1\.2\.0\/bin\/ \/opt\/sluice\/1\.2\.0\/bin\//,
    );
    assert.match(
      r.out,
      /install\.sh --stage ingest --binary \/opt\/sluice\/1\.2\.0\/bin\/sluice-ingest/,
    );
    assert.match(
      r.out,
      /install\.sh --stage normalize --binary \/opt\/sluice\/1\.2\.0\/bin\/sluice-normalize/,
    );
    assert.match(
      r.out,
      /plan: set SLUICE_SOURCE_URL in \/etc\/sluice\/sluice\.env: set_env SLUICE_SOURCE_URL s3:\/\/raw-bucket/,
    );
    assert.match(
      r.out,
      /plan: set SLUICE_MANIFEST_URL in \/etc\/sluice\/sluice\.env from SSM parameter \/sluice\/manifest-url/,
    );
    assert.match(r.out, /host\.sh: dry run: nothing changed/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("host.sh: shellcheck clean, refuses bad stages and a missing artifacts URL", async () => {
  const host = new URL("./host.sh", import.meta.url).pathname;
  if ((await run("sh", ["-c", "command -v shellcheck"])).code === 0) {
    const sc = await run("shellcheck", [host]);
    assert.equal(sc.code, 0, sc.out);
  } else if (CI) assert.fail("shellcheck: expected on PATH under CI=true");
  const bad = await run("bash", [host, "--dry-run", "--stage", "ingester"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /--stage: expected ingest, normalize, train or infer, found 'ingester'/);
  const list = await run("bash", [host, "--dry-run", "--release", "1", "--stages", "ingest,bogus"]);
  assert.match(list.out, /--stage: expected ingest, normalize, train or infer, found 'bogus'/);
  const noUrl = await run("bash", [host, "--dry-run", "--release", "1", "--stage", "infer"]);
  assert.notEqual(noUrl.code, 0);
  assert.match(
    noUrl.out,
    /--artifacts: expected the release's artifacts URL for stages infer, found none/,
  );
});
