//! The control server inside PID 1: `initctl`'s other end.
//!
//! It never blocks and never allocates after `bind`: a non-blocking
//! listener, a fixed table of `MAX_CLIENTS` connections each with one frame
//! of read and one of write buffer (allocated once at bind), and its own
//! epoll fd, which PID 1 adds to its main epoll. PID 1 then calls
//! `on_ready` when that fd is readable, `poll_waiters` after each
//! supervisor step (so deferred start/stop replies and `log -f` followers
//! progress), and `on_timer` at `next_deadline` (silent clients are dropped
//! after `CLIENT_TIMEOUT_MS`).
//!
//! A connection carries one request. Only `allowed_uid` (root in PID 1) may
//! connect: the peer's `SO_PEERCRED` is checked at accept, on top of the
//! 0700 directory. Anything wrong with a frame gets an error reply (best
//! effort) and the connection closed.

use crate::log_ring::LogRing;
#[cfg(test)]
use crate::log_ring::LOG_RING_BYTES;
use crate::proto::{
    decode_request, encode_reply, CtlError, ErrCode, FrameDecoder, ProtoError, Reply, Request,
    UnitDetail, UnitStatus, FRAME_BUF, FRAME_OVERHEAD, PROTO_VERSION, TAIL_LINES, TEXT_MAX,
};
use crate::vocab::ShutdownKind;
use crate::vocab::{Name, MAX_UNITS};
use rustix::event::{epoll, Timespec};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{self, RecvFlags, SendFlags, SocketFlags};
use std::path::{Path, PathBuf};

/// Connections served at once; more are refused with `ErrCode::Busy`.
/// `log -f` followers hold a slot for as long as they follow.
pub const MAX_CLIENTS: usize = 8;
/// A client must have sent its whole request this long after connecting,
/// and read its whole reply this long after it was ready.
pub const CLIENT_TIMEOUT_MS: u64 = 5_000;
/// Connections accepted per `on_ready`; the listener is level-triggered,
/// so more wake PID 1 again rather than starving the rest of its loop.
const ACCEPT_BATCH: usize = 16;
const LISTEN_BACKLOG: i32 = 16;
/// Reads per client per wake-up, for the same reason.
const READ_BATCH: usize = 16;
const LISTENER_TOKEN: u64 = u64::MAX;
/// Bytes kept at the end of a `Cat` or `Reload` text for a truncation note.
const NOTE_ROOM: usize = 48;

/// The log ring type PID 1 keeps per unit.
pub type UnitLog = LogRing;

/// What a start/stop/restart client waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// `start`: the unit is ready (service) or exited 0 (oneshot).
    Started,
    /// `stop`: the unit's cgroup is empty.
    Stopped,
    /// `restart`: the new run is ready; the old one must not count.
    Restarted,
}

/// What PID 1 exposes to the control server. Every method runs inside
/// PID 1's loop and must not block.
pub trait ControlTarget {
    /// One line per unit, in the unit table's order.
    fn status(&self, out: &mut heapless::Vec<UnitStatus, MAX_UNITS>);
    /// `status NAME`; the server adds the log tail from `log`.
    fn detail(&self, name: &str) -> Result<UnitDetail, CtlError>;
    /// Begin starting; the reply waits for `settled(name, Want::Started)`.
    fn start(&mut self, name: &str) -> Result<(), CtlError>;
    fn stop(&mut self, name: &str) -> Result<(), CtlError>;
    fn restart(&mut self, name: &str) -> Result<(), CtlError>;
    /// Whether the action a client waits on is over: `None` while pending,
    /// `Some(Err)` when it cannot happen any more (e.g. the unit failed,
    /// or was removed). Asked right after the action returned Ok and after
    /// every `poll_waiters`.
    fn settled(&self, name: &str, want: Want) -> Option<Result<(), CtlError>>;
    /// Begin the shutdown; called after the Ok reply is handed to the
    /// kernel.
    fn shutdown(&mut self, kind: ShutdownKind);
    /// Re-read the unit directory, reporting one line per problem or change.
    /// `Err(ErrCode::Invalid)` when a unit file was invalid.
    fn reload(&mut self, report: &mut dyn FnMut(&str)) -> Result<(), CtlError>;
    /// The unit's output ring; `ErrCode::NoLog` when output is not captured.
    fn log(&self, name: &str) -> Result<&UnitLog, CtlError>;
    /// The definition as loaded, as unit file text.
    fn cat(&self, name: &str, out: &mut dyn core::fmt::Write) -> Result<(), CtlError>;
}

/// A step of `Server::bind` that failed.
#[derive(Debug)]
pub enum ServerError {
    /// The socket's directory could not be made.
    Dir {
        path: PathBuf,
        err: Errno,
    },
    /// Something not a socket sits where the socket goes.
    NotSocket(PathBuf),
    Unlink {
        path: PathBuf,
        err: Errno,
    },
    Socket(Errno),
    Bind {
        path: PathBuf,
        err: Errno,
    },
    Chmod {
        path: PathBuf,
        err: Errno,
    },
    Listen(Errno),
    Epoll(Errno),
}

impl core::fmt::Display for ServerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ServerError::Dir { path, err } => write!(f, "mkdir {}: {err}", path.display()),
            ServerError::NotSocket(p) => write!(f, "{} exists and is not a socket", p.display()),
            ServerError::Unlink { path, err } => {
                write!(f, "remove stale {}: {err}", path.display())
            }
            ServerError::Socket(e) => write!(f, "control socket: {e}"),
            ServerError::Bind { path, err } => write!(f, "bind {}: {err}", path.display()),
            ServerError::Chmod { path, err } => write!(f, "chmod {}: {err}", path.display()),
            ServerError::Listen(e) => write!(f, "listen on control socket: {e}"),
            ServerError::Epoll(e) => write!(f, "control epoll: {e}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    Free,
    /// Waiting for the request.
    Reading,
    /// A start/stop/restart reply waits for the unit to settle.
    Waiting {
        name: Name,
        want: Want,
    },
    /// `log -f`: `pos` is the next stream position to send.
    Following {
        name: Name,
        pos: u64,
    },
    /// Sending the last reply; closed once sent.
    Closing,
}

struct Client {
    fd: Option<OwnedFd>,
    /// Bumped on every close, so a stale epoll event for a slot's earlier
    /// connection is recognised.
    gen: u32,
    rx: Box<FrameDecoder<FRAME_BUF>>,
    tx: Box<[u8; FRAME_BUF]>,
    tx_start: usize,
    tx_end: usize,
    deadline: Option<u64>,
    mode: Mode,
    /// The interest registered in epoll.
    interest: epoll::EventFlags,
}

