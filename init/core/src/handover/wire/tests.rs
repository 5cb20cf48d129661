//! The hand-written codec against postcard through the serde derives (the
//! format older and newer PID 1s write and read): the same bytes out, the
//! same states (or the same refusals) back, for every variant, edge values
//! and every truncation and one-byte corruption.

use super::*;
use crate::codec::corruptions;
use crate::supervisor::Supervisor;
use crate::unit::{parse, StartLimit};
use crate::vocab::due;
use std::vec::Vec;

fn postcard<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_extend(v, Vec::new()).unwrap()
}

/// `st`'s bytes as `write_unit` puts them after others.
fn ours(st: &UnitState<'_>) -> Vec<u8> {
    let mut out = b"head".to_vec();
    write_unit(&mut out, st).unwrap();
    out.split_off(4)
}

/// Everything of a state that travels, and the fields that do not (as the
/// derive leaves them), to compare two decoded states.
fn parts(s: &UnitState<'_>) -> impl PartialEq + core::fmt::Debug {
    let rest = postcard(&(
        &s.rt,
        s.retired,
        s.log_fd,
        s.notify_fd,
        s.report_fd,
        s.log_capacity,
        s.log_pos,
        s.log,
        s.oom_kills_at_spawn,
        s.oom_kills,
        s.pressure_events,
        s.shed,
        s.last_error,
        s.verdict,
        s.rejected,
    ));
    let skipped = (s.rt.ready_after, s.rt.ready_early, s.rt.draining);
    (
        s.def.clone(),
        s.def.exec_line,
        s.last_good.clone(),
        s.last_good.as_ref().map(|d| d.exec_line),
        rest,
        skipped,
    )
}

const WEB: &str = "# web\n\ndescription = the \"web\" server\nafter = db\n\
    exec = /bin/httpd -f \"a b\"\nafter = net cache\nenv = A=1 2\n\
    namespaces = pid mount uts\nhostname = box\nmemory.max = 16M\n\
    cpu.max = 50000 100000\nseccomp = ~ @mount reboot\n\
    start_limit = 255/10s\n";

fn defs() -> Vec<UnitDef> {
    let mut rescue = UnitDef::with_defaults("rescue");
    rescue.exec.push("/bin/sh").unwrap();
    rescue.console = true;
    let long = "a".repeat(crate::vocab::NAME_MAX);
    let sixteen: Vec<std::string::String> = (0..AFTER_MAX).map(|i| format!("d{i}")).collect();
    let many = format!("after = {}\nexec = /bin/x\n", sixteen.join(" "));
    let mut many = parse(&long, &many).unwrap();
    many.exec_line = u32::MAX;
    vec![parse("web", WEB).unwrap(), rescue, many]
}

fn runtime(def: &UnitDef) -> Runtime {
    let mut sup = Supervisor::new();
    sup.add(def.clone()).unwrap();
    sup.slot(0).unwrap().rt.clone()
}

fn exits() -> [Exit; 7] {
    [
        Exit::Code(0),
        Exit::Code(-1),
        Exit::Code(i16::MAX),
        Exit::Code(i16::MIN),
        Exit::Signal(i16::MIN),
        Exit::Signal(15),
        Exit::OomKill,
    ]
}

fn notes() -> Vec<Option<Note>> {
    let d = |ms| Some(Delay::ms(ms));
    [
        Note::Running { pid: u32::MAX },
        Note::Running { pid: 1 },
        Note::Exited,
        Note::Died {
            exit: Exit::Code(i16::MIN),
            restart_in: d(u64::MAX),
        },
        Note::Died {
            exit: Exit::Signal(9),
            restart_in: None,
        },
        Note::Died {
            exit: Exit::OomKill,
            restart_in: d(0),
        },
        Note::SpawnFailed { restart_in: d(1) },
        Note::SpawnFailed { restart_in: None },
        Note::StartTimeout { restart_in: None },
        Note::StartTimeout {
            restart_in: d(1 << 32),
        },
        Note::StartLimit,
        Note::DepFailed { dep: u16::MAX },
        Note::DepFailed { dep: 0 },
        Note::DepMissing,
        Note::Stopped,
        Note::WatchdogTimeout { restart_in: d(127) },
        Note::WatchdogTimeout { restart_in: None },
    ]
    .into_iter()
    .map(Some)
    .chain([None])
    .collect()
}

