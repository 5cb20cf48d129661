//! `initctl status` (table, one unit, --json), exit codes, and `initctl
//! poweroff`, typed on the console. Fixtures: tests/units/ctlstatus/, one
//! unit per state a unit can rest in.

use crate::initctl_common::*;
use crate::initctl_json::{self, Json};
use crate::*;

/// Every unit of the ctlstatus fixture and the state it settles in.
const SETTLED: &[(&str, &str)] = &[
    ("sh", "running"),
    ("ticker", "running"),
    ("once", "exited"),
    ("bad", "failed"),
    ("flappy", "backoff"),
    ("quiet", "stopped"),
    ("slow", "starting"),
];

fn settle(vm: &mut Vm) -> std::collections::HashMap<String, wren_boot_tests::UnitStatus> {
    let want: Vec<(&str, &[&str])> = SETTLED
        .iter()
        .map(|(n, s)| (*n, std::slice::from_ref(s)))
        .collect();
    vm.wait_states(&want, secs(30))
}

#[test]
fn initctl_status_lists_every_unit_with_its_state_and_details() {
    let mut vm = boot("ctlstatus");
    let st = settle(&mut vm);
    assert_eq!(
        st.len(),
        SETTLED.len(),
        "status lists other units than the fixture's: {st:#?}"
    );
    // A pid exactly for the units that have a process.
    for (n, s) in SETTLED {
        let has_pid = matches!(*s, "running" | "starting");
        assert_eq!(
            st[*n].pid.is_some(),
            has_pid,
            "{n} ({s}) pid column: {:?}",
            st[*n].pid
        );
    }
    // The ticker's pid is its real process, in its cgroup.
    let ticker = st["ticker"].pid.unwrap();
    // (with its `sleep 1` child, most of the time).
    let procs = cgroup_procs(&mut vm, "ticker").unwrap();
    assert!(procs.contains(&ticker), "{ticker} not in {procs:?}");
    let out = vm.sh("initctl status", CMD);
    let header = out.lines().next().unwrap_or("");
    assert!(
        header.split_whitespace().collect::<Vec<_>>()
            == ["NAME", "STATE", "PID", "RESTARTS", "MEMORY", "UPTIME"],
        "header: {header:?}"
    );
    assert!(out.lines().all(|l| l.len() <= 80), "wider than 80:\n{out}");

    // One unit in detail: last exit, reason and its log, stderr included.
    let (out, rc) = vm.sh_rc("initctl status bad", CMD);
    assert_eq!(rc, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("bad ") && l.contains(" failed ")),
        "{out}"
    );
    assert!(lines.contains(&"last exit: code 3"), "{out}");
    assert!(lines.contains(&"oom kills: 0"), "{out}");
    let reason = lines
        .iter()
        .find_map(|l| l.strip_prefix("reason: "))
        .unwrap_or_else(|| panic!("no reason line:\n{out}"));
    assert!(
        reason.contains('3'),
        "reason does not tell the exit: {reason:?}"
    );
    let log_at = lines.iter().position(|l| *l == "log:").expect("log: line");
    let log = &lines[log_at + 1..];
    assert!(log.contains(&"bad: about to fail"), "{out}");
    assert!(
        log.contains(&"bad: on stderr"),
        "stderr not captured:\n{out}"
    );

    let (out, rc) = vm.sh_rc("initctl status flappy", CMD);
    assert_eq!(rc, 0);
    assert!(out.contains("\nlast exit: code 1\n"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("reason: ") && l.contains("restart")),
        "backoff reason should say when it restarts:\n{out}"
    );
    assert!(out.contains("flappy: down"), "{out}");

    // The log tail is the last lines, not the first.
    std::thread::sleep(Duration::from_secs(2));
    let (out, _) = vm.sh_rc("initctl status ticker", CMD);
    let log_at = out.lines().position(|l| l == "log:").expect("log:");
    let ticks: Vec<u32> = out
        .lines()
        .skip(log_at + 1)
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert!(!ticks.is_empty(), "{out}");
    assert!(ticks.len() <= 10, "more than 10 log lines:\n{out}");
    assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "{out}");
    assert!(out.contains("\nlast exit: none\n"), "{out}");

    // --json: the table parses and agrees with the text table.
    let (out, rc) = vm.sh_rc("initctl status --json", CMD);
    assert_eq!(rc, 0);
    let j = initctl_json::parse(&out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    let arr = j.arr().expect("an array");
    assert_eq!(arr.len(), SETTLED.len(), "{out}");
    for (n, s) in SETTLED {
        let u = arr
            .iter()
            .find(|u| u.get("name").str() == Some(*n))
            .unwrap_or_else(|| panic!("{n} missing from --json:\n{out}"));
        assert_eq!(u.get("state").str(), Some(*s), "{n}: {out}");
    }
    let t = arr
        .iter()
        .find(|u| u.get("name").str() == Some("ticker"))
        .unwrap();
    assert_eq!(t.get("pid").num(), Some(f64::from(ticker)));
    assert!(t.get("uptime_ms").num().unwrap() >= 1000.0, "{out}");
    assert!(t.get("memory_current").num().unwrap() > 0.0, "{out}");
    let q = arr
        .iter()
        .find(|u| u.get("name").str() == Some("quiet"))
        .unwrap();
    assert_eq!(q.get("pid"), &Json::Null, "stopped unit has a pid: {out}");

    // --json for one unit, option after or before the name.
    for cmd in ["initctl status bad --json", "initctl status --json bad"] {
        let (out, rc) = vm.sh_rc(cmd, CMD);
        assert_eq!(rc, 0);
        let d = initctl_json::parse(&out).unwrap_or_else(|e| panic!("{cmd}: {e}:\n{out}"));
        assert_eq!(d.get("name").str(), Some("bad"));
        assert_eq!(d.get("state").str(), Some("failed"));
        assert_eq!(d.get("last_exit").get("code").num(), Some(3.0), "{out}");
        assert_eq!(d.get("oom_kills").num(), Some(0.0));
        let log = d.get("log").str().expect("log string");
        assert!(log.contains("bad: about to fail\n"), "{out}");
        assert!(log.contains("bad: on stderr"), "{out}");
    }

    // Exit statuses: 0 ok, 1 failure (unknown unit), 2 usage.
    for (cmd, want, says) in [
        ("initctl status nope", 1, "nope"),
        ("initctl stop nope", 1, "nope"),
        ("initctl start nope", 1, "nope"),
        ("initctl restart nope", 1, "nope"),
        ("initctl log nope", 1, "nope"),
        ("initctl cat nope", 1, "nope"),
        ("initctl frobnicate", 2, "usage: initctl"),
        ("initctl", 2, "usage: initctl"),
        ("initctl start", 2, "usage: initctl"),
        ("initctl stop a b", 2, "usage: initctl"),
        ("initctl status --yaml", 2, "usage: initctl"),
        ("initctl status Bad/Name", 2, "usage: initctl"),
        ("initctl reload now", 2, "usage: initctl"),
        ("initctl status ticker", 0, "ticker"),
        ("initctl --help", 0, "usage: initctl"),
    ] {
        let (out, rc, _) = timed(&mut vm, cmd, CMD);
        assert_eq!(rc, want, "`{cmd}` exit status; output:\n{out}");
        assert!(
            out.contains(says),
            "`{cmd}` does not mention {says:?}:\n{out}"
        );
    }
    // Nothing above changed anything.
    let again = settle(&mut vm);
    assert_eq!(again["ticker"].pid, Some(ticker));
}

#[test]
fn initctl_poweroff_stops_units_then_ends_the_vm() {
    let mut vm = boot("ctlstatus");
    settle(&mut vm);
    let before = vm.output().len();
    vm.send("initctl poweroff\n");
    let st = vm
        .wait_exit(secs(60))
        .expect("VM still running 60 s after initctl poweroff");
    assert!(st.success(), "qemu exit {st:?}");
    let out = vm.output();
    let out = &out[before..];
    assert!(!out.contains("Kernel panic"), "kernel panicked at shutdown");
    assert!(!out.contains("Attempted to kill init"));
    // Every unit that ran is stopped before the power goes.
    for n in ["ticker", "slow"] {
        assert_in_order(
            out,
            &[&format!("[ STOP ] {n}: stopped"), "reboot: Power down"],
        );
    }
}
