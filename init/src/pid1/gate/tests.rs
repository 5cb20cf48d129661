use super::disk::{on_disk, DISK_LIMIT};
use super::*;
use crate::testutil::TempDir;
use std::path::Path;

fn good() -> UnitDef {
    unit::parse("web", "exec = /bin/sleep 100\nready = notify\n").unwrap()
}

#[test]
fn restore_keeps_the_rejected_file_and_writes_the_good_one() {
    let t = TempDir::new("gate");
    let dir = t.path().to_str().unwrap();
    std::fs::write(t.path().join("web.unit"), "exec = /bin/nope\n").unwrap();
    std::fs::write(t.path().join("web.unit.rejected"), "older\n").unwrap();
    let def = restore_file(dir, "web", &good(), "exit 1", None).unwrap();
    let now = std::fs::read_to_string(t.path().join("web.unit")).unwrap();
    assert!(now.starts_with("# Put back by wren"), "{now}");
    assert_eq!(unit::parse("web", &now).unwrap(), def);
    assert_eq!(def.exec, good().exec);
    assert_eq!(
        std::fs::read_to_string(t.path().join("web.unit.rejected")).unwrap(),
        "exec = /bin/nope\n"
    );
    let left = std::fs::read_dir(t.path()).unwrap().count();
    assert_eq!(left, 2, "web.unit and web.unit.rejected, nothing staged");
}

/// Each writer stages in a file of its own: a put-back killed at its
/// limit on a stuck card that writes once the card wakes writes into
/// its own file, not the next put-back's. A file of the writer's own
/// pid is a dead one's (a boot's put-back cut off by a power cut) and
/// is written over. Once the put-back went through, the files no live
/// process may write (a dead writer's, an older build's) go with it:
/// each holds a definition, secrets and all.
#[test]
fn a_put_back_stages_in_a_file_of_its_own() {
    let t = TempDir::new("gate-stage");
    let dir = t.path().to_str().unwrap();
    std::fs::write(t.path().join("web.unit"), "exec = /bin/nope\n").unwrap();
    let mut writer = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let live = t.path().join(format!("web.unit.restore.{}", writer.id()));
    std::fs::write(&live, "a stuck writer's\n").unwrap();
    let dead = t.path().join("web.unit.restore.4194305");
    std::fs::write(&dead, "a dead writer's\n").unwrap();
    let unnumbered = t.path().join("web.unit.restore");
    std::fs::write(&unnumbered, "an older build's\n").unwrap();
    let other_unit = t.path().join("web.unit.restore-not-ours");
    std::fs::write(&other_unit, "not a staging file\n").unwrap();
    let mine = t
        .path()
        .join(format!("web.unit.restore.{}", std::process::id()));
    std::fs::write(
        &mine,
        "a dead writer's, longer than the good text ".repeat(9),
    )
    .unwrap();
    let restored = restore_file(dir, "web", &good(), "exit 1", None);
    let _ = writer.kill();
    let _ = writer.wait();
    restored.unwrap();
    let now = std::fs::read_to_string(t.path().join("web.unit")).unwrap();
    assert_eq!(unit::parse("web", &now).unwrap().exec, good().exec);
    assert!(!now.contains("writer"), "{now}");
    assert_eq!(
        std::fs::read_to_string(&live).unwrap(),
        "a stuck writer's\n"
    );
    assert!(other_unit.exists());
    for gone in [&dead, &unnumbered, &mine] {
        assert!(!gone.exists(), "{}", gone.display());
    }
}

/// A unit file that cannot be read (EIO: here a link to this
/// process's memory, whose read at 0 fails so) is that error, not
/// "changed since the reload": the operator is told of the card, and
/// nothing is written back over a file not read.
#[test]
fn an_unreadable_unit_file_is_its_error_not_a_change() {
    let t = TempDir::new("gate-eio");
    std::os::unix::fs::symlink("/proc/self/mem", t.path().join("web.unit")).unwrap();
    let dir = t.path().to_str().unwrap();
    let rejected = unit::parse("web", "exec = /bin/nope\n").unwrap();
    let r = restore_file(dir, "web", &good(), "exit 1", Some(&rejected));
    assert_eq!(r.err(), Some(Errno::IO));
    assert_eq!(set_aside(dir, "web", Some(&rejected)), Err(Errno::IO));
    std::fs::remove_file(t.path().join("web.unit")).unwrap();
    assert_eq!(set_aside(dir, "web", Some(&rejected)), Err(Errno::STALE));
    // Newer text the reader refuses (not UTF-8) is the operator's.
    std::fs::write(t.path().join("web.unit"), b"exec = /bin/caf\xe9\n").unwrap();
    assert_eq!(set_aside(dir, "web", Some(&rejected)), Err(Errno::STALE));
}

