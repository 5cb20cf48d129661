//! The `initctl` protocol: what travels over `/run/wren/control`.
//!
//! A frame is a `u32` little-endian payload length followed by the payload.
//! The payload is postcard: a `u16` protocol version, then one `Request` or
//! `Reply` (written and read by hand in `wire`; the serde derives give the
//! tests postcard's own bytes to compare). The length is checked against `FRAME_MAX` before anything is
//! buffered, so a hostile prefix (say 4 GiB) is an error, never an
//! allocation. Everything here is pure and allocation-free: messages borrow
//! their strings and bytes from the frame buffer they were decoded from.
//!
//! A connection carries one request. Its replies: exactly one frame for
//! every request, except `Log`, which gets a stream of `Reply::Log` chunks
//! ended by the server closing the connection (at once without `follow`).

use crate::unit::Limit;
use crate::vocab::{Name, ShutdownKind, State};
use serde::{Deserialize, Serialize};

mod wire;

/// Bumped on any incompatible change to `Request` or `Reply`.
pub const PROTO_VERSION: u16 = 5;
/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;
/// Largest payload either side accepts. A full status page of
/// `STATUS_PAGE` units is about 6 KiB, a whole log ring 4 KiB.
pub const FRAME_MAX: usize = 16 * 1024;
/// Largest request payload: a name or a path and a few tags (`initctl`
/// encodes into this much; PID 1 reads requests into this much).
pub const REQUEST_MAX: usize = 512;
/// Buffer that holds any one frame, prefix included.
pub const FRAME_BUF: usize = HEADER_LEN + FRAME_MAX;
/// Room kept in a frame for everything around one borrowed text or byte
/// field: prefix, version, enum tags, integers, length varints.
pub const FRAME_OVERHEAD: usize = 64;
/// Largest borrowed text or bytes in one reply (`Cat`, `Reload`, `Log`,
/// the log tail of `Detail`).
pub const TEXT_MAX: usize = FRAME_MAX - FRAME_OVERHEAD;
/// Most of a unit's output `status NAME` sends: the frame less the
/// largest detail beside it (`detail_with_the_longest_tail_fits_a_frame`).
pub const DETAIL_TAIL_MAX: usize = TEXT_MAX - 512 - CONFINEMENT_MAX - NOT_ENFORCED_MAX;
/// Bytes of an error message. With a one-byte length it keeps `CtlError`
/// small enough to return by value everywhere.
pub const MESSAGE_MAX: usize = 120;
/// An error message.
pub type Message = heapless::String<MESSAGE_MAX, u8>;
/// Bytes of the "why is it failed / waiting" text of a unit.
pub const REASON_MAX: usize = 240;
/// Bytes of the confinement line of `initctl status NAME`: the longest
/// one fits (`the_longest_confinement_line_fits`), a root of `ROOT_BYTES`
/// and every capability but one among it.
pub const CONFINEMENT_MAX: usize = 1536;
/// Bytes of the `not enforced:` list: every limit key fits
/// (`every_key_fits_not_enforced`).
pub const NOT_ENFORCED_MAX: usize = 128;
/// Units in one `Reply::Status`: the table comes in pages, so a frame and
/// the server's buffers stay the same size whatever the number of units.
pub const STATUS_PAGE: usize = 64;
/// Log lines `status NAME` shows.
pub const TAIL_LINES: usize = 10;

/// What `initctl` asks. Names are borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// `None`: the table of every unit (`Reply::Status`), one page of it
    /// from slot `from` on; `Some`: one unit in detail (`Reply::Detail`).
    Status {
        name: Option<&'a str>,
        from: u16,
    },
    Start {
        name: &'a str,
    },
    Stop {
        name: &'a str,
    },
    Restart {
        name: &'a str,
    },
    Shutdown(ShutdownKind),
    Log {
        name: &'a str,
        follow: bool,
    },
    Cat {
        name: &'a str,
    },
    Reload,
    /// After `Reload`: wait until every unit it changed or added is judged
    /// (ready within its `start_timeout`, or put back); answered with
    /// `Reply::Reload`, one line per verdict, `Err` when one was rejected.
    Verdict,
    /// Replace PID 1 with the wren at `path` (empty: `/sbin/init`), handing
    /// its state over; `Reply::Ok` just before the exec, `Reply::Error`
    /// when `path` is refused.
    Reexec {
        path: &'a str,
    },
    /// Which wren runs as PID 1: `Reply::Info`.
    Info,
}

