//! Editing unit files on the console (sed -i, here-documents, rm) and then
//! `initctl reload`: only what changed is touched; an invalid file is
//! reported as FILE:LINE and its unit keeps its last good definition.
//! Fixtures: tests/units/ctlreload/ (the image's /test/ctlreload is the
//! running unit directory).

use crate::initctl_common::*;
use crate::*;

const DIR: &str = "/test/ctlreload";

fn reload(vm: &mut Vm) -> (String, i32) {
    let (out, rc, took) = timed(vm, "initctl reload", CMD);
    assert!(took < 10.0, "reload took {took:.1} s");
    (out, rc)
}

/// Waits until every unit in `names` runs with a pid other than in `old`.
fn wait_new_pid(vm: &mut Vm, names: &[&str], old: &std::collections::HashMap<String, u32>) {
    let want: Vec<(&str, &[&str])> = names.iter().map(|n| (*n, &["running"][..])).collect();
    let st = vm.wait_states(&want, secs(10));
    for n in names {
        let p = st[*n].pid.unwrap();
        assert_ne!(Some(&p), old.get(*n), "{n} was not restarted (pid {p})");
    }
}

#[test]
fn initctl_reload_applies_only_what_changed_on_disk() {
    let mut vm = boot("ctlreload");
    vm.wait_states(
        &[
            ("alpha", &["running"]),
            ("beta", &["running"]),
            ("gamma", &["running"]),
            ("omega", &["running"]),
        ],
        secs(30),
    );
    let p0 = pids(&mut vm);

    // Nothing changed: nothing is touched.
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("0 added, 0 changed, 0 removed, 5 unchanged"),
        "{out}"
    );
    assert_same_pids(
        &p0,
        &pids(&mut vm),
        &["sh", "alpha", "beta", "gamma", "omega"],
    );

    // sed -i on one file: that unit restarts, no other (not even omega,
    // which starts after it).
    vm.sh(&format!("sed -i 's/ v1 / v2 /' {DIR}/alpha.unit"), CMD);
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("0 added, 1 changed, 0 removed, 4 unchanged"),
        "{out}"
    );
    wait_new_pid(&mut vm, &["alpha"], &p0);
    let p1 = pids(&mut vm);
    assert_same_pids(&p0, &p1, &["sh", "beta", "gamma", "omega"]);
    let m = marks(&mut vm, "/run/alpha");
    let texts: Vec<&str> = m.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(texts, ["v1", "v2"], "{m:?}");
    assert_eq!(m[1].1, p1["alpha"], "the new alpha runs the new definition");

    // A here-document replaces another file: new limits apply.
    heredoc(
        &mut vm,
        &format!("cat > {DIR}/beta.unit"),
        "# rewritten on the console\n\
         exec = /usr/bin/wren-testkit mark /run/beta v2 forever\n\
         memory.max = 12M\n\
         namespaces = none\n",
    );
    assert!(vm
        .sh(&format!("cat {DIR}/beta.unit"), CMD)
        .contains("memory.max = 12M"));
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("0 added, 1 changed, 0 removed, 4 unchanged"),
        "{out}"
    );
    wait_new_pid(&mut vm, &["beta"], &p1);
    let p2 = pids(&mut vm);
    assert_same_pids(&p1, &p2, &["sh", "alpha", "gamma", "omega"]);
    let max = vm.sh("cat /sys/fs/cgroup/units/beta/memory.max", CMD);
    assert_eq!(max.trim(), (12u64 << 20).to_string());

    // A new file: a new unit starts; nothing else moves.
    heredoc(
        &mut vm,
        &format!("cat > {DIR}/delta.unit"),
        "exec = /usr/bin/wren-testkit mark /run/delta v1 forever\n\
         namespaces = none\n",
    );
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("1 added, 0 changed, 0 removed, 5 unchanged"),
        "{out}"
    );
    vm.wait_states(&[("delta", &["running"])], secs(10));
    let p3 = pids(&mut vm);
    assert_same_pids(&p2, &p3, &["sh", "alpha", "beta", "gamma", "omega"]);

    // A removed file: its unit stops and goes; nothing else moves.
    let gamma = p3["gamma"];
    vm.sh(&format!("rm {DIR}/gamma.unit"), CMD);
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("0 added, 0 changed, 1 removed, 5 unchanged"),
        "{out}"
    );
    let deadline = Instant::now() + secs(10);
    while vm.unit("gamma").is_some() {
        assert!(
            Instant::now() < deadline,
            "gamma still listed 10 s after its file was removed: {:?}",
            vm.unit("gamma")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(!alive(&mut vm, gamma), "removed unit's process survived");
    assert_eq!(
        cgroup_procs(&mut vm, "gamma").unwrap_or_default(),
        Vec::<u32>::new()
    );
    let (out, rc) = vm.sh_rc("initctl status gamma 2>&1", CMD);
    assert_eq!(rc, 1, "{out}");
    let p4 = pids(&mut vm);
    assert_same_pids(&p3, &p4, &["sh", "alpha", "beta", "delta", "omega"]);

    // A typo put in by sed, and a valid change elsewhere in the same
    // reload: exit 1 naming the line, the broken unit keeps running on its
    // last good definition, the valid change is applied.
    let line = vm.sh(&format!("grep -n '^memory.max' {DIR}/alpha.unit"), CMD);
    let line: u32 = line.split(':').next().unwrap().trim().parse().unwrap();
    vm.sh(
        &format!("sed -i 's/^memory.max/memroy.max/' {DIR}/alpha.unit; sed -i 's/ v1 / v2 /' {DIR}/delta.unit"),
        CMD,
    );
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 1, "reload with an invalid file must exit 1:\n{out}");
    assert!(
        out.contains(&format!(
            "alpha.unit:{line}: unknown key `memroy.max` (did you mean `memory.max`?)"
        )),
        "no FILE:LINE message for the typo:\n{out}"
    );
    assert!(out.contains("1 changed"), "{out}");
    // (omega, which starts after alpha, may be reported and kept too.)
    assert!(
        out.contains(" kept on last good definition") && !out.contains(" 0 kept"),
        "{out}"
    );
    wait_new_pid(&mut vm, &["delta"], &p4);
    let p5 = pids(&mut vm);
    assert_same_pids(&p4, &p5, &["sh", "alpha", "beta", "omega"]);
    let cat = vm.sh("initctl cat alpha", CMD);
    assert!(cat.contains("mark /run/alpha v2 forever"), "{cat}");
    assert!(
        cat.contains("memory.max"),
        "last good definition lost:\n{cat}"
    );
    assert!(!cat.contains("memroy"), "{cat}");
    assert_eq!(
        vm.sh("cat /sys/fs/cgroup/units/alpha/memory.max", CMD)
            .trim(),
        (8u64 << 20).to_string()
    );
    // Reloading again changes nothing and still reports the problem.
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains(&format!("alpha.unit:{line}:")), "{out}");
    assert_same_pids(
        &p5,
        &pids(&mut vm),
        &["sh", "alpha", "beta", "delta", "omega"],
    );
    // `initctl check FILE` says the same.
    let (out, rc) = vm.sh_rc(&format!("initctl check {DIR}/alpha.unit"), CMD);
    assert_eq!(rc, 1, "{out}");
    assert!(
        out.contains(&format!("alpha.unit:{line}: unknown key `memroy.max`")),
        "{out}"
    );

    // Fixed back to what runs: valid again, and alpha is not restarted.
    vm.sh(
        &format!("sed -i 's/^memroy.max/memory.max/' {DIR}/alpha.unit"),
        CMD,
    );
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("0 added, 0 changed, 0 removed, 5 unchanged"),
        "{out}"
    );
    assert_same_pids(
        &p5,
        &pids(&mut vm),
        &["sh", "alpha", "beta", "delta", "omega"],
    );
    assert!(!vm.output().contains("Kernel panic"));
}

