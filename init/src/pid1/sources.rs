//! Events from outside the loop: signals (shutdown, reload, SIGCHLD),
//! reaping every exited child and telling how it ended (exit code, signal,
//! OOM kill, the PID-namespace reaper's report), unit output into its ring
//! and readiness notifications.

use super::event_loop::{TOKEN_NOTIFY, TOKEN_NOTIFY_READ};
use super::Pid1;
use crate::supervisor::{Event, Note};
use crate::sys::passed::Dgram;
use crate::unit::{Limit, Ready};
use crate::vocab::{signal, Exit, ShutdownKind};
use rustix::event::epoll;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use rustix::process::{waitpid, WaitOptions};

/// `Edge::notify_held` of a socket waiting for a closer's place.
pub(super) const HELD: u32 = u32::MAX;
const SIGCHLD: i32 = nix::sys::signal::Signal::SIGCHLD as i32;
/// Reads of one unit's output or notify fd per wake-up (16 KiB of output).
const READ_BUDGET: usize = 16;
/// Reads of a run's output pipe `fd` when the next run takes its place:
/// its whole capacity, 1 KiB a read. A pipe holds 16 pages by default:
/// 64 KiB with 4 KiB pages, but 256 KiB with the Pi 5's 16 KiB ones (64
/// reads dropped the newest 192 KiB there: the crash message). Past 1 MiB
/// (a service's F_SETPIPE_SZ, beyond the unprivileged limit) what is left
/// is dropped: the loop's work stays bounded.
pub(super) fn drain_reads(fd: Option<&rustix::fd::OwnedFd>) -> usize {
    let size = fd.and_then(|fd| rustix::pipe::fcntl_getpipe_size(fd).ok());
    size.unwrap_or(64 << 10).min(1 << 20) / 1024
}
/// Children reaped per wake-up: orphans dying faster than PID 1 reaps
/// them (a fork storm in a bare unit) must not keep the loop from its
/// timers, the watchdog's feed above all. More waiting: `more_to_reap`.
pub(super) const REAP_BATCH: usize = 64;
/// Release (reap) the zombie `ended_child` or `ended_child_of` named. It
/// cannot fail: the kernel has just said this child is waitable, and
/// nothing else in PID 1 waits; were it to, the next look would find it
/// again, so `reap` stops there.
fn release(pid: u32) -> bool {
    rustix::process::Pid::from_raw(pid as i32)
        .and_then(|p| waitpid(Some(p), WaitOptions::NOHANG).ok().flatten())
        .is_some()
}

/// A batch's worth reaped, and more may wait: a SIGCHLD of PID 1's own
/// brings the loop back at once, after the batch's other fds and its
/// timers, as a child's would. Blocked (the signalfd takes it), it is
/// queued, though PID 1 ignores signals it has no handler for.
fn more_to_reap() {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    if let Err(e) = crate::sys::signal::kill(me, SIGCHLD) {
        crate::warn!(
            "reap: SIGCHLD to itself: {}",
            crate::sys::errno::Os::from(e)
        );
    }
}

/// Bytes of one `struct signalfd_siginfo`; its first field is the number.
const SIGINFO_LEN: usize = 128;
/// Signals one read of the signalfd takes.
pub(super) const SIGNALS_PER_READ: usize = 4;

/// One read of the signalfd: the signals it took, each with the pid that
/// sent it (`ssi_pid`: for SIGCHLD, the child), their count, and whether
/// more may be pending. A read shorter than its buffer took every pending
/// signal, so a wake-up for one SIGCHLD costs one read, not a second one
/// to hear EAGAIN (a system call in every restart's window).
pub(super) fn read_signals(
    fd: BorrowedFd<'_>,
    sigs: &mut [(i32, u32); SIGNALS_PER_READ],
) -> (usize, bool) {
    let mut buf = [0u8; SIGINFO_LEN * SIGNALS_PER_READ];
    let Ok(n) = rustix::io::read(fd, &mut buf) else {
        return (0, false);
    };
    let mut count = 0;
    let infos = buf.get(..n).unwrap_or(&[]).chunks_exact(SIGINFO_LEN);
    for (info, sig) in infos.zip(sigs.iter_mut()) {
        // struct signalfd_siginfo: ssi_signo at 0, ssi_pid at 12.
        let signo = info.first_chunk::<4>().map(|b| i32::from_ne_bytes(*b));
        let pid = info
            .get(12..16)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_ne_bytes);
        if let Some(signo) = signo {
            *sig = (signo, pid);
            count += 1;
        }
    }
    (count, n == buf.len())
}

