//! The control server inside PID 1: `initctl`'s other end.
//!
//! It never blocks, and allocates only for the connections open: a
//! non-blocking listener, a fixed table of `MAX_CLIENTS` connections each
//! with one frame of buffer while it is open, and its own epoll fd, which
//! PID 1 adds to its main epoll.
//!
//! The server only speaks the protocol; PID 1's loop decides. When that fd
//! is readable the loop calls `poll` until it returns `None`: each call
//! handles ready connections until one has sent a whole request, and hands
//! it back decoded as a `Command` with the `ClientId` to answer. The loop
//! executes it and answers at once (`answer`, `answer_detail`,
//! `answer_log`) or, for start/stop/restart, calls `wait_for`. After every
//! supervisor step the loop walks `waiters()`: it answers a waiter whose
//! unit settled and `feed`s `log -f` followers from their unit's ring. It
//! calls `on_timer` at `next_deadline` (silent clients are dropped after
//! `CLIENT_TIMEOUT_MS`).
//!
//! A connection carries one request. Only `allowed_uid` (root in PID 1) may
//! connect: the peer's `SO_PEERCRED` is checked at accept, on top of the
//! 0700 directory. Anything wrong with a frame gets an error reply (best
//! effort) and the connection closed.

mod answer;
mod bind;
mod client;
mod command;
#[cfg(test)]
pub(crate) mod fake;
mod handover;
#[cfg(test)]
mod tests;

use crate::proto::{CtlError, ErrCode, Reply, FRAME_BUF, TEXT_MAX};
use crate::sys::alloc::zeroed;
use crate::sys::errno::Os;
use crate::sys::sockopt::Peer;
use crate::vocab::Name;
pub use bind::ServerError;
pub use client::Text;
use client::{refuse, Client, Mode};
pub use command::Command;
pub use handover::Follower;
use rustix::event::{epoll, Timespec};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{self, RecvFlags, SendFlags, SocketFlags};

/// Connections served at once; more are refused with `ErrCode::Busy`.
/// `log -f` followers hold a slot for as long as they follow.
pub const MAX_CLIENTS: usize = 8;
/// Slots that clients which wait (start/stop/restart waiters, `log -f`
/// followers) and peers that may only look may not hold, so that the
/// operator always gets in: when they already hold `MAX_WAITING` slots, a
/// looker is refused, and one more waiting client lets the oldest go (a
/// looker's first, then a follower, then a waiter), told `ErrCode::Busy`.
pub const RESERVED_SLOTS: usize = 2;
/// Slots waiting clients and lookers may hold at once.
pub const MAX_WAITING: usize = MAX_CLIENTS - RESERVED_SLOTS;
const _: () = assert!(MAX_WAITING >= 1 && MAX_CLIENTS < 256);
/// A client must have sent its whole request this long after connecting,
/// and read its whole reply this long after it was ready.
pub const CLIENT_TIMEOUT_MS: u64 = 5_000;
/// Connections accepted per listener wake-up; the listener is
/// level-triggered, so more wake PID 1 again rather than starving the rest
/// of its loop.
const ACCEPT_BATCH: usize = 16;
const LISTEN_BACKLOG: i32 = 16;
/// How long the listener stays out of the epoll set after an accept that
/// failed for want of fds or memory (the connection stays queued, so the
/// listener stays readable: PID 1 would wake for it at once, for ever).
pub const ACCEPT_PAUSE_MS: u64 = 250;
/// Reads per client per wake-up, for the same reason.
const READ_BATCH: usize = 16;
const LISTENER_TOKEN: u64 = u64::MAX;
/// epoll events taken per `poll` round.
const EVENT_BATCH: usize = MAX_CLIENTS + 1;

/// What a start/stop/restart client waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// `start`: the unit is ready (service) or exited 0 (oneshot).
    Started,
    /// `stop`: the unit's cgroup is empty.
    Stopped,
    /// `restart`: the new run is ready; the old one must not count.
    Restarted,
    /// `reload`'s verdict: no unit is on probation any more (the name is
    /// empty).
    Verdict,
}

/// The connection a `Command` came from, to answer it. An answer for a
/// connection that has gone since is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientId(u64);

impl ClientId {
    fn slot(self) -> usize {
        (self.0 & 0xff) as usize
    }
}

/// A client the loop must tell what happened, after every supervisor step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waiter {
    /// Answer once `name` settled as `want` asks (or cannot any more).
    Settle { name: Name, want: Want },
    /// `feed` it `name`'s output ring.
    Follow { name: Name },
}

const NO_EVENT: epoll::Event = epoll::Event {
    flags: epoll::EventFlags::empty(),
    data: epoll::EventData::new_u64(0),
};

