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
//!   u32 length and its bytes. `wire` writes and reads them by hand; the
//!   serde derives below are postcard's form of them, which `wire`'s
//!   tests compare it with.
//!
//! The handshake a candidate binary answers before it is exec'd is one
//! line too: `wren-reexec FORMAT PROTOCOL VERSION`.

use crate::supervisor::{Retired, Runtime};
use crate::unit::{Name, UnitDef};
use crate::vocab::Millis;
use serde::{Deserialize, Serialize};

pub mod wire;

/// The version of the postcard layer. Bump it on any change to `Header`,
/// `UnitState` or what they contain (`Runtime`, ...; a `UnitDef` travels
/// as its unit-file text, see `def_text`). 4: builds that read the text
/// layer's `watchdog` line (a build of 3 would skip it and leave the
/// device open and unfed: the watchdog is handed over only to a build of
/// this very format).
///
/// Kept at 4 through two changes of meaning, not of bytes (thirty-fourth
/// round): a Stopping unit wanted and without `restart_pending` is one a
/// `pressure_action = restart` stopped, whose run this build counts as
/// failed and restarts (a build before reads the same bytes as a unit
/// left stopped; PID 1 re-execs while a unit stops only without cgroups,
/// `in_between`); and a Failed unit's deadline is its held
/// `start_limit_action` (a build before drops it: a roll-back cancels a
/// held reboot). Lengths are read as u64 varints: postcard's `usize`
/// on the 64-bit targets wren is built for; a 32-bit build would take
/// some lengths postcard refuses.
pub const STATE_FORMAT: u32 = 4;

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
    #[serde(with = "def_text")]
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
    #[serde(with = "def_text::option")]
    pub last_good: Option<UnitDef>,
    pub verdict: u8,
    pub rejected: Option<&'a str>,
}

/// A `UnitDef` in the postcard layer as the unit file `render` writes
/// for it (what `initctl cat` shows), read back by `parse`: the parser and
/// renderer the binary has anyway, where serde's derives for `UnitDef`
/// were 8 KB of code (issue 10, the 400 KiB budget). Beside the text, its
/// name and the source line the text cannot carry (`exec_line`), so that
/// it comes back whole, and then a line for each `after` name: the table
/// keeps none since the eighteenth round (only the loader's checks read
/// them), so zeros go, for an older binary reading this same format, which
/// wants as many as there are names and keeps them for nothing. A
/// definition that would not come back equal is refused when written (the
/// re-exec fails, the running PID 1 goes on) rather than changed on the
/// way.
mod def_text {
    use crate::unit::{parse, render, UnitDef};
    use crate::vocab::AFTER_MAX;
    use serde::{de, ser, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(def: &UnitDef, s: S) -> Result<S::Ok, S::Error> {
        let text = text_of(def).ok_or_else(|| ser::Error::custom("unit text"))?;
        (
            def.name.as_str(),
            text.as_str(),
            def.exec_line,
            Zeros(def.after.len()),
        )
            .serialize(s)
    }

    /// The text `def` travels as, if parsing it gives `def` again
    /// (compared without its `exec` line, `UnitDef`'s equality: that line
    /// travels beside the text).
    pub(super) fn text_of(def: &UnitDef) -> Option<std::string::String> {
        let mut text = std::string::String::new();
        let back = render(def, &mut text)
            .ok()
            .and_then(|()| parse(&def.name, &text).ok());
        (back.as_ref() == Some(def)).then_some(text)
    }

    /// The definition sent as `name`'s `text`, its `exec` line and as
    /// many `after` lines as it has `after` names.
    pub(super) fn def_from(
        name: &str,
        text: &str,
        exec_line: u32,
        after: usize,
    ) -> Option<UnitDef> {
        parse(name, text)
            .ok()
            .filter(|def| def.after.len() == after)
            .map(|mut def| {
                def.exec_line = exec_line;
                def
            })
    }

    /// `n` zeros as a sequence of `u32`.
    struct Zeros(usize);

    impl Serialize for Zeros {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeSeq;
            let mut seq = s.serialize_seq(Some(self.0))?;
            for _ in 0..self.0 {
                seq.serialize_element(&0u32)?;
            }
            seq.end()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UnitDef, D::Error> {
        type Lines = heapless::Vec<u32, AFTER_MAX>;
        let (name, text, exec_line, after_lines): (&str, &str, u32, Lines) =
            Deserialize::deserialize(d)?;
        def_from(name, text, exec_line, after_lines.len())
            .ok_or_else(|| de::Error::custom("unit text"))
    }

    pub mod option {
        use super::UnitDef;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        /// `Some(def)` as postcard writes an `Option`: a 1 byte, then the
        /// definition as above.
        struct Text<'a>(&'a UnitDef);

        impl Serialize for Text<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                super::serialize(self.0, s)
            }
        }

        struct Owned(UnitDef);

        impl<'de> Deserialize<'de> for Owned {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                super::deserialize(d).map(Owned)
            }
        }

        pub fn serialize<S: Serializer>(def: &Option<UnitDef>, s: S) -> Result<S::Ok, S::Error> {
            def.as_ref().map(Text).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UnitDef>, D::Error> {
            Ok(Option::<Owned>::deserialize(d)?.map(|o| o.0))
        }
    }
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

