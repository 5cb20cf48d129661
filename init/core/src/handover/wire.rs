//! The postcard layer's frames (`Header`, `UnitState`) written and read by
//! hand: postcard's bytes, byte for byte, as the serde derives make them
//! (`tests.rs` checks both ways, over every variant and every truncation
//! and one-byte corruption), without serde's visitor code (about 2 KB of
//! the binary: issue 10, the 400 KiB budget). A state goes from an older
//! PID 1 to a newer one and back: whatever writes it, its bytes are those
//! of its `STATE_FORMAT`. A frame is read as postcard reads it: what
//! follows the value in the frame is left alone.

use super::def_text::{def_from, text_of};
use super::{Header, UnitState};
use crate::codec::{In, Put};
use crate::supervisor::{Failures, Note, Phase, Retired, Runtime};
use crate::unit::{Few, UnitDef};
use crate::vocab::{Delay, Due, Exit, Millis, AFTER_MAX, START_LIMIT_MAX};

/// Writes at the end of a frame's buffer.
struct Out<'v>(&'v mut std::vec::Vec<u8>);

impl Put for Out<'_> {
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
}

impl Out<'_> {
    /// An `Option` of an unsigned integer (`Due`, `Delay`: their `u64`).
    fn opt(&mut self, v: Option<u64>) {
        match v {
            None => self.byte(0),
            Some(v) => {
                self.byte(1);
                self.varint(v);
            }
        }
    }

    fn exit(&mut self, e: Exit) {
        // An `i16`'s zigzag is the `i32`'s.
        match e {
            Exit::Code(c) => {
                self.byte(0);
                self.i32(c.into());
            }
            Exit::Signal(s) => {
                self.byte(1);
                self.i32(s.into());
            }
            Exit::OomKill => self.byte(2),
        }
    }

    fn note(&mut self, n: Note) {
        // Every variant index is below 128: one byte, as its varint.
        let restart_in = match n {
            Note::Running { pid } => {
                self.byte(0);
                return self.varint(pid.into());
            }
            Note::Exited => return self.byte(1),
            Note::Died { exit, restart_in } => {
                self.byte(2);
                self.exit(exit);
                restart_in
            }
            Note::SpawnFailed { restart_in } => {
                self.byte(3);
                restart_in
            }
            Note::StartTimeout { restart_in } => {
                self.byte(4);
                restart_in
            }
            Note::StartLimit => return self.byte(5),
            Note::DepFailed { dep } => {
                self.byte(6);
                return self.varint(dep.into());
            }
            Note::DepMissing => return self.byte(7),
            Note::Stopped => return self.byte(8),
            Note::WatchdogTimeout { restart_in } => {
                self.byte(9);
                restart_in
            }
        };
        self.opt(restart_in.map(Delay::get));
    }

    fn runtime(&mut self, rt: &Runtime) {
        self.byte(rt.phase as u8);
        self.varint(rt.pid.into());
        self.byte(rt.want.into());
        self.varint(rt.spawned_at);
        self.opt(rt.deadline.map(Due::get));
        self.varint(rt.streak.into());
        self.varint(rt.restarts.into());
        self.varint(rt.failures.len() as u64);
        for t in rt.failures.iter() {
            self.varint(t);
        }
        match rt.last_exit {
            None => self.byte(0),
            Some(e) => {
                self.byte(1);
                self.exit(e);
            }
        }
        match rt.last_note {
            None => self.byte(0),
            Some(n) => {
                self.byte(1);
                self.note(n);
            }
        }
        self.varint(rt.deps.len() as u64);
        for &d in rt.deps.iter() {
            self.varint(d.into());
        }
        self.byte(rt.restart_pending.into());
        self.byte(rt.probation.into());
        self.opt(rt.watchdog_at.map(Due::get));
    }

    /// `def` as its name, its unit-file text, its `exec` line and a zero
    /// line for each `after` name (`def_text`); `None` when the text would
    /// not give `def` back.
    fn def(&mut self, def: &UnitDef) -> Option<()> {
        let text = text_of(def)?;
        self.bytes(def.name.as_bytes());
        self.bytes(text.as_bytes());
        self.varint(def.exec_line.into());
        self.varint(def.after.len() as u64);
        for _ in 0..def.after.len() {
            self.byte(0);
        }
        Some(())
    }

    fn unit(&mut self, st: &UnitState<'_>) -> Option<()> {
        self.def(&st.def)?;
        self.runtime(&st.rt);
        self.byte(st.retired as u8);
        self.i32(st.log_fd);
        self.i32(st.notify_fd);
        self.i32(st.report_fd);
        self.varint(st.log_capacity.into());
        self.varint(st.log_pos);
        self.bytes(st.log);
        self.varint(st.oom_kills_at_spawn);
        self.varint(st.oom_kills.into());
        self.varint(st.pressure_events.into());
        self.byte(st.shed.into());
        self.bytes(st.last_error.as_bytes());
        match &st.last_good {
            None => self.byte(0),
            Some(def) => {
                self.byte(1);
                self.def(def)?;
            }
        }
        self.byte(st.verdict);
        match st.rejected {
            None => self.byte(0),
            Some(r) => {
                self.byte(1);
                self.bytes(r.as_bytes());
            }
        }
        Some(())
    }
}

/// `h`'s bytes, after what `out` holds.
pub fn write_header(out: &mut std::vec::Vec<u8>, h: &Header) {
    let mut o = Out(out);
    o.varint(h.started_at);
    o.byte(h.all_up_reported.into());
    o.varint(h.reexecs.into());
    o.varint(h.units.into());
}

