/** Demo step 4 (filled in when the train stage lands). @module */
import type { z } from "zod";
import type { StageConfig } from "../../common/config/mod.ts";
import type { Logger } from "../../common/log/mod.ts";

export interface DemoStepDeps {
  log: Logger;
  stageConfig: <S extends z.ZodType>(
    stage: "ingest" | "normalize" | "train" | "infer",
    schema: S,
    overrides?: Record<string, string>,
  ) => Promise<StageConfig<S>>;
}

export function runDemoTraining(
  _o: DemoStepDeps & { epochs: number; maxMinutes: number },
): Promise<{ summary: string }> {
  return Promise.resolve({ summary: "train: pending" });
}
