//! The new PID 1's side of a re-exec: the state read and taken over
//! (units, their fds, rings and verdicts), or, from a build of another
//! state format, the units adopted from their files (`adopt`).

use super::*;

impl Pid1 {
    /// The new PID 1: take over from the state in `fd`, or adopt.
    pub(in crate::pid1) fn resume(&mut self, fd: OwnedFd, opts: &crate::boot::cmdline::Options) {
        self.units_dir = heapless::String::try_from(opts.units_dir()).unwrap_or_default();
        let mut bytes = Vec::new();
        let read = rustix::fs::seek(&fd, rustix::fs::SeekFrom::Start(0))
            .map_err(std::io::Error::from)
            .and_then(|_| crate::sys::file::read_to_end(std::fs::File::from(fd), &mut bytes));
        if let Err(e) = read {
            crate::error!("handover: cannot read the state: {e}");
        }
        let Some(parsed) = handover::parse_hints(&bytes) else {
            crate::error!("handover: not a wren state; adopting from the cgroup tree");
            self.close_inherited(opts);
            self.adopt(opts, &[], 0);
            return;
        };
        // Followers go on in either case (after an adoption, from the
        // start of the new, empty ring).
        if let Some((fd, secs)) = parsed.watchdog {
            self.take_watchdog(take_fd(fd), secs);
        }
        let same = parsed.format == state_format();
        for (fd, name, pos) in parsed.followers.iter() {
            if let Some(fd) = take_fd(*fd) {
                self.followers
                    .push((fd, name.clone(), if same { *pos } else { 0 }));
            }
        }
        if parsed.format != state_format() {
            crate::warn!(
                "handover: state format {}, this build reads {}; adopting the running units",
                parsed.format,
                state_format()
            );
            self.reexecs = parsed.reexecs;
            self.adopt(opts, &parsed.hints, parsed.format);
            return;
        }
        match decode(parsed.rest) {
            Ok((header, units)) => self.take_over(header, units),
            Err(_) => {
                crate::error!("handover: the state is damaged; adopting the running units");
                self.reexecs = parsed.reexecs;
                self.adopt(opts, &parsed.hints, parsed.format);
            }
        }
    }

    fn take_over(&mut self, header: Header, units: Vec<UnitState<'_>>) {
        self.started_at = header.started_at;
        self.all_up_reported = header.all_up_reported;
        self.reexecs = header.reexecs;
        for st in units {
            let mut edge = Edge::new(&st.def);
            // Sized by the definition (the parser's bound), not by the
            // state's own word for it: a damaged state asking for 4 GiB
            // would abort PID 1 at the allocation.
            let capacity = st.def.log_size.min(crate::vocab::LOG_SIZE_MAX);
            edge.log = LogRing::restored(
                capacity as usize,
                st.log_pos,
                st.log,
                crate::sys::alloc::zeroed,
            );
            edge.log_rd = take_fd(st.log_fd);
            edge.notify = take_fd(st.notify_fd);
            edge.exit_report = take_fd(st.report_fd);
            edge.oom_kills_at_spawn = st.oom_kills_at_spawn;
            edge.oom_kills = st.oom_kills;
            edge.pressure_events = st.pressure_events;
            edge.shed = st.shed;
            edge.set_last_error(crate::proto::truncated(st.last_error));
            if let Some(good) = st.last_good {
                edge.rare().last_good = Some(Box::new(good));
            }
            edge.verdict = match st.verdict {
                1 => Some(super::super::gate::Verdict::Pending),
                2 => Some(super::super::gate::Verdict::Good),
                3 => Some(super::super::gate::Verdict::Rejected),
                _ => None,
            };
            if let Some(r) = st.rejected {
                let r: super::super::gate::Rejection = crate::proto::truncated(r);
                edge.rare().rejected = Some(r.as_str().into());
            }
            let running = st.rt.pid != 0;
            let cgroup = self.cgroup_exists(&st.def.name);
            // A stopped unit that has run has keys too, worked out as a
            // running one's (its last start's, unless a reload changed its
            // limits since). Under a hierarchy, not without its cgroup.
            let has_run = st.rt.spawned_at != 0 && (cgroup || self.cg.is_none());
            let name = st.def.name.clone();
            let restored = self.sup.restore(st.def, st.rt, st.retired);
            if restored.is_err() {
                // Its fds close with its edge, here; its processes, if it
                // runs, go on unsupervised (a build with a smaller table,
                // rolled back to).
                let left = if running {
                    "; left running unsupervised"
                } else {
                    ""
                };
                crate::error!("handover: {name}: no room in the table{left}");
                kmsg::console_line(format_args!(
                    "[FAILED] {name}: not taken over (no room in the table){left}"
                ));
            }
            if let Ok(u) = restored {
                // A running unit's limits are written; a stopped unit's
                // are written again at its next start.
                let gen = slot_limits(&self.sup, usize::from(u));
                let gen = if running {
                    gen
                } else {
                    super::super::stale_limits(gen)
                };
                edge.cgroup = cgroup.then_some(gen);
                if running || has_run {
                    edge.not_enforced = self.running_not_enforced(u, cgroup);
                }
                self.edges.push(edge);
            }
        }
        if let Err((u, _)) = self.sup.link() {
            crate::error!("handover: unit {u}: unresolved dependency");
        }
        self.free_slots_let_go_of_live_cgroups();
        // A reload's removals go on: a unit still stopping is let go once
        // it has stopped, and the cgroups of units gone (the last PID 1's
        // `orphans`, not handed over) are tried once more, as after the
        // reload (`forget_cgroups`).
        self.removing = true;
        let n = self.sup.slots().filter(|s| s.rt.pid != 0).count() as u32;
        self.origin = Origin::HandedOver { units: n };
        kmsg::console_line(format_args!(
            "[  OK  ] wren {VERSION} took over as PID 1 ({n} running units handed over)"
        ));
        crate::info!("took over as PID 1: {n} running units handed over");
    }

