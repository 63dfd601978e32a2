#!/usr/bin/env bash
# Sluice host bootstrap (EC2 user data, RKE2 hosts): NVMe staging, optionally RKE2, then the stage
# binaries as systemd units.
#
#   host.sh [--dry-run] [--release VERSION] [--artifacts URL] [--stage STAGE]... [--stages A,B]
#           [--rke2 server|agent] [--rke2-install-url URL] [--dest DIR]
#           [--env KEY=VALUE]... [--env-ssm KEY=SSM_PARAMETER]... [-- NVME_ARGS...]
#
# 1. runs nvme.sh (beside this script) with NVME_ARGS;
# 2. with --rke2, installs RKE2 of that type unless present (config in /etc/rancher/rke2/) and
#    enables its service;
# 3. with --stage, fetches the release's artifacts into DEST (default /opt/sluice/VERSION):
#    URL/bin/sluice-<stage> and URL/systemd/ (the units and install.sh), from s3:// (aws CLI),
#    file:// or a directory, or https:// (URL/bundle.tar.gz holding bin/ and systemd/);
# 4. sets --env values (and --env-ssm ones, read from SSM Parameter Store with decryption) in
#    /etc/sluice/sluice.env (mode 0640, group sluice), other lines kept;
# 5. runs systemd/install.sh --stage STAGE --binary DEST/bin/sluice-STAGE for each stage.
# --dry-run prints every step (nvme.sh prints its own plan) and changes nothing.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DRY=0 RELEASE="" ARTIFACTS="" RKE2="" RKE2_URL=https://get.rke2.io DEST=""
STAGES=() NVME_ARGS=() ENVS=() ENV_SSM=() ENV_FILE=/etc/sluice/sluice.env

die() { echo "host.sh: error: $*" >&2; exit 1; }
step() {
  local what=$1; shift
  if [ "$DRY" = 1 ]; then echo "plan: $what: $*"; else echo "run: $what: $*"; "$@"; fi
}

while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY=1; shift ;;
    --release) RELEASE=$2; shift 2 ;;
    --artifacts) ARTIFACTS=${2%/}; shift 2 ;;
    --stage) STAGES+=("$2"); shift 2 ;;
    --stages) IFS=, read -r -a more <<<"$2"; STAGES+=("${more[@]}"); shift 2 ;;
    --rke2) RKE2=$2; shift 2 ;;
    --rke2-install-url) RKE2_URL=$2; shift 2 ;;
    --dest) DEST=$2; shift 2 ;;
    --env) ENVS+=("$2"); shift 2 ;;
    --env-ssm) ENV_SSM+=("$2"); shift 2 ;;
    --) shift; NVME_ARGS=("$@"); break ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
for s in "${STAGES[@]}"; do
  case $s in ingest | normalize | train | infer) ;; *) die "--stage: expected ingest, normalize, train or infer, found '$s'" ;; esac
done
for kv in "${ENVS[@]}" "${ENV_SSM[@]}"; do
  [[ $kv =~ ^[A-Z_][A-Z0-9_]*=.*$ ]] || die "--env/--env-ssm: expected KEY=VALUE, found '$kv'"
