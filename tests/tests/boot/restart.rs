use crate::initctl_common::timed;
use crate::*;

/// SIGKILL to running `unit` (whose marks are /run/UNIT; a `kill` mark
/// first), then wait for its second `start` mark, from a new pid: the
/// restarts before, the ms from the kill to the new start, the new pid.
fn kill_and_restart(vm: &mut wren_boot_tests::Vm, unit: &str) -> (u32, u64, u32) {
    let st = vm.wait_states(&[(unit, &["running"])], Duration::from_secs(30));
    let old = st[unit].pid.expect("running unit has a pid");
    let restarts = st[unit].restarts;
    let file = format!("/run/{unit}");
    vm.sh(
        &format!("wren-testkit mark {file} kill; kill -9 {old}"),
        CMD,
    );
    let m = wait_marks(vm, &file, Duration::from_secs(15), |m| {
        m.iter().filter(|(t, _, _)| t == "start").count() >= 2
    });
    let kill = mark(&m, "kill").unwrap();
    let again = m.iter().filter(|(t, _, _)| t == "start").nth(1).unwrap();
    assert!(again.1 != old, "same pid after restart: {m:?}");
    (restarts, again.2.saturating_sub(kill.2), again.1)
}

/// victim: restart_delay = 500ms.
#[test]
fn sigkilled_unit_is_back_within_its_restart_delay() {
    let mut vm = boot("restart");
    let (restarts, delay, again) = kill_and_restart(&mut vm, "victim");
    assert!(
        delay >= 400,
        "restarted after {delay} ms, before its 500 ms restart delay"
    );
    assert!(
        delay <= 2000,
        "restarted only after {delay} ms (restart delay 500 ms)"
    );
    let st = vm.wait_states(&[("victim", &["running"])], Duration::from_secs(10));
    assert_eq!(st["victim"].pid, Some(again));
    assert_eq!(st["victim"].restarts, restarts + 1);
    assert!(vm.saw("[FAILED] victim: killed by SIGKILL", CMD));
}

/// tight: pids.max = 1, restart_delay = 0ms. A dead process keeps its
/// charge against pids.max until it is reaped, and PID 1 reaps most
/// zombies after the restart they lead to (`pid1::sources::reap`): with
/// this limit it must reap first, or the restart's clone3 is refused.
#[test]
fn a_unit_at_its_pids_max_restarts_at_once() {
    let mut vm = boot("restart");
    let (restarts, delay, _) = kill_and_restart(&mut vm, "tight");
    assert!(delay <= 500, "restarted only after {delay} ms");
    let st = vm.wait_states(&[("tight", &["running"])], Duration::from_secs(10));
    assert_eq!(st["tight"].restarts, restarts + 1);
    let detail = vm.sh("initctl status tight", CMD);
    assert!(!detail.contains("cannot start"), "{detail}");
    assert!(
        !vm.output().contains("tight: cannot start"),
        "{}",
        vm.tail()
    );
}

/// tightns: the default namespaces, pids.max = 2 (its reaper and its
/// service), restart_delay = 0ms. The old reaper counts against the limit
/// until it is reaped, so PID 1 lets it exit and reaps it before the
/// restart (`pid1::report`), or the new reaper's fork of the service is
/// refused.
#[test]
fn an_isolated_unit_at_its_pids_max_restarts_at_once() {
    let mut vm = boot("restart");
    let st = vm.wait_states(&[("tightns", &["running"])], Duration::from_secs(30));
    let reaper = st["tightns"].pid.expect("running unit has a pid");
    let restarts = st["tightns"].restarts;
    let procs = vm.sh("cat /sys/fs/cgroup/units/tightns/cgroup.procs", CMD);
    let svc: u32 = procs
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .find(|&p| p != reaper)
        .unwrap_or_else(|| panic!("no service beside reaper {reaper}: {procs}"));
    vm.sh(
        &format!("wren-testkit mark /run/tightns kill; kill -9 {svc}"),
        CMD,
    );
    let m = wait_marks(&mut vm, "/run/tightns", Duration::from_secs(15), |m| {
        m.iter().filter(|(t, _, _)| t == "start").count() >= 2
    });
    let kill = mark(&m, "kill").unwrap();
    let again = m.iter().filter(|(t, _, _)| t == "start").nth(1).unwrap();
    let delay = again.2.saturating_sub(kill.2);
    assert!(delay <= 500, "restarted only after {delay} ms");
    let st = vm.wait_states(&[("tightns", &["running"])], Duration::from_secs(10));
    assert_eq!(st["tightns"].restarts, restarts + 1);
    assert!(
        !vm.output().contains("tightns: cannot start"),
        "{}",
        vm.tail()
    );
    assert!(vm.saw("[FAILED] tightns: killed by SIGKILL, restart in 0ms", CMD));
}

