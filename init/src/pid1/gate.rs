//! Health-gated reload (`initctl reload`, `initctl edit`, SIGHUP): a unit
//! the reload changed or added is on probation until its next start is
//! judged (docs/initctl.md, "reload"). PID 1 keeps the last good
//! definition of each such unit in memory; on a bad verdict it puts it
//! back, on disk too: the rejected file is kept as `NAME.unit.rejected`
//! and the good one written beside it and renamed over `NAME.unit`, with
//! fsyncs, so a power cut leaves either file whole, never a torn one.

mod disk;

use disk::{put_back, restore_file, set_aside};
pub(super) use disk::{DiskError, DiskStall};

use super::announce::ExitText;
use super::{now, why, Pid1, Why};
use crate::kmsg;
use crate::supervisor::Note;
use crate::unit::{self, UnitDef};
use crate::vocab::Millis;
use rustix::io::Errno;

/// Why a reload's definition was rejected, as `status NAME` shows it.
pub(super) type Rejection = heapless::String<{ crate::proto::REASON_MAX }>;

/// A unit's standing after the last reload that changed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Changed or new, not judged yet.
    Pending,
    Good,
    /// Put back on its last good definition (or, new, stopped).
    Rejected,
}

/// How long after `initctl reload`'s reply its verdict request may come
/// (at once, on a new connection): a reload meanwhile (SIGHUP, another
/// `initctl edit`) keeps the verdicts instead of forgetting a rejection
/// the first client has not heard of.
const VERDICT_ASKED_WITHIN: Millis = 5_000;

impl Pid1 {
    /// `initctl reload` was answered: its verdict request is on its way.
    pub(super) fn owe_verdict(&mut self) {
        self.verdict_owed_until = now().saturating_add(VERDICT_ASKED_WITHIN);
    }

    /// `initctl reload`: the reload, and, once it is applied, its verdict
    /// owed to the client (`owe_verdict`). A refused reload changed
    /// nothing and has no verdict: owing one kept the last reload's
    /// verdicts for its retry ("try again"), which then heard that
    /// reload's rejection.
    #[inline(never)]
    pub(super) fn reload_for_client(
        &mut self,
        report: &mut dyn FnMut(&str),
    ) -> Result<(), crate::proto::CtlError> {
        let r = self.reload(report);
        if r.is_ok() {
            self.owe_verdict();
        }
        r
    }

    /// The verdict was asked for: no longer owed (a waiter, if it must
    /// wait, keeps the verdicts from here). Else the next reload, a new
    /// `initctl reload` within the 5 s, would answer with this one's.
    pub(super) fn verdict_asked(&mut self) {
        self.verdict_owed_until = 0;
    }

    /// Before a reload replaces definitions: keep the current one of every
    /// unit `defs` changes, unless it is itself on probation (then the
    /// one kept before is still the last good one).
    pub(super) fn keep_last_good(&mut self, defs: &[UnitDef]) {
        // The verdicts are the last reload's, unless a client still waits
        // for an earlier one's: then they add up, so that its answer still
        // has the rejections that came before this reload.
        let waited = self.control.as_ref().is_some_and(|s| {
            s.waiters().iter().any(|(_, w)| {
                matches!(
                    w,
                    crate::control::Waiter::Settle {
                        want: crate::control::Want::Verdict,
                        ..
                    }
                )
            })
        });
        // Nor while a client told of its reload has yet to ask (it asks
        // on a new connection, after the reply).
        let owed = self.verdict_owed_until > now();
        if !waited && !owed {
            for e in self.edges.iter_mut() {
                e.verdict = None;
            }
        }
        // On probation still from an earlier reload, and not changed by
        // this one (the same definition, or none: its file invalid, the
        // unit kept as it is): its verdict does not wait for them. (One
        // whose start never ends, `start_timeout = 0`, held every later
        // reload's verdict for ever: `initctl reload` exited 1 after 120 s.)
        self.gate_unchanged.clear();
        for (i, s) in self.sup.indexed() {
            let changed = || defs.iter().any(|d| d.name == s.def.name && *d != s.def);
            if s.rt.probation && !changed() {
                self.gate_unchanged.push(i);
            }
        }
        let by_name = self.sup.by_name();
        for def in defs {
            let Some(u) = self.sup.index_by(&by_name, &def.name) else {
                continue;
            };
            let Some(slot) = self.sup.slot(u) else {
                continue;
            };
            if slot.def == *def {
                continue;
            }
            let Some(e) = self.edges.get_mut(usize::from(u)) else {
                continue;
            };
            if !slot.rt.probation {
                e.rare().last_good = Some(Box::new(slot.def.clone()));
            }
            e.clear_gate(false);
        }
        // A removed unit still stopping that this reload gives back comes
        // back as a new unit (the supervisor's `revive`): no definition of
        // its earlier life is put back if the new one fails.
        if self
            .sup
            .slots()
            .any(|s| s.retired == crate::supervisor::Retired::Leaving)
        {
            for (i, e) in self.edges.iter_mut().enumerate() {
                let back = self.sup.slot(i as u16).is_some_and(|s| {
                    s.retired == crate::supervisor::Retired::Leaving
                        && defs.iter().any(|d| d.name == s.def.name)
                });
                if back {
                    e.clear_gate(true);
                }
            }
        }
    }