/// A unit whose cgroup has a `pids.max` number: a process of its run
/// counts against it until released, zombie or not.
pub(super) fn pids_limited(slot: Option<&crate::supervisor::Slot>) -> bool {
    slot.is_some_and(|s| matches!(s.def.limits.get().pids_max, Some(Limit::Value(_))))
}

impl Pid1 {
    pub(super) fn on_signals(&mut self) {
        let mut reap = false;
        // The child whose end sent the (first) SIGCHLD: looked at first.
        let mut ended = None;
        let mut more = true;
        while more {
            let Some(fd) = self.sigfd.as_ref() else {
                break;
            };
            let mut sigs = [(0, 0); SIGNALS_PER_READ];
            let n;
            (n, more) = read_signals(fd.as_fd(), &mut sigs);
            for &(sig, pid) in sigs.iter().take(n) {
                if let Some(kind) = ShutdownKind::for_signal(sig) {
                    let _ = self.ask_shutdown(kind, format_args!("signal {sig} from pid {pid}"));
                } else if sig == SIGCHLD {
                    reap = true;
                    ended = ended.or(Some(pid));
                } else if sig == signal::HUP {
                    let _ = self.reload(&mut |_| {});
                } else {
                    crate::debug!("ignoring signal {sig}");
                }
            }
        }
        // Reap after the signals: SIGCHLD coalesces, so every child that
        // has exited is looked for, adopted orphans included, a batch
        // (`REAP_BATCH`) a wake-up. PID 1's own SIGCHLD (`more_to_reap`)
        // names itself: its hint costs one look that finds nothing, and
        // a child's SIGCHLD merged into it loses its hint, not its reaping.
        if reap {
            self.reap(ended);
        }
    }

    /// `hint`: a child that sent SIGCHLD, looked at first by its pid
    /// (`ended_child_of`), so that its end (a unit's, to restart) is
    /// stepped before the walk over all of PID 1's children that finds the
    /// others: that walk is then out of the restart's window. A hint that
    /// has not ended (a stop, a pid already reaped) costs one call.
    pub(super) fn reap(&mut self, mut hint: Option<u32>) {
        // Who ended, the zombie kept (`ended_child`): it is released after
        // the step its end leads to, so that a restart's clone3 and the new
        // run's exec come before the kernel's release of the old task (its
        // pid, its /proc entries, its cgroup link, RCU work: about 1 ms of a
        // restart under TCG). A zombie does not count as populating its
        // cgroup, so the step's check for a run's leftovers is the same;
        // but it keeps its charge against the cgroup's `pids.max` until
        // released, so a unit with that limit has it released first (its
        // restart's clone3 would be refused with the limit reached).
        for _ in 0..REAP_BATCH {
            let Some((pid, end)) = hint
                .take()
                .and_then(crate::sys::raw::ended_child_of)
                .or_else(crate::sys::raw::ended_child)
            else {
                return;
            };
            let exit = match end {
                Ok(code) => Exit::code(code),
                Err(sig) => Exit::signal(sig),
            };
            // A closer's end frees its place for fds waiting in the park,
            // and for notify sockets waiting for one; the socket it read is
            // read again.
            if crate::sys::passed::reaped(pid) {
                crate::sys::passed::unpark();
                self.notify_unheld(pid);
            }
            crate::cgroup::writer_reaped(pid);
            let unit = self.reaped_unit(pid);
            let counted = pids_limited(unit.and_then(|u| self.sup.slot(u)));
            if counted && !release(pid) {
                return;
            }
            let exit = match unit {
                Some(u) => self.classify_exit(u, exit),
                None => exit,
            };
            self.feed(Event::Exited { pid, exit });
            if let Some(u) = unit {
                self.settle_oom(u);
            }
            if !counted && !release(pid) {
                return;
            }
        }
        more_to_reap();
    }

