//! The supervision loop must not allocate once units are running: a crash
//! loop, restarts by hand, readiness and a shutdown, counted by a global
//! allocator that records every allocation.

// Test code: a failed check should fail loudly, so it unwraps, panics
// and indexes freely (the workspace denies these in non-test code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use wren::supervisor::{Action, Actions, Event, Supervisor};
use wren::unit::{Kind, Ready, UnitDef};
use wren::vocab::{Exit, ShutdownKind};

#[global_allocator]
static A: wren::sys::alloc::Counting = wren::sys::alloc::Counting;

#[path = "steady_state_alloc/scale.rs"]
mod scale;

/// The live-bytes count is the whole process's, so the test that reads it
/// holds this for writing while the others, which allocate megabytes from
/// their own threads, hold it for reading.
static HEAP: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn sharing_heap() -> std::sync::RwLockReadGuard<'static, ()> {
    HEAP.read().unwrap_or_else(|e| e.into_inner())
}

fn def(name: &str) -> UnitDef {
    let mut d = UnitDef::with_defaults(name);
    d.exec.push("/bin/true").unwrap();
    d
}

#[test]
fn supervisor_steps_do_not_allocate() {
    let _heap = sharing_heap();
    let mut sup = Box::new(Supervisor::new());
    let mut one = def("setup");
    one.kind = Kind::Oneshot;
    sup.add(one).unwrap();
    let mut db = def("db");
    db.ready = Ready::SdNotify;
    db.after.push("setup").unwrap();
    sup.add(db).unwrap();
    let mut web = def("web");
    web.after.push("db").unwrap();
    sup.add(web).unwrap();
    sup.link().unwrap();
    let mut out = Box::new(Actions::new());
    let mut pid = 100u32;
    let mut now = 0u64;
    // Feed an event and answer every Spawn, as pid1 does.
    let drive = |sup: &mut Supervisor, out: &mut Actions, now: u64, ev: Event, pid: &mut u32| {
        let mut pending: heapless::Deque<Event, 64> = heapless::Deque::new();
        pending.push_back(ev).unwrap();
        while let Some(ev) = pending.pop_front() {
            out.clear();
            sup.step(now, ev, out);
            for a in out.iter() {
                if let Action::Spawn(u) = *a {
                    *pid += 1;
                    pending.push_back(Event::spawned(u, *pid)).unwrap();
                }
            }
        }
    };
    let before = wren::sys::alloc::thread_count();
    drive(&mut sup, &mut out, now, Event::Boot, &mut pid);
    let setup = sup.index("setup").unwrap();
    let db = sup.index("db").unwrap();
    let web = sup.index("web").unwrap();
    let p = sup.slot(setup).unwrap().rt.pid;
    drive(
        &mut sup,
        &mut out,
        now,
        Event::Exited {
            pid: p,
            exit: Exit::Code(0),
        },
        &mut pid,
    );
    drive(&mut sup, &mut out, now, Event::Ready { unit: db }, &mut pid);
    for _ in 0..1000 {
        let p = sup.slot(web).unwrap().rt.pid;
        assert_ne!(p, 0);
        drive(
            &mut sup,
            &mut out,
            now,
            Event::Exited {
                pid: p,
                exit: Exit::Signal(9),
            },
            &mut pid,
        );
        now = sup.next_deadline().unwrap();
        drive(&mut sup, &mut out, now, Event::Tick, &mut pid);
        // An orphan reaped in passing.
        drive(
            &mut sup,
            &mut out,
            now,
            Event::Exited {
                pid: 1,
                exit: Exit::Code(0),
            },
            &mut pid,
        );
    }
    drive(
        &mut sup,
        &mut out,
        now,
        Event::Restart {
            unit: db,
            by_hand: true,
        },
        &mut pid,
    );
    let p = sup.slot(db).unwrap().rt.pid;
    drive(
        &mut sup,
        &mut out,
        now,
        Event::Exited {
            pid: p,
            exit: Exit::Signal(15),
        },
        &mut pid,
    );
    drive(
        &mut sup,
        &mut out,
        now,
        Event::Shutdown(ShutdownKind::Poweroff),
        &mut pid,
    );
    let after = wren::sys::alloc::thread_count();
    assert!(
        wren::sys::alloc::count() > 0,
        "the counting allocator is installed"
    );
    assert_eq!(
        after - before,
        0,
        "the supervisor allocated in steady state"
    );
    assert_eq!(sup.slot(web).unwrap().rt.restarts, 1000);
}

/// `watchdog`: pings, ticks, expiries and the restarts they bring allocate
/// nothing either.
#[test]
fn watchdog_pings_and_expiries_do_not_allocate() {
    let _heap = sharing_heap();
    let mut sup = Box::new(Supervisor::new());
    let mut d = def("wd");
    d.ready = Ready::SdNotify;
    d.seldom.watchdog = Some(1_000);
    let u = sup.add(d).unwrap();
    sup.link().unwrap();
    let mut out = Box::new(Actions::new());
    let mut pid = 100u32;
    let mut now = 0u64;
    let mut step = |sup: &mut Supervisor, now: u64, ev: Event| {
        out.clear();
        sup.step(now, ev, &mut out);
        if out.iter().any(|a| matches!(a, Action::Spawn(_))) {
            pid += 1;
            out.clear();
            sup.step(now, Event::spawned(u, pid), &mut out);
        }
    };
    step(&mut sup, now, Event::Boot);
    let before = wren::sys::alloc::thread_count();
    for _ in 0..200 {
        step(&mut sup, now, Event::Ready { unit: u });
        for _ in 0..10 {
            now += 900;
            step(&mut sup, now, Event::Watchdog { unit: u });
            step(&mut sup, now, Event::Tick);
        }
        // Silence: killed, then started again after the delay.
        now = sup.next_deadline().unwrap();
        step(&mut sup, now, Event::Tick);
        now = sup.next_deadline().unwrap();
        step(&mut sup, now, Event::Tick);
    }
    let after = wren::sys::alloc::thread_count();
    assert_eq!(after - before, 0, "the watchdog allocated in steady state");
    assert_eq!(sup.slot(u).unwrap().rt.restarts, 200);
    assert_eq!(sup.slot(u).unwrap().rt.pid, 301);
}

/// The allocator's count of live bytes follows a block's life: up by its
/// size while it is held (grown in place or moved by `realloc`), back
/// down when it is freed. The other tests wait (`HEAP`); the test
/// harness's own threads may still allocate a little, so the block is
/// large and the check leaves them some room.
#[test]
fn live_bytes_follow_a_block() {
    let _alone = HEAP.write().unwrap_or_else(|e| e.into_inner());
    const MIB: usize = 1 << 20;
    const ROOM: usize = 256 << 10;
    let near = |got: usize, want: usize| got.abs_diff(want) < ROOM;
    let before = wren::sys::alloc::live();
    let mut v: Vec<u8> = Vec::with_capacity(3 * MIB);
    v.push(1);
    let held = wren::sys::alloc::live();
    assert!(near(held, before + 3 * MIB), "{before} then {held}");
    v.reserve_exact(5 * MIB);
    let grown = wren::sys::alloc::live();
    assert!(near(grown, before + v.capacity()), "{before} then {grown}");
    drop(v);
    let after = wren::sys::alloc::live();
    assert!(near(after, before), "{before} then {after}");
}
