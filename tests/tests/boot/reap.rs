use crate::*;

#[test]
fn orphans_reparented_to_pid1_are_reaped() {
    let mut vm = boot("reap");
    vm.wait_states(&[("orphaner", &["exited"])], Duration::from_secs(30));
    vm.sh(
        "for i in 1 2 3 4 5 6; do wren-testkit doublefork 2 /run/o$i.pid; done",
        CMD,
    );
    let pids: Vec<String> = vm
        .sh("cat /run/o?.pid /run/orphan-unit.pid", CMD)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(pids.len(), 7, "{pids:?}");
    // The shell's orphans are alive and re-parented to PID 1.
    for p in &pids[..6] {
        let ppid = vm.sh(&format!("awk '{{print $4}}' /proc/{p}/stat"), CMD);
        assert_eq!(ppid.trim(), "1", "orphan {p} has parent {ppid:?}");
    }
    vm.sh("sleep 3", CMD);
    for p in &pids {
        let st = vm.sh(&format!("cat /proc/{p}/stat 2>/dev/null"), CMD);
        assert!(st.trim().is_empty(), "orphan {p} not reaped: {st}");
    }
    assert_no_zombies(&mut vm);
}

/// 300 zombies handed to PID 1 at once, under one SIGCHLD: it reaps them
/// a batch per wake-up (`REAP_BATCH`, 64) and comes back for the rest by
/// a SIGCHLD of its own, so none is left once no child sends another.
#[test]
fn a_crowd_of_zombies_handed_over_at_once_is_reaped_to_the_last() {
    let mut vm = boot("reap");
    vm.wait_states(&[("orphaner", &["exited"])], Duration::from_secs(30));
    let out = vm.sh("wren-testkit zombies 300", Duration::from_secs(120));
    assert!(out.contains("300 zombies"), "{out}");
    vm.sh("sleep 1", CMD);
    assert_no_zombies(&mut vm);
    let st = vm.sh("initctl status orphaner", CMD);
    assert!(st.contains("exited"), "{st}");
}

fn assert_no_zombies(vm: &mut Vm) {
    let ps = vm.sh("ps -o stat,pid,ppid,comm", CMD);
    let zombies: Vec<&str> = ps
        .lines()
        .skip(1)
        .filter(|l| l.trim_start().starts_with('Z'))
        .collect();
    assert!(
        zombies.is_empty(),
        "{} zombies left: {zombies:?}\n{ps}",
        zombies.len()
    );
    assert!(ps.lines().count() > 3, "ps printed nothing useful: {ps}");
}
