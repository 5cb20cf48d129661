#!/usr/bin/env bash
# Post-image step of wren's Raspberry Pi defconfigs: refuses a boot
# partition whose cmdline.txt would not boot wren with its memory cgroup,
# then builds sdcard.img with Buildroot's own Raspberry Pi step (genimage).
# Run by Buildroot from its top directory, with BINARIES_DIR and BR2_CONFIG
# set.
set -euo pipefail

cmdline="${BINARIES_DIR:?}/rpi-firmware/cmdline.txt"
[ -s "$cmdline" ] || { echo "post-image: $cmdline missing" >&2; exit 1; }
# A word of the command line, exactly (grep reads it all: no SIGPIPE for
# tr under pipefail).
has() { tr -s ' \t' '\n' <"$cmdline" | grep -xF -- "$1" >/dev/null; }

# wren never remounts the root read-write: the kernel mounts it as the
# command line says, so that must be what "System configuration ->
# remount root filesystem read-write during boot" asks. Off, the rw of
# the boards' cmdline.txt becomes ro here (in the boot partition's copy).
# Only off when it says so: with a custom skeleton the option does not
# exist (it is the default skeleton's), and nobody asked for ro.
if ! grep -qx '# BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW is not set' "${BR2_CONFIG:?}"; then
    root=rw not=ro
else
    root=ro not=rw
    if has rw; then
        awk '{ for (i = 1; i <= NF; i++) if ($i == "rw") $i = "ro"; print }' \
            "$cmdline" >"$cmdline.new"
        mv "$cmdline.new" "$cmdline"
        echo "post-image: $cmdline: rw replaced with ro (BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW is off)"
    fi
fi
if has "$not"; then
    echo "post-image: $cmdline has $not, but BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW wants the root $root" >&2
    exit 1
fi

# psi=1: the Pi kernels build PSI disabled by default (pressure_limit and
# wren.shed need it).
for want in init=/sbin/init cgroup_enable=memory psi=1 "$root"; do
    # The firmware puts cgroup_disable=memory (from the device tree) before
    # this line; only a later cgroup_enable=memory turns it back on.
    has "$want" || { echo "post-image: $cmdline lacks $want" >&2; exit 1; }
done
if has cgroup_disable=memory; then
    echo "post-image: $cmdline disables the memory cgroup" >&2
    exit 1
fi

exec board/raspberrypi/post-image.sh "$@"
