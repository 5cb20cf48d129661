//! Reload faults: an empty, missing or all-invalid unit directory changes
//! nothing (the console shell included) and says why with exit 1; a reload
//! updates `units/`'s memory protection to what its units now ask for, and
//! removes the cgroup of a unit it removed; a reload whose new units'
//! starts stall before their exec answers without waiting for each.
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

/// A reload that adds many units whose children stall before their exec
/// (each cloned into a frozen cgroup: PID 1 keeps a directory that
/// exists and cannot be removed, here for a process in a cgroup below it)
/// answers as a boot would: its starts are batched, PID 1 waits
/// in place for one exec per batch, not for each (50 ms apiece: 2 s for
/// these 40). Once thawed, they all run.
#[test]
fn a_reload_of_stalled_starts_answers_without_waiting_for_each() {
    const N: usize = 40;
    let mut vm = boot("reloadfaults");
    pids(&mut vm);
    let d = "/test/reloadfaults";
    vm.sh(
        &format!(
            "for i in $(seq 1 {N}); do c=/sys/fs/cgroup/units/s$i; mkdir -p $c/held && \
             {{ sleep 1000 >/dev/null 2>&1 & echo $! > $c/held/cgroup.procs; }} && echo 1 > $c/cgroup.freeze && \
             printf 'exec = /bin/sleep 1000\\n' > {d}/s$i.unit; done; echo made"
        ),
        CMD,
    );
    // `initctl reload` waits for the verdicts (none until the thaw): its
    // summary's time in the kernel log, from a mark written before it.
    vm.sh(
        "echo 'wren-test: reload begins' > /dev/kmsg; \
         (initctl reload > /tmp/reload.out 2>&1 &); true",
        CMD,
    );
    let stamp = |line: &str| -> f64 {
        let t = line.split(']').next().unwrap_or("").trim_start_matches('[');
        t.trim()
            .parse()
            .unwrap_or_else(|_| panic!("no time in {line:?}"))
    };
    let deadline = Instant::now() + CMD;
    let (begun, done) = loop {
        let log = vm.sh(
            "dmesg | grep -E 'reload begins|wren: reload' | sed 's/^\\[ *//'",
            CMD,
        );
        let begun = log.lines().find(|l| l.contains("reload begins"));
        let done = log.lines().find(|l| l.contains("wren: reload:"));
        if let (Some(b), Some(d)) = (begun, done) {
            assert!(d.contains(&format!("{N} added")), "{log}");
            break (stamp(b), stamp(d));
        }
        assert!(Instant::now() < deadline, "no reload summary: {log}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = done - begun;
    eprintln!("reload of {N} stalled starts: {took:.3} s");
    // One wait in place per batch of 16 (2 here), the spawns and the
    // files read (0.6 s measured): well under the 2 s that waiting for
    // each alone would take.
    assert!(took < 1.5, "the reload took {took:.3} s");
    let st = vm.wait_states(&[("s1", &["starting"]), ("a", &["running"])], CMD);
    assert!(st["s1"].pid.is_none(), "{:?}", st["s1"]);
    vm.sh(
        &format!("for i in $(seq 1 {N}); do echo 0 > /sys/fs/cgroup/units/s$i/cgroup.freeze; done"),
        CMD,
    );
    let want: Vec<(String, &[&str])> = (1..=N)
        .map(|i| (format!("s{i}"), &["running"][..]))
        .collect();
    let want: Vec<(&str, &[&str])> = want.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    vm.wait_states(&want, Duration::from_secs(60));
    // The verdicts came once they ran.
    let out = vm.sh("sleep 1; cat /tmp/reload.out", CMD);
    assert!(
        out.contains("s1: ready") && out.contains("s40: ready"),
        "{out}"
    );
}
