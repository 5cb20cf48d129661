//! The candidate binary of a re-exec: asked for its handshake as a normal
//! process (bounded by `HANDSHAKE_MS`), then exec'd in place of PID 1;
//! and what a candidate answers (`print_handshake`).

use super::{state_format, Undecoded, HANDSHAKE_MS, VERSION};
use crate::handover::{self, HANDOVER_ARG, HANDSHAKE_ARG};
use crate::pid1::{now, why, Why};
use crate::vocab::PATH_BYTES;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::pipe::PipeFlags;

/// Runs `path --reexec-handshake`, bounded by `HANDSHAKE_MS`: its state
/// format and version, or why it is not a working wren. `feed` (the
/// hardware watchdog's) between its steps and at least every `FEED_MS`
/// of the wait for its line: the three bounds in a row outlast the
/// shortest watchdog timeout (1 s).
///
/// With the `state` PID 1 is about to hand over on its stdin, a candidate
/// of this build or a later one says on a second line what of it it
/// cannot read (`print_handshake`): the unit whose definition its parser
/// refuses (an older build, rolled back to, refuses a newer key or
/// value). That is a refusal: taken over, the state would be damaged and
/// every unit adopted, that one lost. An older candidate ignores it.
pub(super) fn handshake(
    path: &str,
    state: Option<BorrowedFd<'_>>,
    feed: &dyn Fn(),
) -> Result<(u32, heapless::String<32>), Why> {
    let state_len = state
        .and_then(|fd| rustix::fs::fstat(fd).ok())
        .map_or(0, |st| u64::try_from(st.st_size).unwrap_or(0));
    let bound = answer_bound(state_len);
    let mut buf = [0u8; 512];
    let mut len = 0;
    let mut take = |chunk: &[u8]| {
        let Some(room) = buf.get_mut(len..) else {
            return true;
        };
        let n = chunk.len().min(room.len());
        if let (Some(to), Some(from)) = (room.get_mut(..n), chunk.get(..n)) {
            to.copy_from_slice(from);
        }
        len += n;
        // With the state, to its end: a second line may follow.
        len == buf.len() || (state.is_none() && buf.get(..len).is_some_and(|b| b.contains(&b'\n')))
    };
    let status = run(path, HANDSHAKE_ARG, state, bound, &mut take, feed)?;
    let text = core::str::from_utf8(buf.get(..len).unwrap_or(&[])).unwrap_or("");
    let line = text.lines().next().unwrap_or("");
    if let Some(what) = text.lines().find_map(|l| l.strip_prefix(UNREADABLE)) {
        return Err(why(format_args!("it cannot read the state: {what}")));
    }
    match handover::parse_handshake(line) {
        Some((_, proto, _)) if proto != crate::proto::PROTO_VERSION => Err(why(format_args!(
            "it speaks protocol {proto}, not {}",
            crate::proto::PROTO_VERSION
        ))),
        Some((format, _, version)) => Ok((format, crate::proto::truncated(version))),
        None => Err(match status {
            Ok(s) if len == 0 && state.is_some() => why(format_args!(
                "no answer to the state ({} KiB) within {bound}ms ({s})",
                state_len / 1024
            )),
            Ok(s) if len == 0 => why(format_args!(
                "not a wren: no handshake within {HANDSHAKE_MS}ms ({s})"
            )),
            _ => why(format_args!("not a wren: bad handshake `{}`", line.trim())),
        }),
    }
}

