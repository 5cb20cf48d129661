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
        for i in 0..self.units.len() {
            let Some(s) = self.units.get(i) else { break };
            if !s.rt.phase.active() || s.rt.phase == Phase::Stopping {
                continue;
            }
            let needed = self
                .units
                .iter()
                .any(|o| o.rt.phase.active() && o.rt.deps.iter().any(|&d| usize::from(d) == i));
            if !needed {
                self.stop_unit(now, i as u8, out);
            }
        }
        if self.units.iter().all(|s| !s.rt.phase.active()) {
            self.finished = true;
            if let Some(kind) = self.shutdown {
                let _ = out.push(Action::Finish(kind));
            }
        }
    }
}
