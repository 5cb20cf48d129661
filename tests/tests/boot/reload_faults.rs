//! Reload faults: an empty, missing or all-invalid unit directory changes
//! nothing (the console shell included) and says why with exit 1; a reload
//! updates `units/`'s memory protection to what its units now ask for, and
//! removes the cgroup of a unit it removed.
use crate::*;

fn pids(vm: &mut wren_boot_tests::Vm) -> Vec<(String, Option<u32>)> {
    let st = vm.wait_states(
        &[
            ("sh", &["running"]),
            ("a", &["running"]),
            ("b", &["running"]),
        ],
        Duration::from_secs(30),
    );
    let mut v: Vec<_> = st.into_iter().map(|(n, u)| (n, u.pid)).collect();
    v.sort();
    v
}

#[test]
fn reload_of_an_empty_missing_or_invalid_directory_changes_nothing() {
    let mut vm = boot("reloadfaults");
    let before = pids(&mut vm);
    let d = "/test/reloadfaults";
    // Empty: every unit file moved away.
    vm.sh(
        &format!("mkdir -p /run/keep && mv {d}/*.unit /run/keep/"),
        CMD,
    );
    let (out, rc) = vm.sh_rc("initctl reload", CMD);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("no unit files in the unit directory"), "{out}");
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(pids(&mut vm), before);
    // Only invalid files.
    vm.sh(&format!("echo 'exec = relative' > {d}/bad.unit"), CMD);
    let (out, rc) = vm.sh_rc("initctl reload", CMD);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("no valid unit in the unit directory"), "{out}");
    assert_eq!(pids(&mut vm), before);
    // Missing altogether (SIGHUP too).
    vm.sh(&format!("rm {d}/bad.unit && mv {d} /run/gone"), CMD);
    let (out, rc) = vm.sh_rc("initctl reload", CMD);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("the unit directory cannot be read"), "{out}");
    vm.sh("kill -HUP 1; sleep 1", CMD);
    assert_eq!(pids(&mut vm), before);
    let log = vm.sh("dmesg | grep -c 'reload refused'", CMD);
    assert_eq!(log.trim(), "4", "{log}");
    // Back in place: a normal reload again, nothing to change.
    vm.sh(
        &format!("mv /run/gone {d} && mv /run/keep/*.unit {d}/"),
        CMD,
    );
    let (out, rc) = vm.sh_rc("initctl reload", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("3 unchanged"), "{out}");
    assert_eq!(pids(&mut vm), before);
}

#[test]
fn reload_updates_the_protection_sum_and_removes_cgroups() {
    let mut vm = boot("reloadfaults");
    pids(&mut vm);
    let low = |vm: &mut wren_boot_tests::Vm| {
        vm.sh("cat /sys/fs/cgroup/units/memory.low", CMD)
            .trim()
            .to_string()
    };
    assert_eq!(low(&mut vm), "8388608");
    let d = "/test/reloadfaults";
    vm.sh(
        &format!("sed -i 's/^memory.low = 8M/memory.low = 24M/' {d}/b.unit"),
        CMD,
    );
    let (out, rc) = vm.sh_rc("initctl reload", CMD);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(low(&mut vm), "25165824");
    assert_eq!(
        vm.sh("cat /sys/fs/cgroup/units/b/memory.low", CMD).trim(),
        "25165824"
    );
    // Removing b: it stops, leaves the table, and its cgroup goes.
    vm.sh(&format!("rm {d}/b.unit"), CMD);
    let (out, rc) = vm.sh_rc("initctl reload", CMD);
    assert_eq!(rc, 0, "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while vm
        .sh("test -d /sys/fs/cgroup/units/b && echo yes || echo no", CMD)
        .trim()
        == "yes"
    {
        assert!(Instant::now() < deadline, "units/b still there");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(low(&mut vm), "0");
    assert!(vm
        .sh("test -d /sys/fs/cgroup/units/a && echo yes", CMD)
        .contains("yes"));
}