/// Runs `path ARG` (stdin `stdin` or /dev/null), its output (stdout;
/// stderr too but for the handshake) given to `take` as it comes until
/// `take` says it has enough, the output ends, or `bound` ms; then kills
/// it. How it ended. Its exec too is bounded: a file on a stalled file
/// system must not stop PID 1. `feed` at least every `FEED_MS`.
fn run(
    path: &str,
    arg: &str,
    stdin: Option<BorrowedFd<'_>>,
    bound: u64,
    take: &mut dyn FnMut(&[u8]) -> bool,
    feed: &dyn Fn(),
) -> Result<Result<crate::sys::child::ExitStatus, Errno>, Why> {
    let mut argv: crate::sys::exec::CStrings<{ PATH_BYTES + 64 }, 3> =
        crate::sys::exec::CStrings::new();
    let cannot = |e: Errno| why(format_args!("cannot run it: {}", std::io::Error::from(e)));
    if argv.push(&[path]).is_none() || argv.push(&[arg]).is_none() {
        return Err(cannot(Errno::NAMETOOLONG));
    }
    let null = rustix::fs::openat(
        rustix::fs::CWD,
        c"/dev/null",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(cannot)?;
    let (out, out_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).map_err(cannot)?;
    let err_to = match arg {
        HANDSHAKE_ARG => null.as_fd(),
        _ => out_w.as_fd(),
    };
    let child = crate::sys::child::spawn_within(
        &argv,
        [
            stdin.or(Some(null.as_fd())),
            Some(out_w.as_fd()),
            Some(err_to),
        ],
        Some(HANDSHAKE_MS),
    )
    .map_err(|e| match e {
        Errno::TIMEDOUT => why(format_args!(
            "cannot run it: its exec did not end within {HANDSHAKE_MS}ms"
        )),
        e => cannot(e),
    })?;
    drop(out_w);
    feed();
    {
        let fd = out;
        let _ = rustix::io::ioctl_fionbio(&fd, true);
        let deadline = now().saturating_add(bound);
        let mut chunk = [0u8; 512];
        loop {
            let left = deadline.saturating_sub(now());
            if left == 0 {
                break;
            }
            feed();
            let ts = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: (left.min(FEED_MS) * 1_000_000) as i64,
            };
            let mut pfd = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut pfd, Some(&ts)) {
                Ok(0) | Err(Errno::INTR) => continue,
                Ok(_) => {}
                Err(_) => break,
            }
            match rustix::io::read(&fd, &mut chunk) {
                Ok(0) => break,
                Ok(n) if take(chunk.get(..n).unwrap_or_default()) => break,
                Ok(_) | Err(Errno::INTR) | Err(Errno::AGAIN) => {}
                Err(_) => break,
            }
        }
    }
    // Whatever it does next, it ends here (SIGKILL makes the wait short;
    // one stuck where SIGKILL cannot reach it is left to the loop's reap).
    let _ = child.kill();
    feed();
    let status = child
        .wait_within(HANDSHAKE_MS)
        .unwrap_or(Err(Errno::TIMEDOUT));
    feed();
    Ok(status)
}

/// A build of another state format adopts the units from their files,
/// read by its own parser (an older one, rolled back to, refuses a key
/// added since): `PATH check`, the contract's `initctl check`, which
/// every build has, says which. The first unit that `running` says runs
/// among them, with the candidate's line: the new PID 1 would leave it
/// unsupervised, its output pipe cut. Bounded by `CHECK_MS`.
pub(super) fn refused_files(
    path: &str,
    running: &dyn Fn(&str) -> bool,
    feed: &dyn Fn(),
) -> Option<Why> {
    // Line by line as it comes: a running unit's refusal may follow
    // thousands of other lines (a line longer than 4 KiB is skipped).
    let mut line: Vec<u8> = Vec::new();
    let mut found = None;
    let mut take = |chunk: &[u8]| {
        for &c in chunk {
            if c != b'\n' {
                if line.len() < 4096 {
                    line.push(c);
                }
                continue;
            }
            found = found.take().or_else(|| refusal_in(&line, running));
            line.clear();
        }
        found.is_some()
    };
    let _ = run(path, "check", None, CHECK_MS, &mut take, feed).ok()?;
    found.or_else(|| refusal_in(&line, running))
}

