//! The frames' bytes, written and read by hand: postcard's format, byte for
//! byte (`tests.rs` checks it against postcard itself), without serde's
//! visitor code, which was 7 KB of the binary for these few types
//! (issue 10, the 400 KiB budget).
//!
//! Postcard's rules as used here, and the reader, are `codec`'s (shared
//! with the re-exec state's codec).

use super::{
    CtlError, ErrCode, InitInfo, LastExit, Origin, ProtoError, Reply, Request, UnitDetail,
    UnitStatus, FRAME_BUF, HEADER_LEN, PROTO_VERSION,
};
use crate::codec::{In, Put};
use crate::unit::Limit;
use crate::vocab::{ShutdownKind, State};

/// Writes into a slice; `full` once something did not fit (checked once
/// at the end rather than at every field).
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
    full: bool,
}

impl Put for Out<'_> {
    fn raw(&mut self, b: &[u8]) {
        let end = self.len.saturating_add(b.len());
        match self.buf.get_mut(self.len..end) {
            Some(to) => {
                to.copy_from_slice(b);
                self.len = end;
            }
            None => self.full = true,
        }
    }
}

impl Out<'_> {
    fn opt<T: Copy>(&mut self, v: Option<T>, f: fn(&mut Self, T)) {
        match v {
            None => self.byte(0),
            Some(x) => {
                self.byte(1);
                f(self, x);
            }
        }
    }

    fn limit(&mut self, l: Limit) {
        match l {
            Limit::Max => self.byte(0),
            Limit::Value(v) => {
                self.byte(1);
                self.varint(v);
            }
        }
    }

    fn ctl_error(&mut self, e: &CtlError) {
        self.byte(e.code as u8);
        self.bytes(e.message.as_bytes());
    }

    fn status(&mut self, s: &UnitStatus) {
        self.bytes(s.name.as_bytes());
        self.byte(s.state as u8);
        self.varint(s.pid.into());
        self.varint(s.restarts.into());
        self.opt(s.memory_current, Self::varint);
        self.opt(s.memory_max, Self::limit);
        self.varint(s.uptime_ms);
    }

    fn detail(&mut self, d: &UnitDetail) {
        self.status(&d.status);
        match d.last_exit {
            LastExit::None => self.byte(0),
            LastExit::Code(c) => {
                self.byte(1);
                self.i32(c);
            }
            LastExit::Signal(s) => {
                self.byte(2);
                self.i32(s);
            }
            LastExit::OomKill => self.byte(3),
        }
        self.varint(d.oom_kills.into());
        self.opt(d.pressure_avg10.map(u64::from), Self::varint);
        self.varint(d.pressure_events.into());
        self.bytes(d.not_enforced.as_bytes());
        self.bytes(d.reason.as_bytes());
        self.bytes(d.confinement.as_bytes());
    }

    fn info(&mut self, i: &InitInfo) {
        self.bytes(i.path.as_bytes());
        self.bytes(i.version.as_bytes());
        self.varint(i.state_format.into());
        self.varint(i.reexecs.into());
        match i.origin {
            Origin::Boot => self.byte(0),
            Origin::HandedOver { units } => {
                self.byte(1);
                self.varint(units.into());
            }
            Origin::Adopted { units, format } => {
                self.byte(2);
                self.varint(units.into());
                self.varint(format.into());
            }
        }
    }

    fn request(&mut self, r: &Request<'_>) {
        // Every variant index is below 128: one byte, as its varint.
        let (tag, name) = match *r {
            Request::Status { name, from } => {
                self.byte(0);
                self.opt(name, |o, n| o.bytes(n.as_bytes()));
                self.varint(from.into());
                return;
            }
            Request::Start { name } => (1, name),
            Request::Stop { name } => (2, name),
            Request::Restart { name } => (3, name),
            Request::Shutdown(kind) => {
                self.byte(4);
                self.byte(kind as u8);
                return;
            }
            Request::Log { name, follow } => {
                self.byte(5);
                self.bytes(name.as_bytes());
                self.byte(follow.into());
                return;
            }
            Request::Cat { name } => (6, name),
            Request::Reload => return self.byte(7),
            Request::Verdict => return self.byte(8),
            Request::Reexec { path } => (9, path),
            Request::Info => return self.byte(10),
        };
        self.byte(tag);
        self.bytes(name.as_bytes());
    }

    fn reply(&mut self, r: &Reply<'_>) {
        match r {
            Reply::Ok => self.byte(0),
            Reply::Error(e) => {
                self.byte(1);
                self.ctl_error(e);
            }
            Reply::Status { units, next } => {
                self.byte(2);
                self.varint(units.len() as u64);
                for u in units {
                    self.status(u);
                }
                self.opt(next.map(u64::from), Self::varint);
            }
            Reply::Detail { detail, log } => {
                self.byte(3);
                self.detail(detail);
                self.bytes(log);
            }
            Reply::Log { missed, data } => {
                self.byte(4);
                self.varint(*missed);
                self.bytes(data);
            }
            Reply::Cat(text) => {
                self.byte(5);
                self.bytes(text.as_bytes());
            }
            Reply::Reload { result, report } => {
                self.byte(6);
                match result {
                    Ok(()) => self.byte(0),
                    Err(e) => {
                        self.byte(1);
                        self.ctl_error(e);
                    }
                }
                self.bytes(report.as_bytes());
            }
            Reply::Info(info) => {
                self.byte(7);
                self.info(info);
            }
        }
    }
}

