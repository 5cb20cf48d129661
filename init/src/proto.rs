//! The `initctl` protocol: what travels over `/run/wren/control`.
//!
//! A frame is a `u32` little-endian payload length followed by the payload.
//! The payload is postcard: a `u16` protocol version, then one `Request` or
//! `Reply`. The length is checked against `FRAME_MAX` before anything is
//! buffered, so a hostile prefix (say 4 GiB) is an error, never an
//! allocation. Everything here is pure and allocation-free: messages borrow
//! their strings and bytes from the frame buffer they were decoded from.
//!
//! A connection carries one request. Its replies: exactly one frame for
//! every request, except `Log`, which gets a stream of `Reply::Log` chunks
//! ended by the server closing the connection (at once without `follow`).

use crate::shutdown::Kind;
use crate::supervisor::State;
use crate::unit::{Limit, Name, MAX_UNITS};
use serde::{Deserialize, Serialize};

/// Where PID 1 listens. `initctl` honours `$WREN_CONTROL` over this.
pub const CONTROL_SOCKET: &str = "/run/wren/control";
/// Bumped on any incompatible change to `Request` or `Reply`.
pub const PROTO_VERSION: u16 = 1;
/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;
/// Largest payload either side accepts. A full status table of `MAX_UNITS`
/// units is about 6 KiB, a whole log ring 4 KiB.
pub const FRAME_MAX: usize = 16 * 1024;
/// Buffer that holds any one frame, prefix included.
pub const FRAME_BUF: usize = HEADER_LEN + FRAME_MAX;
/// Room kept in a frame for everything around one borrowed text or byte
/// field: prefix, version, enum tags, integers, length varints.
pub const FRAME_OVERHEAD: usize = 64;
/// Largest borrowed text or bytes in one reply (`Cat`, `Reload`, `Log`,
/// the log tail of `Detail`).
pub const TEXT_MAX: usize = FRAME_MAX - FRAME_OVERHEAD;
/// Bytes of an error message. With a one-byte length it keeps `CtlError`
/// small enough to return by value everywhere.
pub const MESSAGE_MAX: usize = 120;
/// An error message.
pub type Message = heapless::String<MESSAGE_MAX, u8>;
/// Bytes of the "why is it failed / waiting" text of a unit.
pub const REASON_MAX: usize = 96;
/// Log lines `status NAME` shows.
pub const TAIL_LINES: usize = 10;

/// What `initctl` asks. Names are borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// `None`: the table of every unit (`Reply::Status`); `Some`: one unit
    /// in detail (`Reply::Detail`).
    Status {
        name: Option<&'a str>,
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
    Shutdown(Kind),
    Log {
        name: &'a str,
        follow: bool,
    },
    Cat {
        name: &'a str,
    },
    Reload,
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

/// A `fmt::Write` into a heapless string that keeps what fits.
struct CutString<const N: usize, L: heapless::LenType = usize>(heapless::String<N, L>);

impl<const N: usize, L: heapless::LenType> Default for CutString<N, L> {
    fn default() -> Self {
        CutString(heapless::String::new())
    }
}

impl<const N: usize, L: heapless::LenType> core::fmt::Write for CutString<N, L> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                return Err(core::fmt::Error);
            }
        }
        Ok(())
    }
}

/// `s` cut at a character boundary to fit `N` bytes.
pub fn truncated<const N: usize, L: heapless::LenType>(s: &str) -> heapless::String<N, L> {
    let mut w = CutString::<N, L>::default();
    let _ = core::fmt::Write::write_str(&mut w, s);
    w.0
}