/// Whether the process `pid` (a connecting peer, uid 0) holds
/// CAP_SYS_ADMIN in its effective set (capget(2)) over PID 1's user
/// namespace: the operator does; a unit running as root with its
/// capabilities dropped does not, and must not stop other units, reload
/// or reboot, nor does it by making a user namespace of its own (`unshare
/// -Ur`), where its set is full again but counts only there. Unknown (the
/// peer gone already): no. A kernel without user namespaces has no
/// /proc/PID/ns/user, and every peer is in PID 1's. (The set was read from
/// /proc/PID/status's first 2 KiB, where root in some 250 groups or more
/// had its `CapEff:` line cut off and was taken for a looker.)
fn may_change(pid: i32) -> bool {
    use rustix::thread::{capabilities, CapabilitySet};
    let caps = rustix::process::Pid::from_raw(pid).map(|p| capabilities(Some(p)));
    caps.is_some_and(|c| c.is_ok_and(|c| c.effective.contains(CapabilitySet::SYS_ADMIN)))
        && in_pid1_user_ns(
            crate::sys::file::same_namespace(pid.unsigned_abs(), "user"),
            || rustix::fs::stat("/proc/self/ns/user").is_ok(),
        )
}

/// A peer is in PID 1's user namespace as `same_namespace` says; not
/// known (the peer gone meanwhile, its capabilities read before), it is
/// not, unless PID 1 has no user namespace to compare with (`own`: a
/// kernel without them, where every process is in the one there is).
fn in_pid1_user_ns(same: Option<bool>, own: impl FnOnce() -> bool) -> bool {
    same.unwrap_or_else(|| !own())
}

/// The peer whose credentials are `cred` may only look: `may_change`
/// says no for it (credentials not known: an accept refuses the peer).
fn observer(cred: &Result<Peer, Errno>) -> bool {
    cred.as_ref().is_ok_and(|c| !may_change(c.pid))
}

/// The control server. See the module comment for how PID 1 drives it.
pub struct Server {
    listener: OwnedFd,
    epoll: OwnedFd,
    allowed_uid: u32,
    clients: Vec<Client>,
    /// Staging for borrowed reply bytes (log chunks, the detail's tail):
    /// `TEXT_MAX` bytes while a connection is open, none while none is.
    scratch: Box<[u8]>,
    /// The `poll` round under way: events taken from epoll, the next one
    /// to handle, and accepts left in the listener's batch.
    events: [epoll::Event; EVENT_BATCH],
    event_count: usize,
    next_event: usize,
    accepts_left: usize,
    in_round: bool,
    /// Counts clients that began to wait, to find the oldest.
    waiting_seq: u64,
    /// The clock at the last `poll`.
    polled_at: u64,
    /// Buffers allocated since `take_grown` (a connection's, the scratch
    /// with the first one open): one count per allocation.
    grown: u64,
    /// The listener is out of the epoll set until then (`pause_accepts`).
    paused_until: Option<u64>,
    /// accept has failed since the last one that worked: said once.
    accept_failing: bool,
}

impl Server {
    /// The fd to watch (readable) in PID 1's epoll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    /// Buffers allocated since the last call, for connections (PID 1
    /// counts them apart from steady-state allocation).
    pub fn take_grown(&mut self) -> u64 {
        core::mem::take(&mut self.grown)
    }

    /// Connections open now.
    pub fn clients(&self) -> usize {
        self.clients.iter().filter(|c| c.fd.is_some()).count()
    }

    /// When `on_timer` must run next, in PID 1's millisecond clock.
    pub fn next_deadline(&self) -> Option<u64> {
        let clients = self.clients.iter().filter_map(|c| c.deadline).min();
        clients.into_iter().chain(self.paused_until).min()
    }

    /// Drops clients past their deadline (silent, or not reading replies),
    /// and takes connections again after a pause.
    pub fn on_timer(&mut self, now_ms: u64) {
        if self.paused_until.is_some_and(|t| t <= now_ms) {
            let data = epoll::EventData::new_u64(LISTENER_TOKEN);
            match epoll::add(&self.epoll, &self.listener, data, epoll::EventFlags::IN) {
                Ok(()) | Err(Errno::EXIST) => self.paused_until = None,
                Err(e) => {
                    crate::warn!("control: epoll add of the listener: {}", Os::from(e));
                    self.paused_until = Some(now_ms.saturating_add(ACCEPT_PAUSE_MS));
                }
            }
        }
        for slot in 0..self.clients.len() {
            let due = self
                .clients
                .get(slot)
                .and_then(|c| c.deadline)
                .is_some_and(|d| d <= now_ms);
            if due {
                crate::debug!("control: client {slot} timed out");
                self.close(slot);
            }
        }
    }

