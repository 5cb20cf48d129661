//! Re-reading the unit directory (`initctl reload`, SIGHUP) and applying
//! it: the supervisor decides what is added, changed, removed or kept; the
//! loop gives new slots their edge state and performs what follows.

use super::{now, Edge, Pid1};
use crate::config;
use crate::proto::{CtlError, ErrCode};
use crate::supervisor::Actions;
use crate::unit::{self, UnitDef};
use std::path::Path;

/// What reads the unit directory in a child before PID 1 does
/// (`Pid1::warm_units`): `config::warm`. Host tests run threads beside
/// this one, and the child of a raw clone must not allocate there: a lock
/// another thread held at the clone stays held in it (PID 1's other
/// thread allocates nothing). The boot tests' reloads read with
/// `config::warm`.
#[cfg(not(test))]
pub(super) const WARM: &dyn Fn(&Path) = &config::warm;
#[cfg(test)]
pub(super) const WARM: &dyn Fn(&Path) = &|_| {};

/// How long a reload waits for starts on spawn slots to exec, before and
/// after killing them (`sys::slot::quiesce`).
const SLOT_PATIENCE: core::time::Duration = core::time::Duration::from_millis(50);

/// What a reload or a re-exec's state may allocate besides a copy of the
/// unit table and its units' files: the load's lists, the state's text.
const REBUILD_SCRATCH: usize = 128 * 1024;
/// What a unit file may cost a reload besides its share of the table
/// (its path, its name, its parse), or its unit the table when new: most
/// definitions take a few hundred bytes (docs/benchmarks.md, "Eighteenth
/// round").
const FILE_SCRATCH: usize = 2 * 1024;

impl Pid1 {
    /// The bytes a reload or a re-exec, with `files` unit files to load,
    /// may allocate, if they cannot be had now (`sys::alloc::can_map`): both
    /// allocate as they go, and an allocation refused would abort PID 1,
    /// so they are refused first. A new table beside the old, half as
    /// much again for the allocator's rounding, the files', and scratch;
    /// the output rings, which neither copies, not counted.
    pub(super) fn short_for_rebuild(&self, files: usize) -> Option<usize> {
        let rings: usize = self
            .edges
            .iter()
            .filter(|e| e.log.is_allocated())
            .map(|e| e.log.capacity())
            .sum();
        let table = crate::sys::alloc::live().saturating_sub(rings);
        let want = table
            .saturating_add(table / 2)
            .saturating_add(files.saturating_mul(FILE_SCRATCH))
            .saturating_add(REBUILD_SCRATCH);
        crate::sys::alloc::can_map(want).err().map(|_| want)
    }

    /// The `*.unit` files in the unit directory: it may hold many more
    /// units than the table, and a reload (or a re-exec into a build that
    /// adopts the units) loads them all.
    pub(super) fn unit_files(&self) -> usize {
        config::count_unit_files(Path::new(self.units_dir_path()))
    }

    /// Re-read the unit directory and apply it (`initctl reload`, SIGHUP).
    pub(super) fn reload(&mut self, report: &mut dyn FnMut(&str)) -> Result<(), CtlError> {
        self.reload_warmed(report, WARM)
    }

    /// The unit directory read first by `warm` in a child of PID 1's that
    /// it waits for 2 s at most (`gate::on_disk`, the watchdog fed): a card
    /// or a mount that does not answer holds that child, not the loop
    /// (ETIMEDOUT, or EALREADY within 30 s of one that did not answer);
    /// one that answers leaves the files and the programs' inodes in the
    /// caches PID 1's own read then finds. Where there is no child to be
    /// had (memory refused) PID 1 reads as before.
    pub(super) fn warm_units(&self, warm: &dyn Fn(&Path)) -> Result<(), rustix::io::Errno> {
        let dir = self.units_dir_path();
        let warmed = self.disk_stall.on_disk(now(), self.fed_watchdog(), &|| {
            warm(Path::new(dir));
            Ok(())
        });
        match warmed {
            Err(e @ (rustix::io::Errno::TIMEDOUT | rustix::io::Errno::ALREADY)) => Err(e),
            _ => Ok(()),
        }
    }

