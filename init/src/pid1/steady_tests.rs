//! The loop's steady state allocates nothing, on the host: a real PID 1
//! (its tables, epoll set and spawns) driven by wake-ups as `wait_once`
//! makes them, counted by this thread's allocations. The boot test
//! `alloc` and the soak watch crash loops in a VM; these add the paths
//! where a start itself keeps failing.

use super::*;

fn looping(units: &[(&str, &str)]) -> Pid1 {
    let mut p = crate::pid1::tests::pid1_with(units);
    p.epoll = Some(epoll::create(epoll::CreateFlags::CLOEXEC).unwrap());
    p
}

/// One wake-up: what epoll has within 5 ms and the timer's tick; its
/// allocations. No reap: a test has no signalfd, and draining the
/// process's children would take other tests' (these units' starts fail
/// before their run, on their status pipes; their zombies are left).
fn turn(p: &mut Pid1) -> u64 {
    let ts = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 5_000_000,
    };
    let epoll = p.epoll.as_ref().unwrap();
    let mut tokens = ready(epoll, Some(&ts)).unwrap_or_default().to_vec();
    tokens.push((TOKEN_TIMER, false));
    p.handle(&tokens)
}

/// `turns` wake-ups after `warm` (a first failure's text is kept, a ring
/// made): the restarts they saw and what they allocated.
fn steady(p: &mut Pid1, warm: usize, turns: usize) -> (u32, u64) {
    p.feed(Event::Boot);
    for _ in 0..warm {
        turn(p);
    }
    let restarts = |p: &Pid1| p.sup.slots().map(|s| s.rt.restarts).sum::<u32>();
    let r0 = restarts(p);
    let allocated = (0..turns).map(|_| turn(p)).sum();
    (restarts(p) - r0, allocated)
}

/// A unit whose program is missing: every start fails in its exec, with
/// an errno whose text goes into the unit's last error and the console
/// line. Retried at once (no backoff asked: `restart_delay_max = 0ms`),
/// for ever, with no allocation.
#[test]
fn a_start_failing_with_an_errno_allocates_nothing_again() {
    let unit = "exec = /nonexistent/wren-test\nnamespaces = none\nrestart_delay = 0ms\n\
                restart_delay_max = 0ms\n";
    let mut p = looping(&[("nope", unit)]);
    let (restarts, allocated) = steady(&mut p, 10, 150);
    assert!(restarts >= 10, "{restarts} restarts");
    assert!(
        p.edges[0].last_error().contains("(os error 2)"),
        "{}",
        p.edges[0].last_error()
    );
    assert_eq!(allocated, 0, "{restarts} restarts");
}
