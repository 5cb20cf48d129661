use super::*;
use crate::testutil::TempDir;
use std::fs;
use std::time::Duration;

/// A fresh fixture directory, removed at the end of the test.
fn fixture(tag: &str) -> TempDir {
    TempDir::new(&format!("cgroup-{tag}"))
}

const LIMIT_FILES: [&str; 9] = [
    "memory.max",
    "memory.high",
    "memory.low",
    "memory.min",
    "memory.swap.max",
    "pids.max",
    "cpu.weight",
    "cpu.max",
    "io.weight",
];

/// A root as `setup_units` leaves it, with `units/NAME` holding
/// `files` (what the kernel would create for the enabled controllers).
fn unit_fixture(tag: &str, name: &str, files: &[&str]) -> TempDir {
    let root = fixture(tag);
    let dir = root.join("units").join(name);
    fs::create_dir_all(&dir).unwrap();
    for f in files {
        fs::write(dir.join(f), "garbage-from-before\n").unwrap();
    }
    root
}

fn read(root: &Path, name: &str, file: &str) -> String<64> {
    let s = fs::read_to_string(root.join("units").join(name).join(file)).unwrap();
    String::try_from(s.as_str()).unwrap()
}

#[test]
fn controllers_parsed_from_text() {
    let c = parse_controllers("cpuset cpu io memory hugetlb pids rdma misc\n");
    assert_eq!(c.iter().count(), 4);
    let c = parse_controllers("cpuset cpu pids\n");
    assert!(c.has(Controller::Cpu) && c.has(Controller::Pids));
    assert!(!c.has(Controller::Memory) && !c.has(Controller::Io));
    // A prefix of a name is not the controller.
    assert_eq!(parse_controllers("memoryx iox\n"), Controllers::NONE);
    assert_eq!(parse_controllers(""), Controllers::NONE);
    let mut s = std::string::String::new();
    write!(s, "{}", parse_controllers("io memory")).unwrap();
    assert_eq!(s, "memory io");
}

#[test]
fn memory_events_parsed() {
    let text = "low 1\nhigh 22\nmax 333\noom 4\noom_kill 5\noom_group_kill 6\n";
    assert_eq!(
        parse_memory_events(text),
        Some(MemoryEvents {
            low: 1,
            high: 22,
            max: 333,
            oom: 4,
            oom_kill: 5,
            oom_group_kill: 6
        })
    );
    // Older kernels lack oom_group_kill; new keys are ignored.
    let ev =
        parse_memory_events("low 0\nhigh 0\nmax 0\noom 1\noom_kill 1\nsock_throttled 9\n").unwrap();
    assert_eq!((ev.oom, ev.oom_kill, ev.oom_group_kill), (1, 1, 0));
    assert_eq!(parse_memory_events("oom_kill x\n"), None);
}

#[test]
fn populated_and_numbers_parsed() {
    assert_eq!(parse_populated("populated 1\nfrozen 0\n"), Some(true));
    assert_eq!(parse_populated("populated 0\nfrozen 0\n"), Some(false));
    assert_eq!(parse_populated("frozen 0\n"), None);
    assert_eq!(parse_u64("12345678\n"), Some(12_345_678));
    assert_eq!(parse_u64("max\n"), None);
    assert_eq!(parse_limit("max\n"), Some(Limit::Max));
    assert_eq!(parse_limit("67108864\n"), Some(Limit::Value(64 << 20)));
    assert_eq!(parse_limit("-1\n"), None);
}

#[test]
fn settings_format_values_and_defaults() {
    let lim = Limits {
        memory_max: Some(Limit::Value(64 << 20)),
        memory_low: Some(Limit::Value(8 << 20)),
        pids_max: Some(Limit::Max),
        cpu_weight: Some(200),
        cpu_max: Some((Limit::Value(50_000), 100_000)),
        ..Limits::default()
    };
    let all = settings(&lim);
    let got: std::vec::Vec<(&str, &str, bool)> = all
        .iter()
        .map(|s| (s.file, s.value.as_str(), s.explicit))
        .collect();
    assert_eq!(
        got,
        [
            ("memory.max", "67108864", true),
            ("memory.high", "max", false),
            ("memory.low", "8388608", true),
            ("memory.min", "0", false),
            ("memory.swap.max", "max", false),
            ("pids.max", "max", true),
            ("cpu.weight", "200", true),
            ("cpu.max", "50000 100000", true),
            ("io.weight", "100", false),
        ]
    );
    let quota_max = Limits {
        cpu_max: Some((Limit::Max, 20_000)),
        ..Limits::default()
    };
    assert_eq!(settings(&quota_max)[7].value, "max 20000");
    assert_eq!(settings(&Limits::default())[7].value, "max 100000");
    let huge = Limits {
        cpu_max: Some((Limit::Value(u64::MAX), u64::MAX)),
        ..Limits::default()
    };
    assert_eq!(
        settings(&huge)[7].value,
        "18446744073709551615 18446744073709551615"
    );
}