/// A line of `initctl check` about a unit `running` says runs, when it
/// is an error (`FILE:LINE: ...` or `FILE: ...`), not a warning (`FILE:
/// warning: ...`, a valid set).
fn refusal_in(line: &[u8], running: &dyn Fn(&str) -> bool) -> Option<Why> {
    let line = core::str::from_utf8(line).ok()?;
    // By bytes: a `&str` pattern links the two-way substring searcher
    // (8 KB) for this one use.
    let at = line.as_bytes().windows(6).position(|w| w == b".unit:")?;
    let (file, said) = (line.get(..at)?, line.get(at + 6..)?);
    if said.starts_with(" warning:") {
        return None;
    }
    let name = file.rsplit('/').next()?;
    running(name).then(|| why(format_args!("it cannot read {name}.unit:{said}")))
}

/// How long `PATH check` may take: it loads the whole unit directory.
const CHECK_MS: u64 = 2_000;

/// How long a candidate has to answer, given a state of `state_len`
/// bytes to read and decode first: the handshake's bound, and 1 ms more
/// per 16 KB (16 MB/s: the units' rings make a state tens of MB on a big
/// table, which a Pi reads far slower than a desktop), at most 4.5 s
/// more: the loop waits meanwhile (the watchdog fed; what the units say
/// is read first after it, `notify_before_deadlines`). A working wren of
/// this format was refused as "not a wren" past 500 ms.
fn answer_bound(state_len: u64) -> u64 {
    HANDSHAKE_MS.saturating_add((state_len / 16_000).min(4_500))
}

/// `wren --reexec-handshake`: the line a candidate answers with; given
/// on its stdin the state a PID 1 of its format is about to hand over,
/// a second line (`UNREADABLE`) if it could not take it over. False
/// when the line could not be written (a reader gone: the exit code
/// says so).
pub fn print_handshake() -> bool {
    let mut line = String::new();
    let _ = handover::handshake_line(&mut line, state_format(), VERSION);
    if let Some(what) = unreadable(rustix::stdio::stdin()) {
        line.push_str(UNREADABLE);
        line.push_str(&what);
        line.push('\n');
    }
    // Not `print!`: std's stdout (its lock, its line buffer) for one line.
    crate::sys::file::write_all(rustix::stdio::stdout(), line.as_bytes()).is_ok()
}

/// How a candidate's second line begins.
const UNREADABLE: &str = "unreadable: ";

/// What of the state in `fd` this build would not take over, if it is of
/// its format: the first unit whose record it cannot decode, with its
/// parser's word on the unit's definition: `decode`, as PID 1 would.
pub(super) fn unreadable(fd: rustix::fd::BorrowedFd<'_>) -> Option<String> {
    let mut bytes = Vec::new();
    rustix::fs::seek(fd, rustix::fs::SeekFrom::Start(0)).ok()?;
    let own = rustix::io::fcntl_dupfd_cloexec(fd, 3).ok()?;
    crate::sys::file::read_to_end(std::fs::File::from(own), &mut bytes).ok()?;
    let parsed = handover::parse_hints(&bytes).filter(|p| p.format == state_format())?;
    let f = match super::decode(parsed.rest) {
        Ok(_) | Err(Undecoded::Cut) => return None,
        Err(Undecoded::Header) => return Some("its header".into()),
        Err(Undecoded::Unit(f)) => f,
    };
    let (name, text) = handover::wire::read_name_and_text(f)?;
    Some(match crate::unit::parse(name, text) {
        Err(e) => format!("{name}: line {}: {}", e.line, e.msg),
        Ok(_) => format!("{name}'s record"),
    })
}

/// Longest wait for the handshake's line between two feeds.
const FEED_MS: u64 = 250;

