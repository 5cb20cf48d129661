//! A thousand units through the supervisor: all start, crashed ones come
//! back, a reload adds and removes units, shutdown stops them all; the
//! table and the action buffer are sized at boot and on reload, and every
//! step in between allocates nothing (counted by the crate's global
//! allocator, in `steady_state_alloc.rs`).

use std::collections::VecDeque;
use wren::supervisor::{Action, Actions, Event, Supervisor};
use wren::unit::UnitDef;
use wren::vocab::{Exit, ShutdownKind, State, MAX_UNITS};

const N: usize = 1000;

fn def(name: &str) -> UnitDef {
    let mut d = UnitDef::with_defaults(name);
    d.exec.push("/bin/sleep").unwrap();
    d.restart_delay = 0;
    d
}

/// The supervisor and what pid1 keeps beside it: the event queue and the
/// action buffer, both sized to the table and never grown by a step.
struct Rig {
    sup: Supervisor,
    out: Actions,
    queue: VecDeque<Event>,
    next_pid: u32,
    now: u64,
    finished: bool,
}

impl Rig {
    fn fit(&mut self) {
        self.out = Actions::for_units(self.sup.len());
        self.queue = VecDeque::with_capacity(2 * self.sup.len() + 8);
    }

    /// Feed `ev` and answer every Spawn as pid1 does; returns how many
    /// spawns it answered.
    fn drive(&mut self, ev: Event) -> usize {
        let mut spawns = 0;
        let cap = self.queue.capacity();
        self.queue.push_back(ev);
        while let Some(ev) = self.queue.pop_front() {
            self.out.clear();
            self.sup.step(self.now, ev, &mut self.out);
            for a in self.out.iter() {
                match *a {
                    Action::Spawn(u) => {
                        self.next_pid += 1;
                        spawns += 1;
                        assert!(self.queue.len() < cap, "event queue sized to the table");
                        self.queue.push_back(Event::spawned(u, self.next_pid));
                    }
                    Action::Signal { pid, .. } => {
                        assert!(self.queue.len() < cap, "event queue sized to the table");
                        self.queue.push_back(Event::Exited {
                            pid,
                            exit: Exit::Signal(15),
                        });
                    }
                    // As PID 1 does once the cgroup is empty.
                    Action::KillCgroup(unit) if self.sup.shutting_down().is_some() => {
                        assert!(self.queue.len() < cap, "event queue sized to the table");
                        self.queue.push_back(Event::Drained { unit });
                    }
                    Action::Finish(_) => self.finished = true,
                    _ => {}
                }
            }
        }
        spawns
    }

    fn running(&self) -> usize {
        self.sup
            .slots()
            .filter(|s| s.rt.phase.state() == State::Running)
            .count()
    }

    fn pid(&self, name: &str) -> u32 {
        let u = self.sup.index(name).unwrap();
        self.sup.slot(u).unwrap().rt.pid
    }
}