/// A unit changed (its last good definition kept), then removed, then
/// given back while its old run still stops: it comes back as a new
/// unit, and no definition of its earlier life would be put back were
/// the one given back to fail.
#[test]
fn a_unit_given_back_while_leaving_keeps_no_last_good() {
    use super::super::tests::{step, with_web};
    use crate::supervisor::{Actions, Event, Retired};
    let mut p = with_web();
    p.fit_tables();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, 100));
    let first = p.sup.slot(0).unwrap().def.clone();
    let mut out = Actions::default();
    out.fit(4);
    let mut reload = |p: &mut super::Pid1, t, defs: Vec<UnitDef>| {
        out.clear();
        p.keep_last_good(&defs);
        p.sup.reload(t, &mut defs.into_iter(), &|_| false, &mut out);
    };
    let mut changed = first.clone();
    changed.description.push_str("changed").unwrap();
    reload(&mut p, 2, vec![changed]);
    assert_eq!(p.edges[0].last_good(), Some(&first));
    reload(&mut p, 3, vec![]);
    assert_eq!(p.sup.slot(0).unwrap().retired, Retired::Leaving);
    let mut back = first.clone();
    back.description.push_str("back").unwrap();
    reload(&mut p, 4, vec![back]);
    assert_eq!(p.sup.index("web"), Some(0), "given back in its slot");
    assert!(p.sup.slot(0).unwrap().rt.probation);
    assert_eq!(p.edges[0].last_good(), None);
}

/// A reload that gives back a unit still leaving and changes another:
/// only the one given back starts anew; the other keeps its last good
/// definition, to be put back if its change fails.
#[test]
fn a_unit_given_back_leaves_the_others_last_good_alone() {
    use super::super::tests::{pid1_with, step};
    use crate::supervisor::{Event, Retired};
    let mut p = pid1_with(&[("web", "exec = /bin/true\n"), ("db", "exec = /bin/true\n")]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, 100));
    step(&mut p, 1, Event::spawned(1, 101));
    let web = p.sup.slot(0).unwrap().def.clone();
    let db = p.sup.slot(1).unwrap().def.clone();
    reload_all(&mut p, 2, vec![web.clone()]);
    assert_eq!(p.sup.slot(1).unwrap().retired, Retired::Leaving);
    let changed = unit::parse("web", "exec = /bin/true\nenv = A=1\n").unwrap();
    reload_all(&mut p, 3, vec![changed, db]);
    assert_eq!(p.sup.index("db"), Some(1), "given back in its slot");
    assert_eq!(p.edges[0].last_good(), Some(&web));
}

/// `good` running as `web`, its file in `t` rejected-to-be: the
/// start of a health-gate test.
fn running(t: &TempDir, good: UnitDef, cg: Option<crate::cgroup::Cgroups>) -> super::Pid1 {
    running_in(t.path(), good, cg)
}

fn running_in(dir: &Path, good: UnitDef, cg: Option<crate::cgroup::Cgroups>) -> super::Pid1 {
    use super::super::tests::step;
    use crate::supervisor::Event;
    std::fs::write(dir.join("web.unit"), "exec = /bin/nope\n").unwrap();
    let mut p = super::Pid1::new(cg, 0, false);
    p.units_dir = dir.to_str().unwrap().try_into().unwrap();
    p.add_unit(good);
    p.sup.link().unwrap();
    p.fit_tables();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, 100));
    p
}

/// A reload of `bad`, as `reload` makes it (its own edge work aside).
fn reload_to(p: &mut super::Pid1, bad: UnitDef) {
    reload_all(p, 2, vec![bad]);
}

/// A reload at `t` of a directory of `defs`, as `reload` makes it (its
/// own edge work aside).
fn reload_all(
    p: &mut super::Pid1,
    t: Millis,
    defs: Vec<UnitDef>,
) -> crate::supervisor::ReloadSummary {
    reload_but(p, t, defs, &[])
}

/// `reload_all`, the files of `invalid` found invalid (left out of
/// `defs`, as `reload` leaves them).
fn reload_but(
    p: &mut super::Pid1,
    t: Millis,
    defs: Vec<UnitDef>,
    invalid: &[&str],
) -> crate::supervisor::ReloadSummary {
    let mut out = crate::supervisor::Actions::default();
    out.fit(8);
    p.keep_last_good(&defs);
    p.sup.reload(
        t,
        &mut defs.into_iter(),
        &|n| invalid.contains(&n),
        &mut out,
    )
}

/// A bad verdict puts the last good definition back; its start uses
/// that definition's seccomp filter, not the rejected one's (here the
/// rejected one had none: every start of the good one was refused,
/// "no filter for this architecture", while the console said it ran).
#[test]
fn a_revert_starts_with_the_good_definitions_filter() {
    crate::testutil::alone!(a_revert_starts_with_the_good_definitions_filter);
    let t = TempDir::new("gate-filter");
    let good = unit::parse("web", "exec = /bin/true\nseccomp = @default\n").unwrap();
    let mut p = running(&t, good.clone(), None);
    let filter = |p: &super::Pid1| p.edges[0].seccomp.as_ref().map(|f| f.spec);
    assert_eq!(filter(&p), good.seccomp.as_deref().copied());
    reload_to(&mut p, unit::parse("web", "exec = /bin/nope\n").unwrap());
    let def = p.sup.slot(0).unwrap().def.clone();
    p.edges[0].refresh_filter(&def);
    p.mark_pending();
    p.fit_tables();
    assert_eq!(filter(&p), None, "the new definition has none");
    // Its start failed: the verdict is bad, the good one goes back.
    p.on_verdict(0, false);
    assert_eq!(p.sup.slot(0).unwrap().def.seccomp, good.seccomp);
    assert_eq!(filter(&p), good.seccomp.as_deref().copied());
}