    /// Before a reload reads the unit directory, the disk answering: the
    /// put-backs it did not take at their verdicts are made now, each as
    /// its verdict would have (a file edited since is the operator's, and
    /// left). One the disk does not take again stays owed, said, and its
    /// unit kept as it runs (`still_owed`): the reload would read the
    /// rejected file and apply it again.
    pub(super) fn owed(&mut self, report: &mut dyn FnMut(&str)) {
        // Its own copy: the loop below changes the edges (`self`).
        let dir = String::from(self.units_dir_path());
        let dir = dir.as_str();
        for i in 0..self.edges.len() {
            let Some(owed) = self
                .edges
                .get_mut(i)
                .and_then(|e| e.rare.as_mut()?.owed.take())
            else {
                continue;
            };
            let (good, rejected, cause) = &*owed;
            let name = good.name.clone();
            let written = self.disk_stall.on_disk(now(), self.fed_watchdog(), &|| {
                restore_file(dir, &name, good, cause, Some(rejected)).map(drop)
            });
            match written {
                Ok(()) => {
                    let line: Rejection = crate::proto::formatted(format_args!(
                        "{name}.unit: the last good definition written back, the rejected one kept as {name}.unit.rejected"
                    ));
                    crate::info!("{}", line.as_str());
                    report(&line);
                }
                // Edited or removed since: the file is the operator's now.
                Err(Errno::STALE) => {}
                // The disk still does not answer, or refuses (full,
                // read-only, failing): owed to the reload after.
                Err(e) => {
                    let line: Rejection = crate::proto::formatted(format_args!(
                        "{name}.unit: the last good definition still cannot be written back ({}); it runs, the rejected file is not applied",
                        DiskError(e)
                    ));
                    crate::warn!("{}", line.as_str());
                    report(&line);
                    if let Some(e) = self.edges.get_mut(i) {
                        e.rare().owed = Some(owed);
                    }
                }
            }
            // Made or given up: a box left holding nothing goes.
            if let Some(e) = self.edges.get_mut(i) {
                e.drop_if_empty();
            }
        }
    }

    /// The units whose put-back is still owed (`owed`): a reload keeps
    /// them as they run rather than read their rejected file.
    pub(super) fn still_owed(&self) -> Vec<unit::Name> {
        let owed = |e: &super::Edge| Some(e.rare.as_ref()?.owed.as_ref()?.0.name.clone());
        self.edges.iter().filter_map(owed).collect()
    }

    /// After a reload: every slot it put on probation waits for its
    /// verdict (not one on probation from before that it left as it was).
    pub(super) fn mark_pending(&mut self) {
        for (i, e) in self.edges.iter_mut().enumerate() {
            let u = i as u16;
            let put = self.sup.slot(u).is_some_and(|s| s.rt.probation);
            if put && !self.gate_unchanged.contains(&u) {
                e.verdict = Some(Verdict::Pending);
            }
        }
    }

