//! The bound on shutdown, and its finish. The shutdown as a whole has a
//! deadline (`shutdown_budget`): past it, PID 1 goes on to the final
//! sequence whatever is still stopping (`stopping` stops each unit).

use super::{now, Pid1};
use crate::supervisor::{Event, Phase};
use crate::vocab::{Millis, ShutdownKind};

/// Added to the sum of every unit's `stop_timeout` for the shutdown's
/// deadline: the kills and their retries, the reverse order's steps.
pub(super) const SHUTDOWN_SLACK_MS: Millis = 10_000;

impl Pid1 {
    /// The final sequence, once every unit is stopped and every cgroup
    /// PID 1 waited for is empty (or given up on).
    pub(super) fn finish_when_drained(&mut self, kind: ShutdownKind) {
        if self.draining() {
            self.finish_pending = Some(kind);
            return;
        }
        self.finish_now(kind, false);
    }

    /// After each batch: a finish that waited for cgroups to empty, and
    /// the shutdown's deadline.
    pub(super) fn tend_shutdown(&mut self) {
        let Some(kind) = self.sup.shutting_down() else {
            return;
        };
        self.feed_through_shutdown();
        // A drain ended in this batch (`cgroup.events`, a kill's timer)
        // queued its unit's `Drained`.
        if !self.queue.is_empty() {
            self.run_queue();
        }
        let t = now();
        let deadline = *self
            .shutdown_deadline
            .get_or_insert_with(|| t.saturating_add(shutdown_budget(&self.sup)));
        if let Some(k) = self.finish_pending {
            if !self.draining() {
                self.finish_now(k, false);
            }
        }
        if t >= deadline {
            // A stopped unit whose cgroup has not emptied is named too: it
            // is what the finish waited for.
            for (s, e) in self.sup.slots().zip(self.edges.iter()) {
                let down = matches!(s.rt.phase, Phase::Stopped | Phase::Failed | Phase::Exited);
                if !down || e.drain.active() {
                    crate::error!(
                        "shutdown: {} still {:?}{} at the shutdown deadline",
                        s.def.name,
                        s.rt.phase,
                        if down {
                            ", processes left in its cgroup"
                        } else {
                            ""
                        }
                    );
                }
            }
            crate::error!("shutdown: deadline passed; going on without them");
            self.finish_now(self.finish_pending.unwrap_or(kind), true);
        }
    }

    /// A shutdown asked by `by` (`initctl`, a signal's sender): the first
    /// kind asked is the one done. Another kind asked during it is said
    /// and refused (the kind under way comes back), not dropped in
    /// silence; the same kind again changes nothing.
    pub(super) fn ask_shutdown(
        &mut self,
        kind: ShutdownKind,
        by: core::fmt::Arguments<'_>,
    ) -> Result<(), ShutdownKind> {
        match self.sup.shutting_down() {
            None => {
                crate::info!("shutdown: {} (asked by {by})", kind.verb());
                self.feed(Event::Shutdown(kind));
                Ok(())
            }
            Some(k) if k == kind => Ok(()),
            Some(k) => {
                crate::warn!(
                    "shutdown: already {}; {} (asked by {by}) refused",
                    k.verb(),
                    kind.verb()
                );
                Err(k)
            }
        }
    }

    /// `late`: the deadline passed with units or cgroups not down.
    fn finish_now(&mut self, kind: ShutdownKind, late: bool) -> ! {
        match late {
            true => crate::info!("units not all stopped; {kind:?}"),
            false => crate::info!("all units stopped; {kind:?}"),
        }
        let _ = crate::kmsg::console_flush();
        finish(
            kind,
            std::time::Duration::from_millis(super::executor::SHUTDOWN_GRACE_MS),
            self.watchdog.take(),
        )
    }
}

#[cfg(not(test))]
use crate::boot::shutdown::finish;

/// A host test must not signal every process of the machine it runs on
/// (kill(-1)) nor reboot it: there the final sequence is a panic whose
/// payload is `Finished` (`walk_tests` catches it).
#[cfg(test)]
fn finish(kind: ShutdownKind, _: std::time::Duration, _: Option<crate::watchdog::Watchdog>) -> ! {
    std::panic::panic_any(Finished { kind })
}

/// What a host test's final sequence says (see `finish`).
#[cfg(test)]
pub(super) struct Finished {
    pub(super) kind: ShutdownKind,
}

/// The whole shutdown's deadline, from its start: every unit's
/// `stop_timeout` (they may be stopped one after another), plus
/// `SHUTDOWN_SLACK_MS`.
pub(super) fn shutdown_budget(sup: &crate::supervisor::Supervisor) -> Millis {
    sup.slots()
        .map(|s| s.def.stop_timeout)
        .fold(SHUTDOWN_SLACK_MS, Millis::saturating_add)
}