#[test]
fn setup_enables_available_controllers_and_creates_units() {
    let root = fixture("setup");
    fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )
    .unwrap();
    fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    // The fixture's units/ has no subtree_control until we make it; a
    // real kernel creates it with the directory.
    let got = setup_units(&root).unwrap();
    assert!(root.join("units").is_dir());
    // One write of every available wanted controller (cpuset is not one).
    assert_eq!(
        fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
        "+memory +pids +cpu +io "
    );
    // units/cgroup.subtree_control is absent in the fixture: nothing
    // enabled there, and that is a warning, not an error.
    assert_eq!(got, Controllers::NONE);

    fs::write(root.join("units/cgroup.subtree_control"), "").unwrap();
    let got = setup_units(&root).unwrap();
    assert_eq!(got.iter().count(), 4);
    assert_eq!(
        fs::read_to_string(root.join("units/cgroup.subtree_control")).unwrap(),
        "+memory +pids +cpu +io "
    );
}

#[test]
fn setup_with_missing_controllers_enables_the_rest() {
    let root = fixture("setup-partial");
    fs::write(root.join("cgroup.controllers"), "cpu pids\n").unwrap();
    fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    fs::create_dir(root.join("units")).unwrap();
    fs::write(root.join("units/cgroup.subtree_control"), "").unwrap();
    let got = setup_units(&root).unwrap();
    assert!(got.has(Controller::Pids) && got.has(Controller::Cpu));
    assert!(!got.has(Controller::Memory) && !got.has(Controller::Io));
    assert_eq!(
        fs::read_to_string(root.join("units/cgroup.subtree_control")).unwrap(),
        "+pids +cpu "
    );
}

/// `Cgroups::setup` keeps the directories it set up: the same hierarchy
/// `open` gives, with the controllers enabled on the way.
#[test]
fn setup_returns_the_hierarchy_it_prepared() {
    let root = fixture("setup-keep");
    fs::write(root.join("cgroup.controllers"), "memory pids\n").unwrap();
    fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    let cg = Cgroups::setup(&root).unwrap();
    assert!(root.join("units").is_dir());
    assert_eq!(
        fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
        "+memory +pids "
    );
    // Its units fd is units/: protection lands there.
    fs::write(root.join("units/memory.low"), "0").unwrap();
    cg.set_units_protection(Limit::Value(4096), Limit::Value(0))
        .unwrap();
    assert_eq!(
        fs::read_to_string(root.join("units/memory.low")).unwrap(),
        "4096"
    );
    assert!(matches!(
        Cgroups::setup(&root.join("nope")),
        Err(CgroupError::OpenRoot { dir: "", .. })
    ));
}

#[test]
fn setup_errors_name_the_step() {
    let root = fixture("setup-bad");
    assert!(matches!(
        setup_units(&root),
        Err(CgroupError::ReadControllers {
            errno: Errno::NOENT
        })
    ));
    assert!(matches!(
        setup_units(&root.join("nope")),
        Err(CgroupError::OpenRoot { dir: "", .. })
    ));
    assert!(matches!(
        Cgroups::open(&root),
        Err(CgroupError::OpenRoot { dir: "units", .. })
    ));
}

