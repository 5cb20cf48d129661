//! `initctl reexec` (issue 13): PID 1 replaces itself in place and every
//! unit goes on as it was. Fixtures: tests/units/reexec/ (20 units: plain
//! services, six in PID namespaces under reapers, a chatty one with a
//! `log -f` follower, notify and sd_notify ones, one in backoff, an exited
//! oneshot, and two the test kills around the re-exec).

use crate::initctl_common::*;
use crate::*;
use std::collections::HashMap;
use wren_boot_tests::UnitStatus;

const ALL: &[&str] = &[
    "sh", "plain01", "plain02", "plain03", "plain04", "plain05", "plain06", "ns01", "ns02", "ns03",
    "ns04", "ns05", "ns06", "chatty", "notify", "sdnotify", "victim", "dier",
];

fn settle(vm: &mut Vm) -> HashMap<String, UnitStatus> {
    let mut want: Vec<(&str, &[&str])> = ALL.iter().map(|n| (*n, &["running"][..])).collect();
    want.push(("once", &["exited"]));
    want.push(("backoff", &["backoff"]));
    vm.wait_states(&want, secs(30));
    // The backoff unit has failed once and waits a minute.
    table(vm)
}

/// Anonymous memory of PID 1, in kB.
fn anon_kb(vm: &mut Vm) -> u64 {
    let out = vm.sh("grep '^Anonymous:' /proc/1/smaps_rollup", CMD);
    out.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Anonymous in smaps_rollup: {out:?}"))
}

/// Zombies whose parent is PID 1 (ps shows state Z; busybox ps has no
/// ppid column, so /proc is read).
fn zombies_of_init(vm: &mut Vm) -> String {
    vm.sh(
        "for s in /proc/[0-9]*/stat; do read -r l < $s 2>/dev/null || continue; \
         set -- ${l##*) }; [ \"$1\" = Z ] && [ \"$2\" = 1 ] && echo \"zombie $s\"; done; true",
        CMD,
    )
}

