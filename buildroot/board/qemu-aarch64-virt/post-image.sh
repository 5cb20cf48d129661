#!/usr/bin/env bash
# Post-image step of wren_qemu_aarch64_virt_defconfig: puts start-qemu.sh
# beside Image and rootfs.ext4, pointed at Buildroot's host QEMU.
set -euo pipefail

board_dir=$(dirname "$0")
sed -e "s|@HOST_DIR@|${HOST_DIR:?}|g" "$board_dir/start-qemu.sh" \
    > "${BINARIES_DIR:?}/start-qemu.sh"
chmod +x "$BINARIES_DIR/start-qemu.sh"
