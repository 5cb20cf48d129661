//! The walk's steps: PID 1's entry points, by chance.

use super::*;

impl Walk {
    /// Change the unit directory: a new definition, an invalid file, a
    /// removal, a new unit.
    pub(super) fn edit(&mut self) -> String {
        let i = self.rng.below(NAMES.len() as u64) as usize;
        if self.read_only {
            return format!("no edit of {} (read-only)", NAMES[i]);
        }
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
        let what = match self.rng.below(23) {
            0..=2 => {
                let owed = self.owed();
                let mut e = self.edit();
                if self.rng.chance(50) {
                    e = format!("{e} / {}", self.edit());
                }
                let e = if self.rng.chance(70) {
                    self.ask(Request::Reload);
                    if self.rng.chance(50) {
                        self.ask(Request::Verdict);
                    }
                    format!("reload ({e})")
                } else {
                    let _ = self.p.reload(&mut |_| {});
                    format!("SIGHUP ({e})")
                };
                self.owed_paid(&owed, &e);
                e
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
            14 => self.disk(),
            15 => self.query(),
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

    /// A question that changes nothing (the status of every unit or of
    /// one, a unit's output, its definition, which wren runs), whatever
    /// the state: its first answer is a reply. A `log -f` client stays a
    /// follower while the walk keeps its connection, and is not waited for.
    fn query(&mut self) -> String {
        use std::io::Read;
        let name = self.name();
        let follow = self.rng.chance(50);
        let (req, what) = match self.rng.below(5) {
            0 => (
                Request::Status {
                    name: None,
                    from: 0,
                },
                "status".to_owned(),
            ),
            1 => (
                Request::Status {
                    name: Some(name),
                    from: 0,
                },
                format!("status {name}"),
            ),
            2 => (
                Request::Log { name, follow },
                format!("log (follow {follow}) {name}"),
            ),
            3 => (Request::Cat { name }, format!("cat {name}")),
            _ => (Request::Info, "info".to_owned()),
        };
        self.ask(req);
        // A follower's output comes as the unit writes it, if it does.
        if matches!(req, Request::Log { follow: true, .. }) {
            return what;
        }
        let Some(c) = self.clients.back_mut() else {
            return format!("{what}: not connected");
        };
        c.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        // As `initctl` reads it: frames gathered however the bytes come.
        let mut dec = Box::new(crate::proto::FrameDecoder::<{ crate::proto::FRAME_BUF }>::new());
        loop {
            match dec.frame() {
                Ok(Some(f)) => match crate::proto::decode_reply(f) {
                    Ok(_) => return what,
                    Err(e) => self.fail(&what, format!("answer not a reply: {e:?}")),
                },
                Ok(None) => {}
                Err(e) => self.fail(&what, format!("answer: {e:?}")),
            }
            match c.read(dec.spare()) {
                Ok(n) if n > 0 => dec.advance(n),
                // Output none: no chunk, the end.
                Ok(0) if dec.buffered() == 0 && matches!(req, Request::Log { .. }) => return what,
                got => self.fail(&what, format!("no answer: {got:?}")),
            }
        }
    }

    /// The unit directory read-only (a bind mount of itself), or
    /// writable again: a rejected definition's put-back the disk refuses
    /// is owed to a later reload (`gate::owed`). As root, in the walk's
    /// own mount namespace.
    pub(super) fn disk(&mut self) -> String {
        use rustix::mount::{mount_bind, mount_remount, unmount, MountFlags, UnmountFlags};
        let units = self.dir.path().join("units");
        if self.read_only {
            unmount(&units, UnmountFlags::empty()).unwrap();
            self.read_only = false;
            return "disk writable".to_owned();
        }
        if !rustix::process::geteuid().is_root() {
            return "disk (not root: left writable)".to_owned();
        }
        mount_bind(&units, &units).unwrap();
        mount_remount(&units, MountFlags::BIND | MountFlags::RDONLY, c"").unwrap();
        self.read_only = true;
        "disk read-only".to_owned()
    }

    /// The units whose rejected definition's put-back is owed: their
    /// names and the good definitions, which run meanwhile (checked).
    fn owed(&self) -> Vec<(String, crate::unit::UnitDef)> {
        let p = &self.p;
        let mut owed = Vec::new();
        for (i, e) in p.edges.iter().enumerate() {
            let Some((good, _, _)) = e.rare.as_ref().and_then(|r| r.owed.as_deref()) else {
                continue;
            };
            let s = p.sup.slot(i as u16).unwrap();
            if s.def != *good {
                self.fail(
                    "owed",
                    format!("{} runs {:?}, owes {good:?}", s.def.name, s.def),
                );
            }
            owed.push((good.name.as_str().to_owned(), good.clone()));
        }
        owed
    }

    /// After a reload on a writable disk: nothing is owed any more, and
    /// each put-back owed before it whose file the step did not edit is
    /// made (the good definition in the file, the rejected one beside it).
    fn owed_paid(&self, owed: &[(String, crate::unit::UnitDef)], edits: &str) {
        if self.read_only {
            return;
        }
        if let Some((name, _)) = self.owed().first() {
            self.fail("a reload", format!("{name}'s put-back still owed"));
        }
        let units = self.dir.path().join("units");
        for (name, good) in owed {
            if edits.contains(&format!(" {name}")) {
                continue;
            }
            let text = std::fs::read_to_string(units.join(format!("{name}.unit")));
            let back = text.ok().and_then(|t| crate::unit::parse(name, &t).ok());
            let kept = units.join(format!("{name}.unit.rejected")).exists();
            if back.as_ref() != Some(good) || !kept {
                self.fail(
                    "a reload",
                    format!("{name}'s put-back: {back:?}, rejected kept {kept}"),
                );
            }
        }
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
