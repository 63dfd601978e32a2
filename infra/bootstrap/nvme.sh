#!/usr/bin/env bash
# Sluice NVMe bootstrap: turn a host's instance-store NVMe disks into the staging mount.
#
#   nvme.sh [--dry-run] [--devices "/dev/nvme1n1 /dev/nvme2n1" | --model REGEX]
#           [--raid 0|none] [--fs xfs|ext4] [--mount /mnt/nvme] [--options noatime]
#           [--owner sluice] [--group sluice] [--mode 0750] [--staging-dir sluice]
#           [--mount-method auto|systemd|fstab] [--fstab /etc/fstab] [--unit-dir DIR]
#           [--lsblk-file FILE]
#
# Idempotent: disks are found by model string (default: AWS instance store) or taken from
# --devices; the root disk is never used; several disks become one RAID0 array (mdadm), one disk is
# used as is; a filesystem is made only where none exists; the mount is a systemd mount unit (or an
# fstab line with nofail); <mount>/<staging-dir> is created owned by the stage user. Everything
# this script creates carries the label "sluice-nvme"; a disk holding anything else (a filesystem,
# partitions, another array) is refused. --dry-run prints the plan and changes nothing.
# --lsblk-file reads a canned `lsblk -P -o NAME,PATH,TYPE,MODEL,FSTYPE,LABEL,MOUNTPOINT,PKNAME`
# listing instead of the machine's (tests plan against fake disks with it).
set -euo pipefail

LABEL=sluice-nvme
MD=/dev/md/$LABEL
DRY=0 DEVICES="" MODEL_RE="Amazon EC2 NVMe Instance Storage" RAID=0 FS=xfs MNT=/mnt/nvme
OPTS=noatime OWNER=sluice GROUP="" MODE=0750 SUBDIR=sluice METHOD=auto FSTAB=/etc/fstab
UNIT_DIR=/etc/systemd/system LSBLK_FILE=""
CHANGES=0

die() { echo "nvme.sh: error: $*" >&2; exit 1; }
note() { echo "nvme.sh: $*"; }
# step DESCRIPTION CMD...: print the step; run it unless --dry-run.
step() {
  local what=$1; shift
  CHANGES=$((CHANGES + 1))
  if [ "$DRY" = 1 ]; then echo "plan: $what: $*"; else echo "run: $what: $*"; "$@"; fi
}

while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY=1; shift ;;
    --devices) DEVICES=$2; shift 2 ;;
    --model) MODEL_RE=$2; shift 2 ;;
    --raid) RAID=$2; shift 2 ;;
    --fs) FS=$2; shift 2 ;;
    --mount) MNT=$2; shift 2 ;;
    --options) OPTS=$2; shift 2 ;;
    --owner) OWNER=$2; shift 2 ;;
    --group) GROUP=$2; shift 2 ;;
    --mode) MODE=$2; shift 2 ;;
    --staging-dir) SUBDIR=$2; shift 2 ;;
    --mount-method) METHOD=$2; shift 2 ;;
    --fstab) FSTAB=$2; shift 2 ;;
    --unit-dir) UNIT_DIR=$2; shift 2 ;;
    --lsblk-file) LSBLK_FILE=$2; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