/// Why a request failed, as a code scripts can match and a message people
/// can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrCode {
    /// The two sides speak different protocol versions.
    Version,
    /// Malformed, truncated or oversized frame.
    BadRequest,
    /// The peer is not the allowed user.
    Denied,
    /// Every client slot is taken.
    Busy,
    NoSuchUnit,
    /// The unit has no captured output (`output = console` or `null`).
    NoLog,
    /// The action was taken but the unit did not get where asked
    /// (e.g. `start` ended in `failed`).
    Failed,
    /// `reload`: at least one unit file is invalid.
    Invalid,
    /// Refused in the current state (e.g. shutting down).
    Refused,
    Internal,
}

impl ErrCode {
    /// Every code, in declaration order (a code's index is its number on
    /// the wire).
    pub const ALL: [ErrCode; 10] = [
        ErrCode::Version,
        ErrCode::BadRequest,
        ErrCode::Denied,
        ErrCode::Busy,
        ErrCode::NoSuchUnit,
        ErrCode::NoLog,
        ErrCode::Failed,
        ErrCode::Invalid,
        ErrCode::Refused,
        ErrCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrCode::Version => "protocol version mismatch",
            ErrCode::BadRequest => "bad request",
            ErrCode::Denied => "permission denied",
            ErrCode::Busy => "too many clients",
            ErrCode::NoSuchUnit => "no such unit",
            ErrCode::NoLog => "unit output is not captured",
            ErrCode::Failed => "failed",
            ErrCode::Invalid => "invalid unit file",
            ErrCode::Refused => "refused",
            ErrCode::Internal => "internal error",
        }
    }
}

/// An error as PID 1 reports it to `initctl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtlError {
    pub code: ErrCode,
    /// May be empty: then the code's text is shown.
    pub message: Message,
}

impl CtlError {
    /// `message` is cut (at a character boundary) to `MESSAGE_MAX` bytes.
    pub fn new(code: ErrCode, message: &str) -> Self {
        CtlError {
            code,
            message: truncated(message),
        }
    }

    pub fn code(code: ErrCode) -> Self {
        Self::new(code, "")
    }

    /// Formats the message into the fixed buffer; overflow is cut, not an
    /// error, so PID 1 can build messages without allocating.
    pub fn fmt(code: ErrCode, args: core::fmt::Arguments<'_>) -> Self {
        CtlError {
            code,
            message: formatted(args),
        }
    }
}

impl core::fmt::Display for CtlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.message.is_empty() {
            f.write_str(self.code.as_str())
        } else {
            f.write_str(&self.message)
        }
    }
}

/// A `fmt::Write` into a heapless string that keeps what fits in its
/// first `room` bytes. On the string's view, so there is one copy of it
/// whatever the capacity.
struct CutString<'a, L: heapless::LenType> {
    out: &'a mut heapless::string::StringView<L>,
    room: usize,
}

impl<L: heapless::LenType> core::fmt::Write for CutString<'_, L> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            if self.out.len() + c.len_utf8() > self.room || self.out.push(c).is_err() {
                return Err(core::fmt::Error);
            }
        }
        Ok(())
    }
}

/// What ends a cut text: ASCII, as a serial console shows it whatever
/// its character set (the kernel log's backlog says the same).
pub const CUT: &str = "...";

/// `args` into the first `room` bytes of `out`; when they do not fit,
/// ended with `CUT`, characters dropped to make room for it: a reason or
/// a message cut short says so, rather than ending in the middle of a
/// word as if that were all.
fn write_cut<L: heapless::LenType>(
    out: &mut heapless::string::StringView<L>,
    args: core::fmt::Arguments<'_>,
    room: usize,
) {
    let room = room.min(out.capacity());
    if core::fmt::write(&mut CutString { out, room }, args).is_ok() {
        return;
    }
    while out.len() + CUT.len() > room {
        if out.pop().is_none() {
            return;
        }
    }
    let _ = out.push_str(CUT);
}

/// `s` cut at a character boundary to fit `N` bytes, ending with `CUT`
/// when cut.
pub fn truncated<const N: usize, L: heapless::LenType>(s: &str) -> heapless::String<N, L> {
    formatted(format_args!("{s}"))
}

/// `args` formatted into `N` bytes, cut at a character boundary and
/// ended with `CUT` when longer: messages built without allocating.
pub fn formatted<const N: usize, L: heapless::LenType>(
    args: core::fmt::Arguments<'_>,
) -> heapless::String<N, L> {
    let mut out = heapless::String::new();
    write_cut(out.as_mut_view(), args, N);
    out
}