/// Starts `initctl log -f chatty` in the background and waits until it
/// has the ring; the number of `tick` lines it has seen.
fn attach_follower(vm: &mut Vm) -> usize {
    vm.sh(
        "initctl log -f chatty > /run/follow.out 2>&1 & echo $! > /run/follow.pid",
        CMD,
    );
    let deadline = Instant::now() + secs(10);
    loop {
        let out = vm.sh("cat /run/follow.out", CMD);
        if out.contains("before-2") {
            return out.matches("tick").count();
        }
        assert!(Instant::now() < deadline, "follower got nothing: {out:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The follower is still there and gets what the unit writes now.
fn follower_goes_on(vm: &mut Vm, ticks: usize) {
    std::thread::sleep(Duration::from_millis(2500));
    let out = vm.sh("cat /run/follow.out", CMD);
    assert!(
        out.matches("tick").count() > ticks + 1,
        "the follower got nothing new after the re-exec:\n{out}"
    );
    assert!(!out.contains("initctl:"), "{out}");
    let (_, rc) = vm.sh_rc("kill -0 $(cat /run/follow.pid)", CMD);
    assert_eq!(rc, 0, "the follower ended:\n{out}");
    vm.sh("kill $(cat /run/follow.pid)", CMD);
}

fn init_line(vm: &mut Vm) -> String {
    let out = vm.sh("initctl status", CMD);
    out.lines()
        .find(|l| l.starts_with("init: wren "))
        .unwrap_or_else(|| panic!("no init line in status:\n{out}"))
        .to_string()
}

fn same_units(before: &HashMap<String, UnitStatus>, after: &HashMap<String, UnitStatus>) {
    for n in ALL.iter().chain(["once", "backoff"].iter()) {
        let (b, a) = (&before[*n], &after[*n]);
        assert_eq!(
            (b.pid, b.restarts, b.state.as_str()),
            (a.pid, a.restarts, a.state.as_str()),
            "{n} changed across the re-exec"
        );
    }
}

#[test]
fn reexec_keeps_every_unit_running_as_it_was() {
    let mut vm = boot("reexec");
    let before = settle(&mut vm);
    assert_eq!(before.len(), 20);
    assert!(init_line(&mut vm).contains("/sbin/init, state format "));
    let ring = vm.sh("initctl log chatty", CMD);
    assert!(ring.contains("before-1\nbefore-2\n"), "{ring}");
    // A follower attached while PID 1 is replaced.
    let ticks = attach_follower(&mut vm);

    let (out, rc, took) = timed(&mut vm, "initctl reexec", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("re-exec 1 took 18 units"), "{out}");
    assert!(took < 5.0, "re-exec took {took:.1} s");
    let after = table(&mut vm);
    same_units(&before, &after);
    assert!(init_line(&mut vm).contains("re-exec 1 took"));
    // The ring is the same stream: what was in it is still there.
    let ring2 = vm.sh("initctl log chatty", CMD);
    assert!(ring2.contains("before-1\nbefore-2\n"), "{ring2}");
    assert_eq!(marks(&mut vm, "/run/once").len(), 1, "once ran again");
    // The follower goes on with the new PID 1.
    follower_goes_on(&mut vm, ticks);

    // A unit killed right after is restarted by the new PID 1.
    let victim = after["victim"].pid.unwrap();
    vm.sh(&format!("kill -9 {victim}"), CMD);
    let st = vm.wait_states(&[("victim", &["running"])], secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let st2 = table(&mut vm);
    assert_ne!(
        st2["victim"].pid,
        Some(victim),
        "victim not restarted: {:?}",
        st["victim"]
    );
    assert_eq!(st2["victim"].restarts, before["victim"].restarts + 1);

    // One killed while PID 1 is being replaced: reaped and restarted.
    let dier = st2["dier"].pid.unwrap();
    let (out, rc) = vm.sh_rc(
        &format!("(sleep 0.02; kill -9 {dier}) & initctl reexec 2>&1"),
        CMD,
    );
    assert_eq!(rc, 0, "{out}");
    std::thread::sleep(Duration::from_millis(800));
    let st3 = vm.wait_states(&[("dier", &["running"])], secs(10));
    assert_ne!(st3["dier"].pid, Some(dier), "dier not restarted");
    let z = zombies_of_init(&mut vm);
    assert!(!z.contains("zombie"), "zombies left:\n{z}");
    let now = table(&mut vm);
    for n in ALL.iter().filter(|n| !["victim", "dier"].contains(n)) {
        assert_eq!(
            now[*n].pid, before[*n].pid,
            "{n} changed after two re-execs"
        );
    }
    assert_eq!(now["backoff"].state, "backoff");
    assert_eq!(now["backoff"].restarts, before["backoff"].restarts);
}

#[test]
fn reexec_refuses_what_is_not_a_working_wren() {
    let mut vm = boot("reexec");
    let before = settle(&mut vm);
    let (out, rc) = vm.sh_rc("initctl reexec /bin/true 2>&1", CMD);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("/bin/true refused: not a wren"), "{out}");
    vm.sh(
        "head -c 65536 /sbin/init > /run/cut; chmod 755 /run/cut",
        CMD,
    );
    let (out, rc) = vm.sh_rc("initctl reexec /run/cut 2>&1", CMD);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("/run/cut refused"), "{out}");
    let (out, rc) = vm.sh_rc("initctl reexec /no/such/file 2>&1", CMD);
    assert_eq!(rc, 1, "{out}");
    same_units(&before, &table(&mut vm));
    // Still the first PID 1: no re-exec counted.
    let line = init_line(&mut vm);
    assert!(!line.contains("re-exec"), "{line}");
}

#[test]
fn reexec_a_hundred_times_keeps_pid1_memory() {
    let mut vm = boot("reexec");
    let before = settle(&mut vm);
    let booted = anon_kb(&mut vm);
    let (out, rc) = vm.sh_rc("initctl reexec 2>&1", CMD);
    assert_eq!(rc, 0, "{out}");
    let first = anon_kb(&mut vm);
    let (out, rc) = vm.sh_rc(
        "i=0; while [ $i -lt 100 ]; do initctl reexec >/dev/null 2>&1 || break; i=$((i+1)); done; echo done $i",
        secs(300),
    );
    assert_eq!(rc, 0);
    assert!(out.contains("done 100"), "{out}");
    let last = anon_kb(&mut vm);
    println!(
        "PID 1 Anonymous: {booted} kB booted, {first} kB after 1 re-exec, {last} kB after 101"
    );
    assert!(
        last <= first + 16,
        "PID 1 grew from {first} kB to {last} kB over 100 re-execs"
    );
    assert!(init_line(&mut vm).contains("re-exec 101 took"));
    same_units(&before, &table(&mut vm));
    assert!(!zombies_of_init(&mut vm).contains("zombie"));
}

/// A build that cannot read the state (here: this one with its format
/// bumped by WREN_STATE_FORMAT_BUMP, set by a wrapper that execs it)
/// adopts the running units instead of losing them.
#[test]
fn reexec_into_another_state_format_adopts_the_running_units() {
    let mut vm = boot("reexec");
    let before = settle(&mut vm);
    heredoc(
        &mut vm,
        "cat > /run/bumped",
        "#!/bin/sh\nWREN_STATE_FORMAT_BUMP=1 exec /sbin/init \"$@\"\n",
    );
    vm.sh("chmod 755 /run/bumped", CMD);
    // The format this build writes (the bumped one cannot read it).
    let line = init_line(&mut vm);
    let format: u32 = line
        .split("state format ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no state format in {line:?}"));
    // Changed on disk, not reloaded: the adopted unit's cgroup holds what
    // the old PID 1 wrote, so its next start writes the file's limits.
    vm.sh("echo 'memory.max = 24M' >> /test/reexec/victim.unit", CMD);
    // A running unit's file made invalid: the bumped build, adopting from
    // the files, would leave it unsupervised. Refused, named; then mended.
    vm.sh("echo 'bogus = 1' >> /test/reexec/chatty.unit", CMD);
    let (out, rc) = vm.sh_rc("initctl reexec /run/bumped 2>&1", CMD);
    assert_eq!(rc, 1, "{out}");
    // Whole: the unit, the cause and that nothing changed (a message
    // once cut these off).
    assert!(
        out.contains(
            "/run/bumped refused: chatty: unit file invalid or gone; \
             format "
        ) && out.contains(" adopts units from files; init keeps running"),
        "{out}"
    );
    vm.sh("sed -i '$d' /test/reexec/chatty.unit", CMD);
    // A unit whose main process is in a cgroup it made below its own (as
    // a container runtime's are): adopted all the same.
    let ns06 = before["ns06"].pid.unwrap();
    vm.sh(
        &format!(
            "mkdir /sys/fs/cgroup/units/ns06/inner && echo {ns06} > /sys/fs/cgroup/units/ns06/inner/cgroup.procs"
        ),
        CMD,
    );
    let ticks = attach_follower(&mut vm);
    let (out, rc) = vm.sh_rc("initctl reexec /run/bumped 2>&1", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains(&format!("re-exec 1 adopted 18 (format {format})")),
        "{out}"
    );
    assert!(vm.saw(
        &format!("cannot read state format {format}: adopted 18 running units"),
        secs(5)
    ));
    let after = table(&mut vm);
    for n in ALL {
        assert_eq!(after[*n].pid, before[*n].pid, "{n} lost its process");
        assert_eq!(after[*n].state, "running", "{n}");
    }
    // Its output pipe is taken over: new output reaches the (new) ring.
    std::thread::sleep(Duration::from_millis(1500));
    let ring = vm.sh("initctl log chatty", CMD);
    assert!(ring.contains("tick"), "{ring}");
    follower_goes_on(&mut vm, ticks);
    // Adopted processes are still supervised.
    let victim = after["victim"].pid.unwrap();
    vm.sh(&format!("kill -9 {victim}"), CMD);
    std::thread::sleep(Duration::from_millis(800));
    let st = vm.wait_states(&[("victim", &["running"])], secs(10));
    assert_ne!(st["victim"].pid, Some(victim));
    assert!(!zombies_of_init(&mut vm).contains("zombie"));
    let max = vm.sh("cat /sys/fs/cgroup/units/victim/memory.max", CMD);
    assert_eq!(max.trim(), "25165824", "the file's limit after the restart");
}
