//! The state one PID 1 hands to the next on `initctl reexec`
//! (docs/initctl.md, "reexec"), in two layers:
//!
//! - a text layer whose shape never changes, whatever the format version:
//!   `wren-state FORMAT`, `reexecs N` (this one included), then one
//!   `unit NAME PID LOG NOTIFY REPORT` line
//!   per unit with a process (the fds are numbers, -1 for none), one
//!   `follower FD NAME POS` line per `log -f` client (its connection, its
//!   unit, the next stream position to send it), then `end`. A successor that cannot read the rest still learns from it
//!   which fds belong to which unit, and finds the units' processes in the
//!   cgroup tree;
//! - the full state in postcard, for a successor of the same `FORMAT`: a
//!   `Header`, then one `UnitState` per slot, each frame a little-endian
//!   u32 length and its bytes.
//!
//! The handshake a candidate binary answers before it is exec'd is one
//! line too: `wren-reexec FORMAT PROTOCOL VERSION`.

use crate::supervisor::{Retired, Runtime};
use crate::unit::{Name, UnitDef};
use crate::vocab::Millis;
use serde::{Deserialize, Serialize};

/// The version of the postcard layer. Bump it on any change to `Header`,
/// `UnitState` or what they contain (`UnitDef`, `Runtime`, ...).
pub const STATE_FORMAT: u32 = 2;

/// First word of the state and of the handshake line.
pub const STATE_MAGIC: &str = "wren-state";
pub const HANDSHAKE_MAGIC: &str = "wren-reexec";
/// The argument that asks a binary for the handshake line.
pub const HANDSHAKE_ARG: &str = "--reexec-handshake";
/// The argument, followed by the memfd's number, that hands the state to
/// the new PID 1.
pub const HANDOVER_ARG: &str = "--handover";

/// The whole-system part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// CLOCK_MONOTONIC ms when the first PID 1 of this boot started (the
    /// clock goes on across exec, so deadlines keep their meaning).
    pub started_at: Millis,
    pub all_up_reported: bool,
    /// How many re-execs this boot has seen, this one included.
    pub reexecs: u32,
    pub units: u32,
}

/// An fd handed over, by number; -1 for none.
pub type RawFd = i32;

/// One slot of the unit table and what PID 1 keeps beside it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnitState<'a> {
    pub def: UnitDef,
    pub rt: Runtime,
    pub retired: Retired,
    pub log_fd: RawFd,
    pub notify_fd: RawFd,
    pub report_fd: RawFd,
    /// The output ring: its size, the stream position after its newest
    /// byte, and the bytes it holds (oldest first).
    pub log_capacity: u32,
    pub log_pos: u64,
    pub log: &'a [u8],
    pub oom_kills_at_spawn: u64,
    pub oom_kills: u32,
    pub pressure_events: u32,
    pub shed: bool,
    pub last_error: &'a str,
    /// Health gate: the definition to put back, the last verdict (0 none,
    /// 1 pending, 2 good, 3 rejected) and why it was rejected.
    pub last_good: Option<UnitDef>,
    pub verdict: u8,
    pub rejected: Option<&'a str>,
}

/// A line of the text layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    pub name: Name,
    pub pid: u32,
    pub log_fd: RawFd,
    pub notify_fd: RawFd,
    pub report_fd: RawFd,
}

/// A `log -f` client handed over: its connection, its unit, the next
/// stream position to send it.
pub type Follower = (RawFd, Name, u64);

/// Writes the text layer.
pub fn write_hints(
    out: &mut dyn core::fmt::Write,
    format: u32,
    reexecs: u32,
    hints: &mut dyn Iterator<Item = Hint>,
    followers: &[Follower],
) -> core::fmt::Result {
    writeln!(out, "{STATE_MAGIC} {format}")?;
    writeln!(out, "reexecs {reexecs}")?;
    for h in hints {
        writeln!(
            out,
            "unit {} {} {} {} {}",
            h.name, h.pid, h.log_fd, h.notify_fd, h.report_fd
        )?;
    }
    for (fd, name, pos) in followers {
        writeln!(out, "follower {fd} {name} {pos}")?;
    }
    writeln!(out, "end")
}

/// What the text layer says, and the bytes after it.
pub struct Parsed<'a> {
    pub format: u32,
    pub reexecs: u32,
    pub hints: heapless::Vec<Hint, { crate::vocab::MAX_UNITS }>,
    pub followers: heapless::Vec<Follower, 16>,
    pub rest: &'a [u8],
}