/// `args`, then `tail` whole: `args` cut (and marked) to leave it room.
/// For the words a message must end with ("; init keeps running",
/// "; nothing changed") whatever the length of what comes before.
pub fn formatted_then<const N: usize, L: heapless::LenType>(
    args: core::fmt::Arguments<'_>,
    tail: &str,
) -> heapless::String<N, L> {
    let mut out = heapless::String::new();
    write_then(out.as_mut_view(), args, tail);
    out
}

/// `formatted_then` into what `out` holds already: one copy for every
/// capacity, and the kernel log's lines (`kmsg`) cut the same way.
pub fn write_then<L: heapless::LenType>(
    out: &mut heapless::string::StringView<L>,
    args: core::fmt::Arguments<'_>,
    tail: &str,
) {
    write_cut(out, args, out.capacity().saturating_sub(tail.len()));
    let _ = out.push_str(tail);
}

/// One line of `initctl status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitStatus {
    pub name: Name,
    pub state: State,
    /// Main process, 0 when none.
    pub pid: u32,
    pub restarts: u32,
    /// `memory.current` of the unit's cgroup; `None` when it has none.
    pub memory_current: Option<u64>,
    /// The unit's `memory.max`; `None` when not set (no limit).
    pub memory_max: Option<Limit>,
    /// Since the main process started; meaningless when `pid` is 0.
    pub uptime_ms: u64,
}

/// How the unit's main process last ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LastExit {
    None,
    Code(i32),
    Signal(i32),
    /// Killed by the OOM killer (from the cgroup's `memory.events`).
    OomKill,
}

/// `initctl status NAME`: the line plus what explains it. The log tail
/// travels beside it in `Reply::Detail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitDetail {
    pub status: UnitStatus,
    pub last_exit: LastExit,
    pub oom_kills: u32,
    /// Memory pressure of the unit's cgroup, PSI `some` avg10 in
    /// hundredths of a percent (None without PSI or cgroup).
    pub pressure_avg10: Option<u32>,
    /// Times the unit's `pressure_limit` trigger fired.
    pub pressure_events: u32,
    /// Limit keys the unit sets that its cgroup cannot enforce (their
    /// controller is not available), blank-separated; empty when none.
    pub not_enforced: heapless::String<NOT_ENFORCED_MAX>,
    /// Why it is failed / in backoff / waiting, e.g. `start limit hit` or
    /// `waiting for net`; empty when there is nothing to say.
    pub reason: heapless::String<REASON_MAX>,
    /// One line: namespaces, user, capabilities, no_new_privs, seccomp,
    /// read-only (`confine::Summary`).
    pub confinement: heapless::String<CONFINEMENT_MAX>,
}

/// What PID 1 answers.
// The status table makes this ~6 KiB; boxing it would put an allocation on
// PID 1's request path, and a reply only ever lives briefly on the stack.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply<'a> {
    /// Start / stop / restart settled as asked; shutdown accepted.
    Ok,
    Error(CtlError),
    /// A page of the table; `next` is the `from` that asks for the rest,
    /// `None` on the last page.
    Status {
        units: heapless::Vec<UnitStatus, STATUS_PAGE>,
        next: Option<u16>,
    },
    Detail {
        detail: UnitDetail,
        /// The last `TAIL_LINES` lines of the unit's output.
        log: &'a [u8],
    },
    /// Captured output. `missed` counts bytes that were overwritten in the
    /// ring before this follower could be sent them.
    Log {
        missed: u64,
        data: &'a [u8],
    },
    Cat(&'a str),
    Reload {
        result: Result<(), CtlError>,
        /// Report lines joined by `\n`.
        report: &'a str,
    },
    Info(InitInfo),
}

/// The wren running as PID 1 (`initctl status` shows it under the table).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitInfo {
    /// The binary, as /proc/self/exe named it when it started.
    pub path: heapless::String<{ crate::vocab::PATH_BYTES }>,
    pub version: heapless::String<32>,
    /// The `reexec` state format it reads and writes.
    pub state_format: u32,
    /// Re-execs since boot.
    pub reexecs: u32,
    pub origin: Origin,
}

/// How the running PID 1 began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    #[default]
    Boot,
    /// Took the previous PID 1's state; `units` were running.
    HandedOver { units: u32 },
    /// Could not read the previous PID 1's state (of `format`): adopted
    /// the `units` it found running.
    Adopted { units: u32, format: u32 },
}

