//! The walk's steps: PID 1's entry points, by chance.

use super::*;

impl Walk {
    /// Change the unit directory: a new definition, an invalid file, a
    /// removal, a new unit.
    pub(super) fn edit(&mut self) -> String {
        let i = self.rng.below(NAMES.len() as u64) as usize;
        let path = self.dir.path().join(format!("units/{}.unit", NAMES[i]));
        let what = match self.rng.below(10) {
            0..=4 => unit_text(&mut self.rng, i),
            5 | 6 => "exec = /bin/sleep 30\nbogus = 1\n".to_owned(),
            _ => {
                let _ = std::fs::remove_file(&path);
                return format!("rm {}", NAMES[i]);
            }
        };
        std::fs::write(&path, &what).unwrap();
        format!("write {}: {}", NAMES[i], what.replace('\n', "; "))
    }

    /// A unit of the table by chance, by name (one not there: refused).
    pub(super) fn name(&mut self) -> &'static str {
        NAMES[self.rng.below(NAMES.len() as u64) as usize]
    }

    pub(super) fn step(&mut self) {
        let what = match self.rng.below(21) {
            0..=2 => {
                let mut e = self.edit();
                if self.rng.chance(50) {
                    e = format!("{e} / {}", self.edit());
                }
                if self.rng.chance(70) {
                    self.ask(Request::Reload);
                    if self.rng.chance(50) {
                        self.ask(Request::Verdict);
                    }
                    format!("reload ({e})")
                } else {
                    let _ = self.p.reload(&mut |_| {});
                    format!("SIGHUP ({e})")
                }
            }
            3..=5 => {
                let name = self.name();
                let (req, verb) = match self.rng.below(3) {
                    0 => (Request::Start { name }, "start"),
                    1 => (Request::Stop { name }, "stop"),
                    _ => (Request::Restart { name }, "restart"),
                };
                self.ask(req);
                format!("{verb} {name}")
            }
            6..=8 => {
                let name = self.name();
                let pid = self.p.sup.index(name).and_then(|u| self.p.sup.slot(u));
                let pid = pid.map_or(0, |s| s.rt.pid);
                let sig = if self.rng.chance(50) { 9 } else { 15 };
                if pid != 0 {
                    let _ = crate::sys::signal::kill(pid as i32, sig);
                }
                format!("kill -{sig} {name} ({pid})")
            }
            9 => {
                self.p.on_system_pressure(false);
                "system pressure".to_owned()
            }
            10 => {
                if let Some(s) = self.p.shed.as_mut() {
                    s.calm_at = s.calm_at.map(|_| now());
                }
                self.p.on_shed_calm();
                "calm".to_owned()
            }
            11 => {
                let name = self.name();
                if let Some(u) = self.p.sup.index(name) {
                    self.p.on_pressure(u, self.rng.chance(10));
                }
                format!("{name}'s own pressure")
            }
            12 => self.reexec(),
            13 => self.crowd(),
            _ => {
                let ms = self.rng.below(80);
                self.turn(ms);
                format!("wait {ms}ms")
            }
        };
        self.turn(0);
        let state = self.state();
        self.trace.push(format!("{what} => {state}"));
        self.check(&what);
    }

    /// The closers' places taken by sleepers, children as closers are: a
    /// unit's datagram with fds then waits for a place until PID 1 kills
    /// the aged (`passed::tend`) and its reap frees them.
    fn crowd(&mut self) -> String {
        let places = crate::sys::passed::places().len();
        let sleep = || std::process::Command::new("/bin/sleep").arg("5").spawn();
        let pids: Vec<u32> = (0..places)
            .filter_map(|_| sleep().ok())
            .map(|c| c.id())
            .collect();
        let taken = crate::sys::passed::crowd(&pids);
        // Those left without a place, reaped by PID 1's next turn.
        for &pid in pids.get(taken..).unwrap_or_default() {
            let _ = crate::sys::signal::kill(pid as i32, 9);
        }
        format!("crowd the closers' places ({taken} taken)")
    }
}
