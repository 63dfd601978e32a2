#!/bin/sh
# sluice-<stage> in the `deno` image targets: runs stages/<stage>/main.ts under Deno with the
# modules cached at build time (nothing is fetched at run time). Installed as sluice-ingest,
# sluice-normalize, sluice-train and sluice-infer (symlinks); the name picks the stage.
set -eu
# node_modules holds only what the stages import (prune_node_modules.ts), so Deno must not sync it
# with deno.lock at start: --node-modules-dir=manual.
app=/opt/sluice
stage=${0##*/}
stage=${stage#sluice-}
case "$stage" in
  ingest | normalize | train | infer) ;;
  *) echo "sluice-stage.sh: expected to be called as sluice-<ingest|normalize|train|infer>, found '${0##*/}'" >&2; exit 2 ;;
esac
exec /usr/local/bin/deno run --cached-only --frozen --node-modules-dir=manual --config "$app/deno.json" -A "$app/stages/$stage/main.ts" "$@"