/// execve `path --handover FD` as this process; returns only on failure.
pub(super) fn exec_self(path: &str, state: &OwnedFd) -> Errno {
    let mut argv: crate::sys::exec::CStrings<{ PATH_BYTES + 64 }, 4> =
        crate::sys::exec::CStrings::new();
    let mut n = itoa(state.as_fd());
    if argv.push(&[path]).is_none()
        || argv.push(&[HANDOVER_ARG]).is_none()
        || argv.push(&[n.as_str()]).is_none()
    {
        return Errno::NAMETOOLONG;
    }
    let mut envp: crate::sys::exec::CStrings<8192, 128> = crate::sys::exec::CStrings::new();
    // vars() panics on a non-UTF-8 variable, and a panic here is a kernel
    // panic: such a variable (the kernel passes what the command line has)
    // is left out of the new image's environment instead.
    for (k, v) in std::env::vars_os() {
        if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
            let _ = envp.push(&[k, "=", v]);
        }
    }
    let e = crate::sys::exec::execve(&argv, &envp);
    n.clear();
    e
}

fn itoa(fd: BorrowedFd<'_>) -> heapless::String<12> {
    crate::proto::formatted(format_args!("{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::super::{state_format, HANDSHAKE_MS, VERSION};
    use super::handshake;
    use crate::testutil::TempDir;
    use std::time::{Duration, Instant};

    /// An executable shell script `name` in `t` running `body`: its path.
    fn script(t: &TempDir, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = t.file(name, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Given the state, a candidate that says it cannot read it (a
    /// second line) is refused, naming what; one that says nothing more
    /// (an older build) is not. Alone in a process, as the next test.
    #[test]
    fn a_candidate_that_cannot_read_the_state_is_refused() {
        crate::testutil::alone!(a_candidate_that_cannot_read_the_state_is_refused);
        let t = TempDir::new("reexec-unreadable");
        let mut line = String::new();
        crate::handover::handshake_line(&mut line, state_format(), VERSION).unwrap();
        let state = rustix::fs::memfd_create("st", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        for (name, second, refused) in [
            ("older", "", false),
            (
                "rolled-back",
                "unreadable: web: line 3: unknown key\n",
                true,
            ),
        ] {
            let path = script(&t, name, &format!("printf '%s%s' '{line}' '{second}'"));
            let r = handshake(&path, Some(rustix::fd::AsFd::as_fd(&state)), &|| {});
            match r {
                Ok(_) => assert!(!refused, "{name}"),
                Err(why) => {
                    assert!(refused, "{name}: {}", why.as_str());
                    assert!(
                        why.as_str()
                            .contains("it cannot read the state: web: line 3: unknown key"),
                        "{}",
                        why.as_str()
                    );
                }
            }
        }
    }

    /// A state of 16 MB takes a candidate longer than the bare
    /// handshake's bound to read: it has a second more, and one that
    /// does not answer within it is said not to have answered the state,
    /// not to be no wren. Alone in a process, as the next test. The slow
    /// one answers 100 ms past the bare bound, which leaves it 900 ms of
    /// the longer one on a loaded machine (at 0.8 s it missed it once,
    /// beside two mutation runs).
    #[test]
    fn a_large_state_gives_the_candidate_longer_to_answer() {
        crate::testutil::alone!(a_large_state_gives_the_candidate_longer_to_answer);
        let t = TempDir::new("reexec-large");
        let mut line = String::new();
        crate::handover::handshake_line(&mut line, state_format(), VERSION).unwrap();
        let state = rustix::fs::memfd_create("st", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&state, 16_000_000).unwrap();
        let state = Some(rustix::fd::AsFd::as_fd(&state));
        let slow = script(&t, "slow", &format!("sleep 0.6; printf '%s' '{line}'"));
        let r = handshake(&slow, state, &|| {});
        assert!(r.is_ok(), "{:?}", r.err().map(|w| w.as_str().to_owned()));
        let hangs = script(&t, "hangs", "exec sleep 5");
        let why = handshake(&hangs, state, &|| {}).unwrap_err();
        assert!(
            why.as_str()
                .starts_with("no answer to the state (15625 KiB) within 1500ms ("),
            "{}",
            why.as_str()
        );
    }

    /// A candidate of another format is asked to `check` the unit files
    /// it would adopt from: a running unit's file its parser refuses is
    /// a refusal naming it, with its line; one of a unit not running is
    /// not (it is not adopted, nor lost). Alone, as the next test.
    #[test]
    fn a_candidate_that_cannot_read_a_running_units_file_is_refused() {
        crate::testutil::alone!(a_candidate_that_cannot_read_a_running_units_file_is_refused);
        let t = TempDir::new("reexec-check");
        // A warning (a valid set) is none; thousands of lines before a
        // running unit's refusal do not hide it.
        let body = "[ \"$1\" = check ] || exit 2\n\
            echo '/etc/units/web.unit: warning: runs as root with every capability' >&2\n\
            i=0; while [ $i -lt 3000 ]; do echo \"/etc/units/u$i.unit:2: bad value\" >&2; i=$((i+1)); done\n\
            echo '/etc/units/web.unit:3: unknown key `memory.swap.max`' >&2\n\
            echo '3001 errors; 1 of 3002 units ok'\nexit 1";
        let path = script(&t, "older", body);
        let why = super::refused_files(&path, &|n| n == "web", &|| {});
        assert_eq!(
            why.as_ref().map(|w| w.as_str()),
            Some("it cannot read web.unit:3: unknown key `memory.swap.max`")
        );
        assert!(super::refused_files(&path, &|n| n == "cron", &|| {}).is_none());
        let warned = "echo '/etc/units/web.unit: warning: runs as root' >&2";
        let warned = script(&t, "warned", warned);
        assert!(super::refused_files(&warned, &|n| n == "web", &|| {}).is_none());
    }

    /// Candidates as scripts: one that hangs, one that exits saying
    /// nothing (its child holding the pipe), one that says something
    /// else, one that answers as this build does. Each is judged within
    /// the handshake's bound (and the kill's wait after it), the old PID
    /// 1 never held longer. Alone in a process: the exec is known done
    /// when the last copy of its report pipe closes, and a sibling test's
    /// fork copies it, held as long as that child lives without an exec
    /// (seconds, for a stuck child): the exec then looks stalled.
    #[test]
    fn a_candidate_is_judged_within_the_bound() {
        crate::testutil::alone!(a_candidate_is_judged_within_the_bound);
        let t = TempDir::new("reexec-candidate");
        let mut line = String::new();
        crate::handover::handshake_line(&mut line, state_format(), VERSION).unwrap();
        let cases = [
            ("hangs", "exec sleep 5".to_string(), "no handshake within"),
            (
                "silent",
                "(sleep 1) & exit 0".to_string(),
                "no handshake within",
            ),
            (
                "other",
                "echo hello; exec sleep 5".to_string(),
                "bad handshake `hello`",
            ),
            ("good", format!("printf '%s' '{line}'; exec sleep 5"), ""),
        ];
        for (name, body, says) in cases {
            let path = script(&t, name, &body);
            let t0 = Instant::now();
            let fed = std::cell::RefCell::new(vec![t0]);
            let r = handshake(&path, None, &|| fed.borrow_mut().push(Instant::now()));
            let took = t0.elapsed();
            assert!(
                took < Duration::from_millis(2 * HANDSHAKE_MS + 1000),
                "{name}: {took:?}"
            );
            // Fed within the handshake, not only after it: a gap under
            // HANDSHAKE_MS (500) shows a feed came in between. The
            // callback comes every FEED_MS (250); the rest is slack for a
            // loaded host, which FEED_MS + 150 did not always leave.
            let mut fed = fed.into_inner();
            fed.push(Instant::now());
            let gap = fed.windows(2).map(|w| w[1] - w[0]).max().unwrap();
            assert!(
                gap < Duration::from_millis(HANDSHAKE_MS - 50),
                "{name}: {gap:?} unfed"
            );
            match r {
                Ok((format, version)) => {
                    assert_eq!(says, "", "{name}");
                    assert_eq!((format, version.as_str()), (state_format(), VERSION));
                }
                Err(why) => {
                    assert_ne!(says, "", "{name}: {}", why.as_str());
                    assert!(why.as_str().contains(says), "{name}: {}", why.as_str());
                }
            }
        }
    }
}