/// `args` formatted into `N` bytes, cut at a character boundary when
/// longer: messages built without allocating.
pub fn formatted<const N: usize, L: heapless::LenType>(
    args: core::fmt::Arguments<'_>,
) -> heapless::String<N, L> {
    let mut w = CutString::<N, L>::default();
    let _ = core::fmt::write(&mut w, args);
    w.0
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
    /// Why it is failed / in backoff / waiting, e.g. `start limit hit` or
    /// `waiting for net`; empty when there is nothing to say.
    pub reason: heapless::String<REASON_MAX>,
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
    Status(heapless::Vec<UnitStatus, MAX_UNITS>),
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

fn encode<T: Serialize>(msg: &T, out: &mut [u8]) -> Result<usize, ProtoError> {
    let limit = out.len().min(FRAME_BUF);
    let body = out.get_mut(HEADER_LEN..limit).ok_or(ProtoError::NoRoom)?;
    let n = postcard::to_slice(&(PROTO_VERSION, msg), body)
        .map_err(|_| ProtoError::NoRoom)?
        .len();
    // n <= FRAME_MAX < u32::MAX, so the cast is exact.
    let prefix = (n as u32).to_le_bytes();
    out.get_mut(..HEADER_LEN)
        .ok_or(ProtoError::NoRoom)?
        .copy_from_slice(&prefix);
    Ok(HEADER_LEN + n)
}

fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, ProtoError> {
    // The version is read on its own first so that a peer of another
    // version gets a version error rather than "malformed".
    let (version, rest) =
        postcard::take_from_bytes::<u16>(payload).map_err(|_| ProtoError::Malformed)?;
    if version != PROTO_VERSION {
        return Err(ProtoError::Version { got: version });
    }
    let (msg, rest) = postcard::take_from_bytes::<T>(rest).map_err(|_| ProtoError::Malformed)?;
    if !rest.is_empty() {
        return Err(ProtoError::Malformed);
    }
    Ok(msg)
}

/// Writes the whole frame (prefix included) into `out`; returns its length.
pub fn encode_request(req: &Request<'_>, out: &mut [u8]) -> Result<usize, ProtoError> {
    encode(req, out)
}

/// Writes the whole frame (prefix included) into `out`; returns its length.
pub fn encode_reply(rep: &Reply<'_>, out: &mut [u8]) -> Result<usize, ProtoError> {
    encode(rep, out)
}

/// Decodes a frame's payload (without the prefix).
pub fn decode_request(payload: &[u8]) -> Result<Request<'_>, ProtoError> {
    decode(payload)
}