/// States that between them take every variant and edge value: the `i`th
/// of each list, round the shorter ones.
fn states(log: &[u8]) -> Vec<UnitState<'_>> {
    let defs = defs();
    let notes = notes();
    let dues = [None, due(1), due(127), due(128), due(u64::MAX)];
    let failures: [&[Millis]; 4] = [&[], &[0], &[1, 1 << 32, u64::MAX], &[u64::MAX; 255]];
    let deps: [&[u16]; 3] = [&[], &[0], &[u16::MAX; AFTER_MAX]];
    let fds = [-1, 0, 63, 64, i32::MIN, i32::MAX];
    let texts = ["", "é", "line 3: \"x\" is not a unit"];
    let logs: [&[u8]; 3] = [b"", b"hello\n", log];
    let big = [0, 127, 128, u64::from(u32::MAX), u64::MAX];
    let retired = [Retired::No, Retired::Leaving, Retired::Free];
    let mut out = Vec::new();
    for i in 0..notes.len().max(2 * Phase::ALL.len()) {
        let at = |n: usize| i % n;
        let def = defs[at(defs.len())].clone();
        let mut rt = runtime(&def);
        rt.phase = Phase::ALL[at(Phase::ALL.len())];
        rt.pid = [0, 1, u32::MAX][at(3)];
        rt.want = i % 2 == 0;
        rt.spawned_at = big[at(big.len())];
        rt.deadline = dues[at(dues.len())];
        rt.streak = [0, 128, u32::MAX][at(3)];
        rt.restarts = [u32::MAX, 0, 300][at(3)];
        rt.failures = Failures::from_times(failures[at(failures.len())]);
        rt.last_exit = (i % 8 != 7).then(|| exits()[at(7)]);
        rt.last_note = notes[i];
        rt.deps = Few::from_slice(deps[at(deps.len())]);
        rt.restart_pending = i % 3 == 0;
        rt.probation = i % 4 == 1;
        rt.watchdog_at = dues[(i + 2) % dues.len()];
        let last_good = (i % 2 == 1).then(|| defs[(i + 1) % defs.len()].clone());
        out.push(UnitState {
            def,
            rt,
            retired: retired[at(3)],
            log_fd: fds[at(fds.len())],
            notify_fd: fds[(i + 1) % fds.len()],
            report_fd: fds[(i + 2) % fds.len()],
            log_capacity: [0, 4096, u32::MAX][at(3)],
            log_pos: big[(i + 1) % big.len()],
            log: logs[at(logs.len())],
            oom_kills_at_spawn: big[(i + 3) % big.len()],
            oom_kills: [0, u32::MAX][at(2)],
            pressure_events: [7, 70_000][at(2)],
            shed: i % 5 == 0,
            last_error: texts[at(texts.len())],
            last_good,
            verdict: [0, 1, 2, 3, 255][at(5)],
            rejected: [None, Some(""), Some(texts[2])][at(3)],
        });
    }
    out
}

fn headers() -> Vec<Header> {
    [(0, 0), (127, 1), (u64::MAX, u32::MAX)]
        .into_iter()
        .enumerate()
        .map(|(i, (t, n))| Header {
            started_at: t,
            all_up_reported: i % 2 == 1,
            reexecs: n,
            units: u32::MAX - n,
        })
        .collect()
}

fn same_read(p: &[u8]) {
    let ours = read_unit(p);
    let theirs = postcard::from_bytes::<UnitState<'_>>(p).ok();
    assert_eq!(
        ours.as_ref().map(parts),
        theirs.as_ref().map(parts),
        "{p:?}"
    );
    let ours = read_name_and_text(p);
    assert_eq!(ours, postcard::from_bytes::<(&str, &str)>(p).ok(), "{p:?}");
}

#[test]
fn units_are_postcards_bytes_and_read_back() {
    let log = vec![0xffu8; 70_000];
    let states = states(&log);
    assert!(states.len() >= 17);
    for st in &states {
        let bytes = postcard(st);
        assert_eq!(ours(st), bytes);
        let back = read_unit(&bytes).unwrap();
        assert_eq!(parts(&back), parts(st));
        same_read(&bytes);
    }
}

#[test]
fn headers_are_postcards_bytes_and_read_back() {
    for h in headers() {
        let bytes = postcard(&h);
        let mut out = b"head".to_vec();
        write_header(&mut out, &h);
        assert_eq!(out[4..], bytes[..]);
        assert_eq!(read_header(&bytes), Some(h));
        for p in corruptions(&bytes) {
            assert_eq!(read_header(&p), postcard::from_bytes(&p).ok(), "{p:?}");
        }
    }
}

#[test]
fn corrupt_units_are_read_as_postcard_reads_them() {
    // Every state but the long log (the same bytes as the short ones) and
    // the 255 failure times (the same bytes as three), cut and corrupted
    // everywhere; the longer definitions in two of them.
    let small = defs().swap_remove(1);
    let mut states = states(b"\x00\x80\xff");
    for st in states.iter_mut().skip(2) {
        st.def = small.clone();
        st.last_good = st.last_good.as_ref().map(|_| small.clone());
    }
    for st in states.iter_mut() {
        if st.rt.failures.len() > 3 {
            st.rt.failures = Failures::from_times(&[1, 1 << 32, u64::MAX]);
        }
    }
    for st in &states {
        for p in corruptions(&postcard(st)) {
            same_read(&p);
        }
    }
}

