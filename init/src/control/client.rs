//! One connection's state: its mode in the request/reply exchange and its
//! buffer, plus the helpers that queue replies in it (log chunks, text
//! replies, a last-gasp error).

use super::Want;
use crate::log_ring::LogRing;
use crate::proto::{
    encode_reply, frame_len, CtlError, ErrCode, ProtoError, Reply, FRAME_OVERHEAD, HEADER_LEN,
    REQUEST_MAX, TEXT_MAX,
};
use crate::vocab::Name;
use rustix::event::epoll;
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::{self, SendFlags};

/// Bytes kept at the end of a `Cat` or `Reload` text for a truncation note.
const NOTE_ROOM: usize = 48;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Free,
    /// Waiting for the request.
    Reading,
    /// The request went to the loop; its answer comes back by `answer*`.
    Answering,
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

pub(super) struct Client {
    pub(super) fd: Option<OwnedFd>,
    /// Bumped on every close, so a stale epoll event or a late answer for
    /// a slot's earlier connection is recognised.
    pub(super) gen: u32,
    /// Bytes of the request read so far, at the start of `buf`.
    pub(super) rx: usize,
    /// A whole frame (`FRAME_BUF`) while connected, none while the slot is
    /// free (`set_buffer`): memory follows the connections open. The
    /// request is read into its start (it is small, `REQUEST_MAX`), the
    /// replies are queued in it once the request is read: a connection
    /// carries one request.
    buf: Box<[u8]>,
    tx_start: usize,
    tx_end: usize,
    pub(super) deadline: Option<u64>,
    pub(super) mode: Mode,
    /// The interest registered in epoll.
    pub(super) interest: epoll::EventFlags,
    /// When it began to wait or follow (`Server::waiting_seq`).
    pub(super) waiting_since: u64,
    /// The peer shut its writing side after its request (`nc -N`,
    /// `socat`): it may still read, so it is not closed before a hang-up
    /// (EPOLLHUP) says it is gone.
    pub(super) peer_shut: bool,
    /// The peer is uid 0 without CAP_SYS_ADMIN (a unit that runs as root
    /// with its capabilities dropped): it may look (status, log, cat),
    /// not change anything.
    pub(super) observer: bool,
}

impl Client {
    pub(super) fn new() -> Self {
        Client {
            fd: None,
            gen: 0,
            rx: 0,
            buf: Box::default(),
            tx_start: 0,
            tx_end: 0,
            deadline: None,
            mode: Mode::Free,
            interest: epoll::EventFlags::empty(),
            waiting_since: 0,
            peer_shut: false,
            observer: false,
        }
    }

    /// The epoll token, also the `ClientId` the loop answers to.
    pub(super) fn token(&self, slot: usize) -> u64 {
        (u64::from(self.gen) << 8) | slot as u64
    }

    pub(super) fn pending(&self) -> bool {
        self.tx_start < self.tx_end
    }

    /// Gives the connection its buffer, or takes it back at its close
    /// (`Box::default()`): nothing read or queued.
    pub(super) fn set_buffer(&mut self, buf: Box<[u8]>) {
        self.buf = buf;
        self.rx = 0;
        self.clear_tx();
    }

    /// Reads more of the request; `Ok(0)` at the peer's end of file (or
    /// with no room left, which cannot happen: `HEADER_LEN + REQUEST_MAX`
    /// bytes hold a whole request or an oversized prefix).
    pub(super) fn recv_request(&mut self) -> rustix::io::Result<usize> {
        let room = self.buf.get_mut(self.rx..HEADER_LEN + REQUEST_MAX);
        let fd = self.fd.as_ref().ok_or(Errno::BADF)?;
        // EPERM, nothing read, where fds come with it: the loop closes
        // the connection, a closer reads it (`sys::passed`).
        let n =
            crate::sys::passed::recv_stream(rustix::fd::AsFd::as_fd(fd), room.unwrap_or_default())?;
        self.rx += n;
        Ok(n)
    }

    /// The request's payload, once all of it has been read.
    pub(super) fn request(&self) -> Result<Option<&[u8]>, ProtoError> {
        let held = self.buf.get(..self.rx).unwrap_or_default();
        Ok(frame_len(held, REQUEST_MAX)?.and_then(|n| held.get(HEADER_LEN..HEADER_LEN + n)))
    }

    /// Holds one of the `MAX_WAITING` slots rather than the operator's
    /// reserve: it waits (start, stop, restart, `log -f`), or its peer may
    /// only look.
    pub(super) fn unreserved(&self) -> bool {
        self.fd.is_some()
            && (self.observer || matches!(self.mode, Mode::Waiting { .. } | Mode::Following { .. }))
    }

    /// Forgets any queued output.
    pub(super) fn clear_tx(&mut self) {
        self.tx_start = 0;
        self.tx_end = 0;
    }

    /// Queued bytes not sent yet.
    pub(super) fn unsent(&self) -> &[u8] {
        self.buf.get(self.tx_start..self.tx_end).unwrap_or(&[])
    }

