//! `initctl stop/start/restart` change states and pids, `stop` empties the
//! unit's cgroup (children that left the process group included), `initctl
//! reboot` ends the VM. Fixtures: tests/units/ctlops/.

use crate::initctl_common::*;
use crate::*;

fn running(vm: &mut Vm) -> std::collections::HashMap<String, wren_boot_tests::UnitStatus> {
    vm.wait_states(
        &[
            ("web", &["running"]),
            ("stubborn", &["running"]),
            ("leaver", &["running"]),
        ],
        secs(30),
    )
}

#[test]
fn initctl_restart_stop_start_change_state_and_pid() {
    let mut vm = boot("ctlops");
    let st = running(&mut vm);
    let web0 = st["web"].pid.unwrap();
    let sh = st["sh"].pid;

    // restart: a new process, running, the old one gone.
    let (out, rc, _) = timed(&mut vm, "initctl restart web", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("web: restarted"), "{out}");
    let st = vm.wait_states(&[("web", &["running"])], secs(5));
    let web1 = st["web"].pid.unwrap();
    assert_ne!(web1, web0, "restart kept the pid");
    assert!(
        !alive(&mut vm, web0),
        "old web process {web0} survived restart"
    );
    assert_eq!(cgroup_procs(&mut vm, "web").unwrap(), vec![web1]);
    let m = marks(&mut vm, "/run/web");
    assert_eq!(
        m.iter().map(|(_, p, _)| *p).collect::<Vec<_>>(),
        vec![web0, web1],
        "{m:?}"
    );

    // stop: stopped, no pid, nothing left in the cgroup; returns when done.
    let (out, rc) = vm.sh_rc(
        "initctl stop web; echo rc=$?; cat /sys/fs/cgroup/units/web/cgroup.procs 2>/dev/null",
        CMD,
    );
    assert_eq!(rc, 0);
    assert!(out.contains("web: stopped\nrc=0\n"), "{out}");
    assert!(
        out.ends_with("rc=0\n"),
        "cgroup not empty when `initctl stop` returned:\n{out}"
    );
    let st = vm.wait_states(&[("web", &["stopped"])], secs(1));
    assert_eq!(st["web"].pid, None);
    assert!(!alive(&mut vm, web1));
    // Stopping a stopped unit is fine.
    let (out, rc, _) = timed(&mut vm, "initctl stop web", CMD);
    assert_eq!(rc, 0, "{out}");
    // It stays stopped (no restart = always behind the operator's back).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(vm.unit("web").unwrap().state, "stopped");

    // start: running again with a new pid, in its cgroup.
    let (out, rc, _) = timed(&mut vm, "initctl start web", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("web: started"), "{out}");
    let st = vm.wait_states(&[("web", &["running"])], secs(1));
    let web2 = st["web"].pid.unwrap();
    assert!(web2 != web0 && web2 != web1);
    assert_eq!(cgroup_procs(&mut vm, "web").unwrap(), vec![web2]);
    // Starting a running unit changes nothing.
    let (_, rc, _) = timed(&mut vm, "initctl start web", CMD);
    assert_eq!(rc, 0);
    assert_eq!(vm.unit("web").unwrap().pid, Some(web2));
    // The console shell was never touched.
    assert_eq!(vm.unit("sh").unwrap().pid, sh);
}

