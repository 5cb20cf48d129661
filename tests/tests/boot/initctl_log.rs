//! `initctl log NAME` and `initctl log NAME -f`, typed on the console.
//! Fixture: tests/units/ctlstatus/ (ticker prints `tick N` every second).

use crate::initctl_common::*;
use crate::*;

fn ticks(s: &str) -> Vec<u32> {
    s.lines()
        .filter_map(|l| l.trim().strip_prefix("tick ")?.parse().ok())
        .collect()
}

#[test]
fn initctl_log_shows_output_and_follows_new_lines() {
    let mut vm = boot("ctlstatus");
    vm.wait_states(
        &[
            ("ticker", &["running"]),
            ("bad", &["failed"]),
            ("once", &["exited"]),
        ],
        secs(30),
    );
    std::thread::sleep(Duration::from_secs(2));

    let (out, rc) = vm.sh_rc("initctl log ticker", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.starts_with("ticker: hello\n"),
        "whole log from the start:\n{out}"
    );
    let t = ticks(&out);
    assert!(t.len() >= 2, "{out}");
    assert_eq!(t[0], 0);
    assert!(
        t.windows(2).all(|w| w[1] == w[0] + 1),
        "lines lost or reordered:\n{out}"
    );
    let (out, rc) = vm.sh_rc("initctl log bad", CMD);
    assert_eq!(rc, 0);
    assert!(out.contains("bad: about to fail\n"), "{out}");
    assert!(out.contains("bad: on stderr\n"), "{out}");
    // A oneshot that is done still has its output.
    let (out, rc) = vm.sh_rc("initctl log once", CMD);
    assert_eq!((out.as_str(), rc), ("once: done\n", 0));
    // The console shell's output is not captured.
    let (out, rc) = vm.sh_rc("initctl log sh 2>&1", CMD);
    assert_eq!(rc, 1, "{out}");

    // -f in the background, into a file, as an operator would.
    let (out, _) = vm.sh_rc(
        "initctl log ticker -f > /tmp/follow.out 2>&1 & echo follower=$!",
        CMD,
    );
    let follower: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("follower="))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no follower pid: {out:?}"));
    std::thread::sleep(Duration::from_millis(1500));
    let first = vm.sh("cat /tmp/follow.out", CMD);
    let t1 = ticks(&first);
    assert!(
        first.starts_with("ticker: hello\n"),
        "-f starts with the backlog:\n{first}"
    );
    assert!(!t1.is_empty(), "{first}");
    std::thread::sleep(Duration::from_secs(3));
    let second = vm.sh("cat /tmp/follow.out", CMD);
    let t2 = ticks(&second);
    assert!(
        second.starts_with(&first),
        "the followed file was rewritten, not appended:\n{first}\n---\n{second}"
    );
    assert!(
        t2.len() >= t1.len() + 2,
        "-f did not follow: {} ticks, 3 s later {}",
        t1.len(),
        t2.len()
    );
    assert!(t2.windows(2).all(|w| w[1] == w[0] + 1), "{second}");
    // What -f printed matches what the ring holds.
    let now = vm.sh("initctl log ticker", CMD);
    let last = *t2.last().unwrap();
    assert!(ticks(&now).contains(&last));

    // Killing the follower ends it, and the file stops growing.
    assert!(alive(&mut vm, follower));
    vm.sh(
        &format!("kill {follower}; wait {follower} 2>/dev/null"),
        CMD,
    );
    assert!(!alive(&mut vm, follower), "initctl log -f survived kill");
    let n1 = vm.sh("wc -l < /tmp/follow.out", CMD);
    std::thread::sleep(Duration::from_millis(2500));
    let n2 = vm.sh("wc -l < /tmp/follow.out", CMD);
    assert_eq!(n1.trim(), n2.trim(), "the file still grows after kill");
    // init let go of the follower: new clients are served.
    let (out, rc) = vm.sh_rc("initctl status ticker", CMD);
    assert_eq!(rc, 0, "{out}");

    // -f on a unit that stops: the follower ends by itself.
    let (out, _) = vm.sh_rc(
        "initctl log ticker -f > /tmp/follow2.out 2>&1 & echo follower=$!",
        CMD,
    );
    let f2: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("follower="))
        .and_then(|p| p.trim().parse().ok())
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (out, rc) = vm.sh_rc("initctl stop ticker", CMD);
    assert_eq!(rc, 0, "{out}");
    // Not asserted: whether -f ends when its unit stops (the contract does
    // not say); it must at least not keep init from serving others.
    let (_, rc) = vm.sh_rc("initctl status", CMD);
    assert_eq!(rc, 0);
    vm.sh(
        &format!("kill {f2} 2>/dev/null; wait {f2} 2>/dev/null"),
        CMD,
    );
    // A reader that goes away ends -f though the unit writes nothing more
    // (`once` is done): it used to wait in its read for ever.
    let (out, _) = vm.sh_rc(
        "initctl log once -f | head -1 > /tmp/head.out & sleep 2; cat /tmp/head.out; ps | grep -c '[i]nitctl log once'",
        CMD,
    );
    assert_eq!(out, "once: done\n0\n", "-f outlived its reader");
    // The stopped unit's log is still there to read.
    let (out, rc) = vm.sh_rc("initctl log ticker", CMD);
    assert_eq!(rc, 0);
    assert!(out.starts_with("ticker: hello\n"), "{out}");
}