    /// A SIGKILL while the cgroup's oom_kill count rose is the OOM killer.
    pub(super) fn classify_exit(&mut self, u: u16, exit: Exit) -> Exit {
        let Some(slot) = self.sup.slot(u) else {
            return exit;
        };
        let name = slot.def.name.clone();
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return exit;
        };
        // Readiness is over with the process.
        let sd = slot.def.ready == Ready::SdNotify;
        super::event_loop::end_notify(self.epoll.as_ref(), edge.notify.take(), &name, sd);
        // In a PID namespace the reaped pid is the reaper's, which exits
        // 128+N for a signal; its report says what really happened.
        let mut exit = edge.drain.early.take().unwrap_or(exit);
        if let Some(fd) = edge.exit_report.take() {
            if let Some(ep) = self.epoll.as_ref() {
                let _ = epoll::delete(ep, &fd);
            }
            // The last report left: after ends the reaper restarted the
            // service on (unread, as it went), the run's own.
            let mut b = [0u8; crate::spawn::reaper::REPORT_LEN];
            while let Ok(crate::spawn::reaper::REPORT_LEN) = rustix::io::read(&fd, &mut b) {
                if let Some((e, _)) = crate::spawn::reaper::decode(&b) {
                    exit = e;
                }
            }
        }
        // Only a SIGKILL can be the OOM killer's. Which one it was is read
        // from memory.events once the step it leads to is done, a
        // restart's new process started (`settle_oom`): not before that
        // clone3 (0.9 ms of a restart under TCG).
        if self.cg.is_some() && exit == Exit::signal(signal::KILL) {
            edge.drain.oom_unread = true;
        }
        exit
    }

    /// Tell apart the OOM killer's SIGKILL of unit `u`'s last run
    /// (`classify_exit`), if that is still to do (`count_oom`). True when
    /// it was the OOM killer's. Called before the step's lines are
    /// written (`settled`: after its spawns, a restart's grace included)
    /// and after the step (`reap`, `on_report`: when it wrote no line of a
    /// death). An OOM kill of the new run before the read (a limit too low
    /// for its first milliseconds) is counted, but as the last run's end,
    /// and the new run's own SIGKILL then reads as a signal.
    pub(super) fn settle_oom(&mut self, u: u16) -> bool {
        let unread = self
            .edges
            .get(usize::from(u))
            .is_some_and(|e| e.drain.oom_unread);
        unread && self.count_oom(u)
    }

    /// Count the OOM kills unit `u`'s memory.events has over the
    /// baseline; with a SIGKILL exit not told apart yet, any makes the
    /// unit's last exit `OomKill` (true then). `settle_oom`, and before a
    /// cgroup's limits are written afresh (`oom_before_start`): one read
    /// for both.
    pub(super) fn count_oom(&mut self, u: u16) -> bool {
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return false;
        };
        let unread = core::mem::take(&mut edge.drain.oom_unread);
        let (Some(cg), Some(slot)) = (self.cg.as_ref(), self.sup.slot(u)) else {
            return false;
        };
        let kills = cg
            .memory_events(slot.def.name.as_str())
            .map_or(0, |e| e.oom_kill);
        if !edge.count_oom_kills(kills) || !unread {
            return false;
        }
        self.sup.amend_exit(u, Exit::OomKill);
        true
    }

    /// Before a start of unit `u`: with a cgroup to prepare again (limits
    /// changed since the last run), the last run's kills are counted (and
    /// its SIGKILL told apart) before its files are written again, or a
    /// new cgroup starts from 0; with one not prepared (a failed start),
    /// a SIGKILL still to tell apart is (`settle_oom`).
    pub(super) fn oom_before_start(&mut self, u: u16) {
        let gen = self.sup.slot(u).map(|s| s.limits_gen);
        match self.edges.get(usize::from(u)).map(|e| e.cgroup) {
            Some(Some(g)) if gen.is_some_and(|n| n != g) => {
                self.count_oom(u);
            }
            Some(None) => {
                self.settle_oom(u);
            }
            _ => {}
        }
    }

    /// `note` once a SIGKILL of the run it ends is told apart from the
    /// OOM killer's (`settle_oom`): after the step's spawns, before the
    /// line is written.
    pub(super) fn settled(&mut self, u: u16, note: Note) -> Note {
        match note {
            Note::Died { restart_in, .. } if self.settle_oom(u) => Note::Died {
                exit: Exit::OomKill,
                restart_in,
            },
            n => n,
        }
    }

    /// Unit output into its ring; followers are fed after the batch.
    /// At most `READ_BUDGET` reads per wake-up: a unit that writes faster
    /// than PID 1 reads must not keep the loop from everything else. What
    /// is left wakes the (level-triggered) epoll again at once, after the
    /// other ready fds of this batch had their turn.
    pub(super) fn on_log(&mut self, u: u16) {
        self.read_log(u, READ_BUDGET);
    }

    /// `on_log` with `reads` reads at most; at the end of file the pipe
    /// leaves the epoll set.
    pub(super) fn read_log(&mut self, u: u16, reads: usize) {
        let Some(edge) = self.edges.get_mut(usize::from(u)) else {
            return;
        };
        let read = edge.read_log(reads);
        if read.allocated {
            self.rings_allocated = self.rings_allocated.saturating_add(1);
        }
        if read.eof {
            // Every writer is gone.
            super::event_loop::unwatch(self.epoll.as_ref(), edge.log_rd.take());
        }
    }

    /// A closer reaped (`pid`): the notify socket it read is read again
    /// (if its pipe has not said so already), and those waiting for a
    /// place try again (a place is free).
    pub(super) fn notify_unheld(&mut self, pid: u32) {
        for u in 0..self.edges.len() {
            let held = self.edges.get(u).map_or(0, |e| e.notify_held);
            if held != 0 && (held == pid || held == HELD) {
                self.notify_resume(u);
            }
        }
    }

    /// The pipe of the closer reading `u`'s notify datagram at its end of
    /// file: the datagram is taken (or the closer is gone), and the
    /// socket is read again while that closer's closes go on.
    pub(super) fn on_notify_read(&mut self, u: u16) {
        self.notify_resume(usize::from(u));
    }

    /// `u`'s notify socket back in the epoll set, its closer's pipe out.
    fn notify_resume(&mut self, u: usize) {
        let ep = self.epoll.as_ref();
        let Some(edge) = self.edges.get_mut(u) else {
            return;
        };
        super::event_loop::unwatch(ep, edge.notify_read.take());
        edge.notify_held = 0;
        notify_interest(ep, edge.notify.as_ref(), u, epoll::EventFlags::IN);
    }

    pub(super) fn on_notify(&mut self, u: u16) {
        let watched = self
            .sup
            .slot(u)
            .is_some_and(|s| s.def.ready == Ready::SdNotify && s.def.seldom.watchdog.is_some());
        let mut ping = false;
        let ready = {
            let Some(edge) = self.edges.get_mut(usize::from(u)) else {
                return;
            };
            let Some(fd) = edge.notify.as_ref() else {
                return;
            };
            // Out of the epoll set; an event of the same batch may remain.
            if edge.notify_held != 0 {
                return;
            }
            // What the fd is, not what the definition says: a reload may
            // have changed `ready` while this run's pipe is still open,
            // and a pipe's end of file taken for an empty datagram would
            // be read again at every wake-up.
            let sd = crate::sys::file::is_socket(fd);
            // systemd's NOTIFY_BUFFER_MAX: a datagram is read whole or
            // cut, and READY=1 may follow a long STATUS= line.
            let mut buf = [0u8; 4096];
            let mut ready = false;
            let mut closed = false;
            // Bounded like on_log: a flood of (empty) datagrams waits for
            // the next turn.
            for _ in 0..READ_BUDGET {
                // A datagram that carries fds is read by a closer; its
                // bytes, peeked, are read here all the same.
                let got = match sd {
                    true => crate::sys::passed::recv_dgram(fd.as_fd(), &mut buf),
                    false => rustix::io::read(fd, &mut buf).map(Dgram::Read),
                };
                // `hold`: the socket out of the set, for the closer `pid`
                // and its pipe, or until a place comes free (`HELD`).
                let (n, hold) = match got {
                    // An empty datagram, not an end of stream.
                    Ok(Dgram::Read(0)) if sd => continue,
                    Ok(Dgram::Read(0)) => {
                        closed = true;
                        break;
                    }
                    Ok(Dgram::Read(n)) => (n, None),
                    Ok(Dgram::Reading { bytes, pid, read }) => (bytes, Some((pid, read))),
                    Ok(Dgram::Held) => (0, Some((HELD, None))),
                    Err(Errno::INTR) => continue,
                    Err(_) => break,
                };
                let got = buf.get(..n).unwrap_or(&[]);
                // s6 readiness is a newline; sd_notify is a datagram of
                // NAME=VALUE lines, READY=1 among them.
                if sd {
                    for l in got.split(|&c| c == b'\n') {
                        ready |= l == b"READY=1";
                        ping |= l == b"WATCHDOG=1";
                    }
                } else {
                    ready |= got.contains(&b'\n');
                }
                if let Some((held, read)) = hold {
                    // Read again before the closer has taken it, the head
                    // datagram would be this one again. (A change of an
                    // fd in the set does not fail: it allocates nothing.)
                    let ep = self.epoll.as_ref();
                    let i = usize::from(u);
                    notify_interest(ep, Some(fd), i, epoll::EventFlags::empty());
                    edge.notify_held = held;
                    // Its end of file comes once the closer has the
                    // datagram; without it, the closer's reap.
                    edge.notify_read = ep.zip(read).and_then(|(ep, r)| {
                        super::event_loop::watch(ep, r, TOKEN_NOTIFY_READ + u64::from(u))
                    });
                    break;
                }
            }
            // The s6 pipe is done with at ready. The socket stays open for
            // the unit's life, as systemd's does: later messages are read
            // (and ignored, WATCHDOG=1 aside), and `systemd-notify`, which
            // sends BARRIER=1 with an fd after READY=1 and waits for that
            // fd to be closed, gets through (a closer reads and closes
            // passed fds, `sys::passed`); a closed socket would refuse it.
            if closed || (ready && !sd) {
                super::event_loop::unwatch_notify(self.epoll.as_ref(), edge.notify.take());
            }
            ready
        };
        if ready {
            // The service wrote after its exec: that comes first (the
            // status pipe and this fd may be ready in the same batch).
            self.exec_settle(u);
            self.feed(Event::Ready { unit: u });
        }
        // After READY=1 of the same wake-up, so a ping sent with it counts.
        if ping && watched {
            self.feed(Event::Watchdog { unit: u });
        }
    }
}

/// `u`'s notify socket `fd` watched for `events` (none: out of the set
/// while a closer reads it).
fn notify_interest(
    ep: Option<&rustix::fd::OwnedFd>,
    fd: Option<&rustix::fd::OwnedFd>,
    u: usize,
    events: epoll::EventFlags,
) {
    if let (Some(ep), Some(fd)) = (ep, fd) {
        let token = epoll::EventData::new_u64(TOKEN_NOTIFY + u as u64);
        let _ = epoll::modify(ep, fd, token, events);
    }
}

#[cfg(test)]
mod tests;