/// A rejected definition that changed `log_size`: the revert's start
/// remakes the ring at the good size, keeping what the rejected run
/// said (why it was rejected), not an empty ring.
#[test]
fn a_revert_keeps_what_the_rejected_run_wrote() {
    use super::super::tests::step;
    use crate::supervisor::{Action, Event};
    let t = TempDir::new("gate-log");
    let good = unit::parse("web", "exec = /bin/true\nseccomp = @default\n").unwrap();
    let mut p = running(&t, good.clone(), None);
    let bad = "exec = /bin/true\nseccomp = @default\nlog_size = 8K\n";
    reload_to(&mut p, unit::parse("web", bad).unwrap());
    // Each start stops at the filter, after the ring's remaking: no
    // process is made.
    p.edges[0].seccomp = None;
    let exit = crate::vocab::Exit::Signal(15);
    let out = step(&mut p, 3, Event::Exited { pid: 100, exit });
    assert!(out.contains(&Action::Spawn(0)), "{out:?}");
    p.perform(Action::Spawn(0));
    assert_eq!(p.edges[0].log.capacity(), 8192);
    p.edges[0].log.push(b"web: bad config at line 3\n");
    // The verdict's revert, as `on_verdict` makes it (its file work
    // and filter aside), then the good definition's start.
    let mut out = crate::supervisor::Actions::default();
    out.fit(4);
    p.sup.revert(4, 0, Some(good), &mut out);
    assert!(out.contains(&Action::Spawn(0)), "{out:?}");
    p.perform(Action::Spawn(0));
    assert_eq!(p.edges[0].log.capacity(), 4096, "not started again");
    let mut text = [0u8; 64];
    let n = p.edges[0].log.contents().copy_head(&mut text);
    assert_eq!(&text[..n], b"web: bad config at line 3\n");
}

/// A put-back that changes `memory.low` applies units/'s sum again
/// (docs/units.md: each unit gets the protection it asks for).
#[test]
fn a_put_back_applies_the_units_protection_again() {
    crate::testutil::alone!(a_put_back_applies_the_units_protection_again);
    let t = TempDir::new("gate-protection");
    let root = TempDir::new("gate-protection-cg");
    root.file("units/memory.low", "0\n");
    root.file("units/memory.min", "0\n");
    let good = unit::parse("web", "exec = /bin/true\nmemory.low = 64M\n").unwrap();
    let cg = crate::cgroup::Cgroups::open(root.path()).unwrap();
    let mut p = running(&t, good, Some(cg));
    p.apply_protection();
    let low = || std::fs::read_to_string(root.join("units/memory.low")).unwrap();
    assert_eq!(low(), "67108864");
    reload_to(&mut p, unit::parse("web", "exec = /bin/nope\n").unwrap());
    // As `reload` does after it.
    p.apply_protection();
    assert_eq!(low(), "0");
    p.mark_pending();
    p.on_verdict(0, false);
    assert_eq!(low(), "67108864", "the good definition's protection");
}

/// A verdict's file work that hangs (a dying card's fsync) holds the
/// loop for `DISK_LIMIT` at most, the watchdog fed meanwhile; its
/// errors come back from the child as they are.
#[test]
fn a_verdicts_file_work_is_bounded() {
    use std::time::{Duration, Instant};
    let (seen, dev) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )
    .unwrap();
    let w = crate::watchdog::Watchdog::on(dev, 15);
    let t = Instant::now();
    let r = on_disk(Some(&w), &|| {
        crate::testutil::hang_holding_nothing();
        Ok(())
    });
    assert_eq!(r, Err(Errno::TIMEDOUT));
    let said = DiskError(Errno::TIMEDOUT).to_string();
    assert_eq!(said, "the disk did not answer within 2 s");
    assert!(
        t.elapsed() < DISK_LIMIT + Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
    let mut fed = [0u8; 64];
    assert!(
        rustix::io::read(&seen, &mut fed).unwrap_or(0) > 0,
        "not fed"
    );
    assert_eq!(on_disk(None, &|| Err(Errno::STALE)), Err(Errno::STALE));
    assert_eq!(on_disk(None, &|| Ok(())), Ok(()));
}

/// A disk step whose child dies of a signal (no errno of its own to
/// give back) is an I/O error, said as one.
#[test]
fn a_disk_step_that_dies_is_an_io_error() {
    let r = on_disk(None, &|| {
        let me = rustix::process::getpid();
        rustix::process::kill_process(me, rustix::process::Signal::KILL)
    });
    assert_eq!(r, Err(Errno::IO));
}

/// After a verdict's file work timed out, the next verdicts leave the
/// disk alone for `DISK_RESPITE_MS` from the end of that wait (each
/// would hold the loop 2 s more): they are answered at once, their
/// work not even begun; then the disk is asked again.
#[test]
fn verdicts_after_a_timeout_leave_the_disk_alone_a_while() {
    use std::cell::Cell;
    use std::time::{Duration, Instant};
    let stall = DiskStall::default();
    let stuck = || {
        crate::testutil::hang_holding_nothing();
        Ok(())
    };
    assert_eq!(stall.on_disk(1_000, None, &stuck), Err(Errno::TIMEDOUT));
    let t = Instant::now();
    let asked = Cell::new(false);
    let ask = || {
        asked.set(true);
        Ok(())
    };
    // The respite runs from the end of the 2 s wait.
    assert_eq!(stall.on_disk(32_999, None, &ask), Err(Errno::ALREADY));
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert!(!asked.get());
    let said = DiskError(Errno::ALREADY).to_string();
    assert_eq!(said, "the disk gave no answer less than 30 s ago");
    // Past the respite: asked (in the child; here, the answer).
    assert_eq!(stall.on_disk(33_000, None, &|| Ok(())), Ok(()));
}