/// Reads the text layer; `None` when it is not a wren state at all.
pub fn parse_hints(bytes: &[u8]) -> Option<Parsed<'_>> {
    let mut rest = bytes;
    let mut line = || -> Option<&str> {
        let n = rest.iter().position(|&b| b == b'\n')?;
        let (l, r) = rest.split_at_checked(n)?;
        rest = r.get(1..)?;
        core::str::from_utf8(l).ok()
    };
    let first = line()?;
    let format = first.strip_prefix(STATE_MAGIC)?.trim().parse().ok()?;
    let mut hints = heapless::Vec::new();
    let mut reexecs = 0;
    let mut followers = heapless::Vec::new();
    loop {
        let l = line()?;
        if l == "end" {
            break;
        }
        if let Some(n) = l.strip_prefix("reexecs ") {
            reexecs = n.parse().unwrap_or(0);
            continue;
        }
        if let Some(f) = l.strip_prefix("follower ") {
            let mut w = f.split(' ');
            let mut next = || w.next();
            let follower = (|| {
                Some((
                    next()?.parse().ok()?,
                    Name::try_from(next()?).ok()?,
                    next()?.parse().ok()?,
                ))
            })();
            if let Some(f) = follower {
                let _ = followers.push(f);
            }
            continue;
        }
        let mut w = l.split(' ');
        if w.next() != Some("unit") {
            continue;
        }
        let mut next = || w.next();
        let hint = (|| {
            Some(Hint {
                name: Name::try_from(next()?).ok()?,
                pid: next()?.parse().ok()?,
                log_fd: next()?.parse().ok()?,
                notify_fd: next()?.parse().ok()?,
                report_fd: next()?.parse().ok()?,
            })
        })();
        if let Some(h) = hint {
            let _ = hints.push(h);
        }
    }
    Some(Parsed {
        format,
        reexecs,
        hints,
        followers,
        rest,
    })
}

/// The postcard frames after the text layer, in order; stops at the first
/// one that is cut short.
pub fn frames(mut rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    core::iter::from_fn(move || {
        let (len, body) = rest.split_at_checked(4)?;
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        let (frame, after) = body.split_at_checked(len)?;
        rest = after;
        Some(frame)
    })
}

/// The handshake line a wren of this build prints.
pub fn handshake_line(
    out: &mut dyn core::fmt::Write,
    format: u32,
    version: &str,
) -> core::fmt::Result {
    writeln!(
        out,
        "{HANDSHAKE_MAGIC} {format} {} {version}",
        crate::proto::PROTO_VERSION
    )
}

/// What a candidate answered: (state format, protocol, version).
pub fn parse_handshake(line: &str) -> Option<(u32, u16, &str)> {
    let mut w = line.trim().splitn(4, ' ');
    if w.next()? != HANDSHAKE_MAGIC {
        return None;
    }
    let format = w.next()?.parse().ok()?;
    let proto = w.next()?.parse().ok()?;
    let version = w.next()?;
    Some((format, proto, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_round_trip_and_leave_the_rest() {
        let mut s = std::string::String::new();
        let hints = [
            Hint {
                name: Name::try_from("web").unwrap(),
                pid: 42,
                log_fd: 7,
                notify_fd: -1,
                report_fd: 9,
            },
            Hint {
                name: Name::try_from("db").unwrap(),
                pid: 43,
                log_fd: -1,
                notify_fd: -1,
                report_fd: -1,
            },
        ];
        let followers = [(11, Name::try_from("web").unwrap(), 12_345)];
        write_hints(&mut s, 7, 3, &mut hints.iter().cloned(), &followers).unwrap();
        let mut bytes = s.into_bytes();
        bytes.extend_from_slice(&[3, 0, 0, 0, 1, 2, 3, 1, 0, 0, 0, 9, 5, 0]);
        let p = parse_hints(&bytes).unwrap();
        assert_eq!((p.format, p.reexecs), (7, 3));
        assert_eq!(p.hints.as_slice(), &hints);
        assert_eq!(p.followers.as_slice(), &followers);
        let f: std::vec::Vec<&[u8]> = frames(p.rest).collect();
        // The last frame is cut short: left out.
        assert_eq!(f, [&[1u8, 2, 3][..], &[9][..]]);
        assert!(parse_hints(b"something else\n").is_none());
        assert!(parse_hints(b"wren-state 1\nunit web 1 2 3 4\n").is_none());
    }

    #[test]
    fn handshake_round_trips_and_refuses_others() {
        let mut s = std::string::String::new();
        handshake_line(&mut s, 3, "0.1.0").unwrap();
        assert_eq!(
            parse_handshake(&s),
            Some((3, crate::proto::PROTO_VERSION, "0.1.0"))
        );
        assert_eq!(parse_handshake(""), None);
        assert_eq!(parse_handshake("hello world"), None);
        assert_eq!(parse_handshake("wren-reexec x 1 v"), None);
    }

    #[test]
    fn a_unit_state_round_trips_in_postcard() {
        let mut def = UnitDef::with_defaults("web");
        def.exec.push("/bin/web").unwrap();
        let mut sup = crate::supervisor::Supervisor::new();
        sup.add(def.clone()).unwrap();
        let rt = sup.slot(0).unwrap().rt.clone();
        let st = UnitState {
            def: def.clone(),
            rt,
            retired: Retired::No,
            log_fd: 5,
            notify_fd: -1,
            report_fd: -1,
            log_capacity: 4096,
            log_pos: 10_000,
            log: b"hello\n",
            oom_kills_at_spawn: 1,
            oom_kills: 2,
            pressure_events: 3,
            shed: false,
            last_error: "",
            last_good: Some(def),
            verdict: 2,
            rejected: None,
        };
        let mut buf = [0u8; 16 * 1024];
        let bytes = postcard::to_slice(&st, &mut buf).unwrap();
        let back: UnitState = postcard::from_bytes(bytes).unwrap();
        assert_eq!(back.def, st.def);
        assert_eq!(back.log, b"hello\n");
        assert_eq!(back.log_pos, 10_000);
        assert_eq!(back.rt.phase, st.rt.phase);
        assert_eq!(back.last_good, st.last_good);
    }
}
