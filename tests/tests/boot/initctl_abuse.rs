//! Protocol robustness: hostile clients on /run/wren/control (garbage,
//! malformed and truncated frames, a 4-GiB length prefix, a wrong protocol
//! version, a client that never speaks, one that dribbles) while an
//! operator uses `initctl`. Hostile clients: `wren-testkit ctlabuse`.
//! Fixtures: tests/units/ctlabuse/.

use crate::initctl_common::*;
use crate::*;
use std::collections::HashMap;

/// PID 1 drops a client that has not sent its request after this long
/// (control::CLIENT_TIMEOUT_MS).
const CLIENT_TIMEOUT_MS: u64 = 5_000;

#[derive(Debug)]
struct Outcome {
    reply: usize,
    eof: bool,
    ms: u64,
    text: String,
}

fn outcomes(out: &str) -> HashMap<String, Outcome> {
    let mut m = HashMap::new();
    for l in out.lines() {
        let Some(rest) = l.strip_prefix("ctlabuse ") else {
            continue;
        };
        let Some((kind, rest)) = rest.split_once(": ") else {
            continue;
        };
        let field = |k: &str| -> Option<&str> {
            rest.split(' ')
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
        };
        let (Some(reply), Some(eof), Some(ms)) = (field("reply"), field("eof"), field("ms")) else {
            continue;
        };
        m.insert(
            kind.to_string(),
            Outcome {
                reply: reply.parse().unwrap(),
                eof: eof == "yes",
                ms: ms.parse().unwrap(),
                text: rest
                    .split_once("text=")
                    .map(|x| x.1)
                    .unwrap_or("")
                    .to_string(),
            },
        );
    }
    m
}

