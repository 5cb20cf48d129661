use crate::*;

/// PID 1 counts its heap allocations and, with `wren.debug`, logs every
/// wake-up of its loop that allocated. Through a crash loop, restarts,
/// `initctl status` and `initctl stop`, there must be none; a reload (which
/// re-reads the unit directory into a fresh table) is the known exception
/// and shows that the counter is live.
#[test]
fn the_supervision_loop_does_not_allocate_in_steady_state() {
    let mut vm = Vm::boot("backoff", "wren.debug");
    vm.wait_shell(BOOT);
    assert!(
        vm.saw("allocations so far, ", BOOT),
        "no boot allocation figure"
    );
    wait_marks(&mut vm, "/run/crashy", Duration::from_secs(40), |m| {
        m.len() >= 6
    });
    for _ in 0..3 {
        let st = vm.status();
        assert!(
            st.iter()
                .any(|u| u.name == "steady" && u.state == "running"),
            "{st:?}"
        );
    }
    let (_, rc) = vm.sh_rc("initctl stop steady", CMD);
    assert_eq!(rc, 0);
    let (_, rc) = vm.sh_rc("initctl start steady", CMD);
    assert_eq!(rc, 0);
    // Debug records go to the kernel log at debug priority: read dmesg.
    let before = vm.sh("dmesg | grep -c 'allocation(s) in one wake-up'", CMD);
    let lines = vm.sh("dmesg | grep 'allocation(s) in one wake-up'", CMD);
    assert_eq!(
        before.trim(),
        "0",
        "PID 1 allocated in steady state:\n{lines}"
    );
    // The debug log itself is on: the life-cycle records are there.
    let restarts = vm.sh("dmesg | grep -c 'crashy: exit 1, restart in'", CMD);
    assert!(
        restarts.trim().parse::<u32>().unwrap_or(0) >= 5,
        "{restarts}"
    );
    vm.sh("kill -HUP 1; sleep 1", CMD);
    let after = vm.sh("dmesg | grep -c 'allocation(s) in one wake-up'", CMD);
    assert_ne!(
        after.trim(),
        "0",
        "a reload allocates, so the counter must have reported it"
    );
}
