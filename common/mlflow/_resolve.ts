/**
 * Model-URI resolution shared by both trackers: `models:/…` goes through the registry,
 * `runs:/<run>/<path>` through the run's artifact root (MLflow's get-download-uri hands `runs:/`
 * sources back unchanged, so we must resolve them ourselves), anything else is already concrete.
 * @module
 */
import { basename, join } from "node:path";
import { ArtifactNotFoundError, isNotFound, MlflowError } from "./errors.ts";
import { joinArtifactUri, parseModelUri } from "./model_uri.ts";
import type { DownloadedModel, ModelVersion, ResolvedModelUri } from "./tracker.ts";

/** The operations resolution needs from a tracker. */
export interface ResolveOps {
  getVersionByAlias(name: string, alias: string): Promise<ModelVersion | null>;
  getDownloadUri(name: string, version: string): Promise<string>;
  searchModelVersions(name: string): Promise<ModelVersion[]>;
  /** The run's artifact root URI. */
  runArtifactUri(runId: string): Promise<string>;
}

/** What downloading a resolved model needs on top of resolution. */
export interface DownloadOps extends ResolveOps {
  downloadArtifacts(uri: string, destDir: string): Promise<string[]>;
  downloadArtifact(uri: string, destPath: string): Promise<string>;
}

const MAX_DEPTH = 5;

function newest(versions: ModelVersion[]): ModelVersion | undefined {
  return versions
    .filter((v) => v.currentStage !== "Deleted_Internal")
    .sort((a, b) => Number(b.version) - Number(a.version))[0];
}

/** Resolves a model or run URI to a concrete artifact location (see {@link ResolvedModelUri}). */
export async function resolveModelUri(
  ops: ResolveOps,
  uri: string,
  depth = 0,
): Promise<ResolvedModelUri> {
  if (depth > MAX_DEPTH) {
    throw new MlflowError(
      `model URI ${JSON.stringify(uri)}: expected at most ${MAX_DEPTH} redirections`,
      {
        errorCode: "INVALID_PARAMETER_VALUE",
      },
    );
  }
  if (!uri.startsWith("models:/") && !uri.startsWith("runs:/")) {
    return { uri, artifactUri: uri };
  }
  const parsed = parseModelUri(uri);
  if (parsed.kind === "run") {
    const root = await ops.runArtifactUri(parsed.runId);
    return { uri, artifactUri: joinArtifactUri(root, parsed.path), runId: parsed.runId };
  }
  let version: ModelVersion | undefined | null;
  let versionId: string;
  if (parsed.kind === "version") {
    versionId = parsed.version;
  } else {
    if (parsed.kind === "alias") {
      version = await ops.getVersionByAlias(parsed.name, parsed.alias);
      if (!version) {
        throw new MlflowError(
          `model URI ${uri}: alias "${parsed.alias}" of "${parsed.name}" is not set`,
          {
            errorCode: "RESOURCE_DOES_NOT_EXIST",
          },
        );
      }
    } else {
      const all = await ops.searchModelVersions(parsed.name);
      version = newest(
        parsed.kind === "stage" ? all.filter((v) => v.currentStage === parsed.stage) : all,
      );
      if (!version) {
        const what = parsed.kind === "stage" ? `in stage ${parsed.stage}` : "at all";
        throw new MlflowError(`model URI ${uri}: "${parsed.name}" has no version ${what}`, {
          errorCode: "RESOURCE_DOES_NOT_EXIST",
        });
      }
    }
    versionId = version.version;
  }
  const location = await ops.getDownloadUri(parsed.name, versionId);
  const inner = await resolveModelUri(ops, location, depth + 1);
  const out: ResolvedModelUri = {
    uri,
    artifactUri: inner.artifactUri,
    name: parsed.name,
    version: versionId,
  };
  const runId = inner.runId ?? (version?.runId || undefined);
  if (runId) out.runId = runId;
  return out;
}

/**
 * Resolves `uri` and downloads the model into `destDir`: the directory's files when the location
 * is a directory (the usual MLflow model layout), else the single file under its own name.
 */
export async function downloadModel(
  ops: DownloadOps,
  uri: string,
  destDir: string,
): Promise<DownloadedModel> {
  const resolved = await resolveModelUri(ops, uri);
  let files = await ops.downloadArtifacts(resolved.artifactUri, destDir);
  if (files.length === 0) {
    const name = basename(resolved.artifactUri.replace(/\/+$/, ""));
    try {
      await ops.downloadArtifact(resolved.artifactUri, join(destDir, name));
      files = [name];
    } catch (err) {
      if (!isNotFound(err)) throw err;
      throw new ArtifactNotFoundError(resolved.artifactUri, { cause: err });
    }
  }
  return { ...resolved, localDir: destDir, files: files.sort() };
}