/// Decodes a frame's payload (without the prefix).
pub fn decode_reply(payload: &[u8]) -> Result<Reply<'_>, ProtoError> {
    decode(payload)
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
    Ok((buf.len() >= HEADER_LEN + len).then_some(len))
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
        spare[..n].copy_from_slice(&data[..n]);
        self.advance(n);
        n
    }

    /// Bytes held (a partial frame, or whole ones not yet consumed).
    pub fn buffered(&self) -> usize {
        self.len
    }

    /// The payload of the first complete frame, if there is one.
    pub fn frame(&self) -> Result<Option<&[u8]>, ProtoError> {
        let held = &self.buf[..self.len];
        match frame_len(held, Self::max_payload())? {
            Some(n) => Ok(held.get(HEADER_LEN..HEADER_LEN + n)),
            None => Ok(None),
        }
    }

    /// Drops the frame `frame` returned, keeping any bytes after it.
    pub fn consume(&mut self) {
        if let Ok(Some(n)) = frame_len(&self.buf[..self.len], Self::max_payload()) {
            let total = HEADER_LEN + n;
            self.buf.copy_within(total..self.len, 0);
            self.len -= total;
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        truncated(s)
    }

    fn status(n: &str) -> UnitStatus {
        UnitStatus {
            name: name(n),
            state: State::Running,
            pid: 42,
            restarts: 3,
            memory_current: Some(1_234_567),
            memory_max: Some(Limit::Value(8 << 20)),
            uptime_ms: 65_000,
        }
    }

    fn roundtrip_req(req: Request<'_>) {
        let mut buf = [0u8; 256];
        let n = encode_request(&req, &mut buf).unwrap();
        let mut dec = FrameDecoder::<256>::new();
        assert_eq!(dec.feed(&buf[..n]), n);
        let payload = dec.frame().unwrap().unwrap();
        assert_eq!(decode_request(payload).unwrap(), req);
    }

    #[test]
    fn every_request_roundtrips() {
        for req in [
            Request::Status { name: None },
            Request::Status { name: Some("web") },
            Request::Start { name: "a" },
            Request::Stop { name: "b.c" },
            Request::Restart { name: "d_e" },
            Request::Shutdown(Kind::Poweroff),
            Request::Shutdown(Kind::Reboot),
            Request::Shutdown(Kind::Halt),
            Request::Log {
                name: "x",
                follow: true,
            },
            Request::Cat { name: "y" },
            Request::Reload,
        ] {
            roundtrip_req(req);
        }
    }

    #[test]
    fn full_status_table_fits_a_frame() {
        let mut v = heapless::Vec::<UnitStatus, MAX_UNITS>::new();
        for i in 0..MAX_UNITS {
            let mut s = status("");
            s.name = name(&format!("{i:0>32}"));
            s.pid = u32::MAX;
            s.restarts = u32::MAX;
            s.memory_current = Some(u64::MAX);
            s.uptime_ms = u64::MAX;
            v.push(s).unwrap();
        }
        let rep = Reply::Status(v);
        let mut buf = vec![0u8; FRAME_BUF];
        let n = encode_reply(&rep, &mut buf).unwrap();
        assert!(n <= FRAME_BUF);
        let got = decode_reply(&buf[HEADER_LEN..n]).unwrap();
        assert_eq!(got, rep);
    }

    #[test]
    fn replies_roundtrip_with_borrowed_data() {
        let log = b"line one\nline two\n";
        let reps = [
            Reply::Ok,
            Reply::Error(CtlError::new(ErrCode::NoSuchUnit, "no unit named web")),
            Reply::Detail {
                detail: UnitDetail {
                    status: status("web"),
                    last_exit: LastExit::Signal(9),
                    oom_kills: 2,
                    reason: truncated("start limit hit"),
                },
                log,
            },
            Reply::Log {
                missed: 7,
                data: &log[..],
            },
            Reply::Cat("exec = /bin/true\n"),
            Reply::Reload {
                result: Err(CtlError::code(ErrCode::Invalid)),
                report: "a.unit:3: unknown key",
            },
        ];
        for rep in reps {
            let mut buf = [0u8; 1024];
            let n = encode_reply(&rep, &mut buf).unwrap();
            assert_eq!(decode_reply(&buf[HEADER_LEN..n]).unwrap(), rep);
        }
    }

    #[test]
    fn largest_text_reply_fits_with_overhead() {
        let text = "x".repeat(TEXT_MAX);
        let bytes = vec![0xffu8; TEXT_MAX];
        let mut buf = vec![0u8; FRAME_BUF];
        assert!(encode_reply(&Reply::Cat(&text), &mut buf).is_ok());
        let rep = Reply::Log {
            missed: u64::MAX,
            data: &bytes,
        };
        assert!(encode_reply(&rep, &mut buf).is_ok());
        let rep = Reply::Reload {
            result: Err(CtlError::new(ErrCode::Invalid, &"m".repeat(MESSAGE_MAX))),
            report: &text[..TEXT_MAX - MESSAGE_MAX],
        };
        assert!(encode_reply(&rep, &mut buf).is_ok());
    }

    #[test]
    fn encoding_into_a_small_buffer_is_an_error() {
        let mut buf = [0u8; 8];
        assert_eq!(
            encode_reply(&Reply::Cat("far too long for eight bytes"), &mut buf),
            Err(ProtoError::NoRoom)
        );
        assert_eq!(
            encode_reply(&Reply::Ok, &mut buf[..3]),
            Err(ProtoError::NoRoom)
        );
    }

    #[test]
    fn byte_by_byte_feeding_yields_frames_in_order() {
        let mut stream = Vec::new();
        let reqs = [
            Request::Start { name: "alpha" },
            Request::Reload,
            Request::Log {
                name: "beta",
                follow: false,
            },
        ];
        for r in &reqs {
            let mut buf = [0u8; 64];
            let n = encode_request(r, &mut buf).unwrap();
            stream.extend_from_slice(&buf[..n]);
        }
        let mut dec = FrameDecoder::<64>::new();
        let mut got = 0;
        for b in &stream {
            assert_eq!(dec.feed(core::slice::from_ref(b)), 1);
            if let Some(p) = dec.frame().unwrap() {
                assert_eq!(decode_request(p).unwrap(), reqs[got]);
                got += 1;
                dec.consume();
            }
        }
        assert_eq!(got, reqs.len());
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn two_frames_in_one_read_are_both_seen() {
        let mut buf = [0u8; 64];
        let a = encode_request(&Request::Reload, &mut buf).unwrap();
        let b = encode_request(&Request::Cat { name: "z" }, &mut buf[a..]).unwrap();
        let mut dec = FrameDecoder::<64>::new();
        dec.feed(&buf[..a + b]);
        assert_eq!(
            decode_request(dec.frame().unwrap().unwrap()).unwrap(),
            Request::Reload
        );
        dec.consume();
        assert_eq!(
            decode_request(dec.frame().unwrap().unwrap()).unwrap(),
            Request::Cat { name: "z" }
        );
        dec.consume();
        assert_eq!(dec.frame().unwrap(), None);
    }

    #[test]
    fn huge_prefix_is_rejected_from_four_bytes() {
        let mut dec = FrameDecoder::<FRAME_BUF>::new();
        dec.feed(&[0xff, 0xff, 0xff]);
        assert_eq!(dec.frame(), Ok(None));
        dec.feed(&[0xff]);
        assert_eq!(dec.frame(), Err(ProtoError::TooLarge { len: u32::MAX }));
        // Just over the limit is rejected too; exactly at it is not.
        let over = ((FRAME_MAX + 1) as u32).to_le_bytes();
        assert!(matches!(
            frame_len(&over, FRAME_MAX),
            Err(ProtoError::TooLarge { .. })
        ));
        let at = (FRAME_MAX as u32).to_le_bytes();
        assert_eq!(frame_len(&at, FRAME_MAX), Ok(None));
    }

    #[test]
    fn a_small_decoder_lowers_the_limit() {
        let mut dec = FrameDecoder::<16>::new();
        dec.feed(&13u32.to_le_bytes());
        assert_eq!(dec.frame(), Err(ProtoError::TooLarge { len: 13 }));
        let mut dec = FrameDecoder::<16>::new();
        dec.feed(&12u32.to_le_bytes());
        assert_eq!(dec.frame(), Ok(None));
        assert_eq!(dec.feed(&[0u8; 20]), 12);
        assert!(dec.frame().unwrap().is_some());
    }

    #[test]
    fn truncated_frame_stays_incomplete() {
        let mut buf = [0u8; 64];
        let n = encode_request(&Request::Start { name: "web" }, &mut buf).unwrap();
        let mut dec = FrameDecoder::<64>::new();
        dec.feed(&buf[..n - 1]);
        assert_eq!(dec.frame(), Ok(None));
        // A payload cut short inside the message is malformed, not a panic.
        let short = &buf[HEADER_LEN..n - 1];
        assert_eq!(decode_request(short), Err(ProtoError::Malformed));
    }

    #[test]
    fn garbage_and_trailing_bytes_are_malformed() {
        assert_eq!(decode_request(&[]), Err(ProtoError::Malformed));
        assert_eq!(
            decode_request(&[1, 0xee, 0xee, 0xee]),
            Err(ProtoError::Malformed)
        );
        let mut buf = [0u8; 64];
        let n = encode_request(&Request::Reload, &mut buf).unwrap();
        let mut payload = buf[HEADER_LEN..n].to_vec();
        payload.push(0);
        assert_eq!(decode_request(&payload), Err(ProtoError::Malformed));
        // Invalid UTF-8 in a name.
        let bad = [PROTO_VERSION as u8, 1, 2, 0xc3, 0x28];
        assert_eq!(decode_request(&bad), Err(ProtoError::Malformed));
    }

    #[test]
    fn other_version_is_reported_as_such() {
        let mut buf = [0u8; 16];
        let payload = postcard::to_slice(&(PROTO_VERSION + 1, Request::Reload), &mut buf).unwrap();
        assert_eq!(
            decode_request(payload),
            Err(ProtoError::Version {
                got: PROTO_VERSION + 1
            })
        );
    }

    #[test]
    fn error_messages_are_cut_not_refused() {
        let long = "é".repeat(MESSAGE_MAX);
        let e = CtlError::new(ErrCode::Failed, &long);
        assert!(e.message.len() <= MESSAGE_MAX);
        assert!(e.message.len() >= MESSAGE_MAX - 1);
        let e = CtlError::fmt(ErrCode::Failed, format_args!("unit {} failed", "web"));
        assert_eq!(e.to_string(), "unit web failed");
        assert_eq!(
            CtlError::code(ErrCode::NoSuchUnit).to_string(),
            "no such unit"
        );
    }
}