    /// `reload`, the directory first read by `warm` (`warm_units`); one
    /// that cannot be read now refuses the reload, nothing changed.
    fn reload_warmed(
        &mut self,
        report: &mut dyn FnMut(&str),
        warm: &dyn Fn(&Path),
    ) -> Result<(), CtlError> {
        // The supervisor applies nothing in a shutdown: said, rather than
        // answered with a summary of nothing done (an update agent would
        // take it for a reload that worked).
        if self.sup.shutting_down().is_some() {
            return refused(format_args!("reload refused: shutting down"));
        }
        if let Err(e) = self.warm_units(warm) {
            let dir = self.units_dir_path();
            return refused(format_args!(
                "reload refused: {dir} cannot be read now ({})",
                super::gate::DiskError(e)
            ));
        }
        // The disk answers: what earlier verdicts could not write first,
        // so that this reload reads the files as they should be.
        self.owed(report);
        let dir = self.units_dir_path();
        if let Some(want) = self.short_for_rebuild(self.unit_files()) {
            return refused(format_args!(
                "reload refused: PID 1 is short of memory ({} KiB not to be had)",
                want.div_ceil(1024)
            ));
        }
        let mut defs: Vec<UnitDef> = Vec::new();
        // Names whose file exists but is invalid keep their last good
        // definition, and so do those whose put-back the disk still
        // refuses: their file is the rejected definition.
        let owed = self.still_owed();
        let mut invalid: Vec<unit::Name> = owed.clone();
        let mut errors = 0usize;
        let mut unreadable = false;
        config::load_dir(Path::new(dir), &mut defs, &mut |e| {
            errors += 1;
            unreadable |= e.line == 0 && e.msg.starts_with("cannot read the unit directory");
            let line = e.to_string();
            crate::error!("{line}");
            report(&line);
            let file = crate::pathname::file_name(Path::new(&e.file)).and_then(|s| s.to_str());
            let stem = file.map_or("", |f| f.strip_suffix(".unit").unwrap_or(f));
            if let Ok(n) = unit::Name::try_from(stem) {
                if !invalid.contains(&n) {
                    invalid.push(n);
                }
            }
        });
        // A directory that cannot be read, or holds no valid unit, is far
        // more likely a mistake (a missing mount, a bad update) than a wish
        // to stop everything, the console shell included: change nothing.
        if unreadable || defs.is_empty() {
            let why = if unreadable {
                "the unit directory cannot be read"
            } else if errors > 0 {
                "no valid unit in the unit directory"
            } else {
                "no unit files in the unit directory"
            };
            return refused(format_args!("reload refused: {why} ({dir})"));
        }
        defs.retain(|d| !owed.contains(&d.name));
        // Children on spawn slots read the definitions about to be
        // replaced until they exec: wait for them (killing the slow),
        // bounded; one that still does not clear keeps the old table.
        let mut killed: heapless::Vec<u32, { crate::sys::slot::SLOTS }> = heapless::Vec::new();
        let clear = crate::sys::slot::quiesce(SLOT_PATIENCE, &mut |pid| {
            let _ = killed.push(pid);
        });
        if !clear {
            // The old table stays: the starts killed are made again on it.
            self.start_killed_before_exec(&killed);
            return refused(format_args!(
                "reload refused: a unit's start is stuck before its exec, try again"
            ));
        }
        self.keep_last_good(&defs);
        // Removed units whose cgroup is not removed yet (what their stop
        // left, within its stop_timeout): a new unit may take the slot,
        // and the edge that would kill and remove it goes with the slot.
        let draining: Vec<(u16, unit::Name)> = self
            .edges
            .iter()
            .enumerate()
            .filter(|(_, e)| e.cgroup.is_some())
            .filter_map(|(i, _)| {
                let u = u16::try_from(i).ok()?;
                let s = self.sup.slot(u)?;
                (s.retired == crate::supervisor::Retired::Free).then(|| (u, s.def.name.clone()))
            })
            .collect();
        // The rescue shell PID 1 added (it has no file) stays, as a unit
        // whose file is invalid does: the reload that follows a repair is
        // typed in it, and stopping it would kill that `initctl` and leave
        // the console without a shell if the directory has none. The
        // operator ends it (`initctl stop rescue`), or the next boot does;
        // a `rescue.unit` of the directory takes its place.
        let rescue = super::boot::rescue_unit();
        let keep_rescue = self.sup.slots().any(|s| s.def == rescue)
            && !defs.iter().any(|d| d.name == rescue.name);
        let mut out = Actions::for_units(self.sup.len().saturating_add(defs.len()));
        let sum = self.sup.reload(
            now(),
            &mut defs.into_iter(),
            &|n| invalid.iter().any(|i| i.as_str() == n) || (keep_rescue && n == "rescue"),
            &mut out,
        );
        for (u, name) in draining.iter() {
            let taken = sum.new_slots.contains(u);
            if self.sup.index(name).is_some() {
                // Its name is configured again (in this slot or another):
                // what its stop left ends now, and the cgroup is the new
                // unit's, not removed, nor killed by the old drain later.
                self.end_leftovers(*u, name, taken);
            } else if taken {
                self.orphan_cgroup(name);
            }
        }
        for &i in sum.new_slots.iter() {
            let Some(slot) = self.sup.slot(i) else {
                continue;
            };
            let edge = Edge::new(&slot.def);
            match self.edges.get_mut(usize::from(i)) {
                Some(e) => {
                    // What the slot's last unit still watched leaves the
                    // epoll set before its fds close (`unwatch`).
                    let ep = self.epoll.as_ref();
                    e.let_go(ep);
                    e.drop_pressure(ep);
                    e.drain.end(ep, &mut self.waits.kills);
                    *e = edge;
                }
                None => self.edges.push(edge),
            }
        }
        self.waits = super::handshake::Waits::count(&self.edges);
        // The loop's buffers grow with the table (a reload may allocate).
        self.fit_tables();
        // A changed definition keeps its edge: its filter follows it here,
        // before any start the reload asks for.
        for (i, edge) in self.edges.iter_mut().enumerate() {
            if let Some(slot) = self.sup.slot(i as u16) {
                edge.refresh_filter(&slot.def);
            }
        }
        self.mark_pending();
        self.perform_all(&out);
        // Spawned / SpawnFailed queued by the actions above.
        self.run_queue();
        // The starts killed are made again, unless the reload took them
        // over meanwhile (a changed unit's start cancelled, a new run
        // begun: another pid). Not before the new table is in place: the
        // new child would read the old one.
        self.start_killed_before_exec(&killed);
        self.unshed_wanted();
        if sum.removed > 0 {
            self.removing = true;
        }
        // units/ must cover the protection of the units now configured
        // (a memory.low added by this reload would do nothing otherwise).
        self.apply_protection();
        let line: heapless::String<160> = crate::proto::formatted(format_args!(
            "{} added, {} changed, {} removed, {} unchanged, {} kept on last good definition{}",
            sum.added,
            sum.changed,
            sum.removed,
            sum.unchanged,
            sum.kept,
            if sum.no_room > 0 {
                ", some did not fit"
            } else {
                ""
            }
        ));
        crate::info!("reload: {line}");
        report(&line);
        if errors > 0 {
            Err(CtlError::fmt(
                ErrCode::Invalid,
                format_args!("{errors} problem(s) in unit files"),
            ))
        } else {
            Ok(())
        }
    }
}

