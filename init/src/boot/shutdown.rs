//! The end of the world: kill what is left, sync, unmount, reboot(2).
//!
//! Runs after the supervisor has stopped every unit (docs/boot.md, "Shutdown"):
//! what remains are processes that escaped their unit's cgroup kill or were
//! never in one. Every step is logged; none can make PID 1 exit, since PID
//! 1 exiting panics the kernel: if reboot(2) itself fails, PID 1 sleeps for
//! ever.

use crate::sys::clock::now_ms;
use crate::sys::errno::Os;
use std::path::Path;
use std::time::Duration;

use crate::vocab::ShutdownKind;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::WaitOptions;
use rustix::system::RebootCommand;

use crate::boot::mounts;
use crate::watchdog::Watchdog;

/// The reboot(2) command for a shutdown kind (RB_AUTOBOOT, RB_HALT_SYSTEM,
/// RB_POWER_OFF).
pub fn command(kind: ShutdownKind) -> RebootCommand {
    match kind {
        ShutdownKind::Reboot => RebootCommand::Restart,
        ShutdownKind::Halt => RebootCommand::Halt,
        ShutdownKind::Poweroff => RebootCommand::PowerOff,
    }
}

/// How long after SIGKILL to wait for the last processes. One stuck in
/// uninterruptible sleep may never go; shutdown continues without it.
pub const KILL_WAIT: Duration = Duration::from_secs(2);

/// Longest sleep between reaping passes. SIGCHLD normally wakes the wait
/// at once; this only bounds the cost of a lost wake-up (a SIGCHLD taken
/// by another thread, or no signalfd available).
const BACKSTOP: Duration = Duration::from_secs(1);

/// How long to sleep before the next reaping pass; None once past the
/// deadline (both on the monotonic clock, `sys::clock::now_ms`).
pub fn next_timeout(now: u64, deadline: u64) -> Option<Duration> {
    let left = deadline.checked_sub(now).filter(|&l| l > 0)?;
    Some(Duration::from_millis(left).min(BACKSTOP))
}

/// `limit` from now, on the monotonic clock, in whole milliseconds
/// rounded up (the wait is never shorter than `limit`).
fn deadline_in(limit: Duration) -> u64 {
    let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    now_ms().saturating_add(ms).saturating_add(1)
}

/// Outcome of `reap_until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reaped {
    /// Children reaped.
    pub count: u32,
    /// No child left (waitpid said ECHILD).
    pub all_gone: bool,
}

/// Reap every child that exits until none is left or `deadline` passes,
/// sleeping on SIGCHLD (through a signalfd, SIGCHLD being blocked as it is
/// in PID 1) in between rather than spinning, and calling `tick` (the
/// watchdog's feed) at least every `TICK`: a timeout of a second or two
/// must not reset the board in the middle of the shutdown's waits.
pub fn reap_until(deadline: u64, tick: &dyn Fn()) -> Reaped {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    // PID 1 blocks it already; blocking again is harmless and makes sure
    // the signalfd, not a default action, gets it.
    let _ = mask.thread_block();
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok();
    let mut count: u32 = 0;
    loop {
        // Drain before reaping: a child exiting after the pass below leaves
        // a fresh SIGCHLD that wakes the poll.
        if let Some(fd) = &sfd {
            while let Ok(Some(_)) = fd.read_signal() {}
        }
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, _))) => {
                    count = count.saturating_add(1);
                    // A closer's place freed: its pid is no longer its.
                    let _ = crate::sys::passed::reaped(pid.as_raw_nonzero().get().unsigned_abs());
                }
                Ok(None) => break,
                Err(Errno::CHILD) => {
                    return Reaped {
                        count,
                        all_gone: true,
                    }
                }
                Err(Errno::INTR) => continue,
                Err(e) => {
                    crate::warn!("shutdown: waitpid: {}", Os::from(e));
                    break;
                }
            }
        }
        let Some(timeout) = next_timeout(now_ms(), deadline) else {
            return Reaped {
                count,
                all_gone: false,
            };
        };
        tick();
        let timeout = timeout.min(TICK);
        match &sfd {
            Some(fd) => {
                let ts = Timespec {
                    tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(timeout.subsec_nanos()),
                };
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                // EINTR or an error: the loop re-checks the deadline.
                let _ = rustix::event::poll(&mut fds, Some(&ts));
            }
            None => crate::sys::clock::sleep(timeout.min(Duration::from_millis(100))),
        }
    }
}

