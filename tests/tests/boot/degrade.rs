//! A kernel without the memory controller (as Raspberry Pi kernels boot
//! unless cmdline.txt says `cgroup_enable=memory`; here
//! `cgroup_disable=memory`): PID 1 says once what is missing and how to
//! turn it on, runs every unit, and `initctl status NAME` says which limits
//! are not enforced, instead of retrying the unit for ever.
use crate::*;

#[test]
fn without_the_memory_controller_units_run_and_say_what_is_not_enforced() {
    let mut vm = wren_boot_tests::Vm::boot("nomemcg", "cgroup_disable=memory");
    vm.wait_shell(BOOT);
    let st = vm.wait_states(&[("limited", &["running"])], Duration::from_secs(30));
    assert_eq!(st["limited"].restarts, 0);
    let d = vm.sh("initctl status limited", CMD);
    assert!(
        d.contains("not enforced: memory.max (controller not available)"),
        "{d}"
    );
    // pids is there: enforced.
    assert_eq!(
        vm.sh("cat /sys/fs/cgroup/units/limited/pids.max", CMD)
            .trim(),
        "32"
    );
    let msg = vm.sh(
        "dmesg | grep 'controller memory not available' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(msg.contains("cgroup_enable=memory"), "{msg}");
    // Still running a while later: not retried.
    vm.sh("sleep 3", CMD);
    let st = vm.wait_states(&[("limited", &["running"])], CMD);
    assert_eq!(st["limited"].restarts, 0);
}

/// An initramfs that mounted cgroup2 before exec'ing wren, without the
/// options the isolation rests on: PID 1 remounts it with `nsdelegate`
/// (a unit in a cgroup namespace cannot write its own limits) and
/// `memory_recursiveprot`, and supervises as usual.
#[test]
fn a_cgroup2_mounted_before_pid1_gets_its_options() {
    let wrap = b"#!/bin/sh\n\
mount -t proc proc /proc\n\
mount -t sysfs sysfs /sys\n\
mount -t cgroup2 none /sys/fs/cgroup\n\
exec /sbin/init\n";
    let mut vm =
        wren_boot_tests::Vm::boot_with_files("faults", "rdinit=/wrap", &[("/wrap", wrap, 0o755)]);
    vm.wait_shell(BOOT);
    vm.wait_states(
        &[("a", &["running"]), ("b", &["running"])],
        Duration::from_secs(30),
    );
    let m = vm.sh("grep ' /sys/fs/cgroup cgroup2 ' /proc/mounts", CMD);
    assert_eq!(m.lines().count(), 1, "{m}");
    assert!(
        m.contains("nsdelegate") && m.contains("memory_recursiveprot"),
        "cgroup2 kept without wren's options: {m}"
    );
    assert!(
        m.contains("nosuid") && m.contains("nodev") && m.contains("noexec"),
        "{m}"
    );
    // /run, which wren mounts here, is bounded (a fifth of the RAM).
    let run = vm.sh("grep ' /run tmpfs ' /proc/mounts", CMD);
    assert!(run.contains(",size="), "/run without a size: {run}");
}