/// victimfresh: the default namespaces, restart_delay = 1ms (so its
/// reaper does not restart it itself). PID 1 takes the reaper's report as
/// the unit's exit and restarts it in new namespaces; the exit is still
/// the service's, nothing of the old run stays, and a stop still waits
/// for the whole cgroup, the reaper of the run included.
#[test]
fn sigkilled_isolated_unit_with_a_delay_restarts_on_its_reapers_report() {
    let mut vm = boot("restart");
    let procs = |vm: &mut wren_boot_tests::Vm| cgroup_procs(vm, "victimfresh");
    let st = vm.wait_states(&[("victimfresh", &["running"])], Duration::from_secs(30));
    let reaper = st["victimfresh"].pid.expect("running unit has a pid");
    let restarts = st["victimfresh"].restarts;
    let old = procs(&mut vm);
    assert_eq!(old.len(), 2, "reaper and service: {old:?}");
    let svc = *old.iter().find(|&&p| p != reaper).unwrap();
    // A hostname and a mount made in its namespaces, which a restart
    // makes anew. (Not their inode numbers: the old ones are freed when
    // the old reaper goes, before or after the new start, and the kernel
    // gives freed numbers out again.)
    mark_namespaces(&mut vm, svc);
    assert_eq!(inner_pid(&mut vm, svc), 2);
    vm.sh(
        &format!("wren-testkit mark /run/victimfresh kill; kill -9 {svc}"),
        CMD,
    );
    wait_marks(&mut vm, "/run/victimfresh", Duration::from_secs(15), |m| {
        m.iter().filter(|(t, _, _)| t == "start").count() >= 2
    });
    let st = vm.wait_states(&[("victimfresh", &["running"])], Duration::from_secs(10));
    let new = st["victimfresh"].pid.expect("running unit has a pid");
    assert_ne!(new, reaper, "same reaper after the restart");
    assert_eq!(st["victimfresh"].restarts, restarts + 1);
    // The service's end as its reaper reported it, not the reaper's own
    // exit status (128 + 9).
    assert!(vm.saw(
        "[FAILED] victimfresh: killed by SIGKILL, restart in 1ms",
        CMD
    ));
    // The old reaper is reaped (no zombie left) and the cgroup holds the
    // new run only.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = procs(&mut vm);
        let gone = vm
            .sh(&format!("[ -e /proc/{reaper} ] || echo gone"), CMD)
            .contains("gone");
        if gone && !now.contains(&reaper) && !now.contains(&svc) {
            assert_eq!(now.len(), 2, "new reaper and service: {now:?}");
            assert!(now.contains(&new), "{now:?} lacks the new reaper {new}");
            // Fresh namespaces (docs/units.md, "Namespaces and root"): the
            // unit's hostname, no mount of the last run's, and the service
            // pid 2 of a new PID namespace.
            let svc_now = *now.iter().find(|&&p| p != new).unwrap();
            assert_eq!(marks(&mut vm, svc_now), ("victimfresh".to_string(), false));
            assert_eq!(inner_pid(&mut vm, svc_now), 2);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old reaper {reaper} / service {svc} still there: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The restart opened the unit's cgroup for its clone3 and closed it
    // again: PID 1 keeps no directory fd of a unit between starts.
    let held = vm.sh(
        "for f in /proc/1/fd/*; do readlink $f; done | grep -c '^/sys/fs/cgroup/units/'",
        CMD,
    );
    assert_eq!(held.trim(), "0", "PID 1 holds unit cgroup fds");
    // A stop is answered once the cgroup is empty: the reaper that sent
    // the report (it yields the CPU first) is waited for too.
    let (out, rc) = vm.sh_rc("initctl stop victimfresh", Duration::from_secs(30));
    assert_eq!(rc, 0, "initctl stop: {out}");
    let left = procs(&mut vm);
    assert!(
        left.is_empty(),
        "stopped unit's cgroup still holds {left:?}"
    );
    let st = vm.wait_states(&[("victimfresh", &["stopped"])], CMD);
    assert_eq!(st["victimfresh"].pid, None);
}

/// lastwords: isolated, restart_delay = 0ms; each run ends with 20 KB of
/// output and a last line. Its reaper holds the output pipe, so the pipe
/// has no end of file when PID 1 restarts the unit on the report: what
/// the run wrote last still reaches the ring (by the loop's reads, or the
/// drain when the new run's pipe takes its place), and the log shows the
/// dying line right before the next run's first. (Which of the two reads
/// it depends on the scheduling; the drain has its host test,
/// `pid1::tests::the_output_pipe_is_read_into_the_ring_to_its_last_line`.)
#[test]
fn a_restarted_isolated_units_last_words_are_in_its_log() {
    let mut vm = boot("lastwords");
    let st = vm.wait_states(&[("lastwords", &["running"])], Duration::from_secs(30));
    let restarts = st["lastwords"].restarts;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = vm.wait_states(&[("lastwords", &["running"])], Duration::from_secs(10));
        if st["lastwords"].restarts > restarts {
            break;
        }
        assert!(Instant::now() < deadline, "lastwords never restarted");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (out, rc) = vm.sh_rc("initctl log lastwords | tail -n 3", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("lastwords: dying\nlastwords: start\n"),
        "the last run's last line is not in the log before the new run's:\n{out}"
    );
}

/// victimns: the default namespaces and restart_delay = 0ms. A service
/// killed after a run of a second or more is started again by its reaper
/// in the namespaces and cgroup it keeps: same reaper, same namespaces,
/// the restart counted and announced by PID 1. A run shorter than a
/// second is PID 1's to restart (a new reaper, new namespaces), and a
/// stop is a stop (the reaper starts nothing after PID 1's signal).
#[test]
fn sigkilled_isolated_unit_restarts_in_place_after_a_long_enough_run() {
    let mut vm = boot("restart");
    let procs = |vm: &mut wren_boot_tests::Vm| cgroup_procs(vm, "victimns");
    let ns = |vm: &mut wren_boot_tests::Vm, pid: u32| -> Vec<String> {
        ["pid", "mnt", "uts", "ipc"]
            .iter()
            .map(|n| {
                vm.sh(&format!("readlink /proc/{pid}/ns/{n}"), CMD)
                    .trim()
                    .to_string()
            })
            .collect()
    };
    let st = vm.wait_states(&[("victimns", &["running"])], Duration::from_secs(30));
    let reaper = st["victimns"].pid.expect("running unit has a pid");
    let restarts = st["victimns"].restarts;
    let old = procs(&mut vm);
    assert_eq!(old.len(), 2, "reaper and service: {old:?}");
    let svc = *old.iter().find(|&&p| p != reaper).unwrap();
    let old_ns = ns(&mut vm, svc);
    assert!(old_ns.iter().all(|l| l.contains(":[")), "{old_ns:?}");
    mark_namespaces(&mut vm, svc);
    // The reaper's leave: the service's argv after its name and workdir.
    let cmd = vm.sh(&format!("tr '\\0' ' ' < /proc/{reaper}/cmdline"), CMD);
    assert_eq!(
        cmd.trim(),
        "wren-reaper / /usr/bin/wren-testkit mark /run/victimns start forever",
        "reaper cmdline"
    );
    vm.sh(
        &format!("sleep 1.2; wren-testkit mark /run/victimns kill; kill -9 {svc}"),
        CMD,
    );
    wait_marks(&mut vm, "/run/victimns", Duration::from_secs(15), |m| {
        m.iter().filter(|(t, _, _)| t == "start").count() >= 2
    });
    let st = vm.wait_states(&[("victimns", &["running"])], Duration::from_secs(10));
    assert_eq!(st["victimns"].pid, Some(reaper), "the reaper goes on");
    assert_eq!(st["victimns"].restarts, restarts + 1);
    assert!(vm.saw("[FAILED] victimns: killed by SIGKILL, restart in 0ms", CMD));
    let now = procs(&mut vm);
    assert_eq!(now.len(), 2, "reaper and the new service: {now:?}");
    assert!(now.contains(&reaper) && !now.contains(&svc), "{now:?}");
    let svc2 = *now.iter().find(|&&p| p != reaper).unwrap();
    assert_eq!(ns(&mut vm, svc2), old_ns, "the namespaces are kept");
    // With what the last run made in them.
    assert_eq!(marks(&mut vm, svc2), ("marked".to_string(), true));
    // The first run's service was pid 2 of the namespace; the second one
    // comes after it there.
    assert_eq!(inner_pid(&mut vm, svc), 0, "the first service is gone");
    assert!(inner_pid(&mut vm, svc2) > 2);

    // A run of 0.3 s: killed again at once, PID 1 restarts it, with a
    // new reaper in new namespaces.
    vm.sh(
        &format!(
            "kill -9 {svc2}; sleep 0.3; for p in $(cat /sys/fs/cgroup/units/victimns/cgroup.procs); \
             do [ $p = {reaper} ] || kill -9 $p; done"
        ),
        CMD,
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let fresh = loop {
        let st = vm.wait_states(&[("victimns", &["running"])], Duration::from_secs(10));
        let now = procs(&mut vm);
        if st["victimns"].restarts == restarts + 3 && now.len() == 2 && !now.contains(&reaper) {
            assert_ne!(st["victimns"].pid, Some(reaper));
            break now;
        }
        assert!(Instant::now() < deadline, "{st:?} {now:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let reaper3 = vm.wait_states(&[("victimns", &["running"])], Duration::from_secs(10))
        ["victimns"]
        .pid
        .unwrap();
    let svc4 = *fresh.iter().find(|&&p| p != reaper3).unwrap();
    // A new PID namespace: its service is pid 2 there again. (Its inode
    // numbers say nothing here: the old reaper went before the new start,
    // a quick restart's second in a row waiting its 100 ms, and the kernel
    // gave the freed numbers out again.)
    assert_eq!(inner_pid(&mut vm, svc4), 2);
    assert_eq!(marks(&mut vm, svc4), ("victimns".to_string(), false));

    // A stop of a run long enough to be restarted in place ends it: the
    // reaper starts nothing after PID 1's signal (its service dies of
    // the stop signal, an end its leave would restart), so the stop is
    // answered when that service is gone, not at `stop_timeout` (5 s)
    // with a new run killed.
    vm.sh("sleep 1.2", CMD);
    let starts = |vm: &mut wren_boot_tests::Vm| {
        vm.sh("grep -c '^start ' /run/victimns", CMD)
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let before = starts(&mut vm);
    let (out, rc, secs) = timed(&mut vm, "initctl stop victimns", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(secs < 3.0, "the stop took {secs:.1} s: {out}");
    assert_eq!(starts(&mut vm), before, "a run started after the stop");
    let st = vm.wait_states(&[("victimns", &["stopped"])], Duration::from_secs(10));
    assert!(st["victimns"].pid.is_none());
    vm.sh("sleep 0.5", CMD);
    assert!(
        procs(&mut vm).is_empty(),
        "left in the cgroup after the stop"
    );

    // A reload to a definition that is not restarted in place stops the
    // run it has as any stop: its reaper is told all the same (whether a
    // run has one is the run's, not the new definition's), so the
    // reload's start is the only one.
    let (out, rc, _) = timed(&mut vm, "initctl start victimns", CMD);
    assert_eq!(rc, 0, "{out}");
    vm.wait_states(&[("victimns", &["running"])], Duration::from_secs(10));
    vm.sh("sleep 1.2", CMD);
    let before = starts(&mut vm);
    let (out, rc, secs) = timed(
        &mut vm,
        "sed -i 's/^restart_delay = 0ms/restart_delay = 1ms/' /test/restart/victimns.unit \
         && initctl reload",
        CMD,
    );
    assert_eq!(rc, 0, "{out}");
    assert!(secs < 3.0, "the reload took {secs:.1} s: {out}");
    vm.wait_states(&[("victimns", &["running"])], Duration::from_secs(10));
    vm.sh("sleep 0.5", CMD);
    assert_eq!(starts(&mut vm), before + 1, "the reload's start only");
}

/// `pid`'s number in its own PID namespace (the last of `NSpid`), or 0
/// when it is gone.
fn inner_pid(vm: &mut wren_boot_tests::Vm, pid: u32) -> u32 {
    vm.sh(&format!("grep NSpid /proc/{pid}/status"), CMD)
        .split_whitespace()
        .last()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// Set a hostname and mount a tmpfs in the namespaces of `pid`.
fn mark_namespaces(vm: &mut wren_boot_tests::Vm, pid: u32) {
    let out = vm.sh(
        &format!(
            "nsenter -t {pid} -u hostname marked && \
             nsenter -t {pid} -m mount -t tmpfs wren-marker /tmp && echo marked-ok"
        ),
        CMD,
    );
    assert!(out.contains("marked-ok"), "{out}");
}

/// The hostname in `pid`'s UTS namespace, and whether `mark_namespaces`'
/// mount is in its mount namespace.
fn marks(vm: &mut wren_boot_tests::Vm, pid: u32) -> (String, bool) {
    let host = vm.sh(&format!("nsenter -t {pid} -u hostname"), CMD);
    let mounted = vm.sh(&format!("grep -c wren-marker /proc/{pid}/mounts"), CMD);
    (host.trim().to_string(), mounted.trim() != "0")
}

/// The pids in `unit`'s cgroup.
fn cgroup_procs(vm: &mut wren_boot_tests::Vm, unit: &str) -> Vec<u32> {
    vm.sh(
        &format!("cat /sys/fs/cgroup/units/{unit}/cgroup.procs"),
        CMD,
    )
    .split_whitespace()
    .map(|p| p.parse().unwrap())
    .collect()
}
