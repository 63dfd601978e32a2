/**
 * Least privilege across every variant: each IAM policy document in the Terraform JSON parses,
 * and no Allow statement has a wildcard action on a wildcard resource. Also: no interpolation
 * holds a backslash (Terraform would reject a doubly escaped quote inside `${…}`).
 * @module
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { PolicyDocument, Statement } from "./_iam.ts";
import { stagePolicy } from "./_iam.ts";
import { variantFile, VARIANTS } from "./variants.ts";

const ROOT = new URL("../../", import.meta.url);
const POLICY_FIELDS = new Set(["policy", "assume_role_policy"]);

/** Every (location, policy text) in a Terraform JSON document. */
function policyStrings(v: unknown, path: string, out: [string, string][] = []): [string, string][] {
  if (Array.isArray(v)) v.forEach((x, i) => policyStrings(x, `${path}[${i}]`, out));
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (POLICY_FIELDS.has(k) && typeof x === "string") {
        out.push([`${path}.${k}`, x]);
      } else policyStrings(x, `${path}.${k}`, out);
    }
  }
  return out;
}

function allStrings(v: unknown, out: string[] = []): string[] {
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => allStrings(x, out));
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      allStrings(x, out);
    }
  }
  return out;
}

const list = (
  x: string | string[] | undefined,
) => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
const wildAction = (a: string) => a === "*" || /^[a-z0-9-]+:\*$/i.test(a);

/** Problems of one statement: wildcard action on wildcard resource. */
function wildcardProblems(where: string, s: Statement): string[] {
  if (s.Effect !== "Allow") return [];
  const actions = list(s.Action).filter(wildAction);
  const resources = list(s.Resource).filter((r) => r === "*");
  return actions.length > 0 && resources.length > 0
    ? [`${where} ${s.Sid ?? ""}: Allow ${actions.join(",")} on Resource "*"`]
    : [];
}

function docProblems(where: string, text: string): string[] {
  let doc: PolicyDocument;
  try {
    doc = JSON.parse(text) as PolicyDocument;
  } catch (e) {
    return [`${where}: expected a JSON policy document, found a parse error: ${e}`];
  }
  if (doc.Version !== "2012-10-17" || !Array.isArray(doc.Statement)) {
    return [`${where}: expected Version 2012-10-17 and a Statement list`];
  }
  return doc.Statement.flatMap((s) => wildcardProblems(where, s));
}

Deno.test("IAM: no wildcard action on a wildcard resource in any variant", async (t) => {
  let total = 0;
  for (const v of VARIANTS) {
    await t.step(v, async () => {
      const json = JSON.parse(await readFile(new URL(variantFile(v), ROOT), "utf8"));
      const policies = policyStrings(json.resource ?? {}, v);
      total += policies.length;
      const problems = policies.flatMap(([where, text]) => docProblems(where, text));
      assert.deepEqual(problems, []);
      const escaped = allStrings(json).filter((s) => /\$\{[^}]*\\/.test(s));
      assert.deepEqual(escaped, [], `${v}: backslash inside an interpolation`);
      if (v === "aws" || v === "eks") {
        assert.ok(
          policies.length >= 8,
          `${v}: expected the stage policies, found ${policies.length}`,
        );
      }
    });
  }
  assert.ok(total > 0);
  console.log(
    `IAM: ${total} policy documents checked in ${fileURLToPath(ROOT)}infra/*/main.tf.json`,
  );
});

Deno.test("IAM: the check catches a wildcard action on a wildcard resource", () => {
  const bad = JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      { Sid: "Ok", Effect: "Allow", Action: "s3:GetObject", Resource: "*" },
      { Sid: "Bad", Effect: "Allow", Action: ["s3:*"], Resource: ["arn:aws:s3:::b", "*"] },
      { Sid: "Deny", Effect: "Deny", Action: "*", Resource: "*" },
    ],
  });
  assert.deepEqual(docProblems("x", bad), ['x Bad: Allow s3:* on Resource "*"']);
  assert.match(docProblems("y", "{not json")[0], /^y: expected a JSON policy document/);
});

Deno.test("IAM: stage policies name only their own buckets and the queue", () => {
  const arns = { raw: "RAW", dataset: "DS", training: "TR", models: "MO", queue: "Q" };
  const resources = (stage: Parameters<typeof stagePolicy>[0]) =>
    new Set(stagePolicy(stage, arns).Statement.flatMap((s) => list(s.Resource)));
  assert.deepEqual([...resources("normalize")].sort(), ["DS", "DS/*"]);
  assert.deepEqual([...resources("ingest")].sort(), ["DS", "DS/*", "Q", "RAW", "RAW/*"]);
  assert.ok(!resources("infer").has("TR"), "infer has no business in the training bucket");
  const ingestRaw = stagePolicy("ingest", arns).Statement.find((s) => s.Sid === "RawObjects")!;
  assert.deepEqual(
    list(ingestRaw.Action).sort(),
    ["s3:GetObject", "s3:GetObjectVersion"],
    "raw is read-only",
  );
});