#[test]
fn prepare_writes_set_keys_and_resets_the_rest() {
    let root = unit_fixture("prepare", "web", &LIMIT_FILES);
    let cg = Cgroups::open(&root).unwrap();
    let lim = Limits {
        memory_max: Some(Limit::Value(128 << 20)),
        memory_high: Some(Limit::Value(100 << 20)),
        memory_low: Some(Limit::Value(16 << 20)),
        memory_min: Some(Limit::Value(1 << 20)),
        memory_swap_max: Some(Limit::Value(0)),
        pids_max: Some(Limit::Value(64)),
        cpu_weight: Some(50),
        cpu_max: Some((Limit::Value(25_000), 100_000)),
        io_weight: Some(500),
    };
    let fd = cg.prepare("web", &lim, &mut 10).unwrap().dir;
    assert_eq!(read(&root, "web", "memory.max"), "134217728");
    assert_eq!(read(&root, "web", "memory.high"), "104857600");
    assert_eq!(read(&root, "web", "memory.low"), "16777216");
    assert_eq!(read(&root, "web", "memory.min"), "1048576");
    assert_eq!(read(&root, "web", "memory.swap.max"), "0");
    assert_eq!(read(&root, "web", "pids.max"), "64");
    assert_eq!(read(&root, "web", "cpu.weight"), "50");
    assert_eq!(read(&root, "web", "cpu.max"), "25000 100000");
    assert_eq!(read(&root, "web", "io.weight"), "500");
    // The fd is the cgroup directory.
    let st = rustix::fs::fstat(&fd).unwrap();
    let want = fs::metadata(root.join("units/web")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(st.st_ino, want.ino());

    // A reload that removed every key puts the defaults back.
    cg.prepare("web", &Limits::default(), &mut 10).unwrap();
    for (f, v) in [
        ("memory.max", "max"),
        ("memory.high", "max"),
        ("memory.low", "0"),
        ("memory.min", "0"),
        ("memory.swap.max", "max"),
        ("pids.max", "max"),
        ("cpu.weight", "100"),
        ("cpu.max", "max 100000"),
        ("io.weight", "100"),
    ] {
        assert_eq!(read(&root, "web", f), v, "{f}");
    }
}

/// An existing cgroup that is empty is made anew (what its last run left
/// charged to it stays with the removed one); one that holds anything
/// (here files, in the kernel a process or a child group) is kept and
/// written.
#[test]
fn prepare_makes_an_empty_cgroup_anew_and_keeps_a_busy_one() {
    let root = unit_fixture("prepare-anew", "web", &LIMIT_FILES);
    fs::create_dir(root.join("units/idle")).unwrap();
    use std::os::unix::fs::MetadataExt;
    // The old directory's time set far back: a new one's is now, however
    // coarse the file system's clock (a jiffy before Linux 6.13).
    let long_ago = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        root.join("units/idle"),
        &long_ago,
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    let mtime = |d: &str| fs::metadata(root.join(d)).unwrap().mtime();
    assert_eq!(mtime("units/idle"), 1);
    let cg = Cgroups::open(&root).unwrap();
    assert!(
        cg.prepare("idle", &Limits::default(), &mut 10)
            .unwrap()
            .fresh
    );
    assert_ne!(mtime("units/idle"), 1, "the empty cgroup was not made anew");
    assert!(
        !cg.prepare("web", &Limits::default(), &mut 10)
            .unwrap()
            .fresh
    );
    assert_eq!(read(&root, "web", "memory.max"), "max");
}

#[test]
fn prepare_creates_the_cgroup_and_skips_missing_default_files() {
    let root = unit_fixture("prepare-new", "x", &[]);
    let cg = Cgroups::open(&root).unwrap();
    assert!(!root.join("units/db").exists());
    // No controller files at all, no keys set: fine.
    cg.prepare("db", &Limits::default(), &mut 10).unwrap();
    assert!(root.join("units/db").is_dir());
}

#[test]
fn prepare_fails_for_a_set_key_whose_controller_is_missing() {
    // memory controller absent: only pids and cpu files exist.
    let root = unit_fixture(
        "prepare-nomem",
        "web",
        &["pids.max", "cpu.weight", "cpu.max"],
    );
    let cg = Cgroups::open(&root).unwrap();
    let ok = Limits {
        pids_max: Some(Limit::Value(10)),
        ..Limits::default()
    };
    cg.prepare("web", &ok, &mut 10).unwrap();
    assert_eq!(read(&root, "web", "pids.max"), "10");
    let bad = Limits {
        memory_low: Some(Limit::Value(1 << 20)),
        ..Limits::default()
    };
    // The key's controller is missing: the unit runs, the key is not
    // enforced, and the caller is told which.
    let p = cg.prepare("web", &bad, &mut 10).unwrap();
    assert_eq!(p.not_enforced.as_slice(), ["memory.low"]);
    // What a re-exec reads of a running unit's cgroup: the same keys,
    // nothing written.
    let both = Limits {
        memory_low: Some(Limit::Value(1 << 20)),
        pids_max: Some(Limit::Value(20)),
        ..Limits::default()
    };
    assert_eq!(cg.not_enforced_in("web", &both).as_slice(), ["memory.low"]);
    assert_eq!(read(&root, "web", "pids.max"), "max");
    assert!(cg.not_enforced_in("web", &ok).is_empty());
}

#[test]
fn prepare_reports_the_file_that_could_not_be_written() {
    let root = unit_fixture("prepare-dir", "web", &[]);
    // A directory where memory.high should be: open for write fails.
    fs::create_dir(root.join("units/web/memory.high")).unwrap();
    let cg = Cgroups::open(&root).unwrap();
    // `max` by PID 1; a value by a child (the cgroup is kept: it holds
    // files), whose errno comes back as the write's.
    let lower = Limits {
        memory_high: Some(Limit::Value(8 << 20)),
        ..Limits::default()
    };
    for lim in [Limits::default(), lower] {
        let err = cg.prepare("web", &lim, &mut 255).unwrap_err();
        assert_eq!(
            err,
            CgroupError::Write {
                unit: truncated("web"),
                file: "memory.high",
                errno: Errno::ISDIR
            }
        );
    }
    let err = cg.prepare("web", &Limits::default(), &mut 10).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("cgroup: cannot write units/web/memory.high: "));
}