    /// A free slot (a unit a reload removed) keeps the name it had: once a
    /// later reload has configured that name again in another slot, the
    /// `units/NAME` that `cgroup_exists` found is the live unit's, not
    /// what the removed one's stop left; claimed, the next reload ended it
    /// as leftovers (`cgroup.kill` of the running unit).
    fn free_slots_let_go_of_live_cgroups(&mut self) {
        for (i, e) in self.edges.iter_mut().enumerate() {
            // Free slots with a cgroup only: the lookups by name walk the
            // table, which every slot asking for would make quadratic.
            let free = u16::try_from(i)
                .ok()
                .and_then(|u| self.sup.slot(u))
                .filter(|s| s.retired == Retired::Free && e.cgroup.is_some());
            let Some(s) = free else { continue };
            let name = s.def.name.as_str();
            if self.sup.index(name).is_some()
                || self.sup.retired_index(name, Retired::Leaving).is_some()
            {
                e.cgroup = None;
            }
        }
    }

    /// The keys a unit's last start found not enforced, as its cgroup (or
    /// none) says: no start of the new PID 1's works them out until the
    /// limits change, and a stopped unit's `status` says them until then.
    pub(super) fn running_not_enforced(
        &self,
        u: u16,
        cgroup: bool,
    ) -> super::super::not_enforced::KeySet {
        let Some(s) = self.sup.slot(u) else {
            return super::super::not_enforced::KeySet::EMPTY;
        };
        let limits = s.def.limits.get();
        let ne = match self.cg.as_ref().filter(|_| cgroup) {
            Some(cg) => cg.not_enforced_in(&s.def.name, &limits),
            None => crate::cgroup::missing::not_enforced(&limits),
        };
        super::super::not_enforced::KeySet::of(&ne)
    }

    /// `units/NAME` is there (a running unit's, handed over or adopted),
    /// opened through the cgroup layer like every start's.
    pub(super) fn cgroup_exists(&self, name: &str) -> bool {
        self.cg.as_ref().is_some_and(|cg| cg.unit_dir(name).is_ok())
    }

    /// After the loop is set up: watch the units' fds again, and serve
    /// the handed-over followers.
    pub(in crate::pid1) fn rewatch(&mut self) {
        let followers = core::mem::take(&mut self.followers);
        if let Some(srv) = self.control.as_mut() {
            for (fd, name, pos) in followers {
                if !srv.adopt_follower(fd, name.clone(), pos) {
                    crate::warn!("log -f follower of {name} not kept: no free client slot");
                }
            }
        }
        let Some(ep) = self.epoll.as_ref() else {
            return;
        };
        for (i, e) in self.edges.iter_mut().enumerate() {
            let u = i as u64;
            e.log_rd = e.log_rd.take().and_then(|fd| {
                super::super::event_loop::watch(ep, fd, super::super::event_loop::TOKEN_LOG + u)
            });
            e.notify = e.notify.take().and_then(|fd| {
                super::super::event_loop::watch(ep, fd, super::super::event_loop::TOKEN_NOTIFY + u)
            });
            e.exit_report = e.exit_report.take().and_then(|fd| {
                super::super::event_loop::watch(ep, fd, super::super::event_loop::TOKEN_REPORT + u)
            });
        }
        for i in 0..self.sup.len() {
            if self.sup.slot(i as u16).is_some_and(|s| s.rt.pid != 0) {
                self.watch_pressure(i as u16);
            }
        }
    }
}

/// The slot's `limits_gen`: its limits are in the adopted cgroup.
pub(super) fn slot_limits(sup: &crate::supervisor::Supervisor, i: usize) -> u32 {
    sup.slot(i as u16).map(|s| s.limits_gen).unwrap_or_default()
}

/// What of a state `decode` could not read.
pub(super) enum Undecoded<'a> {
    Header,
    /// Fewer unit frames than the header says.
    Cut,
    /// This unit's frame (its definition's name and text first).
    Unit(&'a [u8]),
}

/// The state's header and units, as the new PID 1 takes them over, and
/// as a candidate asked about it reads them first (`candidate::unreadable`).
pub(super) fn decode(rest: &[u8]) -> Result<(Header, Vec<UnitState<'_>>), Undecoded<'_>> {
    let mut frames = handover::frames(rest);
    let header = frames
        .next()
        .and_then(wire::read_header)
        .ok_or(Undecoded::Header)?;
    let mut units = Vec::new();
    for _ in 0..header.units {
        let f = frames.next().ok_or(Undecoded::Cut)?;
        units.push(wire::read_unit(f).ok_or(Undecoded::Unit(f))?);
    }
    Ok((header, units))
}