/// The pid in /run/linger.left (`linger`'s child that ignores TERM).
fn linger_left(vm: &mut Vm) -> u32 {
    let deadline = Instant::now() + secs(10);
    loop {
        let s = vm.sh("cat /run/linger.left 2>/dev/null", CMD);
        if let Ok(p) = s.trim().parse::<u32>() {
            return p;
        }
        assert!(Instant::now() < deadline, "no /run/linger.left");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Removes `linger` by a reload and waits until its main process has
/// ended on TERM (its slot then free) and its child `left`, which did
/// not, is all its cgroup holds.
fn remove_linger(vm: &mut Vm, left: u32) {
    vm.sh("mv /test/reuse/linger.unit /run/", CMD);
    let (out, rc) = reload(vm);
    assert_eq!(rc, 0, "{out}");
    let deadline = Instant::now() + secs(10);
    loop {
        let procs = vm.sh("cat /sys/fs/cgroup/units/linger/cgroup.procs", CMD);
        if procs.trim() == left.to_string() {
            break;
        }
        assert!(Instant::now() < deadline, "linger's cgroup: {procs}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A unit removed by a reload leaves a child that ignores TERM (its stop
/// kills it at stop_timeout, 60 s); a second reload adds a unit, which
/// takes the removed one's slot in the table. What the stop left is
/// killed then, and its cgroup removed: the slot's edge, which would have
/// done both at stop_timeout, goes to the new unit (fixtures:
/// tests/units/reuse/).
#[test]
fn initctl_reload_a_new_unit_in_a_removed_units_slot_ends_what_its_stop_left() {
    let mut vm = boot("reuse");
    vm.wait_states(&[("linger", &["running"])], secs(30));
    let left = linger_left(&mut vm);
    remove_linger(&mut vm, left);
    let (out, rc) = vm.sh_rc("initctl status linger 2>&1", CMD);
    assert_ne!(rc, 0, "{out}");
    let alive = |vm: &mut Vm| vm.sh_rc(&format!("test -d /proc/{left}"), CMD).1 == 0;
    vm.sh(
        "printf 'exec = /bin/sleep 1002\\nnamespaces = none\\n' > /test/reuse/fresh.unit",
        CMD,
    );
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    vm.wait_states(&[("fresh", &["running"])], secs(10));
    let deadline = Instant::now() + secs(10);
    while alive(&mut vm) || vm.sh_rc("test -d /sys/fs/cgroup/units/linger", CMD).1 == 0 {
        assert!(
            Instant::now() < deadline,
            "what linger's stop left is still there:\n{}",
            vm.sh("ps; ls /sys/fs/cgroup/units", CMD)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The same removal, then the unit given back by the next reload: what
/// its stop left is killed, and the cgroup, its name's, stays the unit's
/// (not removed under it once it is empty between two runs).
#[test]
fn initctl_reload_a_unit_given_back_after_its_stop_keeps_its_cgroup() {
    let mut vm = boot("reuse");
    vm.wait_states(&[("linger", &["running"])], secs(30));
    let first = linger_left(&mut vm);
    remove_linger(&mut vm, first);
    vm.sh("rm /run/linger.left; mv /run/linger.unit /test/reuse/", CMD);
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    vm.wait_states(&[("linger", &["running"])], secs(10));
    let deadline = Instant::now() + secs(10);
    while vm.sh_rc(&format!("test -d /proc/{first}"), CMD).1 == 0 {
        assert!(
            Instant::now() < deadline,
            "the first run's leftover lives on"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Stopped, and what this stop left killed by hand: the cgroup is
    // empty between two runs.
    // (The stop's answer waits for the cgroup to be empty.)
    let second = linger_left(&mut vm);
    let out = vm.sh(
        &format!("(initctl stop linger 2>&1; echo rc=$?) & sleep 1; kill -9 {second}; wait"),
        secs(20),
    );
    assert!(out.contains("rc=0"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    let (out, rc) = vm.sh_rc("initctl start linger 2>&1", CMD);
    assert_eq!(rc, 0, "{out}");
    vm.wait_states(&[("linger", &["running"])], secs(10));
    let (_, rc) = vm.sh_rc("test -d /sys/fs/cgroup/units/linger", CMD);
    assert_eq!(rc, 0, "linger's cgroup is gone");
}

/// A removed unit's cgroup that stays busy once empty (cgroups made
/// below it deeper than the four levels PID 1 removes with it: rmdir says
/// EBUSY however empty they are) is tried again at PID 1's wake-ups for
/// 10 s, then left in place and said so; not tried, silently, at every
/// wake-up for ever. (A shallower one goes with it: `nested`.)
#[test]
fn initctl_reload_a_removed_units_busy_cgroup_is_left_in_place_and_said() {
    let mut vm = boot("reuse");
    vm.sh(
        "printf 'exec = /bin/sleep 1003\\nnamespaces = none\\n' > /test/reuse/nest.unit",
        CMD,
    );
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    vm.wait_states(&[("nest", &["running"])], secs(10));
    vm.sh(
        "mkdir -p /sys/fs/cgroup/units/nest/sub/a/b/c/d && rm /test/reuse/nest.unit",
        CMD,
    );
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    // Wake-ups, each `initctl` connection a few, for longer than the 10 s.
    vm.sh(
        "i=0; while [ $i -lt 12 ]; do initctl status >/dev/null; sleep 1; i=$((i+1)); done",
        secs(60),
    );
    // (Counted: kernel lines are taken out of a command's output.)
    let said = vm.sh(
        "dmesg | grep -c 'wren: nest: cgroup still busy, left in place'",
        CMD,
    );
    assert_eq!(said.trim(), "1");
    let (_, rc) = vm.sh_rc("test -d /sys/fs/cgroup/units/nest/sub/a/b/c/d", CMD);
    assert_eq!(rc, 0, "left in place");
}

/// Units whose runs left 8 MiB charged to their cgroups (a file in the
/// shared /run tmpfs, which outlives a run) and whose reload lowers their
/// `memory.max`: each new run starts in a cgroup made anew, the old
/// charges left with the removed one, not in one that is already at
/// 8 MiB of its new limit (nor with PID 1 made to reclaim them in its
/// write of `memory.max`). `hoard` left only the charges; `burrow` also
/// an empty cgroup below its own (a runtime's), which goes first;
/// `warren` has the default namespaces, so its stop leaves a reaper held
/// for its report, which the start waits for (bounded) before the cgroup
/// is made anew.
#[test]
fn initctl_reload_of_new_limits_starts_the_unit_in_a_new_cgroup() {
    let mut vm = boot("ctlreload");
    vm.wait_states(&[("sh", &["running"])], secs(30));
    let names = ["hoard", "burrow", "warren"];
    let unit = |name: &str, max: &str| {
        let below = if name == "burrow" {
            format!("mkdir -p /sys/fs/cgroup/units/{name}/sub; ")
        } else {
            String::new()
        };
        let ns = match name {
            "warren" => "",
            _ => "namespaces = none\n",
        };
        format!(
            "exec = /bin/sh -c \"{below}[ -e /run/{name}.left ] || dd if=/dev/zero of=/run/{name}.left bs=1M count=8 2>/dev/null; exec sleep 1004\"\n\
             memory.max = {max}\n\
             {ns}"
        )
    };
    for n in names {
        heredoc(&mut vm, &format!("cat > {DIR}/{n}.unit"), &unit(n, "32M"));
    }
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    let p0 = pids(&mut vm);
    let current = |vm: &mut Vm, n: &str| -> u64 {
        let s = vm.sh(&format!("cat /sys/fs/cgroup/units/{n}/memory.current"), CMD);
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{n}'s memory.current: {s}"))
    };
    let deadline = Instant::now() + secs(10);
    for n in names {
        while current(&mut vm, n) < 8 << 20 {
            assert!(
                Instant::now() < deadline,
                "the 8 MiB file not charged to {n}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let (_, rc) = vm.sh_rc("test -d /sys/fs/cgroup/units/burrow/sub", CMD);
    assert_eq!(rc, 0, "burrow made no cgroup below its own");
    for n in names {
        heredoc(&mut vm, &format!("cat > {DIR}/{n}.unit"), &unit(n, "24M"));
    }
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("3 changed"), "{out}");
    wait_new_pid(&mut vm, &names, &p0);
    for n in names {
        let max = vm.sh(&format!("cat /sys/fs/cgroup/units/{n}/memory.max"), CMD);
        assert_eq!(max.trim(), (24u64 << 20).to_string(), "{n}");
        let now = current(&mut vm, n);
        assert!(
            now < 4 << 20,
            "{n}'s new run's cgroup holds the last run's charges: {now} bytes"
        );
    }
}

/// A reload's new `memory.max` for a unit whose cgroup is kept (a cgroup
/// it made five levels below its own, past what PID 1 removes, keeps it
/// busy), with its last run's 8 MiB still charged: a child of PID 1
/// writes it, since the kernel reclaims toward a value in the writer's
/// context (`cgroup::reclaim`; its bound is a host test's, with a write
/// that never returns). Here the path on the real kernel: the value in
/// force, the charges kept (the cgroup was kept, not made anew), the new
/// run running, and the write done within its budget (24M is above the
/// charges, so there is nothing to reclaim: a timeout would be the
/// child's own failing). Who wrote is what a kprobe on the kernel's
/// `memory_max_write` saw: PID 1 itself for the fresh cgroup of the
/// first run (so the probe does see PID 1's writes), another process for
/// the kept one.
#[test]
fn initctl_reload_of_a_kept_cgroups_memory_max_is_written_by_a_child() {
    let mut vm = boot("ctlreload");
    vm.wait_states(&[("sh", &["running"])], secs(30));
    const T: &str = "/sys/kernel/tracing";
    let (out, rc) = vm.sh_rc(
        &format!(
            "mount -t tracefs nodev {T} && \
             echo 'p:wren/memmax memory_max_write' > {T}/kprobe_events && \
             echo 1 > {T}/events/wren/memmax/enable"
        ),
        CMD,
    );
    assert_eq!(rc, 0, "kprobe on memory_max_write: {out}");
    // The pids of the trace's memory_max_write calls since the last
    // read, each line `COMM-PID [CPU] FLAGS TIME: memmax: ...` (COMM
    // `<...>` for a process gone before the read).
    let writers = |vm: &mut Vm| -> Vec<u32> {
        let (out, rc) = vm.sh_raw_rc(&format!("cat {T}/trace; echo > {T}/trace"), CMD);
        assert_eq!(rc, 0, "{out}");
        out.lines()
            .filter(|l| l.contains(" memmax: "))
            .map(|l| {
                let task = l.split_whitespace().next().unwrap_or_default();
                let pid = task.rsplit_once('-').map(|(_, p)| p.parse());
                match pid {
                    Some(Ok(p)) => p,
                    _ => panic!("no COMM-PID in {l:?}"),
                }
            })
            .collect()
    };
    let unit = |max: &str| {
        format!(
            "exec = /bin/sh -c \"mkdir -p /sys/fs/cgroup/units/nook/sub/a/b/c/d; [ -e /run/nook.left ] || dd if=/dev/zero of=/run/nook.left bs=1M count=8 2>/dev/null; exec sleep 1004\"\n\
             memory.max = {max}\n\
             namespaces = none\n"
        )
    };
    heredoc(&mut vm, &format!("cat > {DIR}/nook.unit"), &unit("32M"));
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    let p0 = pids(&mut vm);
    let current = |vm: &mut Vm| -> u64 {
        let s = vm.sh("cat /sys/fs/cgroup/units/nook/memory.current", CMD);
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("memory.current: {s}"))
    };
    let deadline = Instant::now() + secs(10);
    while current(&mut vm) < 8 << 20 {
        assert!(Instant::now() < deadline, "the 8 MiB file not charged");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, rc) = vm.sh_rc("test -d /sys/fs/cgroup/units/nook/sub/a/b/c/d", CMD);
    assert_eq!(rc, 0, "nook made no cgroup five levels below its own");
    assert_eq!(writers(&mut vm), [1], "the fresh cgroup's memory.max");
    heredoc(&mut vm, &format!("cat > {DIR}/nook.unit"), &unit("24M"));
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("1 changed"), "{out}");
    wait_new_pid(&mut vm, &["nook"], &p0);
    let by = writers(&mut vm);
    assert!(
        by.len() == 1 && by[0] != 1,
        "the kept cgroup's memory.max written by pids {by:?}"
    );
    let max = vm.sh("cat /sys/fs/cgroup/units/nook/memory.max", CMD);
    assert_eq!(max.trim(), (24u64 << 20).to_string());
    let now = current(&mut vm);
    assert!(now >= 8 << 20, "kept, the cgroup holds its charges: {now}");
    let said = vm.sh("dmesg | grep -c 'reclaim to it stopped' || true", CMD);
    assert_eq!(said.trim(), "0", "{said}");
}

/// A unit that changes its own file and runs `initctl reload` itself
/// (an updater): the reload is done and restarts it on the new
/// definition, which the health gate keeps; its `initctl` goes with the
/// old run's cgroup before the answer (docs/initctl.md, "reload").
#[test]
fn initctl_reload_run_by_the_unit_it_changes_restarts_that_unit() {
    let mut vm = boot("ctlreload");
    vm.wait_states(&[("sh", &["running"])], secs(30));
    heredoc(
        &mut vm,
        &format!("cat > {DIR}/selfup.unit"),
        "exec = /bin/sh -c \"[ -e /run/selfup.done ] || { touch /run/selfup.done; \
         sed -i 's/up v[1]/up v2/' /test/ctlreload/selfup.unit; initctl reload > /run/selfup.out 2>&1; \
         echo rc=$? >> /run/selfup.out; }; exec /usr/bin/wren-testkit mark /run/selfup v1 forever\"\n\
         namespaces = none\n",
    );
    let (out, rc) = reload(&mut vm);
    assert_eq!(rc, 0, "{out}");
    // The first run updated its file and reloaded (and was stopped by
    // that reload before it marked); the second runs the new definition.
    let m = wait_marks(&mut vm, "/run/selfup", secs(20), |m| !m.is_empty());
    let texts: Vec<&str> = m.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(texts, ["v2"], "{m:?}");
    assert_eq!(vm.sh_rc("test -e /run/selfup.done", CMD).1, 0);
    let st = vm.wait_states(&[("selfup", &["running"])], secs(10));
    assert_eq!(st["selfup"].pid, Some(m[0].1), "the v2 run is the unit's");
    // Judged and kept: the file stays the updated one, nothing rejected.
    std::thread::sleep(Duration::from_millis(1500));
    let (detail, rc) = vm.sh_rc("initctl status selfup 2>&1", CMD);
    assert_eq!(rc, 0, "{detail}");
    assert!(!detail.contains("rejected"), "{detail}");
    assert!(vm
        .sh(&format!("cat {DIR}/selfup.unit"), CMD)
        .contains("selfup v2 forever"));
    // The updater's initctl got no answer: it went with the old run.
    let said = vm.sh("cat /run/selfup.out 2>/dev/null; echo end", CMD);
    assert!(!said.contains("rc=0"), "{said}");
}