/// A kept cgroup's `memory.max` value is written by a child, waited for
/// the caller's budget: here a write that never returns (a FIFO with no
/// reader stands for the kernel's reclaim stuck on a dead card). Without
/// the child, PID 1's own write would wait until a reader comes (5 s).
/// In a process of its own: a writer still being reaped would be kept
/// (`reclaim::INSIDE`, one for the process) and refuse other tests'
/// reclaiming writes meanwhile.
#[test]
fn a_kept_cgroups_memory_max_is_written_by_a_child_within_the_budget() {
    crate::testutil::alone!(a_kept_cgroups_memory_max_is_written_by_a_child_within_the_budget);
    let root = unit_fixture("reclaim-stuck", "web", &LIMIT_FILES);
    let max = root.join("units/web/memory.max");
    fs::remove_file(&max).unwrap();
    crate::testutil::fifo(&max);
    let unblock = max.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        // A reader, non-blocking: a writer waiting in its open goes on.
        let _r = rustix::fs::open(&unblock, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty());
        std::thread::sleep(Duration::from_secs(1));
    });
    let cg = Cgroups::open(&root).unwrap();
    let lim = Limits {
        memory_max: Some(Limit::Value(16 << 20)),
        pids_max: Some(Limit::Value(64)),
        ..Limits::default()
    };
    let mut polls = 10;
    let t = std::time::Instant::now();
    let err = cg.prepare("web", &lim, &mut polls).unwrap_err();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(2), "prepare took {took:?}");
    assert!(took >= Duration::from_millis(90), "no wait: {took:?}");
    assert_eq!(polls, 0, "the wait not taken from the budget");
    // Killed, and the value does not read back: not in force, so the
    // write failed (the start fails, as any failed start).
    let timed_out = CgroupError::Write {
        unit: truncated("web"),
        file: "memory.max",
        errno: Errno::TIMEDOUT,
    };
    assert_eq!(err, timed_out);
    // The killed writer has ended: nothing keeps the cgroup.
    assert!(!reclaim::inside("web"));
    // A budget spent: one poll still, not none.
    let mut spent = 0;
    let t = std::time::Instant::now();
    let err = cg.prepare("web", &lim, &mut spent).unwrap_err();
    let took = t.elapsed();
    assert_eq!(err, timed_out);
    assert!(took >= Duration::from_millis(10), "no wait: {took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[test]
fn names_that_could_escape_units_are_refused() {
    let root = unit_fixture("names", "web", &[]);
    let cg = Cgroups::open(&root).unwrap();
    for bad in ["../x", "a/b", "", ".hidden", "Web"] {
        assert!(matches!(
            cg.prepare(bad, &Limits::default(), &mut 10),
            Err(CgroupError::BadName { .. })
        ));
        assert!(cg.kill(bad).is_err());
        assert!(cg.remove(bad).is_err());
        assert_eq!(cg.populated(bad), None);
    }
    assert!(!root.join("x").exists());
}

#[test]
fn kill_writes_one_to_cgroup_kill() {
    let root = unit_fixture("kill", "web", &["cgroup.kill"]);
    let cg = Cgroups::open(&root).unwrap();
    assert_eq!(cg.kill("web").unwrap(), kill::Killed::CgroupKill);
    assert_eq!(read(&root, "web", "cgroup.kill"), "1");
    // No cgroup at all: an error naming it, nothing signalled.
    assert!(matches!(
        cg.kill("gone"),
        Err(CgroupError::OpenDir {
            errno: Errno::NOENT,
            ..
        })
    ));
}

#[test]
fn remove_deletes_and_tolerates_absence() {
    let root = unit_fixture("remove", "web", &[]);
    let cg = Cgroups::open(&root).unwrap();
    assert_eq!(cg.remove("web"), Ok(true));
    assert!(!root.join("units/web").exists());
    assert_eq!(cg.remove("web"), Ok(true));
    // A plain directory with files is not removable (cgroupfs ones are):
    // that is reported, with the unit.
    fs::create_dir(root.join("units/full")).unwrap();
    fs::write(root.join("units/full/f"), "").unwrap();
    assert!(matches!(
        cg.remove("full"),
        Err(CgroupError::Remove {
            errno: Errno::NOTEMPTY,
            ..
        })
    ));
}

#[test]
fn readers_parse_files() {
    let root = unit_fixture("read", "web", &[]);
    let d = root.join("units/web");
    fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    fs::write(d.join("memory.current"), "4096\n").unwrap();
    fs::write(d.join("memory.max"), "max\n").unwrap();
    fs::write(d.join("pids.current"), "3\n").unwrap();
    fs::write(
        d.join("memory.events"),
        "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n",
    )
    .unwrap();
    let cg = Cgroups::open(&root).unwrap();
    assert_eq!(cg.populated("web"), Some(true));
    assert_eq!(cg.memory_current("web"), Some(4096));
    assert_eq!(cg.memory_max("web"), Some(Limit::Max));
    assert_eq!(cg.pids_current("web"), Some(3));
    let ev = cg.memory_events("web").unwrap();
    assert_eq!((ev.max, ev.oom_kill), (7, 1));
    assert_eq!(cg.memory_current("other"), None);
    fs::write(d.join("memory.max"), "1048576\n").unwrap();
    assert_eq!(cg.memory_max("web"), Some(Limit::Value(1 << 20)));
}

#[test]
fn units_protection_is_written_on_the_parent() {
    let root = fixture("prot");
    fs::create_dir_all(root.join("units")).unwrap();
    for f in ["memory.low", "memory.min"] {
        fs::write(root.join("units").join(f), "0\n").unwrap();
    }
    let cg = Cgroups::open(&root).unwrap();
    cg.set_units_protection(Limit::Value(96 << 20), Limit::Max)
        .unwrap();
    let low = fs::read_to_string(root.join("units/memory.low")).unwrap();
    let min = fs::read_to_string(root.join("units/memory.min")).unwrap();
    assert_eq!((low.as_str(), min.as_str()), ("100663296", "max"));
    // Without the memory controller the files are absent: not an error.
    let bare = fixture("prot-bare");
    fs::create_dir_all(bare.join("units")).unwrap();
    let cg = Cgroups::open(&bare).unwrap();
    assert!(cg
        .set_units_protection(Limit::Value(1), Limit::Value(0))
        .is_ok());
}

/// A `memory.low` the kernel refuses does not leave `memory.min` (the
/// units' hard protection) unwritten, and the error names `units/`'s own
/// file (it named `units/units/memory.low`).
#[test]
fn a_refused_units_memory_low_still_writes_memory_min() {
    let root = fixture("prot-refused");
    fs::create_dir_all(root.join("units/memory.low")).unwrap();
    fs::write(root.join("units/memory.min"), "0\n").unwrap();
    let cg = Cgroups::open(&root).unwrap();
    let e = cg
        .set_units_protection(Limit::Value(1 << 20), Limit::Value(1 << 20))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cgroup: cannot write units/memory.low: "),
        "{e}"
    );
    let min = fs::read_to_string(root.join("units/memory.min")).unwrap();
    assert_eq!(min, "1048576");
}