#[test]
fn initctl_serves_operators_while_hostile_clients_are_connected() {
    let mut vm = boot("ctlabuse");
    let st = vm.wait_states(&[("svc", &["running"])], secs(30));
    let svc0 = st["svc"].pid.unwrap();
    let (_, rc, quiet) = timed(&mut vm, "initctl status", CMD);
    assert_eq!(rc, 0);

    vm.sh(
        "wren-testkit ctlabuse /run/wren/control > /tmp/abuse.out 2>&1 & true",
        CMD,
    );
    let deadline = Instant::now() + secs(10);
    while !vm
        .sh("cat /tmp/abuse.out", CMD)
        .contains("ctlabuse: in flight")
    {
        assert!(
            Instant::now() < deadline,
            "ctlabuse never got its clients connected"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The silent and dribbling clients hold their slots for 5 s and the
    // truncated ones for 3 s: the operator's commands run meanwhile, and
    // are answered promptly, not after those clients are dropped.
    let mut slowest = 0f64;
    for cmd in [
        "initctl status",
        "initctl status svc",
        "initctl status --json",
    ] {
        let (out, rc, took) = timed(&mut vm, cmd, CMD);
        assert_eq!(
            rc, 0,
            "`{cmd}` failed while hostile clients were connected:\n{out}"
        );
        assert!(out.contains("svc"), "{out}");
        slowest = slowest.max(took);
    }
    let (out, rc, took) = timed(&mut vm, "initctl restart svc", CMD);
    assert_eq!(rc, 0, "{out}");
    slowest = slowest.max(took);
    let still = vm.sh("cat /tmp/abuse.out", CMD);
    assert!(
        !still.contains("ctlabuse silent:"),
        "the silent client was already dropped: the commands above did not overlap it\n{still}"
    );
    assert!(
        slowest < 2.5,
        "initctl took {slowest:.2} s with hostile clients connected ({quiet:.2} s without)"
    );

    // Every hostile client got an error or was hung up on, in time.
    let deadline = Instant::now() + secs(30);
    let out = loop {
        let out = vm.sh("cat /tmp/abuse.out", CMD);
        if out.contains("ctlabuse: done") {
            break out;
        }
        assert!(Instant::now() < deadline, "ctlabuse did not finish:\n{out}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let o = outcomes(&out);
    for kind in [
        "garbage",
        "malformed",
        "version",
        "huge",
        "truncated",
        "silent",
        "slow",
    ] {
        let r = o
            .get(kind)
            .unwrap_or_else(|| panic!("no result for {kind}:\n{out}"));
        assert!(
            r.eof,
            "{kind}: init never closed the connection: {r:?}\n{out}"
        );
    }
    for kind in ["garbage", "malformed", "version", "huge"] {
        let r = &o[kind];
        assert!(r.reply > 0, "{kind}: no error reply: {r:?}");
        assert!(r.ms < 2000, "{kind}: answered only after {} ms", r.ms);
    }
    // The error replies say what was wrong.
    assert!(o["huge"].text.contains("4294967295"), "{:?}", o["huge"]);
    assert!(o["garbage"].text.contains("exceeds"), "{:?}", o["garbage"]);
    assert!(o["version"].text.contains("999"), "{:?}", o["version"]);
    assert!(
        o["malformed"].text.contains("malformed"),
        "{:?}",
        o["malformed"]
    );
    assert!(
        o["truncated"].text.contains("truncated"),
        "{:?}",
        o["truncated"]
    );
    // Silent and dribbling clients are dropped after the client timeout,
    // not before and not much later.
    for kind in ["silent", "slow"] {
        let ms = o[kind].ms;
        assert!(
            (CLIENT_TIMEOUT_MS - 500..CLIENT_TIMEOUT_MS + 3000).contains(&ms),
            "{kind}: dropped after {ms} ms (timeout {CLIENT_TIMEOUT_MS} ms)"
        );
    }

    // Afterwards: PID 1 alive and serving, state intact.
    assert!(!vm.output().contains("Kernel panic"), "PID 1 died");
    let st = vm.wait_states(&[("svc", &["running"]), ("sh", &["running"])], secs(5));
    assert_ne!(
        st["svc"].pid,
        Some(svc0),
        "restart during the abuse did not happen"
    );
    let (out, rc) = vm.sh_rc("initctl restart svc", CMD);
    assert_eq!(rc, 0, "{out}");
    // A burst of hostile clients again, more than init's client slots:
    // the operator is served once they are gone.
    vm.sh(
        "for i in 1 2 3; do wren-testkit ctlabuse /run/wren/control > /tmp/abuse$i.out 2>&1 & done; wait",
        secs(60),
    );
    for i in 1..=3 {
        let out = vm.sh(&format!("cat /tmp/abuse{i}.out"), CMD);
        assert!(out.contains("ctlabuse: done"), "{out}");
        let o = outcomes(&out);
        assert!(o.values().all(|r| r.eof), "a connection left open:\n{out}");
    }
    let (out, rc, took) = timed(&mut vm, "initctl status", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(took < 2.5, "status took {took:.2} s after the burst");
    let (out, rc) = vm.sh_rc("initctl restart svc", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(!vm.output().contains("Kernel panic"), "PID 1 died");
}

/// Highest `chatter N` line number in `s`.
fn last_chatter(s: &str) -> Option<u64> {
    s.lines()
        .filter_map(|l| {
            l.strip_prefix("chatter ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .max()
}

/// A `log -f` client that stops reading while its unit writes 100 KB/s:
/// init neither blocks on it nor stops draining the unit's output.
/// Fixtures: tests/units/ctlstall/.
#[test]
fn initctl_serves_operators_while_a_log_follower_stalls() {
    let mut vm = boot("ctlstall");
    vm.wait_states(&[("chatty", &["running"])], secs(30));
    vm.sh(
        "wren-testkit ctlstall /run/wren/control chatty 8 > /tmp/stall.out 2>&1 & true",
        CMD,
    );
    let deadline = Instant::now() + secs(10);
    while !vm
        .sh("cat /tmp/stall.out", CMD)
        .contains("ctlstall: stalled")
    {
        assert!(Instant::now() < deadline, "ctlstall never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Long enough for the stalled socket's buffer to fill up.
    std::thread::sleep(Duration::from_secs(3));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (out, rc, took) = timed(&mut vm, "initctl status", CMD);
        assert_eq!(rc, 0, "{out}");
        assert!(
            took < 2.5,
            "status took {took:.2} s while a follower stalled"
        );
        let (out, rc, took) = timed(&mut vm, "initctl log chatty | tail -n 3", CMD);
        assert_eq!(rc, 0, "{out}");
        assert!(took < 2.5, "log took {took:.2} s while a follower stalled");
        seen.push(last_chatter(&out).unwrap_or_else(|| panic!("no chatter in the log:\n{out}")));
        std::thread::sleep(Duration::from_millis(500));
    }
    // The unit's output is still drained into the ring: it keeps writing.
    assert!(
        seen.windows(2).all(|w| w[1] > w[0] + 100),
        "the chatty unit's output stopped moving: {seen:?}"
    );
    let deadline = Instant::now() + secs(20);
    let out = loop {
        let out = vm.sh("cat /tmp/stall.out", CMD);
        if out.contains("ctlstall: reply=") {
            break out;
        }
        assert!(Instant::now() < deadline, "ctlstall did not finish:\n{out}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        !out.contains("reply=0 "),
        "the follower got nothing at all:\n{out}"
    );
    // Afterwards: alive and serving; a fresh follower follows.
    assert!(!vm.output().contains("Kernel panic"), "PID 1 died");
    let out = vm.sh(
        "initctl log chatty -f > /tmp/f.out 2>&1 & f=$!; sleep 2; kill $f; wait $f; tail -n 1 /tmp/f.out",
        CMD,
    );
    let n = last_chatter(&out).unwrap_or_else(|| panic!("fresh follower got nothing:\n{out}"));
    assert!(
        n > *seen.last().unwrap(),
        "fresh follower is behind: {n} {seen:?}"
    );
    let (out, rc) = vm.sh_rc("initctl restart chatty", CMD);
    assert_eq!(rc, 0, "{out}");
}