/// Longest wait between two `tick`s of `reap_until`.
const TICK: Duration = Duration::from_millis(100);

/// Longest wait for sync(2) and the unmounts at the end of a shutdown.
pub const SYNC_LIMIT: Duration = Duration::from_secs(20);

/// Runs `f` in a child copy of PID 1 (same mounts, same everything) and
/// waits for it until `limit` has passed, feeding `watchdog` between
/// short sleeps; true when `f` returned in time. Without a child (clone3
/// failed), `f` does not run: false. A child that ended otherwise (killed
/// by the OOM killer, an abort in an allocation) did not finish `f`:
/// false too.
///
/// The child closes its copy of the watchdog's fd first: a child stuck in
/// sync(2) would otherwise keep the device open past PID 1's magic close,
/// and the driver stops its timer only at the last close, so a halt would
/// end in a reset.
pub fn bounded(limit: Duration, watchdog: Option<&Watchdog>, f: impl FnOnce()) -> bool {
    let mut f = Some(f);
    said(bounded_code(limit, watchdog, &mut || {
        if let Some(f) = f.take() {
            f();
        }
        0
    }))
}

/// Whether `bounded`'s child did its work; why not said.
fn said(ran: Result<i32, Unfinished>) -> bool {
    match ran {
        Ok(0) => true,
        Ok(_) => {
            crate::error!("shutdown: the child for sync and unmount died before it was done");
            false
        }
        Err(Unfinished::NoChild(e)) => {
            crate::error!(
                "shutdown: cannot fork for sync and unmount: {}",
                Os::from(e)
            );
            false
        }
        Err(Unfinished::Running(_)) => false,
    }
}

/// Why `bounded_code` has no exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Unfinished {
    /// clone3 failed: `f` did not run.
    NoChild(rustix::io::Errno),
    /// Still running at the limit, left to end on its own.
    Running(u32),
}

/// `bounded`, with what the child said: the exit code `f` gave (-1 when
/// it ended otherwise).
pub fn bounded_code(
    limit: Duration,
    watchdog: Option<&Watchdog>,
    f: &mut dyn FnMut() -> i32,
) -> Result<i32, Unfinished> {
    let pid = crate::sys::clone::clone_into(crate::unit::Namespaces::NONE, None, || {
        if let Some(w) = watchdog {
            w.close_in_copy();
        }
        crate::sys::clone::exit(f())
    })
    .map_err(Unfinished::NoChild)?;
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Err(Unfinished::NoChild(rustix::io::Errno::SRCH));
    };
    let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    let feed = || {
        if let Some(w) = watchdog {
            w.feed();
        }
    };
    match crate::sys::child::wait_pid_within(p, ms, &feed) {
        Some(Ok(st)) => Ok(st.code().unwrap_or(-1)),
        Some(Err(_)) => Ok(-1),
        None => Err(Unfinished::Running(pid)),
    }
}

/// The sync child's exit code when a file system could not be made
/// read-only (`mounts::unmount_all`): synced, but the kernel's forced
/// remount must follow.
const LEFT_RW: i32 = 3;

/// How long the kernel's emergency sync and remount get before reboot(2).
const EMERGENCY_WAIT: Duration = Duration::from_secs(2);

/// SysRq `s` then `u` at `trigger` (`/proc/sysrq-trigger`, whatever
/// `kernel.sysrq` says): the kernel's own emergency sync and read-only
/// remount of every file system, done by its workers, so PID 1 does not
/// wait on a dead disk: what is left when the child for sync and unmount
/// could not be made (no memory for clone3, the likely case at a reboot
/// for lack of it) or is stuck, or left a file system read-write
/// (`LEFT_RW`).
/// Waits `EMERGENCY_WAIT`, feeding.
fn emergency_sync(trigger: &str, feed: &dyn Fn()) {
    if !sysrq(trigger, b"su") {
        return;
    }
    let deadline = deadline_in(EMERGENCY_WAIT);
    while let Some(t) = next_timeout(now_ms(), deadline) {
        feed();
        crate::sys::clock::sleep(t.min(Duration::from_millis(50)));
    }
}

