/** Demo step 5 (filled in when the infer stage lands). @module */
import type { DemoStepDeps } from "./train_step.ts";

export function runDemoInference(
  _o: DemoStepDeps & { truthPath: string },
): Promise<{ summary: string; map50: number | null; map50_95: number | null }> {
  return Promise.resolve({ summary: "infer: pending", map50: null, map50_95: null });
}
