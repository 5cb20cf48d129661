//! Boot-test harness (QEMU + serial console).