/// The SysRq `keys` at `trigger`, one write each, which the kernel's
/// workers carry out: PID 1 waits for none of them. False, said, when
/// one could not be asked.
fn sysrq(trigger: &str, keys: &[u8]) -> bool {
    let flags =
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC;
    let asked =
        crate::sys::file::openat(rustix::fs::CWD, trigger, flags, rustix::fs::Mode::empty())
            .and_then(|fd| {
                keys.chunks(1)
                    .try_for_each(|k| rustix::io::write(&fd, k).map(drop))
            });
    if let Err(e) = asked {
        crate::error!("{trigger}: {}", Os::from(e));
    }
    asked.is_ok()
}

/// What is written so far goes to the disks (SysRq `s`), without PID 1
/// waiting for them: before a reset that PID 1 knows is coming (the
/// watchdog no longer fed), which would lose it.
pub fn sync_by_kernel() {
    sysrq(SYSRQ, b"s");
}

/// The kernel's SysRq trigger; none in host tests, which must not sync
/// (or remount) the machine they run on.
#[cfg(not(test))]
const SYSRQ: &str = "/proc/sysrq-trigger";
#[cfg(test)]
const SYSRQ: &str = "/nonexistent/sysrq-trigger";

/// kill(-1, sig): every process but PID 1 (and kernel threads).
fn signal_all(sig: Signal) {
    // A host test is no PID 1: its kill(-1) is every process of the
    // machine (a test that reached the final sequence once killed the
    // whole host's, the other tests and their builds with it).
    #[cfg(test)]
    assert_eq!(std::process::id(), 1, "kill(-1, {sig}) outside PID 1");
    match kill(Pid::from_raw(-1), sig) {
        // ESRCH: nobody left to signal.
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        // `Os`, not nix's Display: its table of every errno's name and
        // text was linked for this one line.
        Err(e) => crate::warn!("shutdown: kill(-1, {}): {}", sig.as_str(), Os(e as i32)),
    }
}

fn log_unmount(u: mounts::Unmounted<'_>) {
    match u {
        mounts::Unmounted::Syncing
        | mounts::Unmounted::Unmounted { .. }
        | mounts::Unmounted::NotMounted { .. }
        | mounts::Unmounted::RemountedRo { .. } => crate::info!("shutdown: {u}"),
        mounts::Unmounted::ReadTable { .. }
        | mounts::Unmounted::Failed { .. }
        | mounts::Unmounted::UnderRoot { .. } => {
            crate::error!("shutdown: {u}")
        }
    }
}