    /// Handles whatever is ready, without blocking, until a client has sent
    /// a whole request: that request, to be answered before the next call.
    /// `None` when nothing is left (then `on_timer` has run too).
    pub fn poll(&mut self, now_ms: u64) -> Option<(ClientId, Command)> {
        self.polled_at = now_ms;
        if !self.in_round {
            self.start_round();
        }
        loop {
            if self.accepts_left > 0 {
                self.accepts_left -= 1;
                match self.accept_one(now_ms) {
                    Accepted::NoMore => self.accepts_left = 0,
                    Accepted::Short(e) => {
                        self.pause_accepts(now_ms, e);
                        self.accepts_left = 0;
                    }
                    Accepted::Refused => {}
                    Accepted::Slot(slot) => {
                        // initctl writes its request right after
                        // connecting: serve it now rather than on the next
                        // wake-up.
                        if let Some(cmd) = self.read(slot, now_ms) {
                            return Some(cmd);
                        }
                    }
                }
                continue;
            }
            if self.next_event >= self.event_count {
                break;
            }
            let Some(ev) = self.events.get(self.next_event) else {
                break;
            };
            self.next_event += 1;
            // Copied out: the struct is packed on some targets.
            let flags = ev.flags;
            let data = ev.data;
            let token = data.u64();
            if token == LISTENER_TOKEN {
                self.accepts_left = ACCEPT_BATCH;
            } else if let Some(cmd) = self.client_event(token, flags, now_ms) {
                return Some(cmd);
            }
        }
        self.in_round = false;
        self.on_timer(now_ms);
        None
    }

    fn start_round(&mut self) {
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        self.event_count = match epoll::wait(&self.epoll, &mut self.events[..], Some(&zero)) {
            Ok(n) => n,
            Err(Errno::INTR) => 0,
            Err(e) => {
                crate::warn!("control: epoll_wait: {}", Os::from(e));
                0
            }
        };
        self.next_event = 0;
        self.accepts_left = 0;
        self.in_round = true;
    }

    fn accept_one(&mut self, now_ms: u64) -> Accepted {
        let fd =
            match net::accept_with(&self.listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC) {
                Ok(fd) => fd,
                Err(Errno::AGAIN) => return Accepted::NoMore,
                Err(Errno::INTR | Errno::CONNABORTED) => return Accepted::Refused,
                Err(e) => return Accepted::Short(e),
            };
        // An accept worked: its next failure is said again.
        self.accept_failing = false;
        // Out-of-band data (fds with it) read inline, as any: left aside,
        // it would be released with the connection, and a peek would pass
        // over it, fds and all (`sys::passed::recv_stream` relies on this).
        let _ = net::sockopt::set_socket_oobinline(&fd, true);
        let cred = crate::sys::sockopt::peer(fd.as_fd());
        let uid = cred.as_ref().map(|c| c.uid).map_err(|e| *e);
        if uid != Ok(self.allowed_uid) {
            // Display, not Debug: no `Result` formatting code for one line.
            match uid {
                Ok(u) => crate::info!("control: refused peer uid Ok({u})"),
                Err(e) => crate::info!("control: refused peer uid Err({})", Os::from(e)),
            }
            refuse(fd, CtlError::code(ErrCode::Denied));
            return Accepted::Refused;
        }
        let observer = observer(&cred);
        let Some(slot) = self.free_slot(observer) else {
            refuse(fd, CtlError::code(ErrCode::Busy));
            return Accepted::Refused;
        };
        let interest = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
        let token = self.clients.get(slot).map_or(0, |c| c.token(slot));
        let data = epoll::EventData::new_u64(token);
        if let Err(e) = epoll::add(&self.epoll, &fd, data, interest) {
            crate::warn!("control: epoll add: {}", Os::from(e));
            refuse(fd, CtlError::code(ErrCode::Internal));
            return Accepted::Refused;
        }
        // Without the memory for it, the connection is turned away and
        // those after it wait, as when accept fails with ENOMEM.
        if self.give_buffers(slot).is_none() {
            let _ = epoll::delete(&self.epoll, &fd);
            let short = "PID 1 is short of memory for a connection: try again";
            refuse(fd, CtlError::new(ErrCode::Busy, short));
            return Accepted::Short(Errno::NOMEM);
        }
        self.stamp(slot);
        let Some(c) = self.clients.get_mut(slot) else {
            let _ = epoll::delete(&self.epoll, &fd);
            crate::sys::passed::close(fd);
            return Accepted::Refused;
        };
        c.fd = Some(fd);
        c.mode = Mode::Reading;
        c.deadline = Some(now_ms.saturating_add(CLIENT_TIMEOUT_MS));
        c.interest = interest;
        c.peer_shut = false;
        c.observer = observer;
        Accepted::Slot(slot)
    }