/// A reload refused, nothing changed: said in the kernel log, and
/// answered with it (`initctl` says it once, as its error), the cause cut
/// if it must be so that "nothing changed" always ends it.
fn refused(cause: core::fmt::Arguments<'_>) -> Result<(), CtlError> {
    let e = CtlError {
        code: ErrCode::Refused,
        message: crate::proto::formatted_then(cause, "; nothing changed"),
    };
    crate::error!("{}", e.message);
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::{FILE_SCRATCH, REBUILD_SCRATCH};

    /// The check asks for the directory's files as well as for the table:
    /// a directory of far more units than can be had is refused, with the
    /// bytes it would have asked for; one that fits is not.
    #[test]
    fn a_rebuild_asks_for_its_files_as_well_as_its_table() {
        let p = crate::pid1::tests::pid1_with(&[("web", "exec = /bin/true\n")]);
        assert_eq!(p.short_for_rebuild(0), None);
        assert_eq!(p.short_for_rebuild(1_000), None);
        let files = usize::MAX / 4 / FILE_SCRATCH;
        let want = p.short_for_rebuild(files).unwrap();
        assert!(want >= files * FILE_SCRATCH + REBUILD_SCRATCH, "{want}");
    }

    /// The files a reload would load are the directory's `*.unit` files,
    /// however many units the table has.
    #[test]
    fn the_unit_files_counted_are_the_directorys() {
        let dir = crate::testutil::TempDir::new("reload-count");
        for f in ["a.unit", "b.unit", "c.unit", "notes.txt", "d.unit.rejected"] {
            dir.file(f, "exec = /bin/true\n");
        }
        let mut p = crate::pid1::tests::pid1_with(&[("web", "exec = /bin/true\n")]);
        p.units_dir = heapless::String::try_from(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(p.unit_files(), 3);
    }

    /// A unit directory that does not answer (here its read stuck for
    /// 10 s in the child) refuses the reload after 2 s, the loop's table
    /// as it was; one that answers is loaded.
    #[test]
    fn a_directory_that_does_not_answer_refuses_the_reload() {
        use std::time::{Duration, Instant};
        // A short name: the messages below must fit whole.
        let d = crate::testutil::TempDir::new("rl");
        d.file("web.unit", "exec = /bin/true\nnamespaces = none\n");
        d.file("db.unit", "exec = /bin/true\nnamespaces = none\n");
        let mut p = crate::pid1::tests::with_web();
        p.units_dir = d.path().to_str().unwrap().try_into().unwrap();
        let stuck = |_: &std::path::Path| crate::testutil::hang_holding_nothing();
        let mut said = Vec::new();
        let t = Instant::now();
        let r = p.reload_warmed(&mut |l| said.push(l.to_owned()), &stuck);
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
        let e = r.unwrap_err();
        assert!(said.is_empty(), "said once, as the error: {said:?}");
        assert!(
            e.message
                .contains("cannot be read now (the disk did not answer within 2 s); nothing"),
            "{e:?}"
        );
        assert_eq!(p.sup.len(), 1, "the table as it was");
        // At once, for 30 s: the card is left alone.
        let t = Instant::now();
        let r = p.reload_warmed(&mut |l| said.push(l.to_owned()), &|_| {});
        assert!(t.elapsed() < Duration::from_millis(500));
        let e = r.unwrap_err();
        assert!(
            e.message
                .ends_with("(the disk gave no answer less than 30 s ago); nothing changed"),
            "{e:?}"
        );
        p.disk_stall = Default::default();
        // A directory that answers is loaded (no allocation in the child:
        // a test's threads).
        let r = p.reload_warmed(&mut |_| {}, &|_| {});
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(p.sup.len(), 2);
    }

    /// A directory that cannot be read, holds no unit file, or no valid
    /// one refuses the reload (far more likely a missing mount or a bad
    /// update than a wish to stop everything), saying which, the table
    /// as it was.
    #[test]
    fn a_directory_with_no_unit_to_load_refuses_the_reload() {
        let d = crate::testutil::TempDir::new("rn");
        d.file("bad/bad.unit", "");
        std::fs::create_dir(d.path().join("empty")).unwrap();
        for (sub, why) in [
            ("none", "the unit directory cannot be read"),
            ("empty", "no unit files in the unit directory"),
            ("bad", "no valid unit in the unit directory"),
        ] {
            let mut p = crate::pid1::tests::with_web();
            let dir = d.path().join(sub);
            p.units_dir = dir.to_str().unwrap().try_into().unwrap();
            let e = p.reload(&mut |_| {}).unwrap_err();
            assert_eq!(e.code, crate::proto::ErrCode::Refused);
            let want = format!("reload refused: {why} ({}); nothing changed", dir.display());
            assert_eq!(e.message.as_str(), want);
            assert_eq!(p.sup.len(), 1, "the table as it was");
        }
    }

    /// An invalid file among valid ones: the reload is made, its unit kept
    /// on its last good definition, and the answer is an error counting
    /// the problems after the summary. Another file removed meanwhile, its
    /// unit is, and the loop tends what it leaves (its cgroup).
    #[test]
    fn an_invalid_file_keeps_its_unit_and_fails_the_answer() {
        let d = crate::testutil::TempDir::new("ri");
        d.file("web.unit", "exec = /bin/true\nnamespaces = none\n");
        d.file("db.unit", "exec = /bin/true\nbogus = 1\n");
        let units = [("web", "exec = /bin/true\n"), ("db", "exec = /bin/true\n")];
        let mut p = crate::pid1::tests::pid1_with(&units);
        p.units_dir = d.path().to_str().unwrap().try_into().unwrap();
        let mut said = Vec::new();
        let e = p.reload(&mut |l| said.push(l.to_owned())).unwrap_err();
        assert_eq!(e.code, crate::proto::ErrCode::Invalid);
        assert_eq!(e.message.as_str(), "1 problem(s) in unit files");
        assert!(p.sup.index("db").is_some(), "db removed");
        let sum = "0 added, 1 changed, 0 removed, 0 unchanged, 1 kept on last good definition";
        assert_eq!(said.last().map(String::as_str), Some(sum), "{said:?}");
        assert!(!p.removing, "nothing removed");
        // web's file gone, cache's new, db's still invalid: web removed,
        // what it leaves tended by the loop.
        std::fs::remove_file(d.path().join("web.unit")).unwrap();
        d.file("cache.unit", "exec = /bin/true\n");
        said.clear();
        assert!(p.reload(&mut |l| said.push(l.to_owned())).is_err());
        let sum = "1 added, 0 changed, 1 removed, 0 unchanged, 1 kept on last good definition";
        assert_eq!(said.last().map(String::as_str), Some(sum), "{said:?}");
        assert!(p.removing, "a removal not tended");
    }

    /// Only the rescue shell PID 1 added stays without a file: a
    /// `rescue` unit the directory had goes with its file, as any other.
    #[test]
    fn a_rescue_unit_of_the_directory_goes_with_its_file() {
        let d = crate::testutil::TempDir::new("rr");
        d.file("web.unit", "exec = /bin/true\n");
        let units = [
            ("web", "exec = /bin/true\n"),
            ("rescue", "exec = /bin/true\n"),
        ];
        let mut p = crate::pid1::tests::pid1_with(&units);
        p.units_dir = d.path().to_str().unwrap().try_into().unwrap();
        let mut said = Vec::new();
        assert!(p.reload(&mut |l| said.push(l.to_owned())).is_ok());
        let sum = "0 added, 0 changed, 1 removed, 1 unchanged, 0 kept on last good definition";
        assert_eq!(said.last().map(String::as_str), Some(sum), "{said:?}");
    }
}
