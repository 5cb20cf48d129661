use crate::*;

/// early <- late, both print on the console when they get SIGTERM.
#[test]
fn poweroff_stops_units_in_reverse_order_then_ends_the_vm() {
    let mut vm = boot("stop");
    vm.wait_states(
        &[("early", &["running"]), ("late", &["running"])],
        Duration::from_secs(30),
    );
    assert!(vm.saw("svc-late: up", CMD));
    let before = vm.output().len();
    // BusyBox poweroff: SIGUSR2 to PID 1.
    vm.send("poweroff\n");
    let st = vm
        .wait_exit(Duration::from_secs(60))
        .expect("VM still running 60 s after poweroff");
    assert!(st.success(), "qemu exit {st:?}");
    let out = vm.output();
    let out = &out[before..];
    assert!(!out.contains("Kernel panic"), "kernel panicked at shutdown");
    assert_in_order(
        out,
        &[
            "svc-late: got TERM",
            "[ STOP ] late: stopped",
            "svc-early: got TERM",
            "[ STOP ] early: stopped",
            "reboot: Power down",
        ],
    );
}