case $RAID in 0 | none) ;; *) die "--raid: expected 0 or none, found '$RAID'" ;; esac
case $FS in xfs | ext4) ;; *) die "--fs: expected xfs or ext4, found '$FS'" ;; esac
case $METHOD in auto | systemd | fstab) ;; *) die "--mount-method: expected auto, systemd or fstab, found '$METHOD'" ;; esac
case $MNT in /*) ;; *) die "--mount: expected an absolute path, found '$MNT'" ;; esac
[[ $MODE =~ ^[0-7]{3,4}$ ]] || die "--mode: expected an octal mode like 0750, found '$MODE'"
[[ $SUBDIR =~ ^[A-Za-z0-9._-]+$ ]] || die "--staging-dir: expected one path segment, found '$SUBDIR'"
GROUP=${GROUP:-$OWNER}
if [ "$METHOD" = auto ]; then
  if [ -d /run/systemd/system ]; then METHOD=systemd; else METHOD=fstab; fi
fi

# --- the block device listing: NAME PATH TYPE MODEL FSTYPE LABEL MOUNTPOINT PKNAME per line ---
if [ -n "$LSBLK_FILE" ]; then
  LISTING=$(cat "$LSBLK_FILE")
else
  LISTING=$(lsblk -P -o NAME,PATH,TYPE,MODEL,FSTYPE,LABEL,MOUNTPOINT,PKNAME)
fi
declare -A L_PATH L_TYPE L_MODEL L_FSTYPE L_LABEL L_MNT L_PARENT
NAMES=()
field() { # field KEY LINE -> value of KEY="..." in a lsblk -P line
  local re="(^| )$1=\"([^\"]*)\""
  if [[ $2 =~ $re ]]; then printf '%s' "${BASH_REMATCH[2]//\\x20/ }"; fi
}
while IFS= read -r line; do
  [ -n "$line" ] || continue
  n=$(field NAME "$line")
  NAMES+=("$n")
  L_PATH[$n]=$(field PATH "$line")
  L_TYPE[$n]=$(field TYPE "$line")
  L_MODEL[$n]=$(field MODEL "$line")
  L_FSTYPE[$n]=$(field FSTYPE "$line")
  L_LABEL[$n]=$(field LABEL "$line")
  L_MNT[$n]=$(field MOUNTPOINT "$line")
  L_PARENT[$n]="${L_PARENT[$n]:-}$(field PKNAME "$line")"
done <<<"$LISTING"

name_of() { # PATH -> lsblk NAME (or empty)
  local n
  for n in "${NAMES[@]}"; do [ "${L_PATH[$n]}" = "$1" ] && { printf '%s' "$n"; return; }; done
  return 0
}
top_disk() { # NAME -> the disk it sits on (walks PKNAME up)
  local n=$1
  while [ -n "${L_PARENT[$n]:-}" ]; do n=${L_PARENT[$n]}; done
  printf '%s' "$n"
}
children() { # NAME -> names whose parent is NAME
  local n
  for n in "${NAMES[@]}"; do [ "${L_PARENT[$n]:-}" = "$1" ] && printf '%s\n' "$n"; done
  return 0
}
fs_of() { # PATH -> filesystem/signature type (listing when canned, else a direct probe)
  if [ -n "$LSBLK_FILE" ]; then field_of_path FSTYPE "$1"; else blkid -p -s TYPE -o value "$1" 2>/dev/null || true; fi
}
label_of() {
  if [ -n "$LSBLK_FILE" ]; then field_of_path LABEL "$1"; else blkid -p -s LABEL -o value "$1" 2>/dev/null || true; fi
}
field_of_path() {
  local n; n=$(name_of "$2")
  case $1 in FSTYPE) printf '%s' "${L_FSTYPE[$n]:-}" ;; LABEL) printf '%s' "${L_LABEL[$n]:-}" ;; esac
}

# --- root disk(s): whatever holds /, /boot, /boot/efi or swap is never touched ---
declare -A ROOT
for n in "${NAMES[@]}"; do
  case ${L_MNT[$n]} in / | /boot | /boot/efi | "[SWAP]") ROOT[$(top_disk "$n")]=1 ;; esac
done

# --- the devices ---
SELECTED=()
if [ -n "$DEVICES" ]; then
  read -r -a wanted <<<"$DEVICES"
  for d in "${wanted[@]}"; do
    n=$(name_of "$d")
    [ -n "$n" ] || die "device $d: expected a block device in the listing, found none"
    [ -z "${ROOT[$n]:-}" ] || die "device $d: it holds the root filesystem; refusing to use it"
    SELECTED+=("$d")
  done
else
  for n in "${NAMES[@]}"; do
    [ "${L_TYPE[$n]}" = disk ] || continue
    [ -z "${ROOT[$n]:-}" ] || { note "skipping root disk ${L_PATH[$n]}"; continue; }
    [[ ${L_MODEL[$n]} =~ $MODEL_RE ]] && SELECTED+=("${L_PATH[$n]}")
  done
  [ ${#SELECTED[@]} -gt 0 ] || die "no disk matched model /$MODEL_RE/ (root disk excluded); give --devices or --model"
fi
if [ "$RAID" = none ] && [ ${#SELECTED[@]} -gt 1 ]; then
  note "--raid none: using ${SELECTED[0]} only; leaving ${SELECTED[*]:1} alone"
  SELECTED=("${SELECTED[0]}")
fi
note "devices: ${SELECTED[*]}; raid: $([ ${#SELECTED[@]} -gt 1 ] && echo 0 || echo none); fs: $FS; mount: $MNT ($METHOD, $OPTS)"

# A device is "free" (no signature, no partitions, not mounted), "ours" (our label) or refused.
classify() { # PATH EXPECTED_OURS_FSTYPE -> free|ours
  local d=$1 want=$2 n t l kids
  n=$(name_of "$d")
  t=$(fs_of "$d"); l=$(label_of "$d")
  kids=$(children "$n")
  if [ -z "$t" ]; then
    if [ -n "$kids" ] && [ "$want" != linux_raid_member ]; then
      die "device $d: it holds partitions or other devices ($(echo "$kids" | tr '\n' ' ')) that nvme.sh did not create; refusing (wipe it yourself if it is disposable)"
    fi
    [ -z "${L_MNT[$n]:-}" ] || die "device $d: mounted at ${L_MNT[$n]}; refusing"
    echo free; return
  fi
  if [ "$t" = "$want" ] && { [ "$l" = "$LABEL" ] || [[ $l == *":$LABEL" ]]; }; then echo ours; return; fi
  die "device $d: it holds ${t}${l:+ (label $l)} that nvme.sh did not create (expected none or $want labelled $LABEL); refusing (wipe it yourself, e.g. wipefs -a $d, if it is disposable)"
}

mkfs_cmd() { # PATH -> the mkfs command line
  if [ "$FS" = xfs ]; then echo "mkfs.xfs -q -L $LABEL $1"; else echo "mkfs.ext4 -q -F -L $LABEL $1"; fi
}

# --- block device: one disk, or a RAID0 array over several ---
if [ ${#SELECTED[@]} -eq 1 ]; then
  TARGET=${SELECTED[0]}
  state=$(classify "$TARGET" "$FS")
  # shellcheck disable=SC2046 # the mkfs command line splits on purpose
  [ "$state" = ours ] || step "make $FS on $TARGET" $(mkfs_cmd "$TARGET")
else
  command -v mdadm >/dev/null || [ "$DRY" = 1 ] || die "mdadm: expected on PATH for RAID0 over ${#SELECTED[@]} disks, found none"
  TARGET=$MD
  free=0 ours=0
  for d in "${SELECTED[@]}"; do
    state=$(classify "$d" linux_raid_member) # a refusal exits here (set -e)
    case $state in free) free=$((free + 1)) ;; ours) ours=$((ours + 1)) ;; esac
  done
  if [ "$ours" -gt 0 ] && [ "$free" -gt 0 ]; then
    die "devices ${SELECTED[*]}: $ours are members of array $LABEL and $free are blank; expected all or none (recreate the array by hand)"
  fi
  if [ -z "$LSBLK_FILE" ] && [ -e "$MD" ]; then
    note "array $MD is assembled"
  elif [ "$ours" -gt 0 ]; then
    step "assemble RAID0 $MD" mdadm --assemble "$MD" "${SELECTED[@]}"
  else
    step "create RAID0 $MD" mdadm --create "$MD" --name="$LABEL" --level=0 --raid-devices="${#SELECTED[@]}" --run "${SELECTED[@]}"
  fi
  if [ -d /etc/mdadm ] && ! grep -qs "name=.*:$LABEL\b" /etc/mdadm/mdadm.conf; then
    step "record $MD in /etc/mdadm/mdadm.conf" sh -c "mdadm --detail --scan '$MD' >> /etc/mdadm/mdadm.conf"
  fi
  if [ "$ours" = 0 ] || [ -z "$(fs_of "$MD")" ]; then
    # shellcheck disable=SC2046 # the mkfs command line splits on purpose
    step "make $FS on $MD" $(mkfs_cmd "$MD")
  else
    t=$(fs_of "$MD"); l=$(label_of "$MD")
    { [ "$t" = "$FS" ] && [ "$l" = "$LABEL" ]; } || die "array $MD: holds $t (label $l); expected $FS labelled $LABEL"
  fi
fi

# --- the mount: by UUID, so device names may change between boots ---
uuid_of() {
  if [ "$DRY" = 1 ] || [ -n "$LSBLK_FILE" ]; then echo "<uuid of $1>"; else blkid -p -s UUID -o value "$1"; fi
}
UUID=$(uuid_of "$TARGET")
OPTS_NOFAIL=$OPTS
[[ ,$OPTS, == *,nofail,* ]] || OPTS_NOFAIL="$OPTS,nofail"
write_file() { # PATH CONTENT
  printf '%s\n' "$2" >"$1.sluice-tmp" && mv "$1.sluice-tmp" "$1"
}
if [ "$METHOD" = systemd ]; then
  UNIT=$(systemd-escape -p --suffix=mount "$MNT" 2>/dev/null || echo "${MNT#/}" | tr / - | sed 's/$/.mount/')
  UNIT_TEXT="# Written by sluice nvme.sh
[Unit]
Description=Sluice NVMe staging ($LABEL)
Before=local-fs.target

[Mount]
What=/dev/disk/by-uuid/$UUID
Where=$MNT
Type=$FS
Options=$OPTS_NOFAIL

[Install]
WantedBy=local-fs.target"
  if [ "$(cat "$UNIT_DIR/$UNIT" 2>/dev/null)" != "$UNIT_TEXT" ]; then
    step "write mount unit $UNIT_DIR/$UNIT" write_file "$UNIT_DIR/$UNIT" "$UNIT_TEXT"
    step "reload systemd" systemctl daemon-reload
    step "enable $UNIT" systemctl enable "$UNIT"
  fi
else
  LINE="UUID=$UUID $MNT $FS $OPTS_NOFAIL 0 2 # $LABEL"
  if ! grep -qxF "$LINE" "$FSTAB" 2>/dev/null; then
    step "add to $FSTAB" sh -c "grep -v '# $LABEL\$' '$FSTAB' > '$FSTAB.sluice-tmp' 2>/dev/null; printf '%s\n' '$LINE' >> '$FSTAB.sluice-tmp' && mv '$FSTAB.sluice-tmp' '$FSTAB'"
  fi
fi
mounted=$(findmnt -n -o SOURCE --mountpoint "$MNT" 2>/dev/null || true)
if [ -n "$mounted" ] && [ "$DRY" = 0 ] && [ "$(blkid -p -s UUID -o value "$mounted" 2>/dev/null)" != "$UUID" ]; then
  die "mount point $MNT: holds $mounted, expected the $LABEL filesystem (UUID $UUID)"
fi
if [ -z "$mounted" ]; then
  [ -d "$MNT" ] || step "create $MNT" mkdir -p "$MNT"
  if [ "$METHOD" = systemd ]; then
    step "mount $MNT" systemctl start "$UNIT"
  else
    step "mount $MNT" mount -t "$FS" -o "$OPTS" "$TARGET" "$MNT"
  fi
fi

# --- the staging directory, owned by the stage user ---
DIR=$MNT/$SUBDIR
if ! id -u "$OWNER" >/dev/null 2>&1; then
  step "create system user $OWNER" useradd --system --no-create-home --shell /usr/sbin/nologin "$OWNER"
fi
# Compare names with names and numbers with numbers (OpenShift nodes use group 0).
fmt_u=%U fmt_g=%G
[[ $OWNER =~ ^[0-9]+$ ]] && fmt_u=%u
[[ $GROUP =~ ^[0-9]+$ ]] && fmt_g=%g
want="$OWNER:$GROUP $((8#$MODE))"
have=""
[ -d "$DIR" ] && have="$(stat -c "$fmt_u:$fmt_g" "$DIR") $((8#$(stat -c '%a' "$DIR")))"
if [ "$have" != "$want" ]; then
  step "staging directory $DIR" install -d -o "$OWNER" -g "$GROUP" -m "$MODE" "$DIR"
fi

if [ "$CHANGES" = 0 ]; then
  note "no changes: $TARGET is mounted at $MNT and $DIR is ready"
elif [ "$DRY" = 1 ]; then
  note "dry run: $CHANGES steps planned, nothing changed"
else
  note "done: $CHANGES steps; $TARGET is mounted at $MNT and $DIR is ready"
fi