/// A rejection says why the new definition's start failed, from its
/// last note (docs/initctl.md, "reload": `exit 3`, `not ready within
/// 2000ms`, `cannot start ...`).
#[test]
fn a_rejection_says_why_the_start_failed() {
    use super::super::tests::{pid1_with, step};
    use crate::supervisor::Event;
    use crate::vocab::Exit;
    let notify = "exec = /bin/true\nready = notify\nstart_timeout = 2s\n";
    let booted = |text: &str| {
        let mut p = pid1_with(&[("web", text)]);
        step(&mut p, 0, Event::Boot);
        p
    };
    let mut p = booted(notify);
    assert_eq!(p.cause(0), "did not start");
    step(&mut p, 1, Event::spawned(0, 100));
    let exit = Exit::Code(3);
    step(&mut p, 2, Event::Exited { pid: 100, exit });
    assert_eq!(p.cause(0), "exit 3");
    let mut p = booted(notify);
    step(&mut p, 1, Event::spawned(0, 100));
    step(&mut p, 3_000, Event::Tick);
    assert_eq!(p.cause(0), "not ready within 2000ms");
    let mut p = booted(notify);
    step(&mut p, 1, Event::SpawnFailed { unit: 0 });
    assert_eq!(p.cause(0), "could not start");
    let e = "cannot start /bin/true: execve: No such file or directory (os error 2)";
    p.edges[0].set_last_error(why(format_args!("{e}")));
    assert_eq!(p.cause(0), e);
    let mut p = booted(&format!("{notify}start_limit = 1/1m\n"));
    step(&mut p, 1, Event::SpawnFailed { unit: 0 });
    assert_eq!(p.cause(0), "start limit hit");
}

/// `initctl reload`'s line for a rejected unit is whole with the name
/// and the reason both at their limits.
#[test]
fn a_verdict_line_at_the_limits_is_whole() {
    use super::super::tests::pid1_with;
    let name = "w".repeat(crate::vocab::NAME_MAX);
    let mut p = pid1_with(&[(&name, "exec = /bin/true\n")]);
    let reason = "r".repeat(crate::proto::REASON_MAX);
    p.edges[0].rare().rejected = Some(reason.as_str().into());
    p.edges[0].verdict = Some(Verdict::Rejected);
    let mut heard = Vec::new();
    assert_eq!(p.verdicts(&mut |l| heard.push(l.to_string())), Some(1));
    assert_eq!(heard, [format!("{name}: {reason}")]);
}

#[test]
fn a_new_unit_is_set_aside() {
    let t = TempDir::new("gate");
    let dir = t.path().to_str().unwrap();
    std::fs::write(t.path().join("new.unit"), "exec = /bin/nope\n").unwrap();
    set_aside(dir, "new", None).unwrap();
    assert!(!t.path().join("new.unit").exists());
    assert_eq!(
        std::fs::read_to_string(t.path().join("new.unit.rejected")).unwrap(),
        "exec = /bin/nope\n"
    );
}

/// A put-back that the units loaded now no longer allow is not made:
/// `web` (after `db`) changed to start first while `db` changed to
/// start after it; the new `web` fails, and its old definition would
/// close a cycle (both waiting for ever, and the cycle written back to
/// its file). It is stopped instead, its file left as loaded, and
/// `db` does not wait for it.
#[test]
fn a_put_back_that_would_close_a_cycle_is_not_made() {
    crate::testutil::alone!(a_put_back_that_would_close_a_cycle_is_not_made);
    use super::super::tests::step;
    use crate::supervisor::{Event, Phase};
    let t = TempDir::new("gate-cycle");
    let good = unit::parse("web", "exec = /bin/true\nafter = db\n").unwrap();
    let db = unit::parse("db", "exec = /bin/true\n").unwrap();
    std::fs::write(t.path().join("web.unit"), "exec = /bin/nope\n").unwrap();
    let mut p = super::Pid1::new(None, 0, false);
    p.units_dir = t.path().to_str().unwrap().try_into().unwrap();
    p.add_unit(good);
    p.add_unit(db);
    p.sup.link().unwrap();
    p.fit_tables();
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(1, 101));
    step(&mut p, 1, Event::spawned(0, 100));
    let new_web = unit::parse("web", "exec = /bin/nope\n").unwrap();
    let new_db = unit::parse("db", "exec = /bin/true\nafter = web\n").unwrap();
    reload_all(&mut p, 2, vec![new_web, new_db]);
    p.mark_pending();
    assert_eq!(
        p.sup.put_back_problem(
            0,
            &unit::parse("web", "exec = /bin/true\nafter = db\n").unwrap()
        ),
        Some(crate::supervisor::PutBack::Cycle(1))
    );
    p.on_verdict(0, false);
    let web = p.sup.slot(0).unwrap();
    assert_eq!(web.def.exec.first(), Some("/bin/nope"), "put back");
    assert!(!web.rt.want && web.rt.phase == Phase::Stopped);
    assert_ne!(
        p.sup.slot(1).unwrap().rt.phase,
        Phase::Waiting,
        "db waits for ever"
    );
    let why = left_alone(&t, &p, "exec = /bin/nope\n");
    assert!(why.contains("cycle through db"), "{why}");
}

