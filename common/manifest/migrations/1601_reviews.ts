/**
 * Reviews from Label Studio (issue 16): one row per Label Studio annotation with its provenance
 * (reviewer, time, the model version whose pre-annotation it started from, the edit counts), and
 * tombstones for deleted tasks. Deletion is terminal: Label Studio never reuses an id. Version
 * 1601 is deliberately far from the sequence other changes take (1601 = issue 16, first).
 *
 * @module
 */
import type { Migration } from "./migration.ts";

export const migration: Migration = {
  version: 1601,
  name: "reviews",
  up: `
CREATE TABLE reviews (
  annotation_id TEXT PRIMARY KEY,
  task_id TEXT,
  image_id TEXT,
  reviewer TEXT,
  reviewed_at BIGINT NOT NULL,
  model_name TEXT,
  model_version TEXT,
  counts TEXT,
  per_class TEXT,
  boxes TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'deleted')),
  recorded_at BIGINT NOT NULL
);
CREATE INDEX reviews_image_idx ON reviews (image_id, state, reviewed_at);
CREATE INDEX reviews_task_idx ON reviews (task_id);
CREATE INDEX reviews_model_idx ON reviews (model_name, model_version, state);

CREATE TABLE review_deleted_tasks (
  task_id TEXT PRIMARY KEY,
  deleted_at BIGINT NOT NULL
);
`,
};
