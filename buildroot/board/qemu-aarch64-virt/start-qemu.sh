#!/bin/sh
# Boots wren_qemu_aarch64_virt_defconfig's image: the root on an ext4
# virtio disk, read-write (read-only without
# BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW), /sbin/init = wren, an i6300esb
# watchdog that wren feeds, the console on this terminal (Ctrl-A X quits
# QEMU).
# Extra arguments go to QEMU. Installed in output/images/ by post-image.sh.
set -eu

dir=$(cd "$(dirname "$0")" && pwd)
qemu="qemu-system-aarch64"
if [ -x "@HOST_DIR@/bin/qemu-system-aarch64" ]; then
    qemu="@HOST_DIR@/bin/qemu-system-aarch64"
fi

exec "$qemu" -M virt -cpu cortex-a53 -smp 2 -m 512 -nographic \
    -kernel "$dir/Image" \
    -append "rootwait root=/dev/vda @ROOT_MODE@ console=ttyAMA0 init=/sbin/init wren.watchdog" \
    -drive "file=$dir/rootfs.ext4,if=none,format=raw,id=hd0" \
    -device virtio-blk-device,drive=hd0 \
    -netdev user,id=eth0 -device virtio-net-device,netdev=eth0 \
    -device i6300esb \
    "$@"