/// A put-back does not overwrite an edit made after the reload and not
/// loaded yet: the good definition runs, the newer file is left for
/// the next reload, and nothing is set aside as rejected (it would be
/// that newer text, not the one that failed).
#[test]
fn a_put_back_leaves_a_file_edited_since_the_reload() {
    crate::testutil::alone!(a_put_back_leaves_a_file_edited_since_the_reload);
    let t = TempDir::new("gate-newer");
    let good = unit::parse("web", "exec = /bin/true\n").unwrap();
    let mut p = running(&t, good.clone(), None);
    reload_to(&mut p, unit::parse("web", "exec = /bin/nope\n").unwrap());
    p.mark_pending();
    std::fs::write(t.path().join("web.unit"), "exec = /bin/newer\n").unwrap();
    p.on_verdict(0, false);
    assert_eq!(p.sup.slot(0).unwrap().def.exec.first(), Some("/bin/true"));
    let why = left_alone(&t, &p, "exec = /bin/newer\n");
    assert!(why.contains("changed since the reload"), "{why}");
}

/// `web.unit` still holds `text`, nothing was set aside as rejected:
/// the reason `web`'s verdict gave.
fn left_alone(t: &TempDir, p: &super::Pid1, text: &str) -> String {
    let file = std::fs::read_to_string(t.path().join("web.unit")).unwrap();
    assert_eq!(file, text);
    assert!(!t.path().join("web.unit.rejected").exists());
    let why = p.edges[0].rare.as_ref().and_then(|r| r.rejected.as_deref());
    why.unwrap().to_string()
}

/// A 0600 unit (secrets in its `env`; `initctl edit` keeps the mode)
/// whose change is rejected: the good text put back keeps 0600, and
/// the rejected copy too. (It was made 0644.)
#[test]
fn a_put_back_keeps_the_files_owner_and_mode() {
    crate::testutil::alone!(a_put_back_keeps_the_files_owner_and_mode);
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("gate-mode");
    let good = unit::parse("web", "exec = /bin/true\nenv = TOKEN=s3cret\n").unwrap();
    let mut p = running(&t, good, None);
    let f = t.path().join("web.unit");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    reload_to(&mut p, unit::parse("web", "exec = /bin/nope\n").unwrap());
    p.mark_pending();
    p.on_verdict(0, false);
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("TOKEN=s3cret"), "{text}");
    let mode = |f: &std::path::Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&f), 0o600);
    assert_eq!(mode(&t.path().join("web.unit.rejected")), 0o600);
    let left = std::fs::read_dir(t.path()).unwrap().count();
    assert_eq!(left, 2, "web.unit and web.unit.rejected, nothing staged");
}

/// A unit file that is a link (units.md allows one): the good text
/// goes where it leads, and it stays a link; the rejected text is
/// kept beside it. (The link was replaced by a file, which hid every
/// later fix made where it had led.)
#[test]
fn a_put_back_through_a_link_keeps_the_link() {
    crate::testutil::alone!(a_put_back_through_a_link_keeps_the_link);
    let t = TempDir::new("gate-link");
    let mut p = running(&t, unit::parse("web", "exec = /bin/true\n").unwrap(), None);
    let data = TempDir::new("gate-link-data");
    let target = data.path().join("web.conf");
    let link = t.path().join("web.unit");
    std::fs::rename(&link, &target).unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    reload_to(&mut p, unit::parse("web", "exec = /bin/nope\n").unwrap());
    p.mark_pending();
    p.on_verdict(0, false);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(text.starts_with("# Put back by wren"), "{text}");
    assert!(text.contains("exec = /bin/true"), "{text}");
    let kept = t.path().join("web.unit.rejected");
    assert!(std::fs::symlink_metadata(&kept).unwrap().is_file());
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        "exec = /bin/nope\n"
    );
    assert!(!data.path().join("web.conf.restore").exists());
}

/// The file removed since the reload (the operator drops the unit):
/// not written back. (It was.)
#[test]
fn a_put_back_does_not_bring_back_a_removed_file() {
    crate::testutil::alone!(a_put_back_does_not_bring_back_a_removed_file);
    let t = TempDir::new("gate-removed");
    let mut p = running(&t, unit::parse("web", "exec = /bin/true\n").unwrap(), None);
    reload_to(&mut p, unit::parse("web", "exec = /bin/nope\n").unwrap());
    p.mark_pending();
    std::fs::remove_file(t.path().join("web.unit")).unwrap();
    p.on_verdict(0, false);
    assert!(!t.path().join("web.unit").exists());
    let why = p.edges[0].rare.as_ref().and_then(|r| r.rejected.as_deref());
    assert!(
        why.is_some_and(|w| w.contains("changed since the reload")),
        "{why:?}"
    );
}