    /// A free slot for a new connection. A peer that may only look (a
    /// unit's root without CAP_SYS_ADMIN, `observer`) gets none while
    /// such peers and the waiting clients hold `MAX_WAITING` slots:
    /// connections that send nothing for 5 s at a time, beside the
    /// operator's own waiting clients, would keep the operator out.
    pub(super) fn free_slot(&self, observer: bool) -> Option<usize> {
        let held = self.clients.iter().filter(|c| c.unreserved()).count();
        let free = self.clients.iter().position(|c| c.fd.is_none());
        free.filter(|_| !observer || held < MAX_WAITING)
    }

    /// accept failed with `e` (EMFILE, ENFILE, ENOBUFS, ENOMEM: wanting
    /// what the connection needs): the listener leaves the epoll set for
    /// `ACCEPT_PAUSE_MS` (`on_timer` puts it back), said once until an
    /// accept works again.
    fn pause_accepts(&mut self, now_ms: u64, e: Errno) {
        if !self.accept_failing {
            crate::warn!(
                "control: accept: {}; new connections wait, {ACCEPT_PAUSE_MS} ms at a time",
                Os::from(e)
            );
            self.accept_failing = true;
        }
        if self.paused_until.is_none() {
            let _ = epoll::delete(&self.epoll, &self.listener);
        }
        self.paused_until = Some(now_ms.saturating_add(ACCEPT_PAUSE_MS));
    }

    /// `slot`'s buffer for a new connection, and the scratch if no
    /// connection is open; counted in `grown`. None when memory is short.
    fn give_buffers(&mut self, slot: usize) -> Option<()> {
        let buf = zeroed(FRAME_BUF)?;
        if self.scratch.is_empty() {
            self.scratch = zeroed(TEXT_MAX)?;
            self.grown += 1;
        }
        self.grown += 1;
        self.clients.get_mut(slot)?.set_buffer(buf);
        Some(())
    }

    fn client_event(
        &mut self,
        token: u64,
        flags: epoll::EventFlags,
        now_ms: u64,
    ) -> Option<(ClientId, Command)> {
        let slot = (token & 0xff) as usize;
        let c = self.clients.get(slot)?;
        if c.fd.is_none() || c.token(slot) != token {
            return None;
        }
        use epoll::EventFlags as F;
        if flags.intersects(F::HUP | F::ERR) && c.peer_shut {
            // Shut on both sides now: gone.
            self.close(slot);
            return None;
        }
        if flags.intersects(F::OUT | F::HUP | F::ERR) && c.pending() {
            // A follower gets topped up with the room this made when the
            // loop next walks `waiters`, in this same wake-up.
            self.flush(slot, now_ms);
        }
        if flags.intersects(F::IN | F::RDHUP | F::HUP | F::ERR) {
            return self.read(slot, now_ms);
        }
        None
    }

    fn read(&mut self, slot: usize, now_ms: u64) -> Option<(ClientId, Command)> {
        for _ in 0..READ_BATCH {
            let c = self.clients.get_mut(slot)?;
            let fd = c.fd.as_ref()?;
            match c.mode {
                Mode::Free | Mode::Closing => return None,
                Mode::Reading => {
                    match c.recv_request() {
                        Ok(0) => {
                            if c.rx > 0 {
                                // Half-closed mid-frame: it may still read.
                                c.enqueue(&Reply::Error(CtlError::new(
                                    ErrCode::BadRequest,
                                    "truncated frame",
                                )));
                                self.finish(slot, now_ms);
                            } else {
                                self.close(slot);
                            }
                            return None;
                        }
                        Ok(_) => {
                            let cmd = match c.request() {
                                Ok(None) => continue,
                                Ok(Some(payload)) => command::parse(payload),
                                Err(e) => {
                                    Err(CtlError::fmt(ErrCode::BadRequest, format_args!("{e}")))
                                }
                            };
                            c.rx = 0;
                            let cmd = cmd.and_then(|cmd| match c.observer && cmd.changes() {
                                true => Err(CtlError::new(
                                    ErrCode::Denied,
                                    "denied: the caller lacks CAP_SYS_ADMIN",
                                )),
                                false => Ok(cmd),
                            });
                            match cmd {
                                Ok(cmd) => {
                                    c.mode = Mode::Answering;
                                    return Some((ClientId(c.token(slot)), cmd));
                                }
                                Err(e) => {
                                    c.enqueue(&Reply::Error(e));
                                    self.finish(slot, now_ms);
                                    return None;
                                }
                            }
                        }
                        Err(Errno::AGAIN) => return None,
                        Err(Errno::INTR) => continue,
                        Err(_) => {
                            self.close(slot);
                            return None;
                        }
                    }
                }
                Mode::Answering | Mode::Waiting { .. } | Mode::Following { .. } => {
                    // Nothing more is expected; looked at only to see the
                    // hang-up. A peek: a read without room for fds would
                    // release those sent with the byte in PID 1's time.
                    let mut probe = [0u8; 1];
                    match net::recv(fd, &mut probe[..], RecvFlags::DONTWAIT | RecvFlags::PEEK) {
                        Ok((0, _)) => {
                            // Its writing side only, maybe: it still gets
                            // its answer or its stream, until EPOLLHUP.
                            c.peer_shut = true;
                            self.sync_interest(slot);
                            return None;
                        }
                        // Bytes after its one request: not initctl. Read,
                        // they would wake PID 1 for as long as the peer
                        // writes; it goes instead.
                        Ok(_) => {
                            self.close(slot);
                            return None;
                        }
                        Err(Errno::INTR) => continue,
                        Err(Errno::AGAIN) => return None,
                        Err(_) => {
                            self.close(slot);
                            return None;
                        }
                    }
                }
            }
        }
        None
    }

