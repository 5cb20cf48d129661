use super::trampoline::TRAMPOLINE_BUSY;
use super::*;
use crate::sys::exec::CStrings;
use core::sync::atomic::AtomicU32;
use core::time::Duration;
use rustix::fd::{AsFd, AsRawFd};

fn slot() -> Slot {
    reserve().unwrap();
    claim_within(Duration::from_secs(10)).expect("a free slot")
}

use crate::testutil::wait_exit as wait;

/// A child on slot `s` that waits until the returned pipe end is written
/// to (or closed), then exits 0: a child still before its exec.
fn spawn_gated(s: Slot) -> (u32, rustix::fd::OwnedFd) {
    let (gate_r, gate_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let gate = gate_r.as_fd();
    let pid = s
        .spawn(Namespaces::NONE, None, &(), move |_, _| {
            let mut b = [0u8; 1];
            let _ = rustix::io::read(gate, &mut b);
            crate::sys::clone::exit(0)
        })
        .unwrap();
    (pid, gate_w)
}

fn read_all(fd: rustix::fd::OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut out).unwrap();
    out
}

/// A child on a slot execs (its output arrives), and its exec gives the
/// slot back: more children than slots run one after another, each on a
/// slot whose word the kernel cleared.
#[test]
fn children_on_slots_exec_and_give_their_slot_back() {
    let _g = test_lock();
    for round in 0..SLOTS * 2 + 1 {
        let s = slot();
        let i = s.i;
        let mut argv: CStrings<64, 4> = CStrings::new();
        argv.push(&["/bin/echo"]).unwrap();
        argv.push(&["ok-", &round.to_string()]).unwrap();
        let env: CStrings<8, 1> = CStrings::new();
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let out = w.as_fd();
        let pid = s
            .spawn(Namespaces::NONE, None, &(), move |_, _| {
                if rustix::stdio::dup2_stdout(out).is_ok() {
                    let _ = crate::sys::exec::execve(&argv, &env);
                }
                crate::sys::clone::exit(126)
            })
            .unwrap();
        drop(w);
        assert_eq!(read_all(r), format!("ok-{round}\n").into_bytes());
        assert_eq!(wait(pid), Some(0));
        let st = POOL.get(i).unwrap();
        assert_eq!(st.a.load(Ordering::Acquire), 0, "round {round}");
        assert_eq!(st.pid.load(Ordering::Acquire), pid);
    }
}

static SEEN: AtomicU32 = AtomicU32::new(0);

/// Starts a child on a slot that, once let through `gate`, writes what it
/// captured to `out`; this frame is gone by then.
#[inline(never)]
fn start_with_secret(gate: BorrowedFd<'_>, out: BorrowedFd<'_>) -> u32 {
    let secret: [u8; 200] = core::array::from_fn(|i| (i as u8) ^ 0x5a);
    let captured: [u8; 8] = *b"captured";
    slot()
        .spawn(Namespaces::NONE, None, &secret, move |secret, _| {
            let mut b = [0u8; 1];
            let _ = rustix::io::read(gate, &mut b);
            let _ = rustix::io::write(out, secret);
            let _ = rustix::io::write(out, &captured);
            // Shared memory: PID 1 sees this store (a fork would not).
            SEEN.store(
                rustix::process::getpid().as_raw_nonzero().get() as u32,
                Ordering::SeqCst,
            );
            crate::sys::clone::exit(0)
        })
        .unwrap()
}

/// Overwrites the stack where `start_with_secret`'s frame was.
#[inline(never)]
fn scribble() -> u8 {
    let mut junk = [0xffu8; 8192];
    core::hint::black_box(&mut junk);
    junk.iter().fold(0, |a, b| a ^ b)
}