/// The frame (prefix, version, message) `body` writes into `out`.
fn encode(out: &mut [u8], body: &dyn Fn(&mut Out<'_>)) -> Result<usize, ProtoError> {
    let limit = out.len().min(FRAME_BUF);
    let buf = out.get_mut(..limit).ok_or(ProtoError::NoRoom)?;
    let mut o = Out {
        buf,
        len: HEADER_LEN,
        full: false,
    };
    o.varint(PROTO_VERSION.into());
    body(&mut o);
    if o.full {
        return Err(ProtoError::NoRoom);
    }
    let total = o.len;
    // total <= FRAME_BUF < u32::MAX, so the cast is exact.
    let prefix = ((total - HEADER_LEN) as u32).to_le_bytes();
    out.get_mut(..HEADER_LEN)
        .ok_or(ProtoError::NoRoom)?
        .copy_from_slice(&prefix);
    Ok(total)
}

pub(super) fn encode_request(req: &Request<'_>, out: &mut [u8]) -> Result<usize, ProtoError> {
    encode(out, &|o| o.request(req))
}

pub(super) fn encode_reply(rep: &Reply<'_>, out: &mut [u8]) -> Result<usize, ProtoError> {
    encode(out, &|o| o.reply(rep))
}

impl<'a> In<'a> {
    /// A text longer than its field is cut (and marked), not refused: a
    /// peer whose field is longer (a newer PID 1's reason) is still read.
    fn string<const N: usize, L: heapless::LenType>(&mut self) -> Option<heapless::String<N, L>> {
        Some(super::truncated(self.str()?))
    }

    fn limit(&mut self) -> Option<Limit> {
        match self.tag()? {
            0 => Some(Limit::Max),
            1 => Some(Limit::Value(self.u64()?)),
            _ => None,
        }
    }

    fn ctl_error(&mut self) -> Option<CtlError> {
        let code = *ErrCode::ALL.get(usize::try_from(self.tag()?).ok()?)?;
        Some(CtlError {
            code,
            message: self.string()?,
        })
    }

    fn status(&mut self) -> Option<UnitStatus> {
        Some(UnitStatus {
            name: self.string()?,
            state: *State::ALL.get(usize::try_from(self.tag()?).ok()?)?,
            pid: self.u32()?,
            restarts: self.u32()?,
            memory_current: self.opt(Self::u64)?,
            memory_max: self.opt(Self::limit)?,
            uptime_ms: self.u64()?,
        })
    }

    fn detail(&mut self) -> Option<UnitDetail> {
        let status = self.status()?;
        let last_exit = match self.tag()? {
            0 => LastExit::None,
            1 => LastExit::Code(self.i32()?),
            2 => LastExit::Signal(self.i32()?),
            3 => LastExit::OomKill,
            _ => return None,
        };
        Some(UnitDetail {
            status,
            last_exit,
            oom_kills: self.u32()?,
            pressure_avg10: self.opt(Self::u32)?,
            pressure_events: self.u32()?,
            not_enforced: self.string()?,
            reason: self.string()?,
            confinement: self.string()?,
        })
    }

    fn info(&mut self) -> Option<InitInfo> {
        let path = self.string()?;
        let version = self.string()?;
        let state_format = self.u32()?;
        let reexecs = self.u32()?;
        let origin = match self.tag()? {
            0 => Origin::Boot,
            1 => Origin::HandedOver { units: self.u32()? },
            2 => Origin::Adopted {
                units: self.u32()?,
                format: self.u32()?,
            },
            _ => return None,
        };
        Some(InitInfo {
            path,
            version,
            state_format,
            reexecs,
            origin,
        })
    }

    fn request(&mut self) -> Option<Request<'a>> {
        Some(match self.tag()? {
            0 => Request::Status {
                name: self.opt(Self::str)?,
                from: self.u16()?,
            },
            1 => Request::Start { name: self.str()? },
            2 => Request::Stop { name: self.str()? },
            3 => Request::Restart { name: self.str()? },
            4 => Request::Shutdown(match self.tag()? {
                0 => ShutdownKind::Reboot,
                1 => ShutdownKind::Halt,
                2 => ShutdownKind::Poweroff,
                _ => return None,
            }),
            5 => Request::Log {
                name: self.str()?,
                follow: self.flag()?,
            },
            6 => Request::Cat { name: self.str()? },
            7 => Request::Reload,
            8 => Request::Verdict,
            9 => Request::Reexec { path: self.str()? },
            10 => Request::Info,
            _ => return None,
        })
    }

    fn reply(&mut self) -> Option<Reply<'a>> {
        Some(match self.tag()? {
            0 => Reply::Ok,
            1 => Reply::Error(self.ctl_error()?),
            2 => {
                let n = self.u64()?;
                let mut units = heapless::Vec::new();
                for _ in 0..n {
                    units.push(self.status()?).ok()?;
                }
                Reply::Status {
                    units,
                    next: self.opt(Self::u16)?,
                }
            }
            3 => Reply::Detail {
                detail: self.detail()?,
                log: self.bytes()?,
            },
            4 => Reply::Log {
                missed: self.u64()?,
                data: self.bytes()?,
            },
            5 => Reply::Cat(self.str()?),
            6 => Reply::Reload {
                result: match self.tag()? {
                    0 => Ok(()),
                    1 => Err(self.ctl_error()?),
                    _ => return None,
                },
                report: self.str()?,
            },
            7 => Reply::Info(self.info()?),
            _ => return None,
        })
    }
}

/// The version first, on its own, so that a peer of another version gets
/// a version error rather than "malformed"; then the message, which must
/// end the payload.
fn decode<'a, T>(payload: &'a [u8], msg: fn(&mut In<'a>) -> Option<T>) -> Result<T, ProtoError> {
    let mut i = In { rest: payload };
    let version = i.u16().ok_or(ProtoError::Malformed)?;
    if version != PROTO_VERSION {
        return Err(ProtoError::Version { got: version });
    }
    match msg(&mut i) {
        Some(m) if i.rest.is_empty() => Ok(m),
        _ => Err(ProtoError::Malformed),
    }
}

pub(super) fn decode_request(payload: &[u8]) -> Result<Request<'_>, ProtoError> {
    decode(payload, In::request)
}

pub(super) fn decode_reply(payload: &[u8]) -> Result<Reply<'_>, ProtoError> {
    decode(payload, In::reply)
}

#[cfg(test)]
mod tests;