#[test]
fn a_long_log_cut_anywhere_is_refused() {
    let log = vec![b'x'; 70_000];
    let st = &states(&log)[2];
    let bytes = ours(st);
    assert!(bytes.len() > 70_000);
    for n in (0..bytes.len()).step_by(997).chain([bytes.len() - 1]) {
        same_read(&bytes[..n]);
        assert!(read_unit(&bytes[..n]).is_none());
    }
}

/// What postcard's readers refuse beyond the bytes: a sequence longer than
/// its bound, a zero timer, a variant past the last, an `after` line more
/// than the text's names.
#[test]
fn values_out_of_their_types_are_refused_as_postcard_refuses_them() {
    let st = &states(b"")[0];
    let mut rt = st.rt.clone();
    rt.failures = Failures::from_times(&[1; 255]);
    let ok = postcard(&rt);
    let mut over = postcard(&rt);
    // The length of `failures` (255, two bytes) after phase, pid, want,
    // spawned_at, deadline, streak, restarts: 256 more times.
    let at = over.windows(2).position(|w| w == [0xff, 0x01]).unwrap();
    over[at + 1] = 0x02;
    over.splice(at + 2..at + 2, [1u8]);
    for (bytes, good) in [(ok, true), (over, false)] {
        let ours = In { rest: &bytes }.runtime();
        let theirs = postcard::from_bytes::<Runtime>(&bytes).ok();
        assert_eq!(ours.is_some(), good);
        assert_eq!(ours.map(|r| postcard(&r)), theirs.map(|r| postcard(&r)));
    }
    for (bytes, good) in [
        (vec![1u8, 0], false),
        (vec![1, 1], true),
        (vec![0], true),
        (vec![2], false),
    ] {
        let ours = In { rest: &bytes }.opt(In::due);
        let theirs = postcard::from_bytes::<Option<Due>>(&bytes).ok();
        assert_eq!(ours, theirs);
        assert_eq!(ours.is_some(), good, "{bytes:?}");
    }
    for tag in 0..=12u8 {
        for bytes in [vec![tag, 3, 0], vec![tag, 0x80, 0x80, 0x04]] {
            let ours = In { rest: &bytes }.note();
            assert_eq!(ours, postcard::from_bytes::<Note>(&bytes).ok(), "{bytes:?}");
            let ours = In { rest: &bytes }.exit();
            assert_eq!(ours, postcard::from_bytes::<Exit>(&bytes).ok(), "{bytes:?}");
        }
    }
    let deps = |n: u8| {
        let mut b = vec![n];
        b.extend(std::iter::repeat_n(5u8, n.into()));
        b
    };
    for n in [0, 16, 17] {
        let b = deps(n);
        let ours = In { rest: &b }.deps();
        let theirs = postcard::from_bytes::<Few<u16, AFTER_MAX>>(&b).ok();
        assert_eq!(ours, theirs);
        assert_eq!(ours.is_some(), n <= 16);
    }
    // `after = a b` with one line, two, three.
    for (lines, good) in [(1u8, false), (2, true), (3, false)] {
        let mut b = postcard(&("u", "after = a b\nexec = /bin/x\n", 7u32));
        b.push(lines);
        b.extend(std::iter::repeat_n(0u8, lines.into()));
        let ours = In { rest: &b }.def();
        assert_eq!(ours.is_some(), good);
        assert_eq!(ours.map(|d| d.exec_line), good.then_some(7));
    }
}

#[test]
fn a_definition_its_text_would_change_is_refused_as_postcard_refuses_it() {
    let mut def = UnitDef::with_defaults("web");
    def.exec.push("/bin/web").unwrap();
    def.stop_signal = 99;
    let mut st = states(b"").swap_remove(0);
    st.def = def.clone();
    let mut out = Vec::new();
    assert!(write_unit(&mut out, &st).is_none());
    assert!(postcard::to_extend(&st, Vec::new()).is_err());
    st.def.stop_signal = 9;
    st.last_good = Some(def);
    assert!(write_unit(&mut out, &st).is_none());
    assert!(postcard::to_extend(&st, Vec::new()).is_err());
}

#[test]
fn a_start_limit_of_255_travels_whole() {
    let mut st = states(b"").swap_remove(0);
    st.def.seldom.start_limit = Some(StartLimit {
        count: 255,
        window: 10_000,
    });
    let mut f = Failures::for_limit(st.def.seldom.start_limit);
    for t in 0..300 {
        f.push(t << 40);
    }
    st.rt.failures = f;
    let back = read_unit(&ours(&st)).map(|s| s.rt.failures);
    assert_eq!(back.as_ref().map(Failures::len), Some(255));
    assert_eq!(back, Some(st.rt.failures.clone()));
}
