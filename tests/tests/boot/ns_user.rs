//! `user = nobody`: the service runs as uid/gid 65534 with no
//! supplementary groups and cannot write to /etc.
use crate::*;

#[test]
fn ns_user_nobody_runs_unprivileged() {
    let mut vm = boot("nsuser");
    vm.wait_states(
        &[("prep", &["exited"]), ("nobody", &["running"])],
        Duration::from_secs(30),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while vm
        .sh("cat /run/out/done 2>/dev/null", CMD)
        .trim()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "nobody's probe never finished");
        std::thread::sleep(Duration::from_millis(500));
    }
    let ids = vm.sh("cat /run/out/ids", CMD);
    let line = |k: &str| -> Vec<String> {
        ids.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {ids}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(line("Uid:"), ["65534"; 4], "{ids}");
    assert_eq!(line("Gid:"), ["65534"; 4], "{ids}");
    // initgroups semantics (issue 8): the user's own groups, here only its
    // primary one; none of PID 1's (root's) is kept.
    assert_eq!(line("Groups:"), ["65534"], "supplementary groups: {ids}");

    assert_eq!(vm.sh("cat /run/out/etc", CMD).trim(), "refused");
    let err = vm.sh("cat /run/out/etc.err", CMD);
    assert!(
        err.contains("denied"),
        "unexpected error writing /etc: {err}"
    );
    assert_eq!(vm.sh("cat /run/out/units", CMD).trim(), "refused");
    let (_, rc) = vm.sh_rc("test -e /etc/pwned || test -e /etc/units/pwned.unit", CMD);
    assert_ne!(rc, 0, "nobody wrote into /etc");
    // The same from the host's view of the process.
    let pid = vm
        .sh("sort -n /sys/fs/cgroup/units/nobody/cgroup.procs", CMD)
        .split_whitespace()
        .last()
        .expect("nobody's cgroup is empty")
        .to_string();
    let st = vm.sh(&format!("grep ^Uid: /proc/{pid}/status"), CMD);
    assert!(st.contains("65534"), "host view of the service: {st}");
}
