/**
 * The shape of one schema migration.
 *
 * @module
 */

/** One versioned schema change. `up` is a script of statements without parameters. */
export interface Migration {
  /** 1, 2, 3, ... in order; recorded in `schema_migrations` once applied. */
  version: number;
  name: string;
  up: string | ((dialect: "sqlite" | "postgres") => string);
}