/// A `units/` the set-up made holds the kernel's 0s: the first zero
/// protection is not written; every later value is, zeros included (a
/// reload back to none), and so is the first one into a `units/` that was
/// there before.
#[test]
fn zero_protection_is_not_written_into_a_units_dir_just_made() {
    // A memory-only root set up, and its units/ files marked (stand-ins
    // for the kernel's) to see whether a write came.
    let set_up = |root: &Path| {
        fs::write(root.join("cgroup.controllers"), "memory\n").unwrap();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        Cgroups::setup(root).unwrap()
    };
    let mark = |root: &Path| {
        for f in ["memory.low", "memory.min"] {
            fs::write(root.join("units").join(f), "untouched").unwrap();
        }
    };
    let read = |root: &Path| {
        ["memory.low", "memory.min"]
            .map(|f| fs::read_to_string(root.join("units").join(f)).unwrap())
    };
    let zero = Limit::Value(0);
    let root = fixture("prot-made");
    let cg = set_up(&root);
    mark(&root);
    cg.set_units_protection(zero, zero).unwrap();
    assert_eq!(read(&root), ["untouched", "untouched"]);
    cg.set_units_protection(zero, zero).unwrap();
    assert_eq!(read(&root), ["0", "0"]);
    // units/ there already: written at once.
    let again = set_up(&root);
    mark(&root);
    again.set_units_protection(zero, zero).unwrap();
    assert_eq!(read(&root), ["0", "0"]);
    // Made now but asked for protection: written.
    let fresh = fixture("prot-made-some");
    let cg = set_up(&fresh);
    mark(&fresh);
    cg.set_units_protection(Limit::Value(4096), zero).unwrap();
    assert_eq!(read(&fresh), ["4096", "0"]);
}

