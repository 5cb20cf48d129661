//! State changes said on the console and in the kernel log, as the
//! supervisor's notes give them.

use super::{Pid1, DEP_MISSING};
use crate::kmsg;
use crate::supervisor::{Delay, Note};
use crate::vocab::Exit;
use nix::sys::signal::Signal;

impl Pid1 {
    pub(super) fn announce(&self, u: u16, note: Note) {
        let Some(slot) = self.sup.slot(u) else { return };
        let name = slot.def.name.as_str();
        match note {
            Note::Running { pid } => {
                // A restart's and the boot's lines wait a moment
                // (console_line_later): not before the new process ran.
                kmsg::status(
                    "[  OK  ]",
                    true,
                    format_args!("{name}: running (pid {pid})"),
                );
            }
            Note::Exited => {
                kmsg::status("[  OK  ]", false, format_args!("{name}: exited"));
            }
            Note::Died { exit, restart_in } => {
                let tag = if exit.success() {
                    "[ INFO ]"
                } else {
                    "[FAILED]"
                };
                let e = ExitText(exit);
                let again = Again::restart(restart_in);
                // Only a restart's lines wait for the new process.
                let later = restart_in.is_some();
                kmsg::status(tag, later, format_args!("{name}: {e}{again}"));
            }
            Note::SpawnFailed { restart_in } => {
                let again = Again::retry(restart_in);
                kmsg::console_line(format_args!("[FAILED] {name}: cannot start{again}"));
            }
            Note::StartTimeout { restart_in } => {
                let t = slot.def.start_timeout;
                let again = Again::restart(restart_in);
                kmsg::console_line(format_args!(
                    "[FAILED] {name}: not ready within {t}ms, killed{again}"
                ));
                kmsg::event(format_args!(
                    "{name}: not ready within start_timeout ({t}ms){again}"
                ));
            }
            Note::WatchdogTimeout { restart_in } => {
                let t = slot.def.seldom.watchdog.unwrap_or(0);
                let again = Again::restart(restart_in);
                kmsg::console_line(format_args!(
                    "[FAILED] {name}: watchdog timeout (no WATCHDOG=1 for {t}ms), killed{again}"
                ));
                kmsg::event(format_args!(
                    "{name}: watchdog timeout ({t}ms), killed{again}"
                ));
            }
            Note::StartLimit => {
                // Its action, when held until PID 1 has been up a while
                // (`LIMIT_ACTION_FLOOR`): how long it waits.
                let verb = slot
                    .def
                    .start_limit_action
                    .shutdown()
                    .map_or("", |k| k.verb());
                let held = slot
                    .rt
                    .deadline
                    .map(|d| d.get().saturating_sub(super::now()));
                let then = Again(verb, held.map(Delay::ms));
                let skip = match self.sup.rescue() && !verb.is_empty() {
                    true => " (action skipped: wren.rescue)",
                    false => "",
                };
                kmsg::status(
                    "[FAILED]",
                    false,
                    format_args!("{name}: start limit hit{then}{skip}"),
                );
            }
            Note::DepFailed { dep } => {
                let d = self
                    .sup
                    .slot(dep)
                    .map(|s| s.def.name.as_str())
                    .unwrap_or("?");
                kmsg::console_line(format_args!("[FAILED] {name}: dependency {d} failed"));
                kmsg::event(format_args!("{name}: not started, dependency {d} failed"));
            }
            Note::DepMissing => {
                kmsg::console_line(format_args!("[FAILED] {name}: {DEP_MISSING}"));
                kmsg::event(format_args!("{name}: not started, {DEP_MISSING}"));
            }
            Note::Stopped => {
                kmsg::status("[ STOP ]", false, format_args!("{name}: stopped"));
            }
        }
    }
}

/// An exit as the console and `initctl status` say it.
pub(super) struct ExitText(pub(super) Exit);

impl core::fmt::Display for ExitText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            // As i32s: i16's own Display would be 250 bytes of code more.
            Exit::Code(c) => write!(f, "exit {}", i32::from(c)),
            Exit::Signal(s) => match Signal::try_from(i32::from(s)) {
                Ok(sig) => write!(f, "killed by {}", sig.as_str()),
                Err(_) => write!(f, "killed by signal {}", i32::from(s)),
            },
            Exit::OomKill => write!(f, "oom-kill"),
        }
    }
}

/// `, restart in Dms` (or `, retry in Dms`) after a failure's text, or
/// nothing when the unit is not tried again.
pub(super) struct Again(&'static str, Option<Delay>);

impl Again {
    pub(super) fn restart(d: Option<Delay>) -> Self {
        Again("restart", d)
    }

    pub(super) fn retry(d: Option<Delay>) -> Self {
        Again("retry", d)
    }
}

impl core::fmt::Display for Again {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.1 {
            Some(d) => write!(f, ", {} in {d}ms", self.0),
            None => Ok(()),
        }
    }
}
