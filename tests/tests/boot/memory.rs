use crate::*;

/// hog: memory.max = 48M, memory.low = 8M, pids.max = 64, touches 4 MiB;
/// small: memory.max = 20971520 (plain bytes).
#[test]
fn memory_limits_are_in_the_units_cgroup() {
    let mut vm = boot("memory");
    let st = vm.wait_states(
        &[("hog", &["running"]), ("small", &["running"])],
        Duration::from_secs(30),
    );
    let cg = "/sys/fs/cgroup/units";
    let cat = |vm: &mut wren_boot_tests::Vm, f: &str| {
        vm.sh(&format!("cat {cg}/{f}"), CMD).trim().to_string()
    };
    assert_eq!(cat(&mut vm, "hog/memory.max"), "50331648");
    assert_eq!(cat(&mut vm, "hog/memory.low"), "8388608");
    assert_eq!(cat(&mut vm, "hog/pids.max"), "64");
    assert_eq!(cat(&mut vm, "small/memory.max"), "20971520");
    assert_eq!(cat(&mut vm, "small/memory.low"), "0");
    // The unit's process is in that cgroup and its memory is charged there.
    wait_marks(&mut vm, "/run/hog", Duration::from_secs(10), |m| {
        !m.is_empty()
    });
    let pid = st["hog"].pid.expect("hog pid");
    assert_eq!(
        vm.sh(&format!("cat /proc/{pid}/cgroup"), CMD).trim(),
        "0::/units/hog"
    );
    let cur: u64 = cat(&mut vm, "hog/memory.current")
        .parse()
        .expect("memory.current");
    assert!(
        cur >= 4 << 20,
        "hog's 4 MiB not charged to its cgroup: {cur}"
    );
    assert!(cat(&mut vm, "cgroup.subtree_control").contains("memory"));
}
