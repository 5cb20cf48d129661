//! One connection's state: its mode in the request/reply exchange and its
//! fixed read and write buffers, plus the helpers that fill the write
//! buffer (log chunks, text replies, a last-gasp error).

use super::Want;
use crate::log_ring::LogRing;
use crate::proto::{
    encode_reply, CtlError, ErrCode, FrameDecoder, Reply, FRAME_BUF, FRAME_OVERHEAD, HEADER_LEN,
    REQUEST_MAX, TEXT_MAX,
};
use crate::vocab::Name;
use rustix::event::epoll;
use rustix::fd::{BorrowedFd, OwnedFd};
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
    /// Requests are small (`REQUEST_MAX`); replies take a whole frame.
    /// Allocated with `tx`.
    pub(super) rx: Rx,
    /// A whole frame (`FRAME_BUF`), allocated when the slot first gets a
    /// connection (`ensure_tx`) and kept: slots never used cost nothing.
    tx: Box<[u8]>,
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

/// A slot's receive buffer, none until its first connection
/// (`Client::ensure_tx`); without one it reads as a full buffer that
/// holds no frame, which drops a client (it cannot happen: every slot
/// that reads was given one when it accepted).
pub(super) struct Rx(Option<Box<FrameDecoder<{ HEADER_LEN + REQUEST_MAX }>>>);

impl Rx {
    pub(super) fn spare(&mut self) -> &mut [u8] {
        self.0.as_mut().map_or(&mut [], |d| d.spare())
    }

    pub(super) fn buffered(&self) -> usize {
        self.0.as_ref().map_or(0, |d| d.buffered())
    }

    pub(super) fn advance(&mut self, n: usize) {
        if let Some(d) = self.0.as_mut() {
            d.advance(n);
        }
    }

    pub(super) fn frame(&self) -> Result<Option<&[u8]>, crate::proto::ProtoError> {
        self.0.as_ref().map_or(Ok(None), |d| d.frame())
    }

    pub(super) fn clear(&mut self) {
        if let Some(d) = self.0.as_mut() {
            d.clear();
        }
    }
}

impl Client {
    pub(super) fn new() -> Self {
        Client {
            fd: None,
            gen: 0,
            rx: Rx(None),
            tx: Box::default(),
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

    /// Gives the slot its send and receive buffers if it has none yet;
    /// returns the allocations this made (two, once per slot, the first
    /// time it is used; else none).
    pub(super) fn ensure_tx(&mut self) -> u64 {
        let mut made = 0;
        if self.tx.is_empty() {
            self.tx = vec![0; FRAME_BUF].into_boxed_slice();
            made += 1;
        }
        if self.rx.0.is_none() {
            self.rx.0 = Some(Box::new(FrameDecoder::new()));
            made += 1;
        }
        made
    }

    /// Forgets any queued output.
    pub(super) fn clear_tx(&mut self) {
        self.tx_start = 0;
        self.tx_end = 0;
    }

    /// Queued bytes not sent yet.
    pub(super) fn unsent(&self) -> &[u8] {
        self.tx.get(self.tx_start..self.tx_end).unwrap_or(&[])
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
            self.tx.copy_within(self.tx_start..self.tx_end, 0);
            self.tx_end -= self.tx_start;
            self.tx_start = 0;
        }
    }

    fn room(&self) -> usize {
        self.tx.len().saturating_sub(self.tx_end)
    }

    /// Queues a reply frame; one that cannot be encoded (too large for the
    /// room left) is replaced by an error, or dropped if even that fails.
    pub(super) fn enqueue(&mut self, rep: &Reply<'_>) -> bool {
        self.compact();
        let Some(out) = self.tx.get_mut(self.tx_end..) else {
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

/// Best-effort single error frame on a connection about to be dropped.
pub(super) fn refuse(fd: BorrowedFd<'_>, err: CtlError) {
    let mut buf = [0u8; 256];
    if let Ok(n) = encode_reply(&Reply::Error(err), &mut buf) {
        let _ = net::send(
            fd,
            buf.get(..n).unwrap_or(&[]),
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        );
    }
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