    /// The last reply is queued: send it, then close.
    fn finish(&mut self, slot: usize, now_ms: u64) {
        let Some(c) = self.clients.get_mut(slot) else {
            return;
        };
        c.mode = Mode::Closing;
        c.deadline = Some(now_ms.saturating_add(CLIENT_TIMEOUT_MS));
        self.flush(slot, now_ms);
    }

    fn flush(&mut self, slot: usize, now_ms: u64) {
        let Some(c) = self.clients.get_mut(slot) else {
            return;
        };
        if c.fd.is_none() {
            return;
        }
        let mut progressed = false;
        while c.pending() {
            let Some(fd) = c.fd.as_ref() else {
                return;
            };
            let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
            match net::send(fd, c.unsent(), flags) {
                Ok(n) => {
                    c.sent(n);
                    progressed |= n > 0;
                }
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => continue,
                Err(_) => {
                    self.close(slot);
                    return;
                }
            }
        }
        if !c.pending() {
            c.clear_tx();
            if c.mode == Mode::Closing {
                self.close(slot);
                return;
            }
        }
        // A follower that stops reading must not hold its slot for ever:
        // while output waits for it, it has CLIENT_TIMEOUT_MS to take some.
        if matches!(c.mode, Mode::Following { .. }) {
            if !c.pending() {
                c.deadline = None;
            } else if progressed || c.deadline.is_none() {
                c.deadline = Some(now_ms.saturating_add(CLIENT_TIMEOUT_MS));
            }
        }
        self.sync_interest(slot);
    }

    fn sync_interest(&mut self, slot: usize) {
        let Some(c) = self.clients.get_mut(slot) else {
            return;
        };
        let want = c.wanted_interest();
        let Some(fd) = c.fd.as_ref() else {
            return;
        };
        if want != c.interest {
            let token = epoll::EventData::new_u64(c.token(slot));
            match epoll::modify(&self.epoll, fd, token, want) {
                Ok(()) => c.interest = want,
                Err(e) => {
                    crate::warn!("control: epoll modify: {}", Os::from(e));
                    self.close(slot);
                }
            }
        }
    }

    fn close(&mut self, slot: usize) {
        let Some(c) = self.clients.get_mut(slot) else {
            return;
        };
        if let Some(fd) = c.fd.take() {
            let _ = epoll::delete(&self.epoll, &fd);
            // What is queued would go with the close, fds passed with it
            // released in PID 1's time: such a socket goes to a closer.
            crate::sys::passed::close(fd);
        }
        c.gen = c.gen.wrapping_add(1) & 0x00ff_ffff;
        c.mode = Mode::Free;
        c.deadline = None;
        c.interest = epoll::EventFlags::empty();
        c.peer_shut = false;
        c.set_buffer(Box::default());
        if self.clients() == 0 {
            self.scratch = Box::default();
        }
    }
}

/// What one accept gave.
enum Accepted {
    /// Nothing more to accept now.
    NoMore,
    /// Wanting what a connection needs (fds, memory): `pause_accepts`.
    Short(Errno),
    /// A connection turned away (or a retryable error): try the next.
    Refused,
    /// A client in this slot, to be read.
    Slot(usize),
}