/// A new unit rejected after its file was fixed: the fixed file is
/// left for the next reload, as a changed unit's is. (It was moved
/// aside as new.unit.rejected.)
#[test]
fn a_new_units_file_fixed_since_the_reload_is_not_set_aside() {
    crate::testutil::alone!(a_new_units_file_fixed_since_the_reload_is_not_set_aside);
    let t = TempDir::new("gate-new");
    let good = unit::parse("web", "exec = /bin/true\n").unwrap();
    let mut p = running(&t, good.clone(), None);
    std::fs::write(t.path().join("web.unit"), "exec = /bin/true\n").unwrap();
    std::fs::write(t.path().join("new.unit"), "exec = /bin/nope\n").unwrap();
    let defs = std::vec![good, unit::parse("new", "exec = /bin/nope\n").unwrap()];
    let sum = reload_all(&mut p, 2, defs);
    for &i in sum.new_slots.iter() {
        let e = super::super::Edge::new(&p.sup.slot(i).unwrap().def);
        match p.edges.get_mut(usize::from(i)) {
            Some(x) => *x = e,
            None => p.edges.push(e),
        }
    }
    p.fit_tables();
    p.mark_pending();
    std::fs::write(t.path().join("new.unit"), "exec = /bin/fixed\n").unwrap();
    let u = p.sup.index("new").unwrap();
    p.on_verdict(u, false);
    assert_eq!(
        std::fs::read_to_string(t.path().join("new.unit")).unwrap(),
        "exec = /bin/fixed\n"
    );
    assert!(!t.path().join("new.unit.rejected").exists());
    let why = p.edges[usize::from(u)].rejected();
    assert!(
        why.is_some_and(|w| w.contains("changed since the reload")),
        "{why:?}"
    );
}

/// A reload restarts a running `web` (its `env` changed) after `db`,
/// which has since exited 0 under `restart = on-failure`: `web` gives
/// up on it and stays down. The verdict said nothing of it and
/// counted no problem, so `initctl reload` exited 0 (everything
/// applied and ready) with a service down that ran before it.
#[test]
fn a_reloaded_unit_that_gave_up_on_its_dependency_fails_the_verdict() {
    use super::super::tests::{pid1_with, step};
    use crate::supervisor::{Event, Phase};
    use crate::vocab::Exit;
    let db = "exec = /bin/true\nrestart = on-failure\n";
    let web = "exec = /bin/true\nafter = db\n";
    let mut p = pid1_with(&[("db", db), ("web", web)]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, 100));
    step(&mut p, 2, Event::spawned(1, 101));
    let exit = Exit::Code(0);
    step(&mut p, 3, Event::Exited { pid: 100, exit });
    let db = unit::parse("db", db).unwrap();
    let web = unit::parse("web", &format!("{web}env = A=1\n")).unwrap();
    reload_all(&mut p, 4, vec![db, web]);
    p.mark_pending();
    step(&mut p, 5, Event::Exited { pid: 101, exit });
    assert_eq!(p.sup.slot(1).unwrap().rt.phase, Phase::Stopped);
    let mut heard = Vec::new();
    assert_eq!(p.verdicts(&mut |l| heard.push(l.to_string())), Some(1));
    assert_eq!(heard, ["web: not started, dependency db failed"]);
}

/// web running, reloaded to a program that is not there and rejected.
fn web_rejected(t: &TempDir) -> super::Pid1 {
    let mut p = running(t, unit::parse("web", "exec = /bin/true\n").unwrap(), None);
    reload_to(&mut p, unit::parse("web", "exec = /bin/nope\n").unwrap());
    p.mark_pending();
    p.on_verdict(0, false);
    p
}

/// `initctl reload` asks for the verdict on a new connection after
/// the reload's reply; a reload in between (SIGHUP, another `initctl
/// edit`) kept nothing for it: the first client heard of no rejection
/// and exited 0. Owed, the verdicts are kept; once the client has had
/// its time to ask, a reload forgets them again.
#[test]
fn a_reload_before_the_verdict_is_asked_for_keeps_it() {
    crate::testutil::alone!(a_reload_before_the_verdict_is_asked_for_keeps_it);
    let t = TempDir::new("gate-owed");
    let mut p = web_rejected(&t);
    // What the answer to `initctl reload` does.
    p.owe_verdict();
    let mut lines = Vec::new();
    let _ = p.reload(&mut |l| lines.push(l.to_string()));
    let mut heard = Vec::new();
    assert_eq!(
        p.verdicts(&mut |l| heard.push(l.to_string())),
        Some(1),
        "{lines:?}"
    );
    assert!(
        heard
            .iter()
            .any(|l| l.starts_with("web: new definition rejected")),
        "{heard:?}"
    );
    // Asked for: the next reload's verdicts are its own (an `initctl
    // reload` right after heard this one's rejection again).
    p.verdict_asked();
    let _ = p.reload(&mut |_| {});
    assert_eq!(p.verdicts(&mut |_| {}), Some(0));
    // Owed but not asked for in time (the client went away): the same.
    p.owe_verdict();
    p.verdict_owed_until = now().saturating_sub(1);
    let _ = p.reload(&mut |_| {});
    assert_eq!(p.verdicts(&mut |_| {}), Some(0));
}

/// A refused reload owes no verdict: its retry, once the disk
/// answers, hears its own verdict, not the rejection of the reload
/// before (it exited 1 with that reload's line).
#[test]
fn a_refused_reload_leaves_no_old_verdict_for_its_retry() {
    crate::testutil::alone!(a_refused_reload_leaves_no_old_verdict_for_its_retry);
    let t = TempDir::new("gate-refused");
    let mut p = web_rejected(&t);
    p.owe_verdict();
    p.verdict_asked();
    assert_eq!(p.verdicts(&mut |_| {}), Some(1), "the bad reload rejected");
    p.disk_stall = DiskStall::stalled_at(now());
    assert!(p.reload_for_client(&mut |_| {}).is_err(), "not refused");
    p.disk_stall = DiskStall::default();
    let r = p.reload_for_client(&mut |_| {});
    assert!(r.is_ok(), "{r:?}");
    p.verdict_asked();
    let mut heard = Vec::new();
    let v = p.verdicts(&mut |l| heard.push(l.to_string()));
    assert_eq!(v, Some(0), "{heard:?}");
}

