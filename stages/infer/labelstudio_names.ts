/**
 * The Label Studio names infer's pre-annotations carry (`from_name`, `to_name`, the task data
 * key), taken from the project's label config when `infer.labelStudioLabelConfig` names one, and
 * checked up front: a config without a RectangleLabels control fails at start-up, and a model
 * whose labels the config lacks fails when it loads — instead of Label Studio rejecting (or
 * silently not showing) every import.
 *
 * Without a config the names are Label Studio's template defaults: `label`, `image`, `image`.
 *
 * @example
 * ```ts
 * const target = await loadLabelStudioNames({ labelStudioLabelConfig: "ls/config.xml" });
 * target.checkLabels(model.spec.labels); // throws LabelConfigError naming the missing labels
 * labelStudioTasks(images, ref, target.names);
 * ```
 * @module
 */
import {
  type LabelConfig,
  LabelConfigError,
  namesFromLabelConfig,
  readLabelConfig,
} from "../../common/annotations/label_config.ts";

/** What pre-annotations are written with. */
export interface LabelStudioTarget {
  names: { fromName: string; toName: string; dataKey: string };
  /** The parsed config, or null when none is configured. */
  config: LabelConfig | null;
  /** Throws {@link LabelConfigError} when a model label is not in the config. */
  checkLabels(labels: readonly string[]): void;
}

/**
 * Reads and checks the configured label config (if any).
 *
 * @example
 * ```ts
 * (await loadLabelStudioNames({})).names; // { fromName: "label", toName: "image", dataKey: "image" }
 * ```
 */
export async function loadLabelStudioNames(
  settings: { labelStudioLabelConfig?: string | undefined },
): Promise<LabelStudioTarget> {
  if (!settings.labelStudioLabelConfig) {
    return {
      names: { fromName: "label", toName: "image", dataKey: "image" },
      config: null,
      checkLabels: () => {},
    };
  }
  const path = settings.labelStudioLabelConfig;
  const config = await readLabelConfig(path);
  const n = namesFromLabelConfig(config);
  return {
    names: { fromName: n.fromName, toName: n.toName, dataKey: n.dataKey },
    config,
    checkLabels(labels) {
      try {
        namesFromLabelConfig(config, { labels });
      } catch (err) {
        if (err instanceof LabelConfigError) {
          throw new LabelConfigError(
            `${path}: the model's ${err.message.replace(/^label config: /, "")}`,
            { cause: err },
          );
        }
        throw err;
      }
    },
  };
}