/// Why a frame could not be made or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtoError {
    /// The payload's protocol version is not `PROTO_VERSION`.
    Version { got: u16 },
    /// Not a valid message, or bytes after it.
    Malformed,
    /// The length prefix exceeds the limit (checked before buffering).
    TooLarge { len: u32 },
    /// The message does not fit the output buffer.
    NoRoom,
}

impl core::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProtoError::Version { got } => write!(
                f,
                "protocol version {got}, expected {PROTO_VERSION} (initctl and init differ)"
            ),
            ProtoError::Malformed => f.write_str("malformed message"),
            ProtoError::TooLarge { len } => {
                write!(f, "frame of {len} bytes exceeds the {FRAME_MAX}-byte limit")
            }
            ProtoError::NoRoom => f.write_str("message does not fit the frame buffer"),
        }
    }
}

/// Writes the whole frame (prefix included) into `out`; returns its length.
pub fn encode_request(req: &Request<'_>, out: &mut [u8]) -> Result<usize, ProtoError> {
    wire::encode_request(req, out)
}

/// Writes the whole frame (prefix included) into `out`; returns its length.
pub fn encode_reply(rep: &Reply<'_>, out: &mut [u8]) -> Result<usize, ProtoError> {
    wire::encode_reply(rep, out)
}

/// Decodes a frame's payload (without the prefix).
pub fn decode_request(payload: &[u8]) -> Result<Request<'_>, ProtoError> {
    wire::decode_request(payload)
}

/// Decodes a frame's payload (without the prefix).
pub fn decode_reply(payload: &[u8]) -> Result<Reply<'_>, ProtoError> {
    wire::decode_reply(payload)
}

/// Looks at the start of `buf`: `Ok(None)` until a whole frame is there,
/// then `Ok(Some(payload_len))`. A prefix above `max` is an error at once,
/// from the first four bytes.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, ProtoError> {
    let Some(prefix) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let mut b = [0u8; HEADER_LEN];
    b.copy_from_slice(prefix);
    let len = u32::from_le_bytes(b);
    if u64::from(len) > max as u64 {
        return Err(ProtoError::TooLarge { len });
    }
    let len = len as usize;
    Ok((buf.len() >= HEADER_LEN.saturating_add(len)).then_some(len))
}

/// Accumulates bytes from a stream, however they are split, into frames.
/// Holds at most `N` bytes; the largest payload it accepts is
/// `min(FRAME_MAX, N - HEADER_LEN)`.
pub struct FrameDecoder<const N: usize = FRAME_BUF> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for FrameDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameDecoder<N> {
    pub const fn new() -> Self {
        FrameDecoder {
            buf: [0; N],
            len: 0,
        }
    }

    fn max_payload() -> usize {
        FRAME_MAX.min(N.saturating_sub(HEADER_LEN))
    }

    /// Free space to `read` into; report what was read with `advance`.
    pub fn spare(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.len..).unwrap_or_default()
    }

    pub fn advance(&mut self, n: usize) {
        self.len = self.len.saturating_add(n).min(N);
    }

    /// Copies as much of `data` as fits; returns how much that was.
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let spare = self.spare();
        let n = spare.len().min(data.len());
        if let (Some(to), Some(from)) = (spare.get_mut(..n), data.get(..n)) {
            to.copy_from_slice(from);
        }
        self.advance(n);
        n
    }

    /// Bytes held (a partial frame, or whole ones not yet consumed).
    pub fn buffered(&self) -> usize {
        self.len
    }

    /// The payload of the first complete frame, if there is one.
    pub fn frame(&self) -> Result<Option<&[u8]>, ProtoError> {
        let held = self.held();
        match frame_len(held, Self::max_payload())? {
            Some(n) => Ok(held.get(HEADER_LEN..HEADER_LEN.saturating_add(n))),
            None => Ok(None),
        }
    }

    /// Drops the frame `frame` returned, keeping any bytes after it.
    pub fn consume(&mut self) {
        if let Ok(Some(n)) = frame_len(self.held(), Self::max_payload()) {
            // frame_len saw all `total` bytes held, so `total <= len`.
            let total = HEADER_LEN.saturating_add(n).min(self.len);
            self.buf.copy_within(total..self.len, 0);
            self.len -= total;
        }
    }

    /// The bytes held, from the start of the buffer.
    fn held(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests;
