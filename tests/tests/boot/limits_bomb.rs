//! A fork bomb (that ignores the stop signal) is held by pids.max; PID 1
//! and the console stay responsive; `initctl stop` empties its cgroup.
use crate::*;

fn cg(vm: &mut wren_boot_tests::Vm, f: &str) -> String {
    vm.sh(&format!("cat /sys/fs/cgroup/units/bomb/{f}"), CMD)
        .trim()
        .to_string()
}

/// Wall time of `initctl status` typed on the console.
fn status_time(vm: &mut wren_boot_tests::Vm) -> Duration {
    let t = Instant::now();
    let (out, rc) = vm.sh_rc("initctl status", Duration::from_secs(60));
    let dt = t.elapsed();
    assert_eq!(rc, 0, "initctl status failed: {out}");
    assert!(out.contains("bomb"), "{out}");
    dt
}

#[test]
fn limits_fork_bomb_held_by_pids_max_and_stopped() {
    let mut vm = boot("limitsbomb");
    let before = vm.wait_states(
        &[("bomb", &["running"]), ("calm", &["running"])],
        Duration::from_secs(30),
    );
    let base: Vec<Duration> = (0..3).map(|_| status_time(&mut vm)).collect();
    vm.sh("touch /run/bomb.go", CMD);

    // The limit is reached (fork fails in the cgroup) and holds.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ev = cg(&mut vm, "pids.events");
        let hits: u64 = ev
            .lines()
            .find_map(|l| l.strip_prefix("max "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if hits > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "pids.max never hit: {ev}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut peak = 0u32;
    let mut under: Vec<Duration> = vec![];
    for _ in 0..3 {
        let cur: u32 = cg(&mut vm, "pids.current").parse().unwrap();
        peak = peak.max(cur);
        under.push(status_time(&mut vm));
    }
    let procs = cg(&mut vm, "cgroup.procs").split_whitespace().count() as u32;
    println!("initctl status: {base:?} before, {under:?} during the bomb; pids.current peak {peak}, procs {procs}");
    assert!(
        peak <= 24 && procs <= 24,
        "pids.max exceeded: {peak} / {procs}"
    );
    assert!(peak >= 20, "the bomb never got near its limit: {peak}");
    // Responsive: each status answered within a few seconds (serial, TCG).
    let slowest = under.iter().max().unwrap();
    assert!(
        *slowest < Duration::from_secs(5),
        "console/PID 1 sluggish under the bomb: {under:?} (before: {base:?})"
    );
    let calm = vm.wait_states(&[("calm", &["running"])], CMD);
    assert_eq!(calm["calm"].pid, before["calm"].pid);

    // Stop: TERM is ignored, so after stop_timeout (2 s) the whole cgroup
    // is killed.
    let t = Instant::now();
    let (out, rc) = vm.sh_rc("initctl stop bomb", Duration::from_secs(60));
    let took = t.elapsed();
    println!("initctl stop bomb took {took:?}");
    assert_eq!(rc, 0, "initctl stop bomb: {out}");
    assert_eq!(
        cg(&mut vm, "cgroup.procs"),
        "",
        "processes left in the cgroup"
    );
    assert_eq!(cg(&mut vm, "pids.current"), "0");
    let st = vm.wait_states(&[("bomb", &["stopped"]), ("calm", &["running"])], CMD);
    assert_eq!(st["calm"].pid, before["calm"].pid);
    // Only calm's testkit is left anywhere.
    let n = vm.sh("ps -o comm | grep -c wren-testkit", CMD);
    assert_eq!(n.trim(), "1", "bomb processes survive outside the cgroup");
}