/// `st`'s bytes, after what `out` holds; `None` when a definition's text
/// would not give it back (`out` then holds part of them).
pub fn write_unit(out: &mut std::vec::Vec<u8>, st: &UnitState<'_>) -> Option<()> {
    Out(out).unit(st)
}

impl<'a> In<'a> {
    fn due(&mut self) -> Option<Due> {
        Due::new(self.u64()?)
    }

    /// A sequence's length, at most `max` (a longer one is refused, as the
    /// bounded collections postcard reads it into refuse it).
    fn len(&mut self, max: usize) -> Option<usize> {
        usize::try_from(self.u64()?).ok().filter(|&n| n <= max)
    }

    fn exit(&mut self) -> Option<Exit> {
        Some(match self.tag()? {
            0 => Exit::Code(self.i16()?),
            1 => Exit::Signal(self.i16()?),
            2 => Exit::OomKill,
            _ => return None,
        })
    }

    fn restart_in(&mut self) -> Option<Option<Delay>> {
        self.opt(Self::u64).map(|d| d.map(Delay::ms))
    }

    fn note(&mut self) -> Option<Note> {
        Some(match self.tag()? {
            0 => Note::Running { pid: self.u32()? },
            1 => Note::Exited,
            2 => Note::Died {
                exit: self.exit()?,
                restart_in: self.restart_in()?,
            },
            3 => Note::SpawnFailed {
                restart_in: self.restart_in()?,
            },
            4 => Note::StartTimeout {
                restart_in: self.restart_in()?,
            },
            5 => Note::StartLimit,
            6 => Note::DepFailed { dep: self.u16()? },
            7 => Note::DepMissing,
            8 => Note::Stopped,
            9 => Note::WatchdogTimeout {
                restart_in: self.restart_in()?,
            },
            _ => return None,
        })
    }

    fn failures(&mut self) -> Option<Failures> {
        let mut times = [0 as Millis; START_LIMIT_MAX];
        let n = self.len(START_LIMIT_MAX)?;
        let times = times.get_mut(..n)?;
        for t in times.iter_mut() {
            *t = self.u64()?;
        }
        Some(Failures::from_times(times))
    }

    fn deps(&mut self) -> Option<Few<u16, AFTER_MAX>> {
        let mut deps = [0u16; AFTER_MAX];
        let n = self.len(AFTER_MAX)?;
        let deps = deps.get_mut(..n)?;
        for d in deps.iter_mut() {
            *d = self.u16()?;
        }
        Some(Few::from_slice(deps))
    }

    fn runtime(&mut self) -> Option<Runtime> {
        Some(Runtime {
            phase: match self.tag()? {
                0 => Phase::Waiting,
                1 => Phase::Starting,
                2 => Phase::Running,
                3 => Phase::Stopping,
                4 => Phase::Stopped,
                5 => Phase::Exited,
                6 => Phase::Backoff,
                7 => Phase::Failed,
                _ => return None,
            },
            pid: self.u32()?,
            want: self.flag()?,
            spawned_at: self.u64()?,
            // Not handed over (serde's `skip`): as the derive sets them.
            ready_after: 0,
            deadline: self.opt(Self::due)?,
            streak: self.u32()?,
            restarts: self.u32()?,
            failures: self.failures()?,
            last_exit: self.opt(Self::exit)?,
            last_note: self.opt(Self::note)?,
            deps: self.deps()?,
            restart_pending: self.flag()?,
            probation: self.flag()?,
            watchdog_at: self.opt(Self::due)?,
            ready_early: false,
            draining: false,
        })
    }

    fn def(&mut self) -> Option<UnitDef> {
        let name = self.str()?;
        let text = self.str()?;
        let exec_line = self.u32()?;
        let after = self.len(AFTER_MAX)?;
        for _ in 0..after {
            self.u32()?;
        }
        def_from(name, text, exec_line, after)
    }

    fn unit(&mut self) -> Option<UnitState<'a>> {
        Some(UnitState {
            def: self.def()?,
            rt: self.runtime()?,
            retired: match self.tag()? {
                0 => Retired::No,
                1 => Retired::Leaving,
                2 => Retired::Free,
                _ => return None,
            },
            log_fd: self.i32()?,
            notify_fd: self.i32()?,
            report_fd: self.i32()?,
            log_capacity: self.u32()?,
            log_pos: self.u64()?,
            log: self.bytes()?,
            oom_kills_at_spawn: self.u64()?,
            oom_kills: self.u32()?,
            pressure_events: self.u32()?,
            shed: self.flag()?,
            last_error: self.str()?,
            last_good: self.opt(Self::def)?,
            verdict: self.byte()?,
            rejected: self.opt(Self::str)?,
        })
    }
}

/// The header in `frame`.
pub fn read_header(frame: &[u8]) -> Option<Header> {
    let mut i = In { rest: frame };
    Some(Header {
        started_at: i.u64()?,
        all_up_reported: i.flag()?,
        reexecs: i.u32()?,
        units: i.u32()?,
    })
}

/// The unit in `frame`.
pub fn read_unit(frame: &[u8]) -> Option<UnitState<'_>> {
    In { rest: frame }.unit()
}

/// The name and unit-file text a unit's frame begins with.
pub fn read_name_and_text(frame: &[u8]) -> Option<(&str, &str)> {
    let mut i = In { rest: frame };
    Some((i.str()?, i.str()?))
}

#[cfg(test)]
mod tests;
