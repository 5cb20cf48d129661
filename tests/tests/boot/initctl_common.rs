//! Helpers shared by the initctl boot tests (initctl_*.rs).

use crate::*;
use std::collections::HashMap;
pub use wren_boot_tests::secs;
use wren_boot_tests::UnitStatus;

/// `initctl status` as name -> line.
pub fn table(vm: &mut Vm) -> HashMap<String, UnitStatus> {
    vm.status()
        .into_iter()
        .map(|u| (u.name.clone(), u))
        .collect()
}

/// PIDs of every unit that has one.
pub fn pids(vm: &mut Vm) -> HashMap<String, u32> {
    table(vm)
        .into_iter()
        .filter_map(|(n, u)| u.pid.map(|p| (n, p)))
        .collect()
}

/// The pids listed in the unit's cgroup.procs; `None` when the cgroup
/// directory does not exist.
pub fn cgroup_procs(vm: &mut Vm, unit: &str) -> Option<Vec<u32>> {
    let f = format!("/sys/fs/cgroup/units/{unit}/cgroup.procs");
    let (out, rc) = vm.sh_rc(&format!("cat {f} 2>/dev/null || echo NOCGROUP"), CMD);
    assert_eq!(rc, 0);
    if out.contains("NOCGROUP") {
        return None;
    }
    Some(
        out.split_whitespace()
            .map(|w| w.parse().unwrap_or_else(|_| panic!("bad pid {w:?} in {f}")))
            .collect(),
    )
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(vm: &mut Vm, pid: u32) -> bool {
    // Field 3 of /proc/PID/stat is the state; the command name (field 2)
    // has no blanks for the processes these tests start.
    let out = vm.sh(
        &format!("cut -d' ' -f3 /proc/{pid}/stat 2>/dev/null || echo GONE"),
        CMD,
    );
    let st = out.trim();
    !(st == "GONE" || st == "Z" || st.is_empty())
}

/// The process group of `pid`.
pub fn pgid(vm: &mut Vm, pid: u32) -> u32 {
    let out = vm.sh(&format!("cut -d' ' -f5 /proc/{pid}/stat"), CMD);
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no pgid for {pid}: {out:?}"))
}

/// A number written to a file in the guest (polls until it is there).
pub fn read_pid_file(vm: &mut Vm, file: &str, timeout: Duration) -> u32 {
    let deadline = Instant::now() + timeout;
    loop {
        let out = vm.sh(&format!("cat {file} 2>/dev/null"), CMD);
        if let Ok(p) = out.trim().parse() {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "{file} holds no pid after {timeout:?}: {out:?} (log: {})",
            vm.log_path.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `cmd` and returns (stdout+stderr, exit status, host seconds taken).
pub fn timed(vm: &mut Vm, cmd: &str, timeout: Duration) -> (String, i32, f64) {
    let t = Instant::now();
    let (out, rc) = vm.sh_rc(&format!("{cmd} 2>&1"), timeout);
    (out, rc, t.elapsed().as_secs_f64())
}

/// Asserts that every unit in `same` kept its pid between two snapshots.
pub fn assert_same_pids(
    before: &HashMap<String, u32>,
    after: &HashMap<String, u32>,
    same: &[&str],
) {
    for n in same {
        assert_eq!(
            before.get(*n),
            after.get(*n),
            "{n} was touched: pid before {:?}, after {:?}",
            before.get(*n),
            after.get(*n)
        );
        assert!(before.get(*n).is_some(), "{n} had no pid to compare");
    }
}

/// Types a here-document (several lines) into the console shell and waits
/// until the shell has run it.
pub fn heredoc(vm: &mut Vm, first_line: &str, body: &str) {
    assert!(body.ends_with('\n'));
    vm.send(&format!("{first_line} <<'EOF'\n{body}EOF\n"));
    // The shell reads its input in order: once this runs, so has the
    // here-document.
    let (_, rc) = vm.sh_rc("true", CMD);
    assert_eq!(rc, 0);
}
