/**
 * Predictions record which model registry their model came from (issue 14, item 6): version 1
 * of `det` in the embedded file store and version 1 of `det` on an MLflow server are different
 * models, so each gets its own prediction rows. `registry` is the registry's identity without
 * credentials (`file:///…/mlruns`, `https://mlflow.example:5000`); rows written before this
 * migration get `''` ("legacy": registry unknown), which matches every registry when checking
 * whether an image was already predicted (the rule before this migration). The registry joins
 * the primary key: PostgreSQL alters the table in place, SQLite copies it. Version 1702
 * is deliberately far from the sequence other changes take (1701 is taken by a parallel change).
 *
 * @module
 */
import type { Migration } from "./migration.ts";

// PostgreSQL: a constant default adds the column without rewriting the table; the new primary
// key and index are built from one scan.
const POSTGRES = `
ALTER TABLE predictions ADD COLUMN registry TEXT NOT NULL DEFAULT '';
ALTER TABLE predictions DROP CONSTRAINT predictions_pkey;
ALTER TABLE predictions ADD PRIMARY KEY (image_id, model_name, model_version, registry);
DROP INDEX predictions_model_idx;
CREATE INDEX predictions_model_idx ON predictions (model_name, model_version, registry, image_id);
`;

// SQLite cannot change a primary key: the table is copied.
const SQLITE = `
CREATE TABLE predictions_1702 (
  image_id TEXT NOT NULL REFERENCES images (id),
  model_name TEXT NOT NULL,
  model_version TEXT NOT NULL,
  registry TEXT NOT NULL DEFAULT '',
  boxes TEXT NOT NULL,
  score DOUBLE PRECISION NOT NULL,
  uri TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (image_id, model_name, model_version, registry)
);
INSERT INTO predictions_1702
  (image_id, model_name, model_version, registry, boxes, score, uri, created_at)
  SELECT image_id, model_name, model_version, '', boxes, score, uri, created_at FROM predictions;
DROP TABLE predictions;
ALTER TABLE predictions_1702 RENAME TO predictions;
CREATE INDEX predictions_model_idx ON predictions (model_name, model_version, registry, image_id);
`;

export const migration: Migration = {
  version: 1702,
  name: "prediction_registry",
  up: (dialect) => dialect === "postgres" ? POSTGRES : SQLITE,
};