/// The final sequence once the supervisor stopped all units: TERM (and
/// CONT, so stopped processes can act on it) to everything, reap for up to
/// `grace`, KILL what is left and reap, sync, unmount or remount read-only
/// every real file system, sync, reboot(2). Never returns.
/// With a hardware watchdog, it is fed between the steps (each is bounded
/// and far shorter than any timeout) and disarmed right before reboot(2).
pub fn finish(kind: ShutdownKind, grace: Duration, watchdog: Option<Watchdog>) -> ! {
    let feed = || {
        if let Some(w) = watchdog.as_ref() {
            w.feed();
        }
    };
    feed();
    crate::info!("shutdown: sending TERM to all processes");
    signal_all(Signal::SIGTERM);
    signal_all(Signal::SIGCONT);
    let r = reap_until(deadline_in(grace), &feed);
    crate::debug!("shutdown: {} processes exited after TERM", r.count);
    if !r.all_gone {
        crate::warn!(
            "shutdown: processes left after {} ms, sending KILL",
            // u64: formatting a u128 costs 1 KB of code.
            u64::try_from(grace.as_millis()).unwrap_or(u64::MAX)
        );
        feed();
        signal_all(Signal::SIGKILL);
        let r = reap_until(deadline_in(KILL_WAIT), &feed);
        if !r.all_gone {
            crate::warn!("shutdown: some processes did not die (uninterruptible sleep?)");
        }
    }
    feed();
    // sync(2) and unmounting can hang for ever (a dead disk or server, a
    // process stuck writing to a frozen file system): they run in a
    // child, which PID 1 waits for at most SYNC_LIMIT before it reboots
    // anyway. Local file systems first, each written out by its own
    // unmount (or read-only remount): no sync(2) before them, which
    // would wait on a dead server's mount too.
    let ran = bounded_code(SYNC_LIMIT, watchdog.as_ref(), &mut || {
        let left_rw = mounts::unmount_all(Path::new("/proc/self/mounts"), &mut log_unmount);
        crate::info!("shutdown: syncing disks");
        rustix::fs::sync();
        i32::from(left_rw) * LEFT_RW
    });
    if ran == Ok(LEFT_RW) {
        crate::error!(
            "shutdown: a file system left read-write; the kernel's forced read-only remount"
        );
        emergency_sync(SYSRQ, &feed);
    } else if !said(ran) {
        crate::error!(
            "shutdown: sync and unmount not done after {} s (or no child for them); the kernel's emergency sync and read-only remount instead",
            SYNC_LIMIT.as_secs()
        );
        emergency_sync(SYSRQ, &feed);
    }
    // Held past reboot(2): should it fail, or hang in a driver's shutdown,
    // the watchdog still resets the board (unless its driver stops it at
    // a reboot: `watchdog_stop_on_reboot`, as the Pi's does).
    let _held = watchdog.and_then(|w| last_watchdog_step(kind, w));
    crate::info!("shutdown: {}", kind.verb());
    refused(rustix::system::reboot(command(kind)))
}

/// After reboot(2), which returns only when it is refused (EPERM: no
/// CAP_SYS_BOOT, as in a container that drops it), PID 1 exits. A
/// container ends so, as halted (or is started again by its runtime); on
/// a kernel of its own, PID 1's exit is a kernel panic, which `panic=N`
/// turns into a restart, and a watchdog kept for a reboot resets the
/// board all the same. Sleeping for ever instead left such a container
/// running, and such a board disarmed, for good.
fn refused(r: rustix::io::Result<()>) -> ! {
    if let Err(e) = r {
        crate::error!("shutdown: reboot(2) failed: {}; PID 1 exits", Os::from(e));
    }
    crate::sys::clone::exit(0)
}

