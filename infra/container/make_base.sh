#!/usr/bin/env bash
# Builds a minimal Debian 12 base image with debootstrap and imports it into podman, for machines
# that cannot pull from a registry. Skips the work when the image already exists (--force rebuilds).
#
#   infra/container/make_base.sh [--tag NAME] [--mirror URI] [--force]
#
# The mirror defaults to the first URIs line of /etc/apt/sources.list.d/debian.sources (the apt
# mirror this host already reaches), else deb.debian.org. Needs root, debootstrap and podman.
set -euo pipefail

tag=localhost/debian:bookworm-min
mirror=""
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --mirror) mirror="${2:?--mirror needs a value}"; shift 2 ;;
    --force) force=1; shift ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "make_base.sh: unknown argument '$1' (expected --tag, --mirror, --force)" >&2; exit 2 ;;
  esac
done

if [ "$force" = 0 ] && podman image exists "$tag"; then
  echo "base image $tag exists; not rebuilding (--force to rebuild)"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "make_base.sh: debootstrap needs root (running as uid $(id -u))" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "make_base.sh: debootstrap not found (apt-get install -y debootstrap)" >&2; exit 1; }

if [ -z "$mirror" ]; then
  mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 || true)
  mirror="${mirror:-http://deb.debian.org/debian}"
fi
root=$(mktemp -d /var/tmp/sluice-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import - "$tag" >/dev/null
echo "imported $tag"
