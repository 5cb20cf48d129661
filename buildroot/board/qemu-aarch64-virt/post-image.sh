#!/usr/bin/env bash
# Post-image step of wren_qemu_aarch64_virt_defconfig: puts start-qemu.sh
# beside Image and rootfs.ext4, pointed at Buildroot's host QEMU, the root
# mounted rw or ro.
set -euo pipefail

board_dir=$(dirname "$0")
# wren never remounts the root read-write: the kernel mounts it rw or ro
# as BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW says: off only when it says so
# (a custom skeleton has no such option, and asked for no ro).
root=rw
if grep -qx '# BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW is not set' "${BR2_CONFIG:?}"; then
    root=ro
fi
sed -e "s|@HOST_DIR@|${HOST_DIR:?}|g" -e "s|@ROOT_MODE@|$root|g" \
    "$board_dir/start-qemu.sh" > "${BINARIES_DIR:?}/start-qemu.sh"
chmod +x "$BINARIES_DIR/start-qemu.sh"
