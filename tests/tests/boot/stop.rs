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

/// The exec handshake is a loop source (issue 8): `stall`'s child is
/// cloned into a frozen cgroup and never gets to exec. Meanwhile `initctl`
/// answers at once, `steady` keeps its PID, and `crash`, killed by hand,
/// is reaped and restarted; at its `start_timeout` (20 s) `stall` is
/// killed (its cgroup empty) and has failed to start.
#[test]
fn stop_exec_stall_does_not_block_the_loop() {
    use crate::initctl_common::*;
    let mut vm = boot("stall");
    let st = vm.wait_states(
        &[
            ("steady", &["running"]),
            ("crash", &["running"]),
            ("freezer", &["exited"]),
            ("stall", &["starting"]),
        ],
        secs(30),
    );
    let started = Instant::now();
    assert!(st["stall"].pid.is_none(), "{:?}", st["stall"]);
    // Its child exists, frozen before exec, in its cgroup.
    let procs = cgroup_procs(&mut vm, "stall").expect("stall's cgroup");
    assert_eq!(procs.len(), 1, "{procs:?}");
    let frozen = vm.sh("cat /sys/fs/cgroup/units/stall/cgroup.events", CMD);
    assert!(frozen.contains("frozen 1"), "{frozen}");
    let before = pids(&mut vm);
    let (out, rc, took) = timed(&mut vm, "initctl status", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(
        took < 5.0,
        "initctl status took {took:.1} s while stall is stuck"
    );
    let old = before["crash"];
    vm.sh(&format!("kill -9 {old}"), CMD);
    let deadline = Instant::now() + secs(15);
    let new = loop {
        let p = pids(&mut vm);
        match p.get("crash") {
            Some(&n) if n != old => break n,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "crash not restarted while stall is stuck: {p:?}\n{}",
            vm.tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(alive(&mut vm, new));
    assert!(
        started.elapsed() < secs(18),
        "too slow to check before stall's start_timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(vm.unit("stall").map(|u| u.state), Some("starting".into()));
    // start_timeout: killed, a failed start (restart = never).
    vm.wait_states(&[("stall", &["failed"])], secs(40));
    assert_same_pids(&before, &pids(&mut vm), &["steady", "sh"]);
    let log = vm.sh(
        "dmesg | grep 'stall: did not exec' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    assert!(
        log.contains("did not exec within start_timeout (20000ms"),
        "{log}"
    );
    let deadline = Instant::now() + secs(10);
    while cgroup_procs(&mut vm, "stall") != Some(vec![]) {
        assert!(Instant::now() < deadline, "stall's child was not killed");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The stop signal goes to every process of the cgroup, not only the main
/// process group: `family`'s child, in a session of its own, traps TERM,
/// leaves a marker and takes a second to go; `initctl stop` answers only
/// once the cgroup is empty. The same for a unit in a PID namespace
/// (`nskid`, whose main process waits for its child on TERM: the
/// namespace ends with it), where the child gets the signal from PID 1
/// itself: the reaper forwards only to the service's process group.
#[test]
fn stop_signal_reaches_the_whole_cgroup() {
    use crate::initctl_common::*;
    let mut vm = boot("stopcg");
    vm.wait_states(
        &[("family", &["running"]), ("nskid", &["running"])],
        secs(30),
    );
    for unit in ["family", "nskid"] {
        let main = read_pid_file(&mut vm, &format!("/run/{unit}.main"), CMD);
        let child = read_pid_file(&mut vm, &format!("/run/{unit}.child"), CMD);
        assert_ne!(main, child);
        let procs = cgroup_procs(&mut vm, unit).unwrap();
        assert!(procs.len() >= 3, "{unit}: {procs:?}");
        // The stop and the emptiness check in one shell line: nothing of
        // the test's in between.
        let (out, rc, took) = timed(
            &mut vm,
            &format!(
                "initctl stop {unit}; echo rc=$?; \
                 echo procs=$(cat /sys/fs/cgroup/units/{unit}/cgroup.procs | wc -l); \
                 grep populated /sys/fs/cgroup/units/{unit}/cgroup.events; \
                 cat /run/{unit}.marker"
            ),
            secs(30),
        );
        assert_eq!(rc, 0, "{out}");
        assert!(out.contains("rc=0"), "{unit}: {out}");
        assert!(
            out.contains("procs=0"),
            "{unit}: stop returned early: {out}"
        );
        assert!(out.contains("populated 0"), "{unit}: {out}");
        assert!(
            out.contains("got-TERM"),
            "{unit}: the child did not get the stop signal: {out}"
        );
        // The child's second after TERM was waited for.
        assert!(took >= 1.0, "{unit}: stop took {took:.1} s");
        assert_eq!(vm.unit(unit).map(|u| u.state), Some("stopped".into()));
    }
}

/// Processes that survive `cgroup.kill`, and a `cgroup.kill` that cannot
/// be written (as on a kernel before 5.14), both for real: the test puts
/// /dev/null over `tough`'s `cgroup.kill` (the write succeeds and kills
/// nothing) and a read-only file over `rough`'s (the write fails). Both
/// ignore TERM; their stop ends with every pid killed by hand.
#[test]
fn stop_escalates_when_processes_survive_the_kill() {
    use crate::initctl_common::*;
    let mut vm = boot("stopcg");
    vm.wait_states(
        &[("tough", &["running"]), ("rough", &["running"])],
        secs(30),
    );
    let cg = "/sys/fs/cgroup/units";
    let (out, rc) = vm.sh_rc(
        &format!(
            "mount --bind /dev/null {cg}/tough/cgroup.kill && \
             mkdir -p /run/ro && mount -t tmpfs none /run/ro && : > /run/ro/kill && \
             mount -o remount,ro /run/ro && mount --bind /run/ro/kill {cg}/rough/cgroup.kill && \
             echo 1 > {cg}/tough/cgroup.kill && ! echo 1 > {cg}/rough/cgroup.kill && echo bound"
        ),
        CMD,
    );
    assert!(rc == 0 && out.contains("bound"), "{out}");
    // The writes above killed nothing.
    assert_eq!(
        cgroup_procs(&mut vm, "tough").map(|p| p.is_empty()),
        Some(false)
    );
    for unit in ["tough", "rough"] {
        let (out, rc, _) = timed(
            &mut vm,
            &format!("initctl stop {unit}; echo rc=$?; echo procs=$(cat {cg}/{unit}/cgroup.procs | wc -l)"),
            secs(30),
        );
        assert_eq!(rc, 0, "{out}");
        assert!(
            out.contains("rc=0") && out.contains("procs=0"),
            "{unit}: {out}"
        );
    }
    let log = vm.sh(
        "dmesg | grep -E 'tough|rough' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    assert!(
        log.contains("tough: processes survived the kill")
            && log.contains("killing each again (2 of 5)"),
        "{log}"
    );
    assert!(
        log.contains("rough: cgroup.kill: ")
            && log.contains("Read-only file system")
            && log.contains("SIGKILL to each of"),
        "{log}"
    );
}

/// A stop that cannot finish: `hang`'s process is frozen in a cgroup v1
/// freezer, where even SIGKILL waits for a thaw that never comes. The
/// kills are retried and given up on, and the shutdown's deadline (every
/// `stop_timeout` plus 10 s: here sh 5, family 10, nskid 10, tough,
/// rough and hang 1 each, plus 10 = 38 s) ends it anyway: QEMU powers off.
#[test]
fn stop_shutdown_deadline_ends_a_hung_stop() {
    use crate::initctl_common::*;
    let mut vm = boot("stopcg");
    vm.wait_states(&[("hang", &["running"])], secs(30));
    let pid = read_pid_file(&mut vm, "/run/hang.pid", CMD);
    let (out, rc) = vm.sh_rc(
        &format!(
            "mkdir -p /run/fz && mount -t cgroup -o freezer none /run/fz && \
             mkdir -p /run/fz/stuck && echo {pid} > /run/fz/stuck/cgroup.procs && \
             echo FROZEN > /run/fz/stuck/freezer.state && sleep 1 && \
             cat /run/fz/stuck/freezer.state && kill -9 {pid} && sleep 1 && \
             cut -d' ' -f3 /proc/{pid}/stat"
        ),
        CMD,
    );
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("FROZEN"), "{out}");
    assert!(
        alive(&mut vm, pid),
        "SIGKILL ended a v1-frozen process: {out}"
    );
    let before = vm.output().len();
    let t = Instant::now();
    vm.send("poweroff\n");
    let st = vm
        .wait_exit(secs(120))
        .expect("VM still running 120 s after poweroff");
    let took = t.elapsed();
    assert!(st.success(), "qemu exit {st:?}");
    let out = vm.output();
    let out = &out[before..];
    assert!(!out.contains("Kernel panic"), "kernel panicked at shutdown");
    // Deadline 38 s, then at most 2 + 2 s of TERM/KILL and the sync.
    assert!(took < secs(38 + 40), "poweroff took {took:?}");
    assert!(took >= secs(35), "poweroff before the deadline: {took:?}");
    assert_in_order(
        out,
        &[
            "hang: processes survived 5 kills",
            "shutdown: deadline passed",
            "reboot: Power down",
        ],
    );
}