/// A disk step past its limit is killed: its work does not land
/// later (a put-back's rename over the operator's newer file).
#[test]
fn a_disk_step_past_its_limit_does_not_land_later() {
    crate::testutil::alone!(a_disk_step_past_its_limit_does_not_land_later);
    let t = TempDir::new("gate-late");
    let late = t.path().join("late");
    let r = on_disk(None, &|| {
        crate::sys::clock::sleep(DISK_LIMIT + core::time::Duration::from_millis(500));
        std::fs::write(&late, "landed").map_err(|_| Errno::IO)
    });
    assert_eq!(r, Err(Errno::TIMEDOUT));
    std::thread::sleep(core::time::Duration::from_millis(1500));
    assert!(!late.exists(), "the step went on after its limit");
}

/// A unit on probation whose start never ends (`ready = notify`,
/// `start_timeout = 0`) held every later reload's verdict: a reload
/// an hour later that changes web only is answered once web is
/// judged, db left out of it. (`initctl reload` exited 1 after 120 s
/// for as long as db started.) A reload that changes db again waits
/// for it again. Nor does one that finds db's file invalid, which
/// keeps db as it is.
#[test]
fn a_unit_on_probation_from_before_does_not_hold_a_later_verdict() {
    probation_from_before(false);
    probation_from_before(true);
}

fn probation_from_before(db_invalid: bool) {
    use super::super::tests::{pid1_with, step};
    use crate::supervisor::Event;
    use crate::vocab::Exit;
    let db = "exec = /bin/sleep 1000\nready = notify\nstart_timeout = 0\n";
    let web = "exec = /bin/true\n";
    let mut p = pid1_with(&[("db", db), ("web", web)]);
    step(&mut p, 0, Event::Boot);
    step(&mut p, 1, Event::spawned(0, 100));
    step(&mut p, 1, Event::spawned(1, 101));
    let db2 = unit::parse("db", &format!("{db}env = A=1\n")).unwrap();
    let web1 = unit::parse("web", web).unwrap();
    reload_all(&mut p, 2, vec![db2.clone(), web1]);
    p.mark_pending();
    step(
        &mut p,
        3,
        Event::Exited {
            pid: 100,
            exit: Exit::Signal(15),
        },
    );
    step(&mut p, 4, Event::spawned(0, 102));
    assert_eq!(p.verdicts(&mut |_| {}), None, "db not judged yet");
    // An hour later, a reload that changes web only.
    let web2 = unit::parse("web", &format!("{web}env = B=1\n")).unwrap();
    match db_invalid {
        false => reload_all(&mut p, 3_600_000, vec![db2.clone(), web2.clone()]),
        true => reload_but(&mut p, 3_600_000, vec![web2.clone()], &["db"]),
    };
    p.mark_pending();
    step(
        &mut p,
        3_600_001,
        Event::Exited {
            pid: 101,
            exit: Exit::Signal(15),
        },
    );
    step(&mut p, 3_600_002, Event::spawned(1, 103));
    assert_eq!(p.verdicts(&mut |_| {}), None, "web not judged yet");
    let out = step(&mut p, 3_700_000, Event::Tick);
    let judged = crate::supervisor::Action::Verdict {
        unit: 1,
        good: true,
    };
    assert!(out.contains(&judged), "{out:?}");
    p.on_verdict(1, true);
    let mut heard = Vec::new();
    assert_eq!(p.verdicts(&mut |l| heard.push(l.to_string())), Some(0));
    assert_eq!(heard, ["web: ready"]);
    // Changed again, db is waited for again.
    let db3 = unit::parse("db", &format!("{db}env = A=2\n")).unwrap();
    reload_all(&mut p, 3_800_000, vec![db3, web2]);
    p.mark_pending();
    assert_eq!(p.verdicts(&mut |_| {}), None);
}

/// A changed unit whose new run is never judged, a shutdown begun (a
/// power button's SIGUSR2, another unit's start limit) or a stop by
/// hand before its verdict (started by hand since or not), is named
/// in the reload's answer and counted: it was left out, and `initctl reload` said 0, "applied
/// and ready", of a definition that never ran (after the reboot, it
/// starts ungated).
#[test]
fn a_verdict_that_will_not_come_is_said_and_counted() {
    use super::super::tests::{pid1_with, step, NO_PID};
    use crate::supervisor::Event;
    let web = "exec = /bin/true\nready = notify\n";
    for (shutdown, started_again) in [(true, false), (false, false), (false, true)] {
        let mut p = pid1_with(&[("web", web)]);
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        step(&mut p, 2, Event::Ready { unit: 0 });
        let web2 = unit::parse("web", &format!("{web}env = A=1\n")).unwrap();
        reload_all(&mut p, 3, vec![web2]);
        p.mark_pending();
        assert_eq!(p.verdicts(&mut |_| {}), None, "web on probation");
        let (ev, said) = match shutdown {
            true => (
                Event::Shutdown(crate::vocab::ShutdownKind::Reboot),
                "web: not judged: shutting down",
            ),
            false => (Event::Stop { unit: 0 }, "web: not judged: stopped by hand"),
        };
        step(&mut p, 4, ev);
        if started_again {
            // Taken over by the operator: its run now is none the
            // verdict waited for.
            step(&mut p, 5, Event::Start { unit: 0 });
            assert!(p.sup.slot(0).is_some_and(|s| s.rt.want));
        }
        let mut heard = Vec::new();
        assert_eq!(p.verdicts(&mut |l| heard.push(l.to_string())), Some(1));
        assert_eq!(heard, [said]);
    }
}

