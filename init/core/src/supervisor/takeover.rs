//! A new PID 1 taking the table over on `initctl reexec`: slots restored
//! as the previous one handed them over, or, when its state could not be
//! read, units adopted from what is found running.

use super::*;

impl Supervisor {
    /// A slot handed over by the previous PID 1 (`reexec`), as it was; at
    /// the same index, so fds and tokens keep meaning the same unit. Call
    /// `link` once every slot is in.
    pub fn restore(
        &mut self,
        def: UnitDef,
        mut rt: Runtime,
        retired: Retired,
    ) -> Result<u16, AddError> {
        rt.failures.resize(def.seldom.start_limit);
        // Whatever was handed over: every pass looks once.
        self.wake_all();
        self.leaving = true;
        self.freed = true;
        self.timed.set(true);
        let idx = u16::try_from(self.units.len()).map_err(|_| AddError::TableFull)?;
        if usize::from(idx) >= MAX_UNITS {
            return Err(AddError::TableFull);
        }
        self.units.push(Slot {
            def,
            rt,
            retired,
            limits_gen: 0,
        });
        self.needed.resize(self.units.len(), 0);
        Ok(idx)
    }

    /// A unit found running with no state to say how (a re-exec whose
    /// state could not be read): its main process is `pid`.
    pub fn adopt(&mut self, unit: u16, pid: u32, now: Millis) {
        let Some(s) = self.units.get_mut(usize::from(unit)) else {
            return;
        };
        s.rt.pid = pid;
        s.rt.spawned_at = now;
        s.rt.want = true;
        s.rt.deadline = None;
        // Readiness cannot be known: a service counts as ready, a oneshot
        // runs on until it exits.
        s.rt.phase = match s.def.kind {
            Kind::Service => Phase::Running,
            Kind::Oneshot => Phase::Starting,
        };
        // Its pings go on (the notify socket is handed over): watched again.
        s.rt.watchdog_at = s
            .def
            .seldom
            .watchdog
            .and_then(|w| due(now.saturating_add(w)));
        self.timed.set(true);
        s.rt.last_note = Some(Note::Running { pid });
    }
}
