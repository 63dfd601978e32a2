// A minimal stage entry point for cli_test.ts: prints its parsed flags and one setting.
import { z } from "zod";
import { parseStageArgs, secret } from "../mod.ts";

const { config, flags } = await parseStageArgs(Deno.args, {
  stage: "normalize",
  stageSchema: z.object({
    quality: z.int().min(1).max(100).default(85).describe("JPEG quality of variants"),
    signingKey: secret(z.string()).optional().describe("Key that signs variant URLs"),
  }),
  usage: "sluice-normalize [options]\n\nMakes variants of dataset images.",
  flags: { once: { type: "boolean", description: "Drain the queue once and exit" } },
});
console.log(JSON.stringify({ once: flags.once, quality: config.stage.quality }));
