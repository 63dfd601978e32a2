#!/usr/bin/env bash
# Installs one Sluice stage on a systemd host: the binary, its unit(s), the shared environment file
# (only when absent), the `sluice` system user, the staging and cache directories, and enables the
# stage's unit. Idempotent: a second run changes nothing and says so.
#
#   infra/systemd/install.sh --stage ingest|normalize|train|infer --binary PATH
#                            [--enable UNIT[,UNIT...]] [--dry-run] [--root DIR]
#
#   --stage    which stage: installs /usr/local/bin/sluice-<stage> and the stage's units
#   --binary   the compiled stage binary (dist/sluice-<stage>)
#   --enable   units to enable (default: ingest -> sluice-ingest-events.service, normalize ->
#              sluice-normalize.service, infer -> sluice-infer.service, train ->
#              sluice-train-worker.service; sluice-train-node@.service is a template whose
#              instances the systemd launcher's rank files start)
#   --dry-run  print the plan, change nothing
#   --root     install into DIR as the filesystem root (image building, tests): no daemon-reload
#
# Every step prints one line: "create", "update", "ok" (already as wanted) or, with --dry-run,
# "would create" / "would update".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stage="" binary="" enable="" dry=0 root=""
usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage="${2:-}"; shift 2 || die "--stage needs a value" ;;
    --binary) binary="${2:-}"; shift 2 || die "--binary needs a value" ;;
    --enable) enable="${2:-}"; shift 2 || die "--enable needs a value" ;;
    --dry-run) dry=1; shift ;;
    --root) root="${2:-}"; shift 2 || die "--root needs a value" ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (expected --stage, --binary, --enable, --dry-run, --root)" ;;
  esac
done

case "$stage" in
  ingest) units=(sluice-ingest-events.service sluice-ingest-poll.service)
    default_enable=sluice-ingest-events.service ;;
  normalize) units=(sluice-normalize.service); default_enable=sluice-normalize.service ;;
  infer) units=(sluice-infer.service); default_enable=sluice-infer.service ;;
  train) units=(sluice-train-worker.service sluice-train-node@.service)
    default_enable=sluice-train-worker.service ;;
  "") die "--stage is required (ingest, normalize, train or infer)" ;;
  *) die "--stage: expected ingest, normalize, train or infer, found '$stage'" ;;
esac
[ -n "$binary" ] || die "--binary is required (the compiled dist/sluice-$stage)"
[ -f "$binary" ] || die "--binary: expected a file, found nothing at '$binary'"
[ -x "$binary" ] || die "--binary: expected an executable file, '$binary' is not executable"
if [ -n "$root" ]; then
  [ -d "$root" ] || die "--root: expected a directory, found nothing at '$root'"
  root=$(cd "$root" && pwd)
fi
IFS=, read -r -a to_enable <<<"${enable:-$default_enable}"
# A loop, not `printf | grep -q`: under pipefail, grep -q exiting at the first match could kill
# printf with SIGPIPE and fail the check for a unit that is in the list.
is_unit() {
  local x
  for x in "${units[@]}"; do [ "$x" = "$1" ] && return 0; done
  return 1
}
for u in "${to_enable[@]}"; do
  is_unit "$u" ||
    die "--enable: '$u' is not a unit of stage $stage (expected one of ${units[*]})"
  case "$u" in *@.service) die "--enable: '$u' is a template; start instances (sluice-train-node@<rank>) instead" ;; esac
done
[ "$dry" = 1 ] || [ -n "$root" ] || [ "$(id -u)" = 0 ] ||
  die "installing into / needs root (running as uid $(id -u)); use --dry-run or --root DIR"

staging=/mnt/nvme/sluice
cache=/var/cache/sluice
changed=0

step() { # step VERB WHAT: prints one plan line
  if [ "$dry" = 1 ] && [ "$1" != ok ]; then echo "would $1 $2"; else echo "$1 $2"; fi
  [ "$1" = ok ] || changed=$((changed + 1))
}

# install_file SRC DEST MODE [OWNER:GROUP] [if-absent]
install_file() {
  local src=$1 dest=$2 mode=$3 owner=${4:-} absent=${5:-}
  local target="$root$dest"
  if [ -e "$target" ]; then
    if [ -n "$absent" ] || cmp -s "$src" "$target"; then step ok "$dest"; return; fi
    step update "$dest"
  else
    step create "$dest"
  fi
  [ "$dry" = 1 ] && return
  install -D -m "$mode" "$src" "$target.sluice-new"
  [ -z "$owner" ] || chown "$owner" "$target.sluice-new"
  mv -f "$target.sluice-new" "$target"
}

user_exists() {
  if [ -n "$root" ]; then grep -q '^sluice:' "$root/etc/passwd" 2>/dev/null; else getent passwd sluice >/dev/null; fi
}
sluice_ids() { # prints uid:gid of sluice in the target root
  if [ -n "$root" ]; then awk -F: '$1 == "sluice" { print $3 ":" $4 }' "$root/etc/passwd" 2>/dev/null || true; else echo sluice:sluice; fi
}

# 1. The system user (systemd-sysusers, so --root works on an image tree too).
install_file "$here/sluice.sysusers" /usr/lib/sysusers.d/sluice.conf 0644
if user_exists; then
  step ok "user sluice"
else
  step create "user sluice"
  if [ "$dry" = 0 ]; then
    if [ -n "$root" ]; then
      mkdir -p "$root/etc"
      systemd-sysusers --root="$root" sluice.conf >/dev/null
    else
      systemd-sysusers sluice.conf >/dev/null
    fi
  fi
fi

# 2. The binary.
install_file "$binary" "/usr/local/bin/sluice-$stage" 0755

# 3. Units, and the shared environment file only when absent (it holds the host's settings).
for u in "${units[@]}"; do install_file "$here/$u" "/etc/systemd/system/$u" 0644; done
ids=$(sluice_ids)
install_file "$here/sluice.env.example" /etc/sluice/sluice.env 0640 "root:${ids#*:}" if-absent

# 4. Staging and cache directories owned by sluice (the staging mount may already be there).
for d in "$staging" "$cache"; do
  if [ -d "$root$d" ]; then step ok "directory $d"; continue; fi
  step create "directory $d"
  [ "$dry" = 1 ] || install -d -m 0750 -o "${ids%:*}" -g "${ids#*:}" "$root$d"
done

# 5. Enable.
sysctl_args=()
[ -z "$root" ] || sysctl_args=(--root="$root")
if [ -z "$root" ] && [ "$dry" = 0 ] && [ "$changed" -gt 0 ]; then systemctl daemon-reload; fi
for u in "${to_enable[@]}"; do
  if [ -L "$root/etc/systemd/system/multi-user.target.wants/$u" ]; then
    step ok "enabled $u"
  else
    step enable "$u"
    [ "$dry" = 1 ] || systemctl "${sysctl_args[@]}" enable "$u" 2>/dev/null
  fi
done

if [ "$dry" = 1 ]; then
  echo "dry run: $changed change(s) planned, nothing done"
elif [ "$changed" = 0 ]; then
  echo "nothing to do: stage $stage is installed and enabled"
else
  echo "$changed change(s) made"
  [ -n "$root" ] || echo "start with: systemctl start ${to_enable[*]}"
fi