/// The watchdog right before reboot(2): disarmed (the magic close) for a
/// halt or a poweroff, which must not end in a reset; fed once more and
/// kept for a reboot, whose reset it is anyway.
fn last_watchdog_step(kind: ShutdownKind, w: Watchdog) -> Option<Watchdog> {
    match kind {
        ShutdownKind::Reboot => {
            w.feed();
            Some(w)
        }
        ShutdownKind::Halt | ShutdownKind::Poweroff => {
            match w.disarm() {
                Ok(()) => crate::info!("shutdown: watchdog disarmed"),
                Err(e) => crate::error!(
                    "shutdown: watchdog: magic close failed: {}; the board will reset",
                    Os::from(e)
                ),
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The final sequence's kill(-1) is refused in a host test (no PID
    /// 1): signalled, every process of the machine would get it. SIGCONT,
    /// so that without the guard this test fails and harms nothing.
    #[test]
    #[should_panic(expected = "outside PID 1")]
    fn a_host_test_cannot_signal_every_process() {
        signal_all(Signal::SIGCONT);
    }

    /// A child killed before it was done (the OOM killer at a reboot for
    /// lack of memory) has not synced: the kernel's emergency sync must
    /// follow, as for one that did not end in time.
    #[test]
    fn a_child_killed_before_its_sync_is_not_done() {
        let done = bounded(Duration::from_secs(5), None, || {
            let me = rustix::process::getpid();
            let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
        });
        assert!(!done, "a child killed before its sync counted as done");
    }

    /// A child done at once is seen done within milliseconds, not at a
    /// first look 50 ms on (each reload waits for one).
    #[test]
    fn a_quick_child_is_seen_done_at_once() {
        let quickest = (0..5)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(bounded_code(Duration::from_secs(5), None, &mut || 7), Ok(7));
                t.elapsed()
            })
            .min()
            .unwrap();
        assert!(quickest < Duration::from_millis(25), "{quickest:?}");
    }

    /// A reboot(2) that is refused ends PID 1 (here a child standing in
    /// for it) rather than leaving it asleep for ever.
    #[test]
    fn a_refused_reboot_ends_pid1() {
        let code = bounded_code(Duration::from_secs(5), None, &mut || {
            refused(Err(rustix::io::Errno::PERM))
        });
        assert_eq!(code, Ok(0));
    }

    /// When sync and unmount could not be done in a child, the kernel's
    /// emergency sync and read-only remount are asked (SysRq s, then u),
    /// and PID 1 waits a bounded while for them, feeding the watchdog.
    #[test]
    fn without_its_child_the_shutdown_asks_the_kernel_to_sync() {
        let d = crate::testutil::TempDir::new("sysrq");
        let trigger = d.file("sysrq-trigger", "");
        let fed = core::cell::Cell::new(0);
        let t = Instant::now();
        emergency_sync(trigger.to_str().unwrap(), &|| fed.set(fed.get() + 1));
        assert_eq!(std::fs::read_to_string(&trigger).unwrap(), "su");
        assert!(t.elapsed() >= EMERGENCY_WAIT && t.elapsed() < EMERGENCY_WAIT * 3);
        // Fed all along (every 100 ms: 20 times; fewer where a loaded
        // host oversleeps).
        assert!(fed.get() >= 5, "fed {} times", fed.get());
    }

    /// Disarmed (`V`) for a poweroff or a halt only; a reboot feeds it
    /// and keeps it, in case reboot(2) fails or hangs.
    #[test]
    fn only_a_reboot_keeps_the_watchdog_armed() {
        for (kind, kept, wrote) in [
            (ShutdownKind::Reboot, true, b"\0"),
            (ShutdownKind::Poweroff, false, b"V"),
            (ShutdownKind::Halt, false, b"V"),
        ] {
            let dev = rustix::fs::memfd_create("wd", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
            let view = rustix::io::dup(&dev).unwrap();
            let held = last_watchdog_step(kind, Watchdog::on(dev, 15));
            assert_eq!(held.is_some(), kept, "{kind:?}");
            let mut buf = [0u8; 4];
            let n = rustix::io::pread(&view, &mut buf, 0).unwrap();
            assert_eq!(&buf[..n], wrote, "{kind:?}");
        }
    }

    #[test]
    fn signals_map_to_kinds() {
        assert_eq!(
            ShutdownKind::for_signal(Signal::SIGTERM as i32),
            Some(ShutdownKind::Reboot)
        );
        assert_eq!(
            ShutdownKind::for_signal(Signal::SIGINT as i32),
            Some(ShutdownKind::Reboot)
        );
        assert_eq!(
            ShutdownKind::for_signal(Signal::SIGUSR1 as i32),
            Some(ShutdownKind::Halt)
        );
        assert_eq!(
            ShutdownKind::for_signal(Signal::SIGUSR2 as i32),
            Some(ShutdownKind::Poweroff)
        );
        assert_eq!(ShutdownKind::for_signal(Signal::SIGHUP as i32), None);
        assert_eq!(ShutdownKind::for_signal(0), None);
        assert_eq!(ShutdownKind::for_signal(9999), None);
    }

    #[test]
    fn kinds_map_to_reboot_commands() {
        assert_eq!(command(ShutdownKind::Reboot), RebootCommand::Restart);
        assert_eq!(command(ShutdownKind::Halt), RebootCommand::Halt);
        assert_eq!(command(ShutdownKind::Poweroff), RebootCommand::PowerOff);
        assert_eq!(RebootCommand::Restart as u32, 0x0123_4567);
        assert_eq!(RebootCommand::Halt as u32, 0xcdef_0123);
        assert_eq!(RebootCommand::PowerOff as u32, 0x4321_fedc);
    }

    #[test]
    fn timeouts_are_capped_and_end_at_the_deadline() {
        let now = now_ms();
        assert_eq!(
            next_timeout(now, now + 300),
            Some(Duration::from_millis(300))
        );
        assert_eq!(next_timeout(now, now + 10_000), Some(BACKSTOP));
        assert_eq!(next_timeout(now, now), None);
        assert_eq!(next_timeout(now + 1_000, now), None);
    }

    /// The sync and unmount step: done in time, or given up on at the
    /// limit while the child goes on (as one stuck on a dead disk would),
    /// the watchdog fed while waiting and not held by the stuck child.
    /// Alone in a process: a sibling test's fork copies every fd, the
    /// watchdog's too, and may hold it past any wait (one stuck for good
    /// was seen), so only there is the stuck child's copy the one in
    /// question.
    #[test]
    fn bounded_runs_in_a_child_and_gives_up_at_the_limit() {
        crate::testutil::alone!(bounded_runs_in_a_child_and_gives_up_at_the_limit);
        use rustix::pipe::{pipe_with, PipeFlags};
        let dir = crate::testutil::TempDir::new("bounded");
        let mark = dir.join("ran");
        let (seen, dev) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).unwrap();
        let w = Watchdog::on(dev, 15);
        let t = Instant::now();
        let m = mark.clone();
        assert!(bounded(Duration::from_secs(10), Some(&w), move || {
            let _ = std::fs::write(&m, "yes");
        }));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(std::fs::read_to_string(&mark).unwrap(), "yes");

        let t = Instant::now();
        let done = bounded(Duration::from_millis(400), Some(&w), || {
            std::thread::sleep(Duration::from_secs(3));
        });
        let took = t.elapsed();
        assert!(!done);
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        let mut buf = [0u8; 64];
        let fed = rustix::io::read(&seen, &mut buf).unwrap();
        assert!(fed >= 2, "the watchdog was fed {fed} times while waiting");
        // PID 1's close is the last: the stuck child (2.5 s still to
        // live) holds no copy.
        w.disarm().unwrap();
        assert_eq!(rustix::io::read(&seen, &mut buf), Ok(1), "the V");
        assert_eq!(
            rustix::io::read(&seen, &mut buf),
            Ok(0),
            "the watchdog is still open in the stuck child"
        );
    }

    /// In a process of its own, so that waitpid(-1) there cannot reap
    /// children of other tests.
    #[test]
    // The children are reaped by `reap_until`, which clippy cannot see.
    #[allow(clippy::zombie_processes)]
    fn reap_until_reaps_children_and_honours_the_deadline() {
        crate::testutil::alone!(reap_until_reaps_children_and_honours_the_deadline);
        let spawn = |secs: &str| {
            std::process::Command::new("sleep")
                .arg(secs)
                .spawn()
                .unwrap()
        };
        // Nothing to wait for: done at once.
        let t = Instant::now();
        let r = reap_until(now_ms() + 10_000, &|| {});
        assert_eq!(
            r,
            Reaped {
                count: 0,
                all_gone: true
            }
        );
        assert!(t.elapsed() < Duration::from_secs(1));

        // Three children exiting soon: all reaped, well before the deadline.
        let _kids: Vec<_> = (0..3).map(|_| spawn("0.2")).collect();
        let t = Instant::now();
        let r = reap_until(now_ms() + 20_000, &|| {});
        assert_eq!(
            r,
            Reaped {
                count: 3,
                all_gone: true
            }
        );
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

        // A child that outlives the deadline: returned at the deadline.
        let mut slow = spawn("30");
        let t = Instant::now();
        let ticks = std::cell::Cell::new(0u32);
        // The clock in whole milliseconds: one more, or the wait may end
        // a fraction of one before 300.
        let r = reap_until(now_ms() + 301, &|| ticks.set(ticks.get() + 1));
        assert_eq!(
            r,
            Reaped {
                count: 0,
                all_gone: false
            }
        );
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // The watchdog fed while waiting, every 100 ms (a loaded host
        // may oversleep one of the three).
        assert!(ticks.get() >= 2, "fed {} times in 300 ms", ticks.get());
        slow.kill().unwrap();
        let r = reap_until(now_ms() + 10_000, &|| {});
        assert_eq!(
            r,
            Reaped {
                count: 1,
                all_gone: true
            }
        );
    }
}