#[test]
fn a_child_reads_what_was_moved_into_its_slot_after_the_callers_frame_is_gone() {
    let _g = test_lock();
    let (gate_r, gate_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let pid = start_with_secret(gate_r.as_fd(), w.as_fd());
    core::hint::black_box(scribble());
    drop(w);
    drop(gate_r);
    rustix::io::write(&gate_w, b"g").unwrap();
    let mut expected: Vec<u8> = (0..200).map(|i| (i as u8) ^ 0x5a).collect();
    expected.extend_from_slice(b"captured");
    assert_eq!(read_all(r), expected);
    assert_eq!(wait(pid), Some(0));
    assert_eq!(SEEN.load(Ordering::SeqCst), pid);
}

/// A reaper's service runs on the slot's second stack: the child on the
/// slot waits for it and passes its code on; word `b` is clear after.
#[test]
fn a_child_on_a_slot_forks_its_service_on_the_second_stack() {
    let _g = test_lock();
    let s = slot();
    let i = s.i;
    let mut argv: CStrings<64, 4> = CStrings::new();
    argv.push(&["/bin/sh"]).unwrap();
    argv.push(&["-c"]).unwrap();
    argv.push(&["exit 3"]).unwrap();
    let env: CStrings<8, 1> = CStrings::new();
    let pid = s
        .spawn(Namespaces::NONE, None, &(), move |_, on| {
            let (argv, env) = (&argv, &env);
            let code = match on.vfork(|| {
                let _ = crate::sys::exec::execve(argv, env);
                crate::sys::clone::exit(126)
            }) {
                Ok(svc) => wait(svc).unwrap_or(125),
                Err(_) => 124,
            };
            crate::sys::clone::exit(code)
        })
        .unwrap();
    assert_eq!(wait(pid), Some(3));
    let st = POOL.get(i).unwrap();
    assert_eq!(st.b.load(Ordering::Acquire), 0);
    assert_eq!(st.a.load(Ordering::Acquire), 0);
}

/// Started by a SCHED_BATCH caller (PID 1), the child on stack A (a
/// namespace's reaper) keeps SCHED_BATCH (3), so that its service's exec
/// waking it does not preempt that exec; the service on stack B gets
/// SCHED_OTHER (0) back.
#[test]
fn the_child_on_a_slot_keeps_the_batch_policy_its_service_does_not() {
    std::thread::spawn(|| {
        let _g = test_lock();
        crate::sys::sched::batch().unwrap();
        let mut argv: CStrings<64, 4> = CStrings::new();
        argv.push(&["/bin/cat"]).unwrap();
        argv.push(&["/proc/self/sched"]).unwrap();
        let env: CStrings<8, 1> = CStrings::new();
        let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let ((own_r, own_w), (svc_r, svc_w)) = (pipe(), pipe());
        let (own, svc) = (own_w.as_fd(), svc_w.as_fd());
        let pid = slot()
            .spawn(Namespaces::NONE, None, &(), move |_, on| {
                let (argv, env) = (&argv, &env);
                let service = on.vfork(|| {
                    if rustix::stdio::dup2_stdout(svc).is_ok() {
                        let _ = crate::sys::exec::execve(argv, env);
                    }
                    crate::sys::clone::exit(126)
                });
                if service.is_ok() && rustix::stdio::dup2_stdout(own).is_ok() {
                    let _ = crate::sys::exec::execve(argv, env);
                }
                crate::sys::clone::exit(125)
            })
            .unwrap();
        drop((own_w, svc_w));
        let policy = |fd| crate::sys::sched::policy_of(&String::from_utf8_lossy(&read_all(fd)));
        assert_eq!(policy(own_r), "3", "the child on stack A");
        assert_eq!(policy(svc_r), "0", "its service on stack B");
        assert_eq!(wait(pid), Some(0));
    })
    .join()
    .unwrap();
}

/// Every slot claimed: no more; one given back (unused): claimable again.
#[test]
fn claims_stop_at_the_pool_size_and_unused_claims_go_back() {
    let _g = test_lock();
    reserve().unwrap();
    let held: Vec<Slot> = (0..SLOTS)
        .map(|_| claim_within(Duration::from_secs(10)).expect("a free slot"))
        .collect();
    assert!(claim().is_none());
    drop(held);
    assert!(claim().is_some());
}

/// A free slot's pages are given back; a busy one's are left alone.
#[test]
fn release_gives_back_only_free_slots() {
    let _g = test_lock();
    let s = slot();
    let i = s.i;
    let (pid, gate_w) = spawn_gated(s);
    let st = POOL.get(i).unwrap();
    // Busy: kept, and a recheck asked for, however often PID 1 wakes for
    // other events; only sleeps that time out use the rechecks up.
    for _ in 0..2 * RECHECKS {
        assert!(release_idle().is_some());
    }
    assert!(st.dirty.load(Ordering::Relaxed), "released while busy");
    for _ in 0..RECHECKS {
        assert!(release_idle().is_some());
        recheck_timed_out();
    }
    assert!(release_idle().is_none(), "rechecks for ever");
    rustix::io::write(&gate_w, b"g").unwrap();
    assert_eq!(wait(pid), Some(0));
    release_idle();
    assert!(!st.dirty.load(Ordering::Relaxed));
}

/// A reload's wait: a child still before its exec after the patience is
/// killed, after which no slot holds PID 1's data.
#[test]
fn quiesce_kills_a_child_stuck_before_its_exec_then_reports_clear() {
    let _g = test_lock();
    let s = slot();
    let (pid, gate_w) = spawn_gated(s);
    let patience = Duration::from_millis(1500);
    let t = std::time::Instant::now();
    let mut killed = vec![];
    assert!(quiesce(patience, &mut |p| killed.push(p)));
    assert_eq!(killed, [pid]);
    assert!(
        t.elapsed() >= patience,
        "killed before the patience ran out"
    );
    let st = crate::testutil::wait_status(pid).unwrap();
    assert_eq!(st.terminating_signal(), Some(libc::SIGKILL));
    drop(gate_w);
}

/// A child killed before its exec leaves PID 1's memory, and the wait
/// for it says so at once; one not killed is waited for no longer than
/// the bound.
#[test]
fn the_wait_for_a_killed_child_to_leave_is_bounded() {
    let _g = test_lock();
    let (pid, gate_w) = spawn_gated(slot());
    let t = std::time::Instant::now();
    assert!(!wait_left(pid, Duration::from_millis(100)), "still reading");
    assert!(t.elapsed() >= Duration::from_millis(100));
    let p = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(p, rustix::process::Signal::KILL).unwrap();
    assert!(wait_left(pid, Duration::from_secs(5)));
    assert!(!reading(pid));
    let st = crate::testutil::wait_status(pid).unwrap();
    assert_eq!(st.terminating_signal(), Some(libc::SIGKILL));
    assert!(wait_left(4_000_000, Duration::ZERO), "on no slot");
    drop(gate_w);
}

/// What a child on a slot finds open of two numbers: bit 0 `low`, bit 1
/// `high`, as its exit code.
fn open_in_child(s: Slot, low: i32, high: i32) -> Option<i32> {
    let pid = s
        .spawn(Namespaces::NONE, None, &(), move |_, _| {
            // The child's own table (/proc/self is its pid), without
            // allocating.
            let open = |fd: i32| {
                let path: heapless::String<32> =
                    crate::proto::formatted(format_args!("/proc/self/fd/{fd}"));
                rustix::fs::stat(path.as_str()).is_ok()
            };
            crate::sys::clone::exit(i32::from(open(low)) | i32::from(open(high)) << 1)
        })
        .unwrap();
    // Its caller's child either way (through the trampoline, once that
    // thread is gone), which gives the slot back at its exit.
    wait(pid)
}

/// With `low_fds` a child on a slot gets its caller's fds below LOW_FDS
/// only (the trampoline's small table); without, all of them.
#[test]
fn a_child_with_low_fds_gets_only_the_fds_below_low_fds() {
    let _g = test_lock();
    let (r, _w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let low = rustix::io::fcntl_dupfd_cloexec(&r, 3).unwrap();
    let high = crate::sys::fd::raise(rustix::io::fcntl_dupfd_cloexec(&r, 10).unwrap());
    let (l, h) = (low.as_raw_fd(), high.as_raw_fd());
    assert!(l < LOW_FDS as i32 && h >= LOW_FDS as i32, "{l} {h}");
    let s = slot();
    let i = s.i;
    assert_eq!(open_in_child(s.low_fds(), l, h), Some(0b01));
    assert_eq!(POOL.get(i).unwrap().a.load(Ordering::Acquire), 0);
    assert_eq!(open_in_child(slot(), l, h), Some(0b11));
    // And the trampoline's own stack is free again.
    assert_eq!(TRAMPOLINE_BUSY.load(Ordering::Acquire), 0);
    // The caller's own table is untouched by the child's.
    assert!(rustix::io::fcntl_getfd(&low).is_ok() && rustix::io::fcntl_getfd(&high).is_ok());
}

/// A child started through the trampoline that asks for a signal at its
/// parent's death does not get it when the trampoline, which cloned it,
/// exits: it runs its start only once that thread is gone, even when the
/// trampoline lingers (2 ms: well inside the child's bound, and long
/// after the child would have asked for the signal without the wait).
#[test]
fn a_trampolined_child_is_not_sent_its_parent_death_signal_by_the_trampolines_exit() {
    let _g = test_lock();
    super::trampoline::LINGER_NS.store(2_000_000, Ordering::Release);
    let before = trampolined();
    let pid = slot().low_fds().spawn(Namespaces::NONE, None, &(), |_, _| {
        let _ =
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
        let _ = rustix::thread::nanosleep(&rustix::thread::Timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        });
        crate::sys::clone::exit(7)
    });
    super::trampoline::LINGER_NS.store(0, Ordering::Release);
    let pid = pid.unwrap();
    assert_eq!(
        trampolined(),
        before + 1,
        "not started through the trampoline"
    );
    let st = crate::testutil::wait_status(pid).unwrap();
    assert_eq!(
        st.terminating_signal(),
        None,
        "killed by its parent death signal"
    );
    assert_eq!(st.exit_status(), Some(7));
}
