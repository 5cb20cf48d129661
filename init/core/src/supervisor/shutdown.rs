//! Shutdown: stop every unit in reverse dependency order, then `Finish`.

use super::*;

impl Supervisor {
    pub(super) fn begin_shutdown(&mut self, kind: ShutdownKind) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(kind);
        for s in self.units.iter_mut() {
            s.rt.want = false;
            s.rt.restart_pending = false;
            s.rt.probation = false;
        }
    }

    pub(super) fn settle_shutdown(&mut self, now: Millis, out: &mut Actions) {
        if self.finished {
            return;
        }
        // How many active units list each unit in `after`, kept as units
        // stop, so a pass is linear in the table.
        let mut needed = core::mem::take(&mut self.needed);
        needed.iter_mut().for_each(|n| *n = 0);
        let count = |needed: &mut [u32], deps: &[u16], up: bool| {
            for &d in deps {
                if let Some(n) = needed.get_mut(usize::from(d)) {
                    *n = if up {
                        n.saturating_add(1)
                    } else {
                        n.saturating_sub(1)
                    };
                }
            }
        };
        for o in self.units.iter().filter(|o| o.rt.phase.active()) {
            count(&mut needed, &o.rt.deps, true);
        }
        for i in 0..self.units.len() {
            let Some(s) = self.units.get(i) else { break };
            if !s.rt.phase.active() || s.rt.phase == Phase::Stopping {
                continue;
            }
            if needed.get(i).copied().unwrap_or(0) == 0 {
                self.stop_unit(now, i as u16, out);
                if let Some(s) = self.units.get(i).filter(|s| !s.rt.phase.active()) {
                    count(&mut needed, &s.rt.deps, false);
                }
            }
        }
        self.needed = needed;
        if self.units.iter().all(|s| !s.rt.phase.active()) {
            self.finished = true;
            if let Some(kind) = self.shutdown {
                let _ = out.push(Action::Finish(kind));
            }
        }
    }
}
