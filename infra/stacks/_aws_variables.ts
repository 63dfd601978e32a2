/**
 * The variables every AWS-based variant (aws, eks) declares first: `region` and `name_prefix`,
 * plus a shorthand for declaring more.
 *
 * @example
 * ```ts
 * const { v, region, prefix } = awsBaseVariables(this);
 * ```
 * @module
 */
import type { Construct } from "constructs";
import { TerraformVariable } from "cdktf";

/** Declares another variable on the stack. */
export type DeclareVariable = (
  name: string,
  o: ConstructorParameters<typeof TerraformVariable>[2],
) => TerraformVariable;

/** `region` and `name_prefix` on `scope`, and the declaring shorthand. */
export function awsBaseVariables(
  scope: Construct,
): { v: DeclareVariable; region: TerraformVariable; prefix: TerraformVariable } {
  const v: DeclareVariable = (name, o) => new TerraformVariable(scope, name, o);
  const region = v("region", { type: "string", default: "us-east-1", description: "AWS region" });
  const prefix = v("name_prefix", {
    type: "string",
    default: "sluice",
    description: "Prefix of every name (bucket names are global: make it unique)",
  });
  return { v, region, prefix };
}
