//! A kernel that lacks what a unit asks for is said once at boot, with
//! how to turn it on (CONTRACT section 2); the unit's starts fail for it
//! and say so in its status; everything else runs.
use crate::*;

/// `user.max_user_namespaces = 0` from /etc/sysctl.conf (applied before
/// any unit): box (`user` in its namespaces) cannot start.
#[test]
fn user_namespaces_turned_off_are_said_once_at_boot() {
    let mut vm = Vm::boot_with_files(
        "nouserns",
        "",
        &[("/etc/sysctl.conf", b"user.max_user_namespaces = 0\n", 0o644)],
    );
    vm.wait_shell(BOOT);
    let want = "wren: 1 units with `user` in namespaces cannot start: user namespaces off (user.max_user_namespaces = 0); set it above 0 in /etc/sysctl.conf";
    assert!(vm.saw(want, CMD), "{}", vm.tail());
    // The unit's own failed starts name the same cause.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = vm.sh("initctl status box", CMD);
        if status.contains("cannot start: user namespaces off (user.max_user_namespaces = 0)") {
            break;
        }
        assert!(Instant::now() < deadline, "box's status: {status}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let dmesg = vm.sh_raw_rc("dmesg | grep 'units with'", CMD).0;
    assert_eq!(dmesg.matches(want).count(), 1, "once:\n{dmesg}");
    let st = vm.wait_states(&[("sh", &["running"])], CMD);
    assert!(st.contains_key("sh"));
}
