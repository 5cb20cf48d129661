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

define SKELETON_INIT_WREN_INSTALL_TARGET_CMDS
	$(call SYSTEM_RSYNC,$(SKELETON_INIT_WREN_PKGDIR)/skeleton,$(TARGET_DIR))
endef

define SKELETON_INIT_WREN_PERMISSIONS
	/var/tmp d 1777 0 0 - - - - -
endef

$(eval $(generic-package))