#[test]
fn initctl_stop_kills_the_whole_cgroup_after_stop_timeout() {
    let mut vm = boot("ctlops");
    let st = running(&mut vm);
    let main = st["stubborn"].pid.unwrap();
    let child = read_pid_file(&mut vm, "/run/stubborn.child", secs(10));
    // The fixture does what it claims: the child left the process group.
    assert_ne!(pgid(&mut vm, child), pgid(&mut vm, main));
    let procs = cgroup_procs(&mut vm, "stubborn").unwrap();
    assert!(procs.contains(&main) && procs.contains(&child), "{procs:?}");

    // Both ignore TERM: stop takes stop_timeout (2s), shows `stopping`
    // meanwhile, then kills the cgroup.
    vm.sh(
        "rm -f /tmp/t; (wren-testkit mark /tmp/t begin; initctl stop stubborn; \
         echo rc=$?; wren-testkit mark /tmp/t end) > /tmp/stop.out 2>&1 & true",
        CMD,
    );
    std::thread::sleep(Duration::from_millis(700));
    let (out, _) = vm.sh_rc("initctl status stubborn", CMD);
    assert!(
        out.lines()
            .any(|l| l.starts_with("stubborn ") && l.contains(" stopping ")),
        "not `stopping` while waiting for stop_timeout:\n{out}"
    );
    assert!(alive(&mut vm, main) && alive(&mut vm, child));
    let m = wait_marks(&mut vm, "/tmp/t", secs(15), |m| mark(m, "end").is_some());
    let took = mark(&m, "end").unwrap().2 - mark(&m, "begin").unwrap().2;
    let out = vm.sh("cat /tmp/stop.out", CMD);
    assert!(out.contains("stubborn: stopped\nrc=0"), "{out}");
    assert!(
        took >= 1800,
        "stopped after {took} ms, before its 2 s stop_timeout"
    );
    assert!(took < 6000, "stop took {took} ms with a 2 s stop_timeout");
    assert_eq!(
        cgroup_procs(&mut vm, "stubborn").unwrap_or_default(),
        Vec::<u32>::new(),
        "cgroup not empty after stop"
    );
    assert!(!alive(&mut vm, main), "main process survived stop");
    assert!(!alive(&mut vm, child), "setsid child survived stop");
    let st = vm.wait_states(&[("stubborn", &["stopped"])], secs(1));
    assert_eq!(st["stubborn"].pid, None);

    // start brings it back, with a new child.
    vm.sh("rm -f /run/stubborn.child", CMD);
    let (out, rc, _) = timed(&mut vm, "initctl start stubborn", CMD);
    assert_eq!(rc, 0, "{out}");
    let st = vm.wait_states(&[("stubborn", &["running"])], secs(1));
    let main2 = st["stubborn"].pid.unwrap();
    assert_ne!(main2, main);
    let child2 = read_pid_file(&mut vm, "/run/stubborn.child", secs(10));
    assert_ne!(child2, child);
    let procs = cgroup_procs(&mut vm, "stubborn").unwrap();
    assert!(
        procs.contains(&main2) && procs.contains(&child2),
        "{procs:?}"
    );

    // A main process that dies on TERM, whose setsid child does not: when
    // `initctl stop` returns, the child is gone too.
    let main = vm.unit("leaver").unwrap().pid.unwrap();
    let child = read_pid_file(&mut vm, "/run/leaver.child", secs(10));
    assert_ne!(pgid(&mut vm, child), pgid(&mut vm, main));
    let (out, rc) = vm.sh_rc(
        "initctl stop leaver; echo rc=$?; cat /sys/fs/cgroup/units/leaver/cgroup.procs 2>/dev/null",
        CMD,
    );
    assert_eq!(rc, 0);
    assert!(out.contains("leaver: stopped\nrc=0\n"), "{out}");
    assert!(
        out.ends_with("rc=0\n"),
        "leaver's cgroup still lists processes when `initctl stop` returned:\n{out}"
    );
    assert!(!alive(&mut vm, child), "setsid child {child} survived stop");
    assert_eq!(vm.unit("leaver").unwrap().state, "stopped");
}

#[test]
fn initctl_reboot_stops_units_then_ends_the_vm() {
    let mut vm = boot("ctlops");
    running(&mut vm);
    let before = vm.output().len();
    vm.send("initctl reboot\n");
    vm.wait_exit(secs(60))
        .expect("VM still running 60 s after initctl reboot (QEMU runs with -no-reboot)");
    let out = vm.output();
    let out = &out[before..];
    assert!(!out.contains("Kernel panic"), "kernel panicked at reboot");
    // stubborn ignores TERM: it is killed after its stop_timeout, but
    // stopped all the same before the reboot.
    for n in ["web", "leaver", "stubborn"] {
        assert_in_order(
            out,
            &[
                &format!("[ STOP ] {n}: stopped"),
                "reboot: Restarting system",
            ],
        );
    }
    assert!(!out.contains("reboot: Power down"), "reboot powered off");
}
