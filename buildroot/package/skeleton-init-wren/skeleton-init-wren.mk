################################################################################
#
# skeleton-init-wren
#
################################################################################

# The skeleton can't depend on the toolchain, since all packages depend on
# the skeleton and the toolchain is a target package, as is skeleton.
SKELETON_INIT_WREN_ADD_TOOLCHAIN_DEPENDENCY = NO
SKELETON_INIT_WREN_ADD_SKELETON_DEPENDENCY = NO

SKELETON_INIT_WREN_DEPENDENCIES = skeleton-init-common

SKELETON_INIT_WREN_PROVIDES = skeleton

# wren never remounts the root read-write: the kernel mounts it as its
# command line says (rw or ro, see the board's post-image script). On a
# read-only root, the root's fstab entry says ro, and the directories of
# /var that programs write to at run time are links to the /tmp tmpfs
# (mounted by /etc/units/mounts.unit), as in Buildroot's sysv skeleton;
# /var/lib stays a directory on the root (wren-oci's layers are there).
# /var/lock is a link to /tmp on either root: a lock file a power cut
# left on the card (microcom's LCK..ttyS0, made with O_EXCL) refused the
# serial tools until someone removed it by hand.
ifeq ($(BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW),y)
define SKELETON_INIT_WREN_PERMISSIONS
	/var/tmp d 1777 0 0 - - - - -
endef
else
define SKELETON_INIT_WREN_READ_ONLY_ROOT
	$(SED) '\:^/dev/root[[:blank:]]:s/\<rw,noauto\>/ro,noauto/' \
		$(TARGET_DIR)/etc/fstab
	for d in cache lock log spool tmp; do \
		rm -rf $(TARGET_DIR)/var/$$d && \
		ln -s ../tmp $(TARGET_DIR)/var/$$d || exit 1; \
	done
	rm -rf $(TARGET_DIR)/var/lib/misc
	ln -s ../../tmp $(TARGET_DIR)/var/lib/misc
endef
endif

define SKELETON_INIT_WREN_INSTALL_TARGET_CMDS
	$(call SYSTEM_RSYNC,$(SKELETON_INIT_WREN_PKGDIR)/skeleton,$(TARGET_DIR))
	$(SKELETON_INIT_WREN_READ_ONLY_ROOT)
endef

$(eval $(generic-package))