impl Client {
    fn new() -> Self {
        Client {
            fd: None,
            gen: 0,
            rx: Box::new(FrameDecoder::new()),
            tx: Box::new([0; FRAME_BUF]),
            tx_start: 0,
            tx_end: 0,
            deadline: None,
            mode: Mode::Free,
            interest: epoll::EventFlags::empty(),
        }
    }

    fn token(&self, slot: usize) -> u64 {
        (u64::from(self.gen) << 8) | slot as u64
    }

    fn pending(&self) -> bool {
        self.tx_start < self.tx_end
    }

    fn wanted_interest(&self) -> epoll::EventFlags {
        use epoll::EventFlags as F;
        let out = if self.pending() { F::OUT } else { F::empty() };
        match self.mode {
            Mode::Free => F::empty(),
            // Input is no longer read: a peer that hung up would keep the
            // fd readable and spin PID 1. HUP and ERR are reported anyway.
            Mode::Closing => F::OUT,
            Mode::Reading | Mode::Waiting { .. } | Mode::Following { .. } => F::IN | F::RDHUP | out,
        }
    }

    /// Moves unsent bytes to the front, so the free room is at the end.
    fn compact(&mut self) {
        if self.tx_start > 0 {
            self.tx.copy_within(self.tx_start..self.tx_end, 0);
            self.tx_end -= self.tx_start;
            self.tx_start = 0;
        }
    }

    fn room(&self) -> usize {
        FRAME_BUF - self.tx_end
    }

    /// Queues a reply frame; one that cannot be encoded (too large for the
    /// room left) is replaced by an error, or dropped if even that fails.
    fn enqueue(&mut self, rep: &Reply<'_>) -> bool {
        self.compact();
        let out = &mut self.tx[self.tx_end..];
        let n = match encode_reply(rep, out) {
            Ok(n) => n,
            Err(e) => {
                let err = CtlError::fmt(ErrCode::Internal, format_args!("reply: {e}"));
                match encode_reply(&Reply::Error(err), out) {
                    Ok(n) => n,
                    Err(_) => return false,
                }
            }
        };
        self.tx_end += n;
        true
    }
}

/// A request with its name copied out of the read buffer.
enum Cmd {
    Status,
    Detail(Name),
    Start(Name),
    Stop(Name),
    Restart(Name),
    Shutdown(ShutdownKind),
    Log(Name, bool),
    Cat(Name),
    Reload,
    Bad(CtlError),
}

fn parse(payload: &[u8]) -> Cmd {
    let req = match decode_request(payload) {
        Ok(r) => r,
        Err(ProtoError::Version { got }) => {
            return Cmd::Bad(CtlError::fmt(
                ErrCode::Version,
                format_args!(
                    "initctl speaks protocol {got}, init speaks {PROTO_VERSION}: \
                     use the initctl of the running init"
                ),
            ))
        }
        Err(e) => {
            return Cmd::Bad(CtlError::fmt(ErrCode::BadRequest, format_args!("{e}")));
        }
    };
    let name = |n: &str| -> Result<Name, Cmd> {
        let mut s = Name::new();
        s.push_str(n).map_err(|_| {
            Cmd::Bad(CtlError::new(
                ErrCode::NoSuchUnit,
                "no such unit (name longer than 32 bytes)",
            ))
        })?;
        Ok(s)
    };
    let cmd = match req {
        Request::Status { name: None } => Ok(Cmd::Status),
        Request::Status { name: Some(n) } => name(n).map(Cmd::Detail),
        Request::Start { name: n } => name(n).map(Cmd::Start),
        Request::Stop { name: n } => name(n).map(Cmd::Stop),
        Request::Restart { name: n } => name(n).map(Cmd::Restart),
        Request::Shutdown(k) => Ok(Cmd::Shutdown(k)),
        Request::Log { name: n, follow } => name(n).map(|n| Cmd::Log(n, follow)),
        Request::Cat { name: n } => name(n).map(Cmd::Cat),
        Request::Reload => Ok(Cmd::Reload),
    };
    cmd.unwrap_or_else(|bad| bad)
}

fn result_reply(r: Result<(), CtlError>) -> Reply<'static> {
    match r {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::Error(e),
    }
}

/// A `fmt::Write` into a byte slice that keeps whole characters up to
/// `limit` and notes the overflow.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    limit: usize,
    overflow: bool,
}

impl<'a> SliceWriter<'a> {
    fn new(buf: &'a mut [u8], limit: usize) -> Self {
        let limit = limit.min(buf.len());
        SliceWriter {
            buf,
            len: 0,
            limit,
            overflow: false,
        }
    }

    /// Writes `s` whole or not at all.
    fn put(&mut self, s: &str) -> bool {
        let end = self.len + s.len();
        if end > self.limit {
            return false;
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        true
    }

    fn text(&self) -> &str {
        // Only whole `str`s and whole characters were copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl core::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        if self.put(s) {
            return Ok(());
        }
        for c in s.chars() {
            let mut b = [0u8; 4];
            if !self.put(c.encode_utf8(&mut b)) {
                break;
            }
        }
        self.overflow = true;
        Err(core::fmt::Error)
    }
}

/// Queues the ring's bytes from `pos` as one `Reply::Log` chunk, as much as
/// fits; returns the position after what was queued.
fn queue_log(c: &mut Client, scratch: &mut [u8], ring: &UnitLog, pos: u64) -> u64 {
    let since = ring.since(pos);
    if since.data.is_empty() && since.missed == 0 {
        return pos;
    }
    c.compact();
    if c.room() <= FRAME_OVERHEAD {
        // Still sending the last chunk: the follower catches up later,
        // from where it is, and is told what the ring dropped meanwhile.
        return pos;
    }
    let max = (c.room() - FRAME_OVERHEAD).min(scratch.len());
    let n = since.data.copy_head(&mut scratch[..max]);
    let rep = Reply::Log {
        missed: since.missed,
        data: &scratch[..n],
    };
    if c.enqueue(&rep) {
        since.from + n as u64
    } else {
        pos
    }
}

/// Best-effort single error frame on a connection about to be dropped.
fn refuse(fd: BorrowedFd<'_>, err: CtlError) {
    let mut buf = [0u8; 256];
    if let Ok(n) = encode_reply(&Reply::Error(err), &mut buf) {
        let _ = net::send(fd, &buf[..n], SendFlags::NOSIGNAL | SendFlags::DONTWAIT);
    }
}

/// The control server. See the module comment for how PID 1 drives it.
pub struct Server {
    listener: OwnedFd,
    epoll: OwnedFd,
    allowed_uid: u32,
    clients: Vec<Client>,
    /// Staging for borrowed reply text/bytes (log chunks, cat, reload).
    scratch: Box<[u8; TEXT_MAX]>,
}