/// The hardware watchdog handed over: its fd, its timeout in seconds.
pub type HandedWatchdog = (RawFd, u32);

/// Writes the text layer.
pub fn write_hints(
    out: &mut dyn core::fmt::Write,
    format: u32,
    reexecs: u32,
    hints: &mut dyn Iterator<Item = Hint>,
    followers: &[Follower],
    watchdog: Option<HandedWatchdog>,
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
    if let Some((fd, secs)) = watchdog {
        writeln!(out, "watchdog {fd} {secs}")?;
    }
    writeln!(out, "end")
}

/// What the text layer says, and the bytes after it.
pub struct Parsed<'a> {
    pub format: u32,
    pub reexecs: u32,
    pub hints: std::vec::Vec<Hint>,
    pub followers: heapless::Vec<Follower, 16>,
    pub watchdog: Option<HandedWatchdog>,
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
    let format = crate::num::dec(first.strip_prefix(STATE_MAGIC)?.trim())?;
    let mut hints = std::vec::Vec::new();
    let mut reexecs = 0;
    let mut followers = heapless::Vec::new();
    let mut watchdog = None;
    loop {
        let l = line()?;
        if l == "end" {
            break;
        }
        if let Some(w) = l.strip_prefix("watchdog ") {
            watchdog = w
                .split_once(' ')
                .and_then(|(fd, s)| Some((crate::num::dec_signed(fd)?, crate::num::dec(s)?)));
            continue;
        }
        if let Some(n) = l.strip_prefix("reexecs ") {
            reexecs = crate::num::dec(n).unwrap_or(0);
            continue;
        }
        if let Some(f) = l.strip_prefix("follower ") {
            let mut w = f.split(' ');
            let mut next = || w.next();
            let follower = (|| {
                Some((
                    crate::num::dec_signed(next()?)?,
                    Name::try_from(next()?).ok()?,
                    crate::num::dec(next()?)?,
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
                pid: crate::num::dec(next()?)?,
                log_fd: crate::num::dec_signed(next()?)?,
                notify_fd: crate::num::dec_signed(next()?)?,
                report_fd: crate::num::dec_signed(next()?)?,
            })
        })();
        if let Some(h) = hint {
            hints.push(h);
        }
    }
    Some(Parsed {
        format,
        reexecs,
        hints,
        followers,
        watchdog,
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
    let format = crate::num::dec(w.next()?)?;
    let proto = crate::num::dec(w.next()?)?;
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
        write_hints(
            &mut s,
            7,
            3,
            &mut hints.iter().cloned(),
            &followers,
            Some((5, 15)),
        )
        .unwrap();
        let mut bytes = s.into_bytes();
        bytes.extend_from_slice(&[3, 0, 0, 0, 1, 2, 3, 1, 0, 0, 0, 9, 5, 0]);
        let p = parse_hints(&bytes).unwrap();
        assert_eq!((p.format, p.reexecs), (7, 3));
        assert_eq!(p.hints.as_slice(), &hints);
        assert_eq!(p.followers.as_slice(), &followers);
        assert_eq!(p.watchdog, Some((5, 15)));
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

    /// A unit's timers are `Option<Due>` in the table and were
    /// `Option<Millis>`: a state written by either reads in the other, but
    /// for a timer at 0 ms, which the older binary set only if its clock
    /// could not be read (the newer then adopts the units, as for any state
    /// it cannot read).
    #[test]
    fn a_timer_travels_as_the_millis_it_stands_for() {
        use crate::vocab::{due, Due};
        for ms in [None, Some(1), Some(1_234), Some(1 << 40), Some(u64::MAX)] {
            let mut a = [0u8; 16];
            let mut b = [0u8; 16];
            let old = postcard::to_slice(&ms, &mut a).unwrap();
            let new = postcard::to_slice(&ms.and_then(due), &mut b).unwrap();
            assert_eq!(old, new);
            let back: Option<Due> = postcard::from_bytes(old).unwrap();
            assert_eq!(back.map(Due::get), ms);
        }
        let mut sup = crate::supervisor::Supervisor::new();
        sup.add(UnitDef::with_defaults("web")).unwrap();
        let mut rt = sup.slot(0).unwrap().rt.clone();
        rt.deadline = due(5_000);
        rt.watchdog_at = due(7_000);
        let mut buf = [0u8; 256];
        let bytes = postcard::to_slice(&rt, &mut buf).unwrap();
        let back: Runtime = postcard::from_bytes(bytes).unwrap();
        assert_eq!((back.deadline, back.watchdog_at), (due(5_000), due(7_000)));
    }

    fn state(def: UnitDef, last_good: Option<UnitDef>) -> UnitState<'static> {
        let mut sup = crate::supervisor::Supervisor::new();
        sup.add(def.clone()).unwrap();
        UnitState {
            rt: sup.slot(0).unwrap().rt.clone(),
            def,
            retired: Retired::No,
            log_fd: -1,
            notify_fd: -1,
            report_fd: -1,
            log_capacity: 0,
            log_pos: 0,
            log: b"",
            oom_kills_at_spawn: 0,
            oom_kills: 0,
            pressure_events: 0,
            shed: false,
            last_error: "",
            last_good,
            verdict: 0,
            rejected: None,
        }
    }

    /// With its `exec` line; `after`'s lines the table does not keep, and
    /// zeros go in their place for an older reader.
    #[test]
    fn a_definition_travels_as_its_text_with_its_lines() {
        let text =
            "# web\n\ndescription = the \"web\" server\nafter = db\nexec = /bin/httpd -f \"a b\"\n\
                    after = net cache\nenv = A=1 2\nnamespaces = pid mount uts\nhostname = box\n\
                    memory.max = 16M\ncpu.max = 50000 100000\nseccomp = ~ @mount reboot\n";
        let def = crate::unit::parse("web", text).unwrap();
        assert_eq!(def.exec_line, 5);
        let mut old = crate::unit::parse("web", "exec = /bin/old\n").unwrap();
        old.exec_line = 9;
        let st = state(def.clone(), Some(old.clone()));
        let mut buf = [0u8; 16 * 1024];
        let bytes = postcard::to_slice(&st, &mut buf).unwrap();
        let back: UnitState = postcard::from_bytes(bytes).unwrap();
        assert_eq!(back.def, def);
        assert_eq!(back.last_good, Some(old));
        // Equality leaves the line out: it is checked itself.
        assert_eq!(back.def.exec_line, 5);
        // What an older reader finds after the text: the exec line, then
        // a line for each of the three `after` names.
        #[derive(Serialize)]
        struct One(#[serde(serialize_with = "super::def_text::serialize")] UnitDef);
        type Older<'a> = (&'a str, &'a str, u32, heapless::Vec<u32, 16>);
        let mut one = [0u8; 4096];
        let written = postcard::to_slice(&One(def.clone()), &mut one).unwrap();
        let (name, _, exec_line, lines): Older = postcard::from_bytes(written).unwrap();
        assert_eq!(
            (name, exec_line, lines.as_slice()),
            ("web", 5, &[0, 0, 0][..])
        );
        assert_eq!(back.last_good.map(|d| d.exec_line), Some(9));
        let st = state(def.clone(), None);
        let bytes = postcard::to_slice(&st, &mut buf).unwrap();
        let back: UnitState = postcard::from_bytes(bytes).unwrap();
        assert_eq!((back.def, back.last_good), (def, None));
    }

    #[test]
    fn a_definition_its_text_would_change_is_refused() {
        let mut def = UnitDef::with_defaults("web");
        def.exec.push("/bin/web").unwrap();
        // No signal has this number: the text can only carry it as a
        // comment, and would come back with the default.
        def.stop_signal = 99;
        let mut buf = [0u8; 16 * 1024];
        let err = postcard::to_slice(&state(def.clone(), None), &mut buf).unwrap_err();
        assert_ne!(err, postcard::Error::SerializeBufferFull);
        def.stop_signal = 9;
        postcard::to_slice(&state(def, None), &mut buf).unwrap();
    }

    #[test]
    fn a_definition_not_from_a_file_travels_too() {
        // As PID 1 builds its rescue shell.
        let mut d = UnitDef::with_defaults("rescue");
        d.exec.push("/bin/sh").unwrap();
        d.description.push_str("emergency shell").unwrap();
        d.console = true;
        d.output = crate::unit::Output::Console;
        d.namespaces = crate::unit::Namespaces::NONE;
        d.restart_delay = 1000;
        let mut buf = [0u8; 16 * 1024];
        let bytes = postcard::to_slice(&state(d.clone(), None), &mut buf).unwrap();
        let back: UnitState = postcard::from_bytes(bytes).unwrap();
        assert_eq!(back.def, d);
    }

    #[test]
    fn a_text_that_does_not_parse_is_refused() {
        let mut buf = [0u8; 1024];
        let bytes = postcard::to_slice(
            &("web", "exec = /bin/x\nbogus = 1\n", 1u32, &[0u32; 0][..]),
            &mut buf,
        )
        .unwrap()
        .to_vec();
        let ok = postcard::to_slice(&("web", "exec = /bin/x\n", 1u32, &[0u32; 0][..]), &mut buf)
            .unwrap()
            .to_vec();
        #[derive(serde::Deserialize)]
        struct Def(#[serde(with = "super::def_text")] UnitDef);
        assert!(postcard::from_bytes::<Def>(&bytes).is_err());
        assert_eq!(
            postcard::from_bytes::<Def>(&ok)
                .unwrap()
                .0
                .exec
                .iter()
                .next(),
            Some("/bin/x")
        );
        // An `after` line for a name the text does not have.
        let lines = postcard::to_slice(&("web", "exec = /bin/x\n", 1u32, &[3u32][..]), &mut buf)
            .unwrap()
            .to_vec();
        assert!(postcard::from_bytes::<Def>(&lines).is_err());
    }
}