    /// `n` bytes of `unsent` went out.
    pub(super) fn sent(&mut self, n: usize) {
        self.tx_start = self.tx_start.saturating_add(n).min(self.tx_end);
    }

    pub(super) fn wanted_interest(&self) -> epoll::EventFlags {
        use epoll::EventFlags as F;
        let out = if self.pending() { F::OUT } else { F::empty() };
        match self.mode {
            Mode::Free => F::empty(),
            // Input is no longer read: a peer that hung up would keep the
            // fd readable and spin PID 1. HUP and ERR are reported anyway.
            Mode::Closing => F::OUT,
            // Nor once the peer shut its side: its end of file stays
            // readable.
            _ if self.peer_shut => out,
            Mode::Reading | Mode::Answering | Mode::Waiting { .. } | Mode::Following { .. } => {
                F::IN | F::RDHUP | out
            }
        }
    }

    /// Moves unsent bytes to the front, so the free room is at the end.
    fn compact(&mut self) {
        if self.tx_start > 0 {
            self.buf.copy_within(self.tx_start..self.tx_end, 0);
            self.tx_end -= self.tx_start;
            self.tx_start = 0;
        }
    }

    fn room(&self) -> usize {
        self.buf.len().saturating_sub(self.tx_end)
    }

    /// Queues a reply frame; one that cannot be encoded (too large for the
    /// room left) is replaced by an error, or dropped if even that fails.
    pub(super) fn enqueue(&mut self, rep: &Reply<'_>) -> bool {
        self.compact();
        let Some(out) = self.buf.get_mut(self.tx_end..) else {
            return false;
        };
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

    /// Queues the ring's bytes from `pos` as one `Reply::Log` chunk, as
    /// much as fits; returns the position after what was queued.
    pub(super) fn queue_log(&mut self, scratch: &mut [u8], ring: &LogRing, pos: u64) -> u64 {
        let since = ring.since(pos);
        if since.data.is_empty() && since.missed == 0 {
            return pos;
        }
        self.compact();
        if self.room() <= FRAME_OVERHEAD {
            // Still sending the last chunk: the follower catches up later,
            // from where it is, and is told what the ring dropped meanwhile.
            return pos;
        }
        let max = (self.room() - FRAME_OVERHEAD).min(scratch.len());
        let Some(room) = scratch.get_mut(..max) else {
            return pos;
        };
        let n = since.data.copy_head(room);
        let rep = Reply::Log {
            missed: since.missed,
            data: room.get(..n).unwrap_or(&[]),
        };
        if self.enqueue(&rep) {
            since.from + n as u64
        } else {
            pos
        }
    }
}

/// Best-effort single error frame on a connection turned away, then
/// closed as every connection is (`sys::passed::close`: what it queued,
/// fds with it, is not released in PID 1's time). A caller that added it
/// to the epoll set takes it out first: its copy in the park would keep
/// the registration.
pub(super) fn refuse(fd: OwnedFd, err: CtlError) {
    let mut buf = [0u8; 256];
    if let Ok(n) = encode_reply(&Reply::Error(err), &mut buf) {
        let _ = net::send(
            &fd,
            buf.get(..n).unwrap_or(&[]),
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        );
    }
    crate::sys::passed::close(fd);
}

/// The text of a `Cat` or `Reload` reply, built by the loop in a fixed
/// buffer: whole characters up to a limit, then a note of what was cut.
pub struct Text {
    buf: [u8; TEXT_MAX],
    len: usize,
    limit: usize,
    overflow: bool,
    dropped: u32,
}

impl Default for Text {
    fn default() -> Self {
        Text {
            buf: [0; TEXT_MAX],
            len: 0,
            limit: TEXT_MAX - NOTE_ROOM,
            overflow: false,
            dropped: 0,
        }
    }
}

impl Text {
    /// Writes `s` whole or not at all.
    fn put(&mut self, s: &str) -> bool {
        let end = self.len.saturating_add(s.len());
        if end > self.limit {
            return false;
        }
        let Some(dst) = self.buf.get_mut(self.len..end) else {
            return false;
        };
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        true
    }

    /// One report line: lines are joined by `\n`; those past the room are
    /// counted and noted by `report`.
    pub fn line(&mut self, line: &str) {
        let sep = if self.len > 0 { "\n" } else { "" };
        if self.len + sep.len() + line.len() <= self.limit {
            self.put(sep);
            self.put(line);
        } else {
            self.dropped += 1;
        }
    }

    /// The text as a reload report, with how many lines did not fit.
    pub fn report(&mut self) -> &str {
        if self.dropped > 0 {
            self.limit = self.buf.len();
            let dropped = self.dropped;
            self.dropped = 0;
            let _ = core::fmt::write(self, format_args!("\n... and {dropped} more lines"));
        }
        self.text()
    }

    /// The text as a unit file, with a comment where it was cut.
    pub fn unit_file(&mut self) -> &str {
        if self.overflow {
            self.overflow = false;
            self.limit = self.buf.len();
            self.put("\n# (truncated)\n");
        }
        self.text()
    }

    fn text(&self) -> &str {
        // Only whole `str`s and whole characters were copied in.
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl core::fmt::Write for Text {
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