    /// `Action::Verdict`: keep the new definition, or put the last good
    /// one back (file included) and start it; a new unit is stopped.
    pub(super) fn on_verdict(&mut self, u: u16, good: bool) {
        let Some(slot) = self.sup.slot(u) else { return };
        let name = slot.def.name.clone();
        if good {
            if let Some(e) = self.edges.get_mut(usize::from(u)) {
                e.clear_gate(true);
                e.verdict = Some(Verdict::Good);
            }
            kmsg::status(
                "[  OK  ]",
                false,
                format_args!("{name}: new definition accepted"),
            );
            return;
        }
        let cause = self.cause(u);
        let kept = self
            .edges
            .get_mut(usize::from(u))
            .and_then(|e| e.take_last_good());
        let mut out = std::mem::take(&mut self.gate_actions);
        out.clear();
        let dir = self.units_dir_path();
        // A last good definition whose `after` the units loaded now no
        // longer allow (a name removed, or a cycle with a unit changed in
        // the same reload) is not put back: the unit is stopped, its
        // file left as loaded.
        let problem = kept
            .as_deref()
            .and_then(|good| self.sup.put_back_problem(u, good));
        let text: Rejection = match kept {
            Some(_) if problem.is_some() => {
                self.sup.revert(now(), u, None, &mut out);
                let (what, who) = match &problem {
                    Some(crate::supervisor::PutBack::Unknown(dep)) => {
                        ("its after names a unit no longer loaded: ", dep.as_str())
                    }
                    Some(crate::supervisor::PutBack::Cycle(via)) => (
                        "its after would close a cycle through ",
                        self.sup.slot(*via).map_or("?", |s| s.def.name.as_str()),
                    ),
                    None => ("", ""),
                };
                crate::proto::formatted(format_args!(
                    "new definition rejected, stopped; the last good one cannot come back \
                     ({what}{who}): {cause}"
                ))
            }
            Some(good) => {
                let rejected = self.sup.slot(u).map(|s| s.def.clone());
                let saved = self.disk_stall.on_disk(now(), self.fed_watchdog(), &|| {
                    restore_file(dir, &name, &good, &cause, rejected.as_ref()).map(drop)
                });
                // Not written (the disk did not answer, or refused it: full,
                // read-only, failing, no child to write with): the file
                // still holds the rejected definition, which the next boot
                // would start ungated, and the next reload apply again.
                // Owed to the next reload. Not one edited since (`STALE`).
                let owed = saved.is_err_and(|e| e != Errno::STALE);
                if let (true, Some(r)) = (owed, rejected.as_ref()) {
                    if let Some(e) = self.edges.get_mut(usize::from(u)) {
                        e.rare().owed = Some(Box::new(((*good).clone(), r.clone(), cause.clone())));
                    }
                }
                // What the next reload will read back, so it sees the unit
                // unchanged (and the lines of its messages are the file's).
                let def = match saved.and_then(|()| put_back(&name, &good, &cause)) {
                    Ok((def, _)) => def,
                    Err(_) => *good,
                };
                self.sup.revert(now(), u, Some(def), &mut out);
                match saved {
                    Ok(()) => crate::proto::formatted(format_args!(
                        "new definition rejected, kept as {name}.unit.rejected; \
                         the last good one runs: {cause}"
                    )),
                    Err(Errno::STALE) => crate::proto::formatted(format_args!(
                        "new definition rejected; the last good one runs; {name}.unit, \
                         changed since the reload, is left for the next one: {cause}"
                    )),
                    Err(e) => crate::proto::formatted(format_args!(
                        "new definition rejected; the last good one runs, but its file \
                         could not be written back ({}): {cause}",
                        DiskError(e)
                    )),
                }
            }
            None => {
                let rejected = self.sup.slot(u).map(|s| s.def.clone());
                let moved = self.disk_stall.on_disk(now(), self.fed_watchdog(), &|| {
                    set_aside(dir, &name, rejected.as_ref())
                });
                self.sup.revert(now(), u, None, &mut out);
                match moved {
                    Ok(()) => crate::proto::formatted(format_args!(
                        "new unit rejected, set aside as {name}.unit.rejected; stopped: {cause}"
                    )),
                    Err(Errno::STALE) => crate::proto::formatted(format_args!(
                        "new unit rejected, stopped; {name}.unit, changed since the reload, \
                         is left for the next one: {cause}"
                    )),
                    Err(e) => crate::proto::formatted(format_args!(
                        "new unit rejected, stopped; its file could not be set aside ({}): {cause}",
                        DiskError(e)
                    )),
                }
            }
        };
        kmsg::status("[FAILED]", false, format_args!("{name}: {text}"));
        crate::error!("{name}: {text}");
        if let Some(e) = self.edges.get_mut(usize::from(u)) {
            e.rare().rejected = Some(text.as_str().into());
            e.verdict = Some(Verdict::Rejected);
            // The definition put back starts with its own seccomp filter,
            // not the rejected one's (built, as a reload builds them).
            if let Some(slot) = self.sup.slot(u) {
                e.refresh_filter(&slot.def);
            }
        }
        // The definition put back may ask units/ for another memory
        // protection than the rejected one did (`apply_protection`, as
        // after a reload).
        self.apply_protection();
        super::refused(&out);
        for a in out.iter() {
            self.perform(*a);
        }
        self.gate_actions = out;
    }

