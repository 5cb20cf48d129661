//! Memory pressure (PSI): a unit's `pressure_limit` trigger restarts a
//! thrashing unit while the others keep their PIDs; `wren.shed=` stops
//! the lowest `shed_order` unit under system pressure before any OOM kill
//! and starts it again once pressure is gone; and watches registered in
//! the loop cost no wake-up while idle.
use crate::*;

fn oom_kills(vm: &mut wren_boot_tests::Vm, unit: &str) -> u64 {
    let s = vm.sh(
        &format!("grep '^oom_kill ' /sys/fs/cgroup/units/{unit}/memory.events"),
        CMD,
    );
    s.trim()
        .strip_prefix("oom_kill ")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{unit}: memory.events: {s:?}"))
}

fn detail(vm: &mut wren_boot_tests::Vm, unit: &str) -> String {
    vm.sh(&format!("initctl status {unit}"), CMD)
}

#[test]
fn pressure_limit_restarts_a_thrashing_unit_only() {
    let mut vm = boot("pressure");
    let st = vm.wait_states(
        &[
            ("zram", &["exited"]),
            ("thrash", &["running"]),
            ("watched", &["running"]),
            ("calm", &["running"]),
        ],
        Duration::from_secs(60),
    );
    let calm_pid = st["calm"].pid;
    let watched_pid = st["watched"].pid;
    let thrash_pid = st["thrash"].pid;
    // The trigger is registered on the unit's own cgroup.
    vm.expect(
        "[ WARN ] thrash: memory pressure over 10% in 1000ms",
        Duration::from_secs(120),
    );
    vm.expect("restarting", Duration::from_secs(10));
    // Restarted: a new main process, after its restart delay (a pressure
    // restart is a failed run: in RESTARTS, and `over pressure_limit`
    // counts the trigger's firings).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = vm.wait_states(&[("calm", &["running"])], CMD);
        let pid = st["thrash"].pid;
        if pid.is_some() && pid != thrash_pid {
            break;
        }
        assert!(Instant::now() < deadline, "thrash never restarted: {st:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let d = detail(&mut vm, "thrash");
    let events: u32 = d
        .lines()
        .find_map(|l| l.split_once("over pressure_limit: ").map(|(_, n)| n))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pressure line: {d}"));
    assert!(events >= 1, "{d}");
    assert!(d.contains("pressure: "), "{d}");
    // Restarted by the pressure action, not killed by the OOM killer.
    assert_eq!(oom_kills(&mut vm, "thrash"), 0);
    let st2 = vm.wait_states(&[("calm", &["running"]), ("watched", &["running"])], CMD);
    assert_eq!(st2["calm"].pid, calm_pid, "calm was restarted");
    assert_eq!(st2["watched"].pid, watched_pid, "watched was touched");
    let w = detail(&mut vm, "watched");
    assert!(w.contains("over pressure_limit: 0"), "{w}");
}

#[test]
fn shed_stops_the_lowest_order_first_and_brings_it_back() {
    let mut vm = Vm::boot("shed", "wren.shed=10%/1s");
    vm.wait_shell(BOOT);
    let st = vm.wait_states(
        &[
            ("zram", &["exited"]),
            ("a", &["running"]),
            ("b", &["running"]),
            ("keep", &["running"]),
            ("press", &["running"]),
        ],
        Duration::from_secs(60),
    );
    let keep_pid = st["keep"].pid;
    // A reload frees the table's first slot (0gone's).
    vm.sh("rm /test/shed/0gone.unit", CMD);
    // Under this memory pressure a start can stall before its exec long
    // enough for PID 1 to refuse the reload, as it says, for a retry.
    let mut tries = 0;
    let out = loop {
        let (out, rc) = vm.sh_rc("initctl reload 2>&1", CMD);
        tries += 1;
        if rc == 0 {
            break out;
        }
        assert!(
            out.contains("stuck before its exec; try again") && tries < 5,
            "{out}"
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = vm.sh("initctl status 2>&1", CMD);
        if !st.contains("0gone") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "0gone never left the table: {out}\n{st}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for u in ["a", "b", "keep"] {
        wait_marks(
            &mut vm,
            &format!("/run/{u}"),
            Duration::from_secs(30),
            |m| !m.is_empty(),
        );
    }
    vm.sh("touch /run/press.go", CMD);
    vm.expect("[ SHED ] a: stopping", Duration::from_secs(120));
    // a was the first unit shed (not the unit, or the freed slot, at
    // a's place among the units left).
    let out = vm.output();
    let first = out.find("[ SHED ]").map(|at| &out[at..]);
    assert!(
        first.is_some_and(|l| l.starts_with("[ SHED ] a: stopping")),
        "{first:?}"
    );
    let st = vm.wait_states(&[("a", &["stopped"])], Duration::from_secs(30));
    assert_eq!(st["keep"].pid, keep_pid, "keep was touched");
    let d = detail(&mut vm, "a");
    assert!(d.contains("reason: shed: system memory pressure"), "{d}");
    // The pressure ends (press stops writing after 20 s); the shed units
    // come back, the most important first.
    wait_marks(&mut vm, "/run/press", Duration::from_secs(60), |m| {
        !m.is_empty()
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    while vm.sh("cat /run/press.done 2>/dev/null", CMD).trim() != "done" {
        assert!(Instant::now() < deadline, "press never finished");
        std::thread::sleep(Duration::from_secs(1));
    }
    let st = vm.wait_states(
        &[
            ("a", &["running"]),
            ("b", &["running"]),
            ("keep", &["running"]),
        ],
        Duration::from_secs(120),
    );
    assert!(vm.output().contains("[ SHED ] a: starting again"));
    assert_eq!(st["keep"].pid, keep_pid, "keep was touched");
    // Nobody was OOM-killed: shedding came first.
    for u in ["a", "b", "keep", "press"] {
        assert_eq!(oom_kills(&mut vm, u), 0, "{u} saw an OOM kill");
    }
    let out = vm.output();
    // a (order 1) went before b (order 2) if b went at all.
    if let Some(pb) = out.find("[ SHED ] b: stopping") {
        let pa = out.find("[ SHED ] a: stopping").unwrap_or(usize::MAX);
        assert!(pa < pb, "b was shed before a");
    }
}

/// Watches cost nothing while idle: PID 1's voluntary context switches do
/// not move over 10 s with a unit trigger and the system trigger set.
#[test]
fn pressure_watches_do_not_wake_pid1_when_idle() {
    let mut vm = Vm::boot("pressure", "wren.shed=50%/10s");
    vm.wait_shell(BOOT);
    vm.wait_states(
        &[
            ("zram", &["exited"]),
            ("watched", &["running"]),
            ("calm", &["running"]),
        ],
        Duration::from_secs(60),
    );
    // The thrashing unit would wake it on purpose.
    vm.sh("initctl stop thrash", CMD);
    vm.sh("sleep 3", CMD);
    assert_pid1_idle(&mut vm);
    // Without the timestamp: the harness drops console lines that look
    // like kernel messages.
    let d = vm.sh(
        "dmesg | grep 'wren: shedding' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    assert!(
        d.contains("shedding units when memory stalls over 50% in 10000ms"),
        "{d}"
    );
}