#[test]
fn a_fresh_cgroup_gets_only_the_keys_the_unit_sets() {
    let root = fixture("fresh");
    fs::create_dir_all(root.join("units")).unwrap();
    let cg = Cgroups::open(&root).unwrap();
    // No key set: nothing to write into a cgroup the kernel just made
    // (here, an empty directory: any write would fail with ENOENT).
    cg.prepare("plain", &Limits::default(), &mut 10).unwrap();
    assert_eq!(fs::read_dir(root.join("units/plain")).unwrap().count(), 0);
    // A key that is set is written, so its missing file is an error.
    let limits = Limits {
        pids_max: Some(Limit::Value(8)),
        ..Limits::default()
    };
    let p = cg.prepare("limited", &limits, &mut 10).unwrap();
    assert_eq!(p.not_enforced.as_slice(), ["pids.max"]);
}

/// An empty cgroup is said so at once, without a poll; a busy one is
/// polled until the budget runs out (a fixture file never changes), and
/// none is spent past it.
#[test]
fn waiting_for_an_empty_cgroup_spends_at_most_its_budget() {
    let root = unit_fixture("wait", "web", &[]);
    let d = root.join("units/web");
    let cg = Cgroups::open(&root).unwrap();
    fs::write(d.join("cgroup.events"), "populated 0\nfrozen 0\n").unwrap();
    let mut polls = 3;
    assert!(cg.wait_empty("web", &mut polls));
    assert_eq!(polls, 3);
    fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    let t = std::time::Instant::now();
    assert!(!cg.wait_empty("web", &mut polls));
    assert_eq!(polls, 0);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
    assert!(!cg.wait_empty("web", &mut polls));
    assert!(!cg.wait_empty("gone", &mut polls), "no cgroup.events");
}

/// A cgroup error's text, as a failing start's reason takes it at each
/// retry: std's errno text, and no allocation for it (the loop's steady
/// state allocates nothing).
#[test]
fn a_cgroup_error_reads_its_errno_without_the_heap() {
    let e = CgroupError::Write {
        unit: Name::try_from("web").unwrap(),
        file: "memory.max",
        errno: Errno::NOSPC,
    };
    let mut s: heapless::String<128> = heapless::String::new();
    let before = crate::sys::alloc::thread_count();
    core::fmt::write(&mut s, format_args!("{e}")).unwrap();
    assert_eq!(crate::sys::alloc::thread_count(), before);
    assert_eq!(
        s.as_str(),
        "cgroup: cannot write units/web/memory.max: No space left on device (os error 28)"
    );
}

#[test]
fn the_units_dir_as_a_c_string_is_the_same_name() {
    assert_eq!(UNITS_DIR_C.to_bytes(), UNITS_DIR.as_bytes());
}
