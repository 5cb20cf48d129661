use super::*;
use crate::testutil::TempDir;
use std::os::unix::process::ExitStatusExt;

#[test]
fn pids_are_read_across_chunks_and_bad_lines_skipped() {
    let dir = TempDir::new("cgkill-parse");
    let mut text = String::new();
    let want: Vec<u32> = (0..200).map(|i| 1000 + i * 37).collect();
    for (i, p) in want.iter().enumerate() {
        text.push_str(&format!("{p}\n"));
        if i == 50 {
            text.push_str("garbage\n99999999999999999999\n\n");
        }
    }
    // The last line without its newline still counts.
    text.push_str("4242");
    std::fs::write(dir.join("cgroup.procs"), &text).unwrap();
    assert!(text.len() > 3 * CHUNK);
    let mut got = Vec::new();
    let n = for_each_pid(dir.dir_fd(), |p| got.push(p)).unwrap();
    let mut expect = want.clone();
    expect.push(4242);
    assert_eq!(got, expect);
    assert_eq!(n, expect.len());
    assert_eq!(lists(dir.dir_fd(), 4242), Ok(true));
    assert_eq!(lists(dir.dir_fd(), 1037), Ok(true));
    assert_eq!(lists(dir.dir_fd(), 1001), Ok(false));
}

#[test]
fn no_procs_file_is_an_error() {
    let dir = TempDir::new("cgkill-none");
    assert_eq!(for_each_pid(dir.dir_fd(), |_| {}), Err(Errno::NOENT));
}

/// `n` processes sleeping a minute.
fn sleepers(n: usize) -> Vec<std::process::Child> {
    (0..n)
        .map(|_| {
            std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap()
        })
        .collect()
}

/// A kernel without `cgroup.kill`: the fallback kills each listed process,
/// for real, and skips the excepted one when signalling.
#[test]
fn without_cgroup_kill_each_pid_is_killed() {
    let dir = TempDir::new("cgkill-fallback");
    let mut kids = sleepers(3);
    let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
    let text: String = pids.iter().map(|p| format!("{p}\n")).collect();
    std::fs::write(dir.join("cgroup.procs"), text).unwrap();
    let fd = dir.dir_fd();

    // The stop signal spares the excepted pid (a namespace's reaper).
    let spared = pids[2];
    assert_eq!(
        signal_each(&fd, Signal::TERM, Some(spared), SUB_CGROUPS),
        Ok(2)
    );
    for k in kids.iter_mut().take(2) {
        assert_eq!(k.wait().unwrap().signal(), Some(15));
    }
    assert_eq!(kids[2].try_wait().unwrap(), None, "the excepted pid got it");

    // The boot's check finds no `cgroup.kill` here.
    assert!(!supported(&fd));
    let r = kill_dir(&fd).unwrap();
    // Two of the three are gone (and reaped): only the live one is killed.
    assert_eq!(
        r,
        Killed::EachPid {
            errno: Errno::NOENT,
            pids: 1
        }
    );
    assert_eq!(kids[2].wait().unwrap().signal(), Some(9));
}

/// A `cgroup.kill` that takes the write is trusted: nothing is signalled
/// pid by pid (the caller checks `populated` and escalates).
#[test]
fn a_writable_cgroup_kill_is_used() {
    let dir = TempDir::new("cgkill-file");
    std::fs::write(dir.join("cgroup.kill"), "").unwrap();
    std::fs::write(dir.join("cgroup.procs"), "1\n").unwrap();
    assert!(supported(dir.dir_fd()));
    assert_eq!(kill_dir(dir.dir_fd()), Ok(Killed::CgroupKill));
    assert_eq!(
        std::fs::read_to_string(dir.join("cgroup.kill")).unwrap(),
        "1"
    );
}

/// The stop signal reaches the cgroups a unit made below its own (a
/// container runtime's): their processes were left to the SIGKILL at
/// `stop_timeout`, and without `cgroup.kill` (before Linux 5.14) to no
/// kill at all. Levels past `SUB_DEPTH` are not walked.
#[test]
fn the_signal_reaches_the_cgroups_below() {
    let dir = TempDir::new("cgkill-below");
    let mut kids = sleepers(3);
    let deep = (0..=SUB_DEPTH)
        .map(|i| format!("l{i}"))
        .collect::<Vec<_>>()
        .join("/");
    let at = ["", "inner/", &format!("{deep}/")];
    for (k, sub) in kids.iter().zip(at) {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::write(
            dir.join(format!("{sub}cgroup.procs")),
            format!("{}\n", k.id()),
        )
        .unwrap();
    }
    // A file that is not a directory is no cgroup.
    std::fs::write(dir.join("memory.max"), "max\n").unwrap();
    let sent = signal_each(dir.dir_fd(), Signal::TERM, None, SUB_CGROUPS).unwrap();
    assert_eq!(sent, 2);
    for k in kids.iter_mut().take(2) {
        assert_eq!(k.wait().unwrap().signal(), Some(libc::SIGTERM));
    }
    assert!(
        kids[2].try_wait().unwrap().is_none(),
        "past SUB_DEPTH: left alone"
    );
    let _ = kids[2].kill();
    let _ = kids[2].wait();
}

/// A unit that made more cgroups than a stop signal's walk visits: the
/// walk stops at `SUB_CGROUPS` of them, and lists no further (the rest
/// of a stop is `cgroup.kill`'s); a kill's walk, for a kernel without
/// it, reaches them all.
#[test]
fn a_stop_signals_walk_visits_sub_cgroups_of_them_a_kills_all() {
    let dir = TempDir::new("cgkill-wide");
    std::fs::write(dir.join("cgroup.procs"), "7\n").unwrap();
    let made = SUB_CGROUPS + 40;
    for i in 0..made {
        std::fs::create_dir(dir.join(format!("c{i}"))).unwrap();
        std::fs::write(
            dir.join(format!("c{i}/cgroup.procs")),
            format!("{}\n", 1000 + i),
        )
        .unwrap();
    }
    let pids = |budget| {
        let mut seen = Vec::new();
        each_of_unit(dir.dir_fd().as_fd(), budget, &mut |p| seen.push(p)).unwrap();
        assert_eq!(seen.first(), Some(&7), "its own first");
        let n = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), n, "each once");
        n as u32
    };
    assert_eq!(pids(SUB_CGROUPS), 1 + SUB_CGROUPS);
    assert_eq!(pids(ALL_SUB_CGROUPS), 1 + made);
}