impl Server {
    /// Listens at `path`, making its directory (mode 0700) if missing and
    /// replacing a stale socket left there. Only peers of `allowed_uid`
    /// are served. Allocates the client table: call once, at boot.
    pub fn bind(path: &Path, allowed_uid: u32) -> Result<Server, ServerError> {
        use rustix::fs::Mode;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            match rustix::fs::mkdir(dir, Mode::RWXU) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(err) => {
                    return Err(ServerError::Dir {
                        path: dir.into(),
                        err,
                    })
                }
            }
        }
        if let Ok(st) = rustix::fs::lstat(path) {
            if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
                return Err(ServerError::NotSocket(path.into()));
            }
            rustix::fs::unlink(path).map_err(|err| ServerError::Unlink {
                path: path.into(),
                err,
            })?;
        }
        let listener = net::socket_with(
            net::AddressFamily::UNIX,
            net::SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(ServerError::Socket)?;
        let addr = net::SocketAddrUnix::new(path).map_err(|err| ServerError::Bind {
            path: path.into(),
            err,
        })?;
        net::bind(&listener, &addr).map_err(|err| ServerError::Bind {
            path: path.into(),
            err,
        })?;
        rustix::fs::chmod(path, Mode::RUSR | Mode::WUSR).map_err(|err| ServerError::Chmod {
            path: path.into(),
            err,
        })?;
        net::listen(&listener, LISTEN_BACKLOG).map_err(ServerError::Listen)?;
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(ServerError::Epoll)?;
        epoll::add(
            &epoll,
            &listener,
            epoll::EventData::new_u64(LISTENER_TOKEN),
            epoll::EventFlags::IN,
        )
        .map_err(ServerError::Epoll)?;
        Ok(Server {
            listener,
            epoll,
            allowed_uid,
            clients: (0..MAX_CLIENTS).map(|_| Client::new()).collect(),
            scratch: Box::new([0; TEXT_MAX]),
        })
    }

    /// The fd to watch (readable) in PID 1's epoll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    /// Connections open now.
    pub fn clients(&self) -> usize {
        self.clients.iter().filter(|c| c.fd.is_some()).count()
    }

    /// When `on_timer` must run next, in PID 1's millisecond clock.
    pub fn next_deadline(&self) -> Option<u64> {
        self.clients.iter().filter_map(|c| c.deadline).min()
    }

    /// Drops clients past their deadline (silent, or not reading replies).
    pub fn on_timer(&mut self, now_ms: u64) {
        for slot in 0..self.clients.len() {
            if self.clients[slot].deadline.is_some_and(|d| d <= now_ms) {
                log::debug!("control: client {slot} timed out");
                self.close(slot);
            }
        }
    }

    /// Handles whatever is ready, without blocking; also runs `on_timer`.
    pub fn on_ready(&mut self, now_ms: u64, target: &mut dyn ControlTarget) {
        const NONE: epoll::Event = epoll::Event {
            flags: epoll::EventFlags::empty(),
            data: epoll::EventData::new_u64(0),
        };
        let mut events = [NONE; MAX_CLIENTS + 1];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let n = match epoll::wait(&self.epoll, &mut events[..], Some(&zero)) {
            Ok(n) => n,
            Err(Errno::INTR) => 0,
            Err(e) => {
                log::warn!("control: epoll_wait: {e}");
                0
            }
        };
        for ev in events.iter().take(n) {
            // Copied out: the struct is packed on some targets.
            let flags = ev.flags;
            let data = ev.data;
            let token = data.u64();
            if token == LISTENER_TOKEN {
                self.accept_all(now_ms, target);
            } else {
                self.client_event(token, flags, now_ms, target);
            }
        }
        self.on_timer(now_ms);
    }

    /// Completes deferred start/stop/restart replies whose unit settled and
    /// feeds `log -f` followers; call after every supervisor step.
    pub fn poll_waiters(&mut self, now_ms: u64, target: &mut dyn ControlTarget) {
        for slot in 0..self.clients.len() {
            let c = &mut self.clients[slot];
            match c.mode.clone() {
                Mode::Waiting { name, want } => {
                    if let Some(r) = target.settled(&name, want) {
                        c.enqueue(&result_reply(r));
                        self.finish(slot, now_ms);
                    }
                }
                Mode::Following { .. } => self.feed(slot, now_ms, target),
                _ => {}
            }
        }
    }

    /// Sends a follower what its unit wrote since it was last fed.
    fn feed(&mut self, slot: usize, now_ms: u64, target: &dyn ControlTarget) {
        let c = &mut self.clients[slot];
        let Mode::Following { name, pos } = &c.mode else {
            return;
        };
        let (name, pos) = (name.clone(), *pos);
        let ring = match target.log(&name) {
            Ok(r) => r,
            Err(e) => {
                c.enqueue(&Reply::Error(e));
                self.finish(slot, now_ms);
                return;
            }
        };
        // A ring that went backwards was replaced: start over.
        let pos = if pos > ring.write_pos() {
            ring.start_pos()
        } else {
            pos
        };
        let new = queue_log(c, &mut self.scratch[..], ring, pos);
        c.mode = Mode::Following { name, pos: new };
        if c.pending() {
            self.flush(slot, now_ms);
        }
    }

    fn accept_all(&mut self, now_ms: u64, target: &mut dyn ControlTarget) {
        for _ in 0..ACCEPT_BATCH {
            let fd = match net::accept_with(
                &self.listener,
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            ) {
                Ok(fd) => fd,
                Err(Errno::AGAIN) => return,
                Err(Errno::INTR | Errno::CONNABORTED) => continue,
                Err(e) => {
                    log::warn!("control: accept: {e}");
                    return;
                }
            };
            let uid = net::sockopt::socket_peercred(&fd).map(|c| c.uid.as_raw());
            if uid != Ok(self.allowed_uid) {
                log::info!("control: refused peer uid {uid:?}");
                refuse(fd.as_fd(), CtlError::code(ErrCode::Denied));
                continue;
            }
            let Some(slot) = self.clients.iter().position(|c| c.fd.is_none()) else {
                refuse(fd.as_fd(), CtlError::code(ErrCode::Busy));
                continue;
            };
            let c = &mut self.clients[slot];
            let interest = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
            let token = epoll::EventData::new_u64(c.token(slot));
            if let Err(e) = epoll::add(&self.epoll, &fd, token, interest) {
                log::warn!("control: epoll add: {e}");
                refuse(fd.as_fd(), CtlError::code(ErrCode::Internal));
                continue;
            }
            c.fd = Some(fd);
            c.mode = Mode::Reading;
            c.deadline = Some(now_ms.saturating_add(CLIENT_TIMEOUT_MS));
            c.interest = interest;
            c.rx.clear();
            c.tx_start = 0;
            c.tx_end = 0;
            // initctl writes its request right after connecting: serve it
            // now rather than on the next wake-up.
            self.read(slot, now_ms, target);
        }
    }

    fn client_event(
        &mut self,
        token: u64,
        flags: epoll::EventFlags,
        now_ms: u64,
        target: &mut dyn ControlTarget,
    ) {
        let slot = (token & 0xff) as usize;
        let Some(c) = self.clients.get(slot) else {
            return;
        };
        if c.fd.is_none() || c.token(slot) != token {
            return;
        }
        use epoll::EventFlags as F;
        if flags.intersects(F::OUT | F::HUP | F::ERR) && c.pending() {
            self.flush(slot, now_ms);
            // Room again: top a follower up rather than wait for new output.
            self.feed(slot, now_ms, target);
        }
        if flags.intersects(F::IN | F::RDHUP | F::HUP | F::ERR) {
            self.read(slot, now_ms, target);
        }
    }

    fn read(&mut self, slot: usize, now_ms: u64, target: &mut dyn ControlTarget) {
        for _ in 0..READ_BATCH {
            let c = &mut self.clients[slot];
            let Some(fd) = c.fd.as_ref() else {
                return;
            };
            match c.mode {
                Mode::Free | Mode::Closing => return,
                Mode::Reading => {
                    let spare = c.rx.spare();
                    if spare.is_empty() {
                        // Cannot happen: a full buffer holds a whole frame or
                        // an oversized prefix. Drop the client all the same.
                        self.close(slot);
                        return;
                    }
                    match net::recv(fd, spare, RecvFlags::DONTWAIT) {
                        Ok((0, _)) => {
                            if c.rx.buffered() > 0 {
                                // Half-closed mid-frame: it may still read.
                                c.enqueue(&Reply::Error(CtlError::new(
                                    ErrCode::BadRequest,
                                    "truncated frame",
                                )));
                                self.finish(slot, now_ms);
                            } else {
                                self.close(slot);
                            }
                            return;
                        }
                        Ok((n, _)) => {
                            c.rx.advance(n);
                            let cmd = match c.rx.frame() {
                                Ok(None) => continue,
                                Ok(Some(payload)) => parse(payload),
                                Err(e) => Cmd::Bad(CtlError::fmt(
                                    ErrCode::BadRequest,
                                    format_args!("{e}"),
                                )),
                            };
                            c.rx.clear();
                            self.handle(slot, cmd, now_ms, target);
                            return;
                        }
                        Err(Errno::AGAIN) => return,
                        Err(Errno::INTR) => continue,
                        Err(_) => {
                            self.close(slot);
                            return;
                        }
                    }
                }
                Mode::Waiting { .. } | Mode::Following { .. } => {
                    // Nothing more is expected; read only to see the hang-up.
                    let mut sink = [0u8; 256];
                    match net::recv(fd, &mut sink[..], RecvFlags::DONTWAIT) {
                        Ok((0, _)) => {
                            self.close(slot);
                            return;
                        }
                        Ok(_) | Err(Errno::INTR) => continue,
                        Err(Errno::AGAIN) => return,
                        Err(_) => {
                            self.close(slot);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn handle(&mut self, slot: usize, cmd: Cmd, now_ms: u64, target: &mut dyn ControlTarget) {
        let c = &mut self.clients[slot];
        let scratch = &mut self.scratch[..];
        match cmd {
            Cmd::Bad(e) => {
                c.enqueue(&Reply::Error(e));
            }
            Cmd::Status => {
                let mut v = heapless::Vec::new();
                target.status(&mut v);
                c.enqueue(&Reply::Status(v));
            }
            Cmd::Detail(name) => match target.detail(&name) {
                Err(e) => {
                    c.enqueue(&Reply::Error(e));
                }
                Ok(detail) => {
                    let n = match target.log(&name) {
                        Ok(ring) => ring.tail_lines(TAIL_LINES).copy_tail(scratch),
                        Err(_) => 0,
                    };
                    c.enqueue(&Reply::Detail {
                        detail,
                        log: &scratch[..n],
                    });
                }
            },
            Cmd::Start(name) => return self.act(slot, name, Want::Started, now_ms, target),
            Cmd::Stop(name) => return self.act(slot, name, Want::Stopped, now_ms, target),
            Cmd::Restart(name) => return self.act(slot, name, Want::Restarted, now_ms, target),
            Cmd::Shutdown(kind) => {
                c.enqueue(&Reply::Ok);
                self.finish(slot, now_ms);
                target.shutdown(kind);
                return;
            }
            Cmd::Log(name, follow) => match target.log(&name) {
                Err(e) => {
                    c.enqueue(&Reply::Error(e));
                }
                Ok(ring) => {
                    let pos = queue_log(c, scratch, ring, ring.start_pos());
                    if follow {
                        c.mode = Mode::Following { name, pos };
                        c.deadline = None;
                        self.flush(slot, now_ms);
                        return;
                    }
                }
            },
            Cmd::Cat(name) => {
                let mut w = SliceWriter::new(scratch, TEXT_MAX - NOTE_ROOM);
                match target.cat(&name, &mut w) {
                    Err(e) => {
                        c.enqueue(&Reply::Error(e));
                    }
                    Ok(()) => {
                        if w.overflow {
                            w.limit = w.buf.len();
                            w.put("\n# (truncated)\n");
                        }
                        c.enqueue(&Reply::Cat(w.text()));
                    }
                }
            }
            Cmd::Reload => {
                let mut w = SliceWriter::new(scratch, TEXT_MAX - NOTE_ROOM);
                let mut dropped = 0u32;
                let result = target.reload(&mut |line| {
                    let sep = if w.len > 0 { "\n" } else { "" };
                    if w.len + sep.len() + line.len() <= w.limit {
                        w.put(sep);
                        w.put(line);
                    } else {
                        dropped += 1;
                    }
                });
                if dropped > 0 {
                    w.limit = w.buf.len();
                    let _ =
                        core::fmt::write(&mut w, format_args!("\n... and {dropped} more lines"));
                }
                c.enqueue(&Reply::Reload {
                    result,
                    report: w.text(),
                });
            }
        }
        self.finish(slot, now_ms);
    }

    /// Start, stop or restart; the reply waits until the unit settles.
    fn act(
        &mut self,
        slot: usize,
        name: Name,
        want: Want,
        now_ms: u64,
        target: &mut dyn ControlTarget,
    ) {
        let r = match want {
            Want::Started => target.start(&name),
            Want::Stopped => target.stop(&name),
            Want::Restarted => target.restart(&name),
        };
        let c = &mut self.clients[slot];
        let settled = match r {
            Err(e) => Some(Err(e)),
            Ok(()) => target.settled(&name, want),
        };
        match settled {
            Some(r) => {
                c.enqueue(&result_reply(r));
                self.finish(slot, now_ms);
            }
            None => {
                // The client has its own timeout; it hanging up frees the
                // slot, so no deadline here.
                c.mode = Mode::Waiting { name, want };
                c.deadline = None;
                self.sync_interest(slot);
            }
        }
    }

    /// The last reply is queued: send it, then close.
    fn finish(&mut self, slot: usize, now_ms: u64) {
        let c = &mut self.clients[slot];
        c.mode = Mode::Closing;
        c.deadline = Some(now_ms.saturating_add(CLIENT_TIMEOUT_MS));
        self.flush(slot, now_ms);
    }

    fn flush(&mut self, slot: usize, now_ms: u64) {
        let c = &mut self.clients[slot];
        let Some(fd) = c.fd.as_ref() else {
            return;
        };
        let mut progressed = false;
        while c.pending() {
            let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
            match net::send(fd, &c.tx[c.tx_start..c.tx_end], flags) {
                Ok(n) => {
                    c.tx_start += n;
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
            c.tx_start = 0;
            c.tx_end = 0;
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
        let c = &mut self.clients[slot];
        let want = c.wanted_interest();
        let Some(fd) = c.fd.as_ref() else {
            return;
        };
        if want != c.interest {
            let token = epoll::EventData::new_u64(c.token(slot));
            match epoll::modify(&self.epoll, fd, token, want) {
                Ok(()) => c.interest = want,
                Err(e) => {
                    log::warn!("control: epoll modify: {e}");
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
        }
        c.gen = c.gen.wrapping_add(1) & 0x00ff_ffff;
        c.mode = Mode::Free;
        c.deadline = None;
        c.interest = epoll::EventFlags::empty();
        c.rx.clear();
        c.tx_start = 0;
        c.tx_end = 0;
    }
}

/// A `ControlTarget` for host tests (here and in `ctl`).
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use crate::unit::Limit;
    use crate::vocab::State;

    pub struct Unit {
        pub status: UnitStatus,
        pub log: Box<UnitLog>,
        pub captured: bool,
    }

    #[derive(Default)]
    pub struct Fake {
        pub units: Vec<Unit>,
        /// What `settled` answers for every unit.
        pub settle: Option<Result<(), CtlError>>,
        pub actions: Vec<String>,
        pub shutdowns: Vec<ShutdownKind>,
        pub reload_lines: Vec<String>,
        pub reload_invalid: bool,
        pub cat_bytes: usize,
    }

    pub fn status(name: &str, state: State, pid: u32) -> UnitStatus {
        UnitStatus {
            name: crate::proto::truncated(name),
            state,
            pid,
            restarts: 1,
            memory_current: Some(1_300_000),
            memory_max: Some(Limit::Value(8 << 20)),
            uptime_ms: 192_000,
        }
    }

    impl Fake {
        pub fn with(names: &[&str]) -> Self {
            let mut f = Fake::default();
            for (i, n) in names.iter().enumerate() {
                f.units.push(Unit {
                    status: status(n, State::Running, 100 + i as u32),
                    log: Box::new(UnitLog::default()),
                    captured: true,
                });
            }
            f
        }

        pub fn unit(&mut self, name: &str) -> &mut Unit {
            self.units
                .iter_mut()
                .find(|u| u.status.name == name)
                .unwrap()
        }

        fn find(&self, name: &str) -> Result<&Unit, CtlError> {
            self.units
                .iter()
                .find(|u| u.status.name == name)
                .ok_or_else(|| CtlError::fmt(ErrCode::NoSuchUnit, format_args!("no unit {name}")))
        }
    }

    impl ControlTarget for Fake {
        fn status(&self, out: &mut heapless::Vec<UnitStatus, MAX_UNITS>) {
            for u in &self.units {
                let _ = out.push(u.status.clone());
            }
        }
        fn detail(&self, name: &str) -> Result<UnitDetail, CtlError> {
            let u = self.find(name)?;
            Ok(UnitDetail {
                status: u.status.clone(),
                last_exit: crate::proto::LastExit::Code(3),
                oom_kills: 1,
                reason: crate::proto::truncated("restarting in 2s"),
            })
        }
        fn start(&mut self, name: &str) -> Result<(), CtlError> {
            self.find(name)?;
            self.actions.push(format!("start {name}"));
            Ok(())
        }
        fn stop(&mut self, name: &str) -> Result<(), CtlError> {
            self.find(name)?;
            self.actions.push(format!("stop {name}"));
            Ok(())
        }
        fn restart(&mut self, name: &str) -> Result<(), CtlError> {
            self.find(name)?;
            self.actions.push(format!("restart {name}"));
            Ok(())
        }
        fn settled(&self, _name: &str, _want: Want) -> Option<Result<(), CtlError>> {
            self.settle.clone()
        }
        fn shutdown(&mut self, kind: ShutdownKind) {
            self.shutdowns.push(kind);
        }
        fn reload(&mut self, report: &mut dyn FnMut(&str)) -> Result<(), CtlError> {
            for l in &self.reload_lines {
                report(l);
            }
            if self.reload_invalid {
                Err(CtlError::new(ErrCode::Invalid, "1 unit file invalid"))
            } else {
                Ok(())
            }
        }
        fn log(&self, name: &str) -> Result<&UnitLog, CtlError> {
            let u = self.find(name)?;
            if u.captured {
                Ok(&u.log)
            } else {
                Err(CtlError::code(ErrCode::NoLog))
            }
        }
        fn cat(&self, name: &str, out: &mut dyn core::fmt::Write) -> Result<(), CtlError> {
            self.find(name)?;
            let _ = writeln!(out, "exec = /bin/{name}");
            for _ in 0..self.cat_bytes {
                if out.write_char('x').is_err() {
                    break;
                }
            }
            Ok(())
        }
    }

    /// A fresh directory under the system temp dir, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("wren-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{Fake, TempDir};
    use super::*;
    use crate::proto::{decode_reply, encode_request, LastExit};
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;

    const ROOT: u32 = 0;

    fn uid() -> u32 {
        rustix::process::getuid().as_raw()
    }

    struct Rig {
        _dir: TempDir,
        path: PathBuf,
        server: Server,
        fake: Fake,
        now: u64,
    }

    impl Rig {
        fn new(tag: &str) -> Rig {
            let dir = TempDir::new(tag);
            let path = dir.0.join("run").join("control");
            let server = Server::bind(&path, uid()).unwrap();
            Rig {
                _dir: dir,
                path,
                server,
                fake: Fake::with(&["web", "db"]),
                now: 1_000,
            }
        }

        fn connect(&self) -> UnixStream {
            let s = UnixStream::connect(&self.path).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        }

        fn pump(&mut self) {
            for _ in 0..4 {
                self.server.on_ready(self.now, &mut self.fake);
                self.server.poll_waiters(self.now, &mut self.fake);
            }
        }

        /// Sends `req`, runs the server, returns the replies and whether
        /// the server closed.
        fn ask(&mut self, req: Request<'_>) -> (Vec<Vec<u8>>, bool) {
            let mut s = self.connect();
            send(&mut s, &req);
            self.pump();
            collect(&mut s)
        }
    }

    fn send(s: &mut UnixStream, req: &Request<'_>) {
        let mut buf = [0u8; 256];
        let n = encode_request(req, &mut buf).unwrap();
        s.write_all(&buf[..n]).unwrap();
    }

    /// Every whole frame available now, and whether the peer closed.
    fn collect(s: &mut UnixStream) -> (Vec<Vec<u8>>, bool) {
        let mut dec = Box::new(FrameDecoder::<FRAME_BUF>::new());
        let mut frames = Vec::new();
        let mut eof = false;
        loop {
            match s.read(dec.spare()) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => dec.advance(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // The server closed with our bytes unread: a reset.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    eof = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
            while let Some(p) = dec.frame().unwrap() {
                frames.push(p.to_vec());
                dec.consume();
            }
        }
        assert_eq!(dec.buffered(), 0, "partial frame left");
        (frames, eof)
    }

    fn one(frames: &[Vec<u8>]) -> Reply<'_> {
        assert_eq!(frames.len(), 1, "expected one reply");
        decode_reply(&frames[0]).unwrap()
    }

    fn err_code(frames: &[Vec<u8>]) -> ErrCode {
        match one(frames) {
            Reply::Error(e) => e.code,
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn socket_and_directory_are_private() {
        let rig = Rig::new("ctl-perm");
        let dir_mode = std::fs::metadata(rig.path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let sock_mode = std::fs::metadata(&rig.path).unwrap().permissions().mode();
        assert_eq!(sock_mode & 0o777, 0o600);
        // Binding again replaces the stale socket.
        drop(rig.server);
        assert!(Server::bind(&rig.path, uid()).is_ok());
        // But never a file that is not a socket.
        let f = rig.path.with_file_name("plain");
        std::fs::write(&f, b"x").unwrap();
        assert!(matches!(
            Server::bind(&f, uid()),
            Err(ServerError::NotSocket(_))
        ));
    }

    #[test]
    fn status_lists_every_unit_and_closes() {
        let mut rig = Rig::new("ctl-status");
        let (frames, eof) = rig.ask(Request::Status { name: None });
        match one(&frames) {
            Reply::Status(v) => {
                let names: Vec<&str> = v.iter().map(|s| s.name.as_str()).collect();
                assert_eq!(names, ["web", "db"]);
                assert_eq!(v[1].pid, 101);
            }
            other => panic!("{other:?}"),
        }
        assert!(eof);
        assert_eq!(rig.server.clients(), 0);
    }

    #[test]
    fn status_of_one_unit_carries_the_log_tail() {
        let mut rig = Rig::new("ctl-detail");
        let mut text = String::new();
        for i in 0..30 {
            text.push_str(&format!("line {i}\n"));
        }
        rig.fake.unit("db").log.push(text.as_bytes());
        let (frames, _) = rig.ask(Request::Status { name: Some("db") });
        match one(&frames) {
            Reply::Detail { detail, log } => {
                assert_eq!(detail.status.name, "db");
                assert_eq!(detail.last_exit, LastExit::Code(3));
                let log = std::str::from_utf8(log).unwrap();
                assert_eq!(log.lines().count(), TAIL_LINES);
                assert!(log.starts_with("line 20\n") && log.ends_with("line 29\n"));
            }
            other => panic!("{other:?}"),
        }
        let (frames, _) = rig.ask(Request::Status { name: Some("nope") });
        assert_eq!(err_code(&frames), ErrCode::NoSuchUnit);
    }

    #[test]
    fn garbage_gets_an_error_and_the_connection_closed() {
        let mut rig = Rig::new("ctl-garbage");
        let mut s = rig.connect();
        s.write_all(&[5, 0, 0, 0, 1, 0xee, 0xee, 0xee, 0xee])
            .unwrap();
        rig.pump();
        let (frames, eof) = collect(&mut s);
        assert_eq!(err_code(&frames), ErrCode::BadRequest);
        assert!(eof);
        assert_eq!(rig.server.clients(), 0);
        // The server still serves the next one.
        let (frames, _) = rig.ask(Request::Status { name: None });
        assert!(matches!(one(&frames), Reply::Status(_)));
    }

    #[test]
    fn four_gib_prefix_is_refused_without_waiting_for_the_body() {
        let mut rig = Rig::new("ctl-huge");
        let mut s = rig.connect();
        s.write_all(&u32::MAX.to_le_bytes()).unwrap();
        rig.pump();
        let (frames, eof) = collect(&mut s);
        assert_eq!(err_code(&frames), ErrCode::BadRequest);
        assert!(eof);
    }

    #[test]
    fn truncated_frame_then_half_close_gets_an_error() {
        let mut rig = Rig::new("ctl-trunc");
        let mut s = rig.connect();
        let mut buf = [0u8; 64];
        let n = encode_request(&Request::Start { name: "web" }, &mut buf).unwrap();
        s.write_all(&buf[..n - 2]).unwrap();
        rig.pump();
        // Nothing yet: the frame is incomplete.
        assert_eq!(collect(&mut s), (vec![], false));
        s.shutdown(std::net::Shutdown::Write).unwrap();
        rig.pump();
        let (frames, eof) = collect(&mut s);
        assert_eq!(err_code(&frames), ErrCode::BadRequest);
        assert!(eof);
        assert!(rig.fake.actions.is_empty());
        assert_eq!(rig.server.clients(), 0);
    }

    #[test]
    fn truncated_frame_then_full_close_frees_the_slot() {
        let mut rig = Rig::new("ctl-trunc2");
        let mut s = rig.connect();
        s.write_all(&[9, 0, 0, 0, 1]).unwrap();
        rig.pump();
        assert_eq!(rig.server.clients(), 1);
        drop(s);
        rig.pump();
        assert_eq!(rig.server.clients(), 0);
        assert_eq!(rig.server.next_deadline(), None);
    }

    #[test]
    fn other_protocol_version_is_told_so() {
        let mut rig = Rig::new("ctl-version");
        let mut s = rig.connect();
        let mut body = [0u8; 16];
        let p = postcard::to_slice(&(PROTO_VERSION + 7, Request::Reload), &mut body).unwrap();
        let mut frame = (p.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(p);
        s.write_all(&frame).unwrap();
        rig.pump();
        let (frames, _) = collect(&mut s);
        match one(&frames) {
            Reply::Error(e) => {
                assert_eq!(e.code, ErrCode::Version);
                assert!(e.message.contains(&format!("{}", PROTO_VERSION + 7)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn silent_client_is_dropped_while_another_is_served() {
        let mut rig = Rig::new("ctl-silent");
        let mut silent = rig.connect();
        // Half a prefix, then nothing.
        silent.write_all(&[3, 0]).unwrap();
        rig.pump();
        assert_eq!(rig.server.next_deadline(), Some(1_000 + CLIENT_TIMEOUT_MS));
        rig.now += 1_000;
        let (frames, eof) = rig.ask(Request::Status { name: None });
        assert!(matches!(one(&frames), Reply::Status(_)));
        assert!(eof);
        assert_eq!(rig.server.clients(), 1);
        rig.now = 1_000 + CLIENT_TIMEOUT_MS - 1;
        rig.server.on_timer(rig.now);
        assert_eq!(rig.server.clients(), 1);
        rig.now += 1;
        rig.server.on_timer(rig.now);
        assert_eq!(rig.server.clients(), 0);
        assert_eq!(collect(&mut silent), (vec![], true));
        assert_eq!(rig.server.next_deadline(), None);
    }

    #[test]
    fn connections_beyond_the_table_are_refused_at_once() {
        let mut rig = Rig::new("ctl-full");
        let held: Vec<UnixStream> = (0..MAX_CLIENTS).map(|_| rig.connect()).collect();
        rig.pump();
        assert_eq!(rig.server.clients(), MAX_CLIENTS);
        let mut extra = rig.connect();
        rig.pump();
        let (frames, eof) = collect(&mut extra);
        assert_eq!(err_code(&frames), ErrCode::Busy);
        assert!(eof);
        assert_eq!(rig.server.clients(), MAX_CLIENTS);
        // A freed slot is usable again.
        drop(held);
        rig.pump();
        assert_eq!(rig.server.clients(), 0);
        let (frames, _) = rig.ask(Request::Status { name: None });
        assert!(matches!(one(&frames), Reply::Status(_)));
    }

    #[test]
    fn other_users_are_refused() {
        let dir = TempDir::new("ctl-uid");
        let path = dir.0.join("control");
        // Tests run as root; allow only someone else.
        let other = if uid() == ROOT { 4242 } else { ROOT };
        let mut server = Server::bind(&path, other).unwrap();
        let mut fake = Fake::with(&["web"]);
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_nonblocking(true).unwrap();
        send(&mut s, &Request::Shutdown(ShutdownKind::Reboot));
        server.on_ready(0, &mut fake);
        let (frames, eof) = collect(&mut s);
        assert_eq!(err_code(&frames), ErrCode::Denied);
        assert!(eof);
        assert!(fake.shutdowns.is_empty());
        assert_eq!(server.clients(), 0);
    }

    #[test]
    fn start_reply_waits_until_the_unit_settles() {
        let mut rig = Rig::new("ctl-start");
        let mut s = rig.connect();
        send(&mut s, &Request::Start { name: "web" });
        rig.pump();
        assert_eq!(rig.fake.actions, ["start web"]);
        assert_eq!(collect(&mut s), (vec![], false));
        // Waiting clients have no deadline: the client times out itself.
        assert_eq!(rig.server.next_deadline(), None);
        rig.now += 60_000;
        rig.pump();
        assert_eq!(collect(&mut s), (vec![], false));
        rig.fake.settle = Some(Ok(()));
        rig.server.poll_waiters(rig.now, &mut rig.fake);
        let (frames, eof) = collect(&mut s);
        assert_eq!(one(&frames), Reply::Ok);
        assert!(eof);
    }

    #[test]
    fn failed_start_and_unknown_units_are_errors() {
        let mut rig = Rig::new("ctl-startfail");
        let mut s = rig.connect();
        send(&mut s, &Request::Restart { name: "db" });
        rig.pump();
        rig.fake.settle = Some(Err(CtlError::new(ErrCode::Failed, "db failed: exit 1")));
        rig.server.poll_waiters(rig.now, &mut rig.fake);
        let (frames, _) = collect(&mut s);
        assert_eq!(err_code(&frames), ErrCode::Failed);
        let (frames, _) = rig.ask(Request::Stop { name: "nope" });
        assert_eq!(err_code(&frames), ErrCode::NoSuchUnit);
        let long = "x".repeat(40);
        let (frames, _) = rig.ask(Request::Stop { name: &long });
        assert_eq!(err_code(&frames), ErrCode::NoSuchUnit);
        assert_eq!(rig.fake.actions, ["restart db"]);
    }

    #[test]
    fn already_settled_action_replies_at_once() {
        let mut rig = Rig::new("ctl-settled");
        rig.fake.settle = Some(Ok(()));
        let mut s = rig.connect();
        send(&mut s, &Request::Stop { name: "db" });
        rig.server.on_ready(rig.now, &mut rig.fake);
        let (frames, eof) = collect(&mut s);
        assert_eq!(one(&frames), Reply::Ok);
        assert!(eof);
    }

    #[test]
    fn waiter_that_hangs_up_frees_its_slot() {
        let mut rig = Rig::new("ctl-hangup");
        let mut s = rig.connect();
        send(&mut s, &Request::Start { name: "web" });
        rig.pump();
        assert_eq!(rig.server.clients(), 1);
        drop(s);
        rig.pump();
        assert_eq!(rig.server.clients(), 0);
    }

    #[test]
    fn shutdown_is_acknowledged_then_done() {
        let mut rig = Rig::new("ctl-shutdown");
        let (frames, _) = rig.ask(Request::Shutdown(ShutdownKind::Poweroff));
        assert_eq!(one(&frames), Reply::Ok);
        assert_eq!(rig.fake.shutdowns, [ShutdownKind::Poweroff]);
    }

    #[test]
    fn log_sends_the_ring_and_closes() {
        let mut rig = Rig::new("ctl-log");
        rig.fake.unit("web").log.push(b"hello\nworld\n");
        let (frames, eof) = rig.ask(Request::Log {
            name: "web",
            follow: false,
        });
        assert_eq!(
            one(&frames),
            Reply::Log {
                missed: 0,
                data: b"hello\nworld\n"
            }
        );
        assert!(eof);
        // Empty ring: nothing, then the close.
        assert_eq!(
            rig.ask(Request::Log {
                name: "db",
                follow: false
            }),
            (vec![], true)
        );
        rig.fake.unit("db").captured = false;
        let (frames, _) = rig.ask(Request::Log {
            name: "db",
            follow: false,
        });
        assert_eq!(err_code(&frames), ErrCode::NoLog);
    }

    #[test]
    fn log_follow_is_fed_new_output_and_told_of_losses() {
        let mut rig = Rig::new("ctl-follow");
        rig.fake.unit("web").log.push(b"old\n");
        let mut s = rig.connect();
        send(
            &mut s,
            &Request::Log {
                name: "web",
                follow: true,
            },
        );
        rig.pump();
        let (frames, eof) = collect(&mut s);
        assert_eq!(
            one(&frames),
            Reply::Log {
                missed: 0,
                data: b"old\n"
            }
        );
        assert!(!eof);
        // No new output: nothing sent.
        rig.pump();
        assert_eq!(collect(&mut s), (vec![], false));
        rig.fake.unit("web").log.push(b"new\n");
        rig.server.poll_waiters(rig.now, &mut rig.fake);
        let (frames, _) = collect(&mut s);
        assert_eq!(
            one(&frames),
            Reply::Log {
                missed: 0,
                data: b"new\n"
            }
        );
        // More than the ring holds between two polls: the loss is told.
        let burst = vec![b'z'; LOG_RING_BYTES + 10];
        rig.fake.unit("web").log.push(&burst);
        rig.server.poll_waiters(rig.now, &mut rig.fake);
        let (frames, _) = collect(&mut s);
        match one(&frames) {
            Reply::Log { missed, data } => {
                assert_eq!(missed, 10);
                assert_eq!(data.len(), LOG_RING_BYTES);
            }
            other => panic!("{other:?}"),
        }
        // Followers have no deadline.
        rig.now += 10 * CLIENT_TIMEOUT_MS;
        rig.pump();
        assert_eq!(rig.server.clients(), 1);
        // The unit disappears: the follower is told and closed.
        rig.fake.units.retain(|u| u.status.name != "web");
        rig.server.poll_waiters(rig.now, &mut rig.fake);
        let (frames, eof) = collect(&mut s);
        assert_eq!(err_code(&frames), ErrCode::NoSuchUnit);
        assert!(eof);
    }

    #[test]
    fn follower_that_does_not_read_is_resumed_without_blocking() {
        let mut rig = Rig::new("ctl-slow");
        let mut s = rig.connect();
        send(
            &mut s,
            &Request::Log {
                name: "web",
                follow: true,
            },
        );
        rig.pump();
        // Fill the socket: the server must neither block nor lose track.
        let mut total = 0u64;
        for i in 0..2_000u32 {
            let line = format!("{i:0>63}\n");
            rig.fake.unit("web").log.push(line.as_bytes());
            total += line.len() as u64;
            rig.server.poll_waiters(rig.now, &mut rig.fake);
        }
        // Read everything now, letting the server refill as room appears.
        let mut got = 0u64;
        let mut missed = 0u64;
        for _ in 0..200 {
            let (frames, eof) = collect(&mut s);
            assert!(!eof);
            for f in &frames {
                match decode_reply(f).unwrap() {
                    Reply::Log { missed: m, data } => {
                        got += data.len() as u64;
                        missed += m;
                    }
                    other => panic!("{other:?}"),
                }
            }
            rig.pump();
        }
        assert_eq!(got + missed, total);
        assert!(got > 0);
    }

    #[test]
    fn follower_that_stops_reading_is_dropped_after_the_timeout() {
        let mut rig = Rig::new("ctl-stall");
        let _s = rig.connect();
        send(
            &mut _s.try_clone().unwrap(),
            &Request::Log {
                name: "web",
                follow: true,
            },
        );
        rig.pump();
        // Output keeps coming and the client never reads: the socket fills.
        for i in 0..2_000u32 {
            rig.fake
                .unit("web")
                .log
                .push(format!("{i:0>63}\n").as_bytes());
            rig.server.poll_waiters(rig.now, &mut rig.fake);
        }
        assert_eq!(rig.server.clients(), 1);
        assert_eq!(
            rig.server.next_deadline(),
            Some(rig.now + CLIENT_TIMEOUT_MS)
        );
        rig.now += CLIENT_TIMEOUT_MS;
        rig.pump();
        rig.server.on_timer(rig.now);
        assert_eq!(
            rig.server.clients(),
            0,
            "the stalled follower keeps its slot"
        );
    }

    #[test]
    fn cat_and_reload_carry_text() {
        let mut rig = Rig::new("ctl-cat");
        let (frames, _) = rig.ask(Request::Cat { name: "web" });
        assert_eq!(one(&frames), Reply::Cat("exec = /bin/web\n"));
        // Text larger than a frame is cut with a note, not dropped.
        rig.fake.cat_bytes = FRAME_BUF;
        let (frames, _) = rig.ask(Request::Cat { name: "web" });
        match one(&frames) {
            Reply::Cat(t) => {
                assert!(t.len() <= TEXT_MAX);
                assert!(t.ends_with("# (truncated)\n"));
            }
            other => panic!("{other:?}"),
        }
        rig.fake.reload_lines = vec!["a.unit:3: unknown key".into(), "started b".into()];
        rig.fake.reload_invalid = true;
        let (frames, _) = rig.ask(Request::Reload);
        match one(&frames) {
            Reply::Reload { result, report } => {
                assert_eq!(result.unwrap_err().code, ErrCode::Invalid);
                assert_eq!(report, "a.unit:3: unknown key\nstarted b");
            }
            other => panic!("{other:?}"),
        }
        rig.fake.reload_lines = (0..2_000).map(|i| format!("line {i}")).collect();
        rig.fake.reload_invalid = false;
        let (frames, _) = rig.ask(Request::Reload);
        match one(&frames) {
            Reply::Reload { result, report } => {
                assert!(result.is_ok());
                assert!(report.starts_with("line 0\nline 1\n"));
                assert!(
                    report.ends_with("more lines"),
                    "{}",
                    &report[report.len() - 40..]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_requests_in_one_frame_burst_only_first_is_served() {
        let mut rig = Rig::new("ctl-two");
        let mut s = rig.connect();
        let mut buf = [0u8; 64];
        let a = encode_request(&Request::Shutdown(ShutdownKind::Halt), &mut buf).unwrap();
        let b = encode_request(&Request::Shutdown(ShutdownKind::Reboot), &mut buf[a..]).unwrap();
        s.write_all(&buf[..a + b]).unwrap();
        rig.pump();
        let (frames, eof) = collect(&mut s);
        assert_eq!(one(&frames), Reply::Ok);
        assert!(eof);
        assert_eq!(rig.fake.shutdowns, [ShutdownKind::Halt]);
    }
}
