#!/usr/bin/env bash
# Post-image step of wren's Raspberry Pi defconfigs: refuses a boot
# partition whose cmdline.txt would not boot wren with its memory cgroup,
# then builds sdcard.img with Buildroot's own Raspberry Pi step (genimage).
# Run by Buildroot from its top directory, with BINARIES_DIR set.
set -euo pipefail

cmdline="${BINARIES_DIR:?}/rpi-firmware/cmdline.txt"
[ -s "$cmdline" ] || { echo "post-image: $cmdline missing" >&2; exit 1; }
# psi=1: the Pi kernels build PSI disabled by default (pressure_limit and
# wren.shed need it).
for want in init=/sbin/init cgroup_enable=memory psi=1 rw; do
    # The firmware puts cgroup_disable=memory (from the device tree) before
    # this line; only a later cgroup_enable=memory turns it back on.
    grep -qw -- "$want" "$cmdline" \
        || { echo "post-image: $cmdline lacks $want" >&2; exit 1; }
done
if grep -qw -- cgroup_disable=memory "$cmdline"; then
    echo "post-image: $cmdline disables the memory cgroup" >&2
    exit 1
fi

exec board/raspberrypi/post-image.sh "$@"
