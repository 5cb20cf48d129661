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