done
case $RKE2 in "" | server | agent) ;; *) die "--rke2: expected server or agent, found '$RKE2'" ;; esac
if [ ${#STAGES[@]} -gt 0 ]; then
  [ -n "$ARTIFACTS" ] || die "--artifacts: expected the release's artifacts URL for stages ${STAGES[*]}, found none"
  [[ $RELEASE =~ ^[A-Za-z0-9._-]+$ ]] || die "--release: expected a version like 1.2.0, found '$RELEASE'"
fi
DEST=${DEST:-/opt/sluice/$RELEASE}

# 1. NVMe staging
nvme=("$HERE/nvme.sh")
[ "$DRY" = 1 ] && nvme+=(--dry-run)
echo "host.sh: NVMe: ${nvme[*]} ${NVME_ARGS[*]}"
bash "${nvme[@]}" "${NVME_ARGS[@]}"

# 2. RKE2
if [ -n "$RKE2" ]; then
  [ -f /etc/rancher/rke2/config.yaml ] || [ "$DRY" = 1 ] || die "RKE2 $RKE2: expected /etc/rancher/rke2/config.yaml, found none"
  if ! command -v rke2 >/dev/null && [ ! -x /usr/local/bin/rke2 ] && [ ! -x /opt/rke2/bin/rke2 ]; then
    step "install RKE2 ($RKE2)" sh -c "curl -sfL '$RKE2_URL' | INSTALL_RKE2_TYPE='$RKE2' sh -"
  fi
  step "start RKE2" systemctl enable --now "rke2-$RKE2.service"
fi

# 3. the release's artifacts
[ ${#STAGES[@]} -gt 0 ] || { echo "host.sh: no stages to install"; exit 0; }
fetch() {
  case $ARTIFACTS in
    s3://*)
      command -v aws >/dev/null || [ "$DRY" = 1 ] || die "artifacts $ARTIFACTS: expected the aws CLI on PATH, found none"
      step "fetch binaries" aws s3 cp --recursive --only-show-errors "$ARTIFACTS/bin/" "$DEST/bin/"
      step "fetch systemd units" aws s3 cp --recursive --only-show-errors "$ARTIFACTS/systemd/" "$DEST/systemd/"
      ;;
    https://* | http://*)
      step "fetch bundle" sh -c "curl -fsSL '$ARTIFACTS/bundle.tar.gz' | tar -xz -C '$DEST'"
      ;;
    file://* | /*)
      local src=${ARTIFACTS#file://}
      step "copy binaries" cp -a "$src/bin/." "$DEST/bin/"
      step "copy systemd units" cp -a "$src/systemd/." "$DEST/systemd/"
      ;;
    *) die "--artifacts: expected s3://, https://, file:// or an absolute path, found '$ARTIFACTS'" ;;
  esac
}
step "create $DEST" install -d -m 0755 "$DEST" "$DEST/bin" "$DEST/systemd"
fetch
if [ "$DRY" = 0 ]; then
  [ -f "$DEST/systemd/install.sh" ] || die "artifacts $ARTIFACTS: expected systemd/install.sh, found none in $DEST/systemd"
  for s in "${STAGES[@]}"; do
    [ -f "$DEST/bin/sluice-$s" ] || die "artifacts $ARTIFACTS: expected bin/sluice-$s, found none in $DEST/bin"
    chmod 0755 "$DEST/bin/sluice-$s"
  done
fi

# 4. settings
set_env() { # KEY VALUE: replace or add KEY=VALUE in the env file
  local tmp="$ENV_FILE.sluice-tmp"
  install -d -m 0755 "$(dirname "$ENV_FILE")"
  { grep -v "^$1=" "$ENV_FILE" 2>/dev/null || true; printf '%s=%s\n' "$1" "$2"; } >"$tmp"
  chmod 0640 "$tmp"
  getent group sluice >/dev/null && chgrp sluice "$tmp"
  mv "$tmp" "$ENV_FILE"
}
for kv in "${ENVS[@]}"; do
  step "set ${kv%%=*} in $ENV_FILE" set_env "${kv%%=*}" "${kv#*=}"
done
for kv in "${ENV_SSM[@]}"; do
  if [ "$DRY" = 1 ]; then
    echo "plan: set ${kv%%=*} in $ENV_FILE from SSM parameter ${kv#*=}"
  else
    value=$(aws ssm get-parameter --with-decryption --name "${kv#*=}" --query Parameter.Value --output text) ||
      die "SSM parameter ${kv#*=} (for ${kv%%=*}): expected it to be readable, found an error"
    echo "run: set ${kv%%=*} in $ENV_FILE from SSM parameter ${kv#*=}"
    set_env "${kv%%=*}" "$value"
  fi
done

# 5. units
for s in "${STAGES[@]}"; do
  step "install stage $s" bash "$DEST/systemd/install.sh" --stage "$s" --binary "$DEST/bin/sluice-$s"
done
echo "host.sh: $([ "$DRY" = 1 ] && echo "dry run: nothing changed" || echo "done"): stages ${STAGES[*]}"
