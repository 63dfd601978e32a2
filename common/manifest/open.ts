/**
 * Opens a manifest store by URL (SQLite or PostgreSQL) and migrates it. The adapters are
 * imported on demand, so the contract files never import an adapter.
 *
 * @example
 * ```ts
 * const manifest = await openManifest("sqlite:///tmp/sluice/manifest.db");
 * ```
 * @module
 */
import { ManifestUrlError } from "./errors.ts";
import type { ManifestStore } from "./manifest_store.ts";

/**
 * Opens a manifest store by URL and applies migrations:
 * `sqlite:///abs/path.db`, `sqlite:relative.db`, `sqlite::memory:`, `postgres://...`.
 */
export async function openManifest(url: string): Promise<ManifestStore> {
  let store: ManifestStore;
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    const { openPostgresManifest } = await import("./postgres.ts");
    store = await openPostgresManifest(url);
  } else if (url.startsWith("sqlite:")) {
    const { openSqliteManifest } = await import("./sqlite.ts");
    store = await openSqliteManifest(url);
  } else {
    throw new ManifestUrlError(url);
  }
  await store.migrate();
  return store;
}