    /// Why the unit's start failed, from its last note.
    fn cause(&self, u: u16) -> Why {
        let Some(slot) = self.sup.slot(u) else {
            return Why::new();
        };
        let edge = self.edges.get(usize::from(u));
        match slot.rt.last_note {
            Some(Note::SpawnFailed { .. }) => match edge.map(|e| e.last_error()) {
                Some(e) if !e.is_empty() => why(format_args!("{e}")),
                _ => why(format_args!("could not start")),
            },
            Some(Note::Died { exit, .. }) => why(format_args!("{}", ExitText(exit))),
            Some(Note::StartTimeout { .. }) => why(format_args!(
                "not ready within {}ms",
                slot.def.start_timeout
            )),
            Some(Note::StartLimit) => why(format_args!("start limit hit")),
            _ => why(format_args!("did not start")),
        }
    }

    /// Where the units are read from: `wren.units`, or the default.
    pub(super) fn units_dir_path(&self) -> &str {
        if self.units_dir.is_empty() {
            crate::vocab::DEFAULT_UNITS_DIR
        } else {
            self.units_dir.as_str()
        }
    }

    /// The answer to `initctl reload`'s wait: one line per judged unit;
    /// `None` while a unit is still on probation.
    pub(super) fn verdicts(&self, report: &mut dyn FnMut(&str)) -> Option<usize> {
        // Not yet while a unit whose verdict is asked for is on probation.
        let judging = self.edges.iter().enumerate().any(|(i, e)| {
            let on = self
                .sup
                .slot(i as u16)
                .is_some_and(|s| s.rt.probation && !s.judged_when_started());
            on && e.verdict == Some(Verdict::Pending)
        });
        if judging {
            return None;
        }
        let mut rejected = 0;
        for (i, e) in self.edges.iter().enumerate() {
            let Some(slot) = self.sup.slot(i as u16) else {
                continue;
            };
            let name = slot.def.name.as_str();
            let line: heapless::String<{ crate::proto::REASON_MAX + crate::vocab::NAME_MAX + 2 }> =
                match e.verdict {
                    Some(v @ (Verdict::Good | Verdict::Rejected)) => {
                        let r = match v {
                            Verdict::Good => "ready",
                            _ => {
                                rejected += 1;
                                // Cleared by a start or stop by hand since.
                                e.rejected().unwrap_or("rejected")
                            }
                        };
                        crate::proto::formatted(format_args!("{name}: {r}"))
                    }
                    // Never judged, as it never ran, but down: not "applied
                    // and ready" (docs/update.md), so the reload fails too.
                    Some(Verdict::Pending) if slot.gave_up_on_dependency() && slot.rt.probation => {
                        rejected += 1;
                        let d = match slot.rt.last_note {
                            Some(Note::DepFailed { dep }) => self.sup.slot(dep),
                            _ => None,
                        };
                        let d = d.map_or("?", |s| s.def.name.as_str());
                        crate::proto::formatted(format_args!(
                            "{name}: not started, dependency {d} failed"
                        ))
                    }
                    // Nor one shed while on probation (judged when it is
                    // started again), nor one whose verdict will not come:
                    // a shutdown took every unit off probation, a stop by
                    // hand this one, started by hand since or not (after
                    // the reboot the new file would start ungated, the
                    // agent told 0).
                    Some(Verdict::Pending) => {
                        let why = if slot.judged_when_started() {
                            "stopped under memory pressure"
                        } else if self.sup.shutting_down().is_some() {
                            "shutting down"
                        } else if slot.retired == crate::supervisor::Retired::No
                            && slot.rt.last_note != Some(Note::DepMissing)
                        {
                            "stopped by hand"
                        } else {
                            // Removed before it was judged, or its `after`
                            // unit removed (`failed`, said as such).
                            continue;
                        };
                        rejected += 1;
                        crate::proto::formatted(format_args!("{name}: not judged: {why}"))
                    }
                    None => continue,
                };
            report(&line);
        }
        Some(rejected)
    }
}

/// Tests whose verdict goes to the disk run `alone!`: `on_disk`'s child,
/// a fork of the test process, allocates (PID 1's may: it has one
/// thread), and a fork of a process whose other threads hold malloc's
/// lock can wait on it for ever. The disk step then times out, the file
/// is left alone, and a test that expects it left alone would pass on
/// nothing.
#[cfg(test)]
mod tests;