#[test]
fn a_thousand_units_start_crash_reload_and_stop_without_allocating_in_steps() {
    let _heap = super::sharing_heap();
    let mut rig = Rig {
        sup: Supervisor::new(),
        out: Actions::default(),
        queue: VecDeque::new(),
        next_pid: 100,
        now: 1_000,
        finished: false,
    };
    // Boot: every unit added (the table may allocate here), then sized.
    for i in 0..N {
        let mut d = def(&format!("u{i:04}"));
        // Some order too: every tenth unit comes after the one before it.
        if i % 10 == 1 {
            d.after.push(&format!("u{:04}", i - 1)).unwrap();
        }
        rig.sup.add(d).unwrap();
    }
    rig.sup.link().unwrap();
    rig.fit();
    assert_eq!(rig.sup.len(), N);

    let before = wren::sys::alloc::thread_count();
    let spawned = rig.drive(Event::Boot);
    let counted = wren::sys::alloc::thread_count();
    assert_eq!(spawned, N, "every unit spawned");
    assert_eq!(rig.running(), N);
    let pids: std::collections::HashSet<u32> = rig
        .sup
        .slots()
        .map(|s| s.rt.pid)
        .filter(|&p| p != 0)
        .collect();
    assert_eq!(pids.len(), N, "each unit its own pid");

    // Crash every 37th unit: each is started again (restart_delay = 0,
    // on the next tick) under a new pid.
    let crashed: Vec<u16> = (0..N).step_by(37).map(|i| i as u16).collect();
    let mut old = [0u32; N];
    for &u in &crashed {
        old[usize::from(u)] = rig.sup.slot(u).unwrap().rt.pid;
    }
    let start = wren::sys::alloc::thread_count();
    for &u in &crashed {
        let pid = old[usize::from(u)];
        rig.drive(Event::Exited {
            pid,
            exit: Exit::Signal(9),
        });
    }
    if let Some(t) = rig.sup.next_deadline() {
        rig.now = t;
    }
    rig.drive(Event::Tick);
    assert_eq!(
        wren::sys::alloc::thread_count() - start + (counted - before),
        0,
        "boot and crash steps over {N} units allocated"
    );
    assert_eq!(rig.running(), N);
    for &u in &crashed {
        let s = rig.sup.slot(u).unwrap();
        assert_ne!(s.rt.pid, old[usize::from(u)], "{} restarted", s.def.name);
        assert_eq!(s.rt.restarts, 1);
    }

    // Reload: the first 50 units removed, 100 new ones added (reload may
    // allocate; the buffers are sized again after it, as pid1 does).
    let mut defs: Vec<UnitDef> = (50..N)
        .map(|i| {
            let mut d = def(&format!("u{i:04}"));
            if i % 10 == 1 {
                d.after.push(&format!("u{:04}", i - 1)).unwrap();
            }
            d
        })
        .collect();
    defs.extend((N..N + 100).map(|i| def(&format!("u{i:04}"))));
    let mut out = Actions::for_units(rig.sup.len() + defs.len());
    let sum = rig
        .sup
        .reload(rig.now, &mut defs.into_iter(), &|_| false, &mut out);
    assert_eq!(
        (
            sum.added,
            sum.removed,
            sum.changed,
            sum.unchanged,
            sum.no_room
        ),
        (100, 50, 0, 950, 0)
    );
    assert_eq!(sum.new_slots.len(), 100);
    rig.fit();
    let start = wren::sys::alloc::thread_count();
    for a in out.iter() {
        match *a {
            Action::Spawn(u) => {
                rig.next_pid += 1;
                let pid = rig.next_pid;
                rig.drive(Event::spawned(u, pid));
            }
            Action::Signal { pid, .. } => {
                rig.drive(Event::Exited {
                    pid,
                    exit: Exit::Signal(15),
                });
            }
            _ => {}
        }
    }
    assert_eq!(
        wren::sys::alloc::thread_count() - start,
        0,
        "steps after the reload allocated"
    );
    assert_eq!(
        rig.sup.slots().count(),
        N + 50,
        "removed units left the table"
    );
    assert!(rig.sup.index("u0000").is_none());
    assert!(rig.sup.index("u0049").is_none());
    assert_eq!(rig.running(), N + 50);
    assert_ne!(rig.pid("u1099"), 0);
    // New units took new slots (the removed ones were still stopping).
    assert_eq!(rig.sup.len(), N + 100);

    // Shutdown: every unit stopped (each answers TERM by exiting), then
    // Finish; no allocation either.
    let start = wren::sys::alloc::thread_count();
    rig.drive(Event::Shutdown(ShutdownKind::Poweroff));
    assert_eq!(
        wren::sys::alloc::thread_count() - start,
        0,
        "shutdown allocated"
    );
    assert!(rig.finished, "shutdown finished");
    assert_eq!(rig.running(), 0);
}

#[test]
fn the_table_holds_max_units_and_refuses_one_more() {
    let _heap = super::sharing_heap();
    let mut sup = Supervisor::new();
    for i in 0..MAX_UNITS {
        sup.add(def(&format!("u{i}"))).unwrap();
    }
    assert!(sup.add(def("one-more")).is_err());
    assert_eq!(sup.len(), MAX_UNITS);
    let last = sup.index(&format!("u{}", MAX_UNITS - 1)).unwrap();
    assert_eq!(usize::from(last), MAX_UNITS - 1);
}