/// `web` (`/bin/true`) reloaded to `/bin/nope` and judged bad while
/// the disk is in its respite after a timeout: its put-back owed.
fn rejected_while_the_disk_stalls(t: &TempDir) -> super::Pid1 {
    let mut p = running(t, unit::parse("web", "exec = /bin/true\n").unwrap(), None);
    reload_to(&mut p, unit::parse("web", "exec = /bin/nope\n").unwrap());
    p.mark_pending();
    p.disk_stall = DiskStall::stalled_at(now());
    p.on_verdict(0, false);
    p
}

/// A put-back the disk did not take (its respite after a timeout) is
/// made at the next reload that finds it answering, before the files
/// are read: the file held the rejected definition for good, which
/// the next boot started ungated.
#[test]
fn a_skipped_put_back_is_made_at_the_next_reload() {
    crate::testutil::alone!(a_skipped_put_back_is_made_at_the_next_reload);
    let t = TempDir::new("gate-owed-put-back");
    let mut p = rejected_while_the_disk_stalls(&t);
    let file = t.path().join("web.unit");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "exec = /bin/nope\n"
    );
    p.disk_stall = DiskStall::default();
    let mut said = Vec::new();
    let r = p.reload(&mut |l| said.push(l.to_string()));
    assert!(r.is_ok(), "{r:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# Put back by wren"), "{text}; {said:?}");
    assert!(
        said.iter()
            .any(|l| l.starts_with("web.unit: the last good definition written back")),
        "{said:?}"
    );
    let kept = std::fs::read_to_string(t.path().join("web.unit.rejected")).unwrap();
    assert_eq!(kept, "exec = /bin/nope\n");
    assert_eq!(p.sup.slot(0).unwrap().def.exec.first(), Some("/bin/true"));
}

/// A put-back made at a later reload lets go of the unit's rare box
/// when nothing else is left in it (the rejection was forgotten since:
/// the operator restarted the unit). The empty box was kept until the
/// unit's next failure, or a reload's change of it.
#[test]
fn a_put_back_made_late_leaves_no_empty_box() {
    crate::testutil::alone!(a_put_back_made_late_leaves_no_empty_box);
    let t = TempDir::new("gate-owed-box");
    let mut p = rejected_while_the_disk_stalls(&t);
    assert_eq!(p.still_owed().len(), 1);
    // As a restart by hand leaves it (`queries`).
    p.edges[0].clear_gate(false);
    p.disk_stall = DiskStall::default();
    let r = p.reload(&mut |_| {});
    assert!(r.is_ok(), "{r:?}");
    assert!(p.still_owed().is_empty());
    assert!(p.edges[0].rare.is_none(), "an empty box kept");
}

/// A put-back the disk refused (full: an SD card filled by logs) is
/// owed as one it did not answer for: the next reload after room was
/// made writes it before reading the files. It was dropped, and that
/// reload read the rejected file back and applied it again.
#[test]
fn a_put_back_a_full_disk_refused_is_made_at_the_next_reload() {
    crate::testutil::alone_after_mounting!(
        a_put_back_a_full_disk_refused_is_made_at_the_next_reload,
        "mount -t tmpfs -o size=64k none /mnt"
    );
    let d = Path::new("/mnt");
    let mut p = running_in(d, unit::parse("web", "exec = /bin/true\n").unwrap(), None);
    // A program that is there: a reload would take the file again.
    std::fs::write(d.join("web.unit"), "exec = /bin/false\n").unwrap();
    reload_to(&mut p, unit::parse("web", "exec = /bin/false\n").unwrap());
    p.mark_pending();
    crate::testutil::fill_small_tmpfs(d);
    p.on_verdict(0, false);
    let file = d.join("web.unit");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "exec = /bin/false\n"
    );
    // A reload while the disk still refuses: said, and the rejected
    // file is not applied again.
    let mut said = Vec::new();
    let r = p.reload(&mut |l| said.push(l.to_string()));
    assert!(r.is_ok(), "{r:?}");
    assert!(
        said.iter()
            .any(|l| l
                .starts_with("web.unit: the last good definition still cannot be written back (")),
        "{said:?}"
    );
    assert_eq!(p.sup.slot(0).unwrap().def.exec.first(), Some("/bin/true"));
    assert!(
        !p.sup.slot(0).unwrap().rt.probation,
        "the rejected file applied again"
    );
    std::fs::remove_file(d.join("fill")).unwrap();
    let mut said = Vec::new();
    let r = p.reload(&mut |l| said.push(l.to_string()));
    assert!(r.is_ok(), "{r:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# Put back by wren"), "{text}; {said:?}");
    assert_eq!(p.sup.slot(0).unwrap().def.exec.first(), Some("/bin/true"));
}
