use super::edit::{edit_unit, work_dir, EditEnv, Edited};
use super::output::{detail_text, human_bytes, human_uptime, status_table};
use super::*;
use crate::control::fake::{status, Fake};
use crate::control::Server;
use crate::proto::{CtlError, ErrCode, LastExit, UnitDetail, UnitStatus};
use crate::testutil::TempDir;
use crate::unit::Limit;
use crate::vocab::{ShutdownKind, State};
use std::time::Duration;

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Runs `initctl ARGS` in a thread against a real server driven here;
/// `step` may change the fake between polls.
fn drive(
    tag: &str,
    fake: &mut Fake,
    a: &[&str],
    mut step: impl FnMut(&mut Fake, u32),
) -> (u8, String, String) {
    let dir = TempDir::new(tag);
    let path = dir.join("control");
    let uid = rustix::process::getuid().as_raw();
    let mut server = Server::bind(&path, uid).unwrap();
    let a = argv(a);
    let p = path.clone();
    let h = std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let code = run(&a, &p, &mut o, &mut e);
        (code, o, e)
    });
    let mut i = 0;
    while !h.is_finished() {
        server.on_ready(1_000, fake);
        server.poll_waiters(1_000, fake);
        step(fake, i);
        i += 1;
        assert!(i < 10_000, "initctl did not finish");
        std::thread::sleep(Duration::from_millis(1));
    }
    let (code, o, e) = h.join().unwrap();
    (
        code,
        String::from_utf8(o).unwrap(),
        String::from_utf8(e).unwrap(),
    )
}

fn offline(a: &[&str]) -> (u8, String, String) {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = run(
        &argv(a),
        Path::new("/nonexistent/wren/control"),
        &mut o,
        &mut e,
    );
    (
        code,
        String::from_utf8(o).unwrap(),
        String::from_utf8(e).unwrap(),
    )
}

#[test]
fn usage_errors_exit_2_without_contacting_init() {
    for a in [
        &[][..],
        &["frobnicate"],
        &["start"],
        &["start", "a", "b"],
        &["stop", "Bad/Name"],
        &["status", "a", "b"],
        &["status", "--yaml"],
        &["log"],
        &["log", "a", "-x"],
        &["reboot", "now"],
        &["reload", "x"],
        &["help", "frobnicate"],
        &["-h", "start"],
    ] {
        let (code, out, err) = offline(a);
        assert_eq!(code, 2, "{a:?}");
        assert!(out.is_empty());
        assert!(err.starts_with("initctl: "), "{err}");
        assert!(err.contains("usage: initctl"));
    }
    // A PATH the request cannot carry is a usage error, found before
    // init is asked (it said "bad reply" after asking).
    let long = format!("/{}", "x".repeat(crate::vocab::PATH_BYTES));
    let (code, _, err) = offline(&["reexec", &long]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("reexec: PATH longer than 128 bytes"), "{err}");
    let (code, out, _) = offline(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("usage: initctl"));
    assert!(USAGE.lines().all(|l| l.len() <= 80));
}

#[test]
fn unreachable_init_is_a_failure() {
    let (code, out, err) = offline(&["status"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("cannot connect to /nonexistent/wren/control"));
}

/// A client PID 1 refuses (here: not the allowed uid) is told why, though
/// the refusal and the close came before its request's write (EPIPE).
#[test]
fn a_refused_client_is_told_why_not_broken_pipe() {
    let dir = TempDir::new("ctl-refused");
    let path = dir.path().join("control");
    let other = rustix::process::getuid().as_raw().wrapping_add(1);
    let mut server = Server::bind(&path, other).unwrap();
    let mut conn = super::conn::Conn::open_within(&path, Duration::from_secs(1)).unwrap();
    // Accepted, refused and closed before the client writes.
    let mut fake = Fake::default();
    server.on_ready(1_000, &mut fake);
    std::thread::sleep(Duration::from_millis(50));
    conn.send(&crate::proto::Request::Info).unwrap();
    let e = conn
        .reply(Duration::from_secs(1), |r| match r {
            crate::proto::Reply::Error(e) => e.to_string(),
            other => format!("{other:?}"),
        })
        .unwrap();
    assert!(e.contains("denied"), "{e}");
}

/// A PID 1 that accepts nothing while its queue is full: a connect waits
/// its bound and fails, never for ever.
#[test]
fn a_full_connection_queue_is_a_bounded_wait() {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
    let dir = TempDir::new("ctl-full-queue");
    let path = dir.path().join("control");
    let listener = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
    rustix::net::bind(&listener, &SocketAddrUnix::new(&path).unwrap()).unwrap();
    // Backlog 0: one connection waits in the queue, the next finds it full.
    rustix::net::listen(&listener, 0).unwrap();
    let queued = super::conn::Conn::open_within(&path, Duration::from_millis(300));
    assert!(queued.is_ok());
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.clone();
    std::thread::spawn(move || {
        let t = crate::sys::clock::Instant::now();
        let r = super::conn::Conn::open_within(&p, Duration::from_millis(300)).map(|_| ());
        let _ = tx.send((r, t.elapsed()));
    });
    let (r, took) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("connect still waiting after 5 s");
    let e = r.unwrap_err();
    assert!(e.contains("accepts no connection"), "{e}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    drop(queued);
}

#[test]
fn parse_accepts_options_anywhere() {
    // `--` ends the options: a file named like one.
    assert_eq!(
        args::parse(&argv(&[
            "check", "--root", "/img", "--", "-x.unit", "--root"
        ])),
        Ok(Command::Check {
            root: Some("/img".into()),
            files: vec!["-x.unit".into(), "--root".into()],
        })
    );
    assert_eq!(
        args::parse(&argv(&["status", "--json", "web"])),
        Ok(Command::Status {
            name: Some("web".into()),
            json: true
        })
    );
    assert_eq!(
        args::parse(&argv(&["log", "-f", "db"])),
        Ok(Command::Log {
            name: "db".into(),
            follow: true
        })
    );
    assert_eq!(
        args::parse(&argv(&["check", "a.unit", "b.unit"])),
        Ok(Command::Check {
            root: None,
            files: argv(&["a.unit", "b.unit"])
        })
    );
    assert_eq!(
        args::parse(&argv(&["check", "--root", "/img", "x.unit"])),
        Ok(Command::Check {
            root: Some("/img".into()),
            files: argv(&["x.unit"])
        })
    );
    assert_eq!(
        args::parse(&argv(&["check", "--root=/img"])),
        Ok(Command::Check {
            root: Some("/img".into()),
            files: vec![]
        })
    );
    assert!(args::parse(&argv(&["check", "--root"])).is_err());
    // Twice in either spelling, or empty, is a usage error (exit 2) too.
    for a in [
        &["--root", "/a", "--root", "/b"][..],
        &["--root", "/a", "--root=/b"],
        &["--root=/a", "--root", "/b"],
        &["--root=/a", "--root=/b"],
        &["--root="],
        &["--root", ""],
    ] {
        let a = [&["check"][..], a].concat();
        assert!(args::parse(&argv(&a)).is_err(), "{a:?}");
    }
    assert!(args::parse(&argv(&["check", "--rot", "x"])).is_err());
    // A name the loader refuses (the kernel's cgroup files) cannot be
    // edited into a unit: said at once, not after each edit.
    let e = args::parse(&argv(&["edit", "io.web"])).unwrap_err();
    assert!(e.contains("`io.web` cannot be a unit name"), "{e}");
    assert!(args::parse(&argv(&["edit", "web.io"])).is_ok());
    assert!(args::parse(&argv(&["status", "io.web"])).is_ok());
    assert_eq!(
        args::parse(&argv(&["halt"])),
        Ok(Command::Shutdown(ShutdownKind::Halt))
    );
}

#[test]
fn sizes_and_uptimes_are_short() {
    assert_eq!(human_bytes(0), "0B");
    assert_eq!(human_bytes(1023), "1023B");
    assert_eq!(human_bytes(1024), "1K");
    assert_eq!(human_bytes(1536), "1.5K");
    assert_eq!(human_bytes(1_300_000), "1.2M");
    assert_eq!(human_bytes(8 << 20), "8M");
    assert_eq!(human_bytes((10 << 20) + 900_000), "10M");
    assert_eq!(human_bytes(1023 << 20), "1023M");
    assert_eq!(human_bytes(3 << 30), "3G");
    assert_eq!(human_bytes(u64::MAX), "16383P");
    // Rounded down, never a tenth of 10 ("1.10K" for 2047).
    assert_eq!(human_bytes(2047), "1.9K");
    assert_eq!(human_bytes((2 << 20) - 1), "1.9M");
    assert_eq!(human_uptime(0), "0s");
    assert_eq!(human_uptime(5_999), "5s");
    assert_eq!(human_uptime(192_000), "3m12s");
    assert_eq!(human_uptime((2 * 3600 + 5 * 60 + 9) * 1000), "2h5m");
    assert_eq!(human_uptime((3 * 86_400 + 4 * 3600) * 1000), "3d4h");
}

fn units() -> Vec<UnitStatus> {
    let mut db = status("db", State::Backoff, 0);
    db.memory_current = None;
    db.memory_max = None;
    let mut cache = status(
        "a-long.unit_name-32-bytes-long.x",
        State::Starting,
        4_194_303,
    );
    cache.memory_current = Some(500);
    cache.memory_max = Some(Limit::Max);
    cache.uptime_ms = 3_000;
    cache.restarts = 12_345;
    vec![status("web", State::Running, 123), db, cache]
}

#[test]
fn status_table_layout() {
    let t = status_table(&units());
    let expect = "\
NAME                             STATE    PID     RESTARTS MEMORY   UPTIME
web                              running  123     1        1.2M/8M  3m12s
db                               backoff  -       1        -        -
a-long.unit_name-32-bytes-long.x starting 4194303 12345    500B/max 3s
";
    assert_eq!(t, expect);
    assert!(t.lines().all(|l| l.len() <= 80));
    let fields: Vec<&str> = t.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(fields, ["db", "backoff", "-", "1", "-", "-"]);
}

#[test]
fn widest_possible_line_fits_80_columns() {
    // Linux's largest pid (pid_max is at most 2^22) and 8-digit restarts.
    let mut u = status(&"x".repeat(32), State::Stopping, 4_194_304);
    u.restarts = 99_999_999;
    u.memory_current = Some(1023 << 20);
    u.memory_max = Some(Limit::Value(1023 << 20));
    u.uptime_ms = 86_399_000;
    let t = status_table(&[u]);
    assert!(t.lines().all(|l| l.len() <= 80), "{t}");
}

fn detail() -> UnitDetail {
    UnitDetail {
        status: status("web", State::Backoff, 0),
        last_exit: LastExit::Signal(9),
        oom_kills: 2,
        pressure_avg10: Some(125),
        pressure_events: 1,
        not_enforced: crate::proto::truncated("memory.max"),
        reason: crate::proto::truncated("exited with signal, restarting in 2s"),
        confinement: crate::proto::truncated(
            "namespaces pid mount, user www, capabilities net_bind_service, no_new_privs, seccomp allow 212 calls, / read-only",
        ),
    }
}

/// The reason and the confinement quote the unit file (its program, its
/// `root`): a control character there reaches the terminal as `^[`, not
/// as a command to it.
#[test]
fn detail_shows_control_characters_not_sends_them() {
    let mut d = detail();
    d.reason = crate::proto::truncated("cannot start /opt/a\x1b]0;pwn\x07\x1b[2J/app: ENOENT");
    d.confinement = crate::proto::truncated("namespaces pid, /srv/\x1b[2Jx read-only");
    let t = detail_text(&d, b"");
    assert!(
        !t.iter().any(|&b| b < 0x20 && b != b'\n'),
        "{}",
        String::from_utf8_lossy(&t)
    );
    let t = String::from_utf8(t).unwrap();
    assert!(
        t.contains("reason: cannot start /opt/a^[]0;pwn^G^[[2J/app: ENOENT"),
        "{t}"
    );
    assert!(t.contains("/srv/^[[2Jx read-only"), "{t}");
}

#[test]
fn detail_lines() {
    let t = String::from_utf8(detail_text(&detail(), b"boom\nbang")).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0].split_whitespace().next(), Some("NAME"));
    assert!(lines[1].starts_with("web "));
    assert_eq!(lines[2], "last exit: signal 9 (SIGKILL)");
    assert_eq!(lines[3], "oom kills: 2");
    assert_eq!(
        lines[4],
        "pressure: 1.25% (memory, some avg10); over pressure_limit: 1"
    );
    assert_eq!(
        lines[5],
        "not enforced: memory.max (controller not available)"
    );
    assert_eq!(
        lines[6..8],
        [
            "confinement: namespaces pid mount, user www, capabilities net_bind_service,",
            "  no_new_privs, seccomp allow 212 calls, / read-only"
        ]
    );
    assert_eq!(lines[8], "reason: exited with signal, restarting in 2s");
    assert_eq!(&lines[9..], ["log:", "boom", "bang"]);
    let mut d = detail();
    d.last_exit = LastExit::OomKill;
    d.reason.clear();
    let t = String::from_utf8(detail_text(&d, b"")).unwrap();
    assert!(t.contains("last exit: oom-kill\n"));
    assert!(t.ends_with("reason: -\n"));
    d.last_exit = LastExit::Code(3);
    let t = String::from_utf8(detail_text(&d, b"")).unwrap();
    assert!(t.contains("last exit: code 3\n"));
    // No cgroup at all (no cgroup2): said so, not a controller missing.
    d.not_enforced = crate::proto::truncated("cgroup memory.max pids.max");
    let t = String::from_utf8(detail_text(&d, b"")).unwrap();
    assert!(
        t.contains("not enforced: cgroup memory.max pids.max (no cgroup2)\n"),
        "{t}"
    );
    // Output that is not UTF-8 (Latin-1 here) is shown as `log` shows
    // it, unchanged, not turned into U+FFFD.
    assert!(detail_text(&d, b"\xe9t\xe9\n").ends_with(b"log:\n\xe9t\xe9\n"));
}

/// The lines of `status NAME` fit the 80 columns of a serial console: a
/// default unit's confinement (98 columns on one line), a long reason, a
/// word longer than a line (of ASCII, of UTF-8); broken at `, ` or a
/// blank, nothing lost.
#[test]
fn detail_lines_fit_80_columns() {
    let def = crate::unit::UnitDef::with_defaults("web");
    let confinement = wren_core::confine::Summary(&def).to_string();
    let reason = "cannot start /usr/bin/app-server: execve: No such file or directory (os error 2), retry in 100ms";
    // `reason` holds 96 bytes: room for a word longer than a line.
    let word = "x".repeat(90);
    let enforced =
        "memory.max memory.low memory.high memory.swap.max pids.max cpu.weight io.weight";
    let mut d = detail();
    d.confinement = crate::proto::truncated(&confinement);
    d.not_enforced = crate::proto::truncated(enforced);
    // A word of 2-byte characters, cut between two of them.
    for r in [reason, &format!("a {word} b, {reason}"), &"é".repeat(48)] {
        d.reason = crate::proto::truncated(r);
        let t = String::from_utf8(detail_text(&d, b"")).unwrap();
        assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
        let words = |s: &str| s.split_whitespace().collect::<String>();
        let shown = format!(
            "not enforced: {enforced} (controller not available)\nconfinement: {confinement}\nreason: {}\n",
            d.reason
        );
        let from = t.find("not enforced:").unwrap();
        assert_eq!(words(&t[from..]), words(&shown), "{t}");
        assert!(
            t[from..].lines().skip(1).all(|l| l.starts_with("  ")
                || ["confinement: ", "reason: "]
                    .iter()
                    .any(|p| l.starts_with(p))),
            "{t}"
        );
    }
    let t = String::from_utf8(detail_text(&d, b"")).unwrap();
    assert!(t.contains(
        "\nconfinement: namespaces pid mount uts ipc, user root, capabilities all,\n  seccomp none, / read-write\n"
    ), "{t}");
    d.reason = crate::proto::truncated(reason);
    let t = String::from_utf8(detail_text(&d, b"")).unwrap();
    assert!(t.ends_with(
        "\nreason: cannot start /usr/bin/app-server: execve: No such file or directory (os\n  error 2), retry in 100ms\n"
    ), "{t}");
    // A line of exactly 80 columns is whole: no continuation after it
    // (one of two blanks alone was printed after it).
    let exact = "x".repeat(80 - "reason: ".len());
    d.reason = crate::proto::truncated(&exact);
    let t = String::from_utf8(detail_text(&d, b"")).unwrap();
    assert!(t.ends_with(&format!("\nreason: {exact}\n")), "{t}");
    assert!(!t.lines().any(|l| l.trim().is_empty()), "{t}");
}

/// The status table above the detail lines is the table `status` prints,
/// not broken in the middle of its columns however wide it is.
#[test]
fn detail_text_leaves_the_table_whole() {
    let mut d = detail();
    d.status.name = crate::vocab::Name::try_from("a".repeat(32).as_str()).unwrap();
    d.status.restarts = u32::MAX;
    d.status.pid = u32::MAX;
    d.status.memory_current = Some(u64::MAX);
    d.status.uptime_ms = u64::MAX;
    let table = status_table(std::slice::from_ref(&d.status));
    let t = String::from_utf8(detail_text(&d, b"")).unwrap();
    assert!(t.starts_with(&table), "{t}\n{table}");
}

fn text(json: Result<Vec<u8>, String>) -> String {
    String::from_utf8(json.unwrap()).unwrap()
}

/// A JSON string literal for `s`, as initctl writes one.
fn json_str(s: &str) -> String {
    let t = text(json::text(&s));
    t.strip_suffix('\n').unwrap().to_owned()
}

#[test]
fn json_strings_are_escaped() {
    assert_eq!(json_str("plain"), "\"plain\"");
    assert_eq!(json_str("a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(json_str("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
    assert_eq!(json_str("\u{1}\u{1f}\u{7f}"), r#""\u0001\u001f\u007f""#);
    assert_eq!(json_str("\u{8}\u{c}"), r#""\b\f""#);
    assert_eq!(json_str("é✓"), "\"é✓\"");
    assert_eq!(json_str("\u{2028}"), r#""\u2028""#);
    assert_eq!(
        json_str("\u{80}x\u{9b}2J\u{a0}"),
        "\"\\u0080x\\u009b2J\u{a0}\""
    );
    // Text that only looks like an escape keeps its case.
    assert_eq!(json_str("\\u001F"), r#""\\u001F""#);
}

#[test]
fn json_status_shapes() {
    let j = text(json::units(&units()[..2]));
    assert_eq!(
        j,
        "[{\"name\":\"web\",\"state\":\"running\",\"pid\":123,\"restarts\":1,\
         \"memory_current\":1300000,\"memory_max\":8388608,\"uptime_ms\":192000},\
         {\"name\":\"db\",\"state\":\"backoff\",\"pid\":null,\"restarts\":1,\
         \"memory_current\":null,\"memory_max\":null,\"uptime_ms\":null}]\n"
    );
    assert_eq!(text(json::units(&[])), "[]\n");
    let j = text(json::detail(&detail(), b"say \"hi\"\n\xff"));
    assert!(j.contains(",\"last_exit\":{\"signal\":9,\"name\":\"SIGKILL\"},"));
    assert!(j.contains("\"oom_kills\":2,"));
    assert!(
        j.contains(",\"confinement\":\"namespaces pid mount, user www, capabilities net_bind_service, no_new_privs, seccomp allow 212 calls, / read-only\",\"log\":"),
        "{j}"
    );
    assert!(
        j.ends_with("\"log\":\"say \\\"hi\\\"\\n\u{fffd}\"}\n"),
        "{j}"
    );
    let mut max = units()[2].clone();
    max.pid = 1;
    assert!(text(json::units(&[max])).contains("\"memory_max\":\"max\""));
    // Numbers as `Display` writes them, at their edges.
    let mut d = detail();
    for n in [0, 7, -1, 255, i32::MIN, i32::MAX] {
        d.last_exit = LastExit::Code(n);
        let j = text(json::detail(&d, b""));
        assert!(
            j.contains(&format!(",\"last_exit\":{{\"code\":{n}}},")),
            "{j}"
        );
        d.last_exit = LastExit::Signal(n);
        let j = text(json::detail(&d, b""));
        assert!(
            j.contains(&format!(",\"last_exit\":{{\"signal\":{n},")),
            "{j}"
        );
    }
    let mut big = units()[0].clone();
    big.memory_current = Some(u64::MAX);
    big.memory_max = Some(Limit::Value(10));
    big.uptime_ms = 0;
    let j = text(json::units(&[big]));
    assert!(
        j.contains(&format!("\"memory_current\":{},", u64::MAX)),
        "{j}"
    );
    assert!(j.contains("\"memory_max\":10,\"uptime_ms\":0}"), "{j}");
}

#[test]
fn status_over_the_socket() {
    let mut fake = Fake::with(&["web", "db"]);
    let (code, out, err) = drive("ctl-e2e-status", &mut fake, &["status"], |_, _| {});
    assert_eq!((code, err.as_str()), (0, ""));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("NAME "));
    assert!(lines[2].starts_with("db "));
    // Which wren is PID 1, under the table.
    assert!(lines[3].starts_with("init: wren "), "{out}");
    let (code, out, _) = drive("ctl-e2e-json", &mut fake, &["status", "--json"], |_, _| {});
    assert_eq!(code, 0);
    assert!(out.starts_with("[{\"name\":\"web\""));
}

#[test]
fn status_of_many_units_comes_page_by_page() {
    let names: Vec<String> = (0..150).map(|i| format!("u{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut fake = Fake::with(&refs);
    let (code, out, err) = drive("ctl-e2e-pages", &mut fake, &["status"], |_, _| {});
    assert_eq!((code, err.as_str()), (0, ""));
    let listed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with('u'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, refs, "every unit once, in order, over three pages");
    let (code, out, _) = drive(
        "ctl-e2e-pages-json",
        &mut fake,
        &["status", "--json"],
        |_, _| {},
    );
    assert_eq!(code, 0);
    assert_eq!(out.matches("\"name\":").count(), 150);
}

#[test]
fn status_of_one_unit_over_the_socket() {
    let mut fake = Fake::with(&["web"]);
    fake.unit("web").log.push(b"hello\n");
    let (code, out, _) = drive("ctl-e2e-one", &mut fake, &["status", "web"], |_, _| {});
    assert_eq!(code, 0);
    assert!(out.contains("\nlast exit: code 3\n"));
    assert!(out.ends_with("log:\nhello\n"));
    let (code, out, err) = drive("ctl-e2e-none", &mut fake, &["status", "nope"], |_, _| {});
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(err, "initctl: no unit nope\n");
}

#[test]
fn start_waits_for_the_unit() {
    let mut fake = Fake::with(&["web"]);
    let (code, out, err) = drive("ctl-e2e-start", &mut fake, &["start", "web"], |f, i| {
        if i == 20 {
            f.settle = Some(Ok(()));
        }
    });
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "web: started\n", "")
    );
    assert_eq!(fake.actions, ["start web"]);
    fake.settle = Some(Err(CtlError::new(ErrCode::Failed, "exited with code 1")));
    let (code, out, err) = drive("ctl-e2e-stop", &mut fake, &["restart", "web"], |_, _| {});
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(err, "initctl: web: exited with code 1\n");
}

#[test]
fn shutdown_cat_and_reload_over_the_socket() {
    let mut fake = Fake::with(&["web"]);
    let (code, out, _) = drive("ctl-e2e-off", &mut fake, &["poweroff"], |_, _| {});
    assert_eq!((code, out.as_str()), (0, ""));
    assert_eq!(fake.shutdowns, [ShutdownKind::Poweroff]);
    let (code, out, _) = drive("ctl-e2e-cat", &mut fake, &["cat", "web"], |_, _| {});
    assert_eq!((code, out.as_str()), (0, "exec = /bin/web\n"));
    fake.reload_lines = vec!["web.unit:2: unknown key 'exce' (did you mean 'exec'?)".into()];
    fake.reload_invalid = true;
    let (code, out, err) = drive("ctl-e2e-reload", &mut fake, &["reload"], |_, _| {});
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "web.unit:2: unknown key 'exce' (did you mean 'exec'?)\n"
    );
    assert_eq!(err, "initctl: 1 unit file invalid\n");
    fake.reload_invalid = false;
    fake.reload_lines.clear();
    let (code, _, _) = drive("ctl-e2e-reload2", &mut fake, &["reload"], |_, _| {});
    assert_eq!(code, 0);
}

/// A refused reload changed nothing: its message is said once, and no
/// verdict is waited for (it would wait on an earlier reload's units).
#[test]
fn a_refused_reload_says_so_once_and_asks_for_no_verdict() {
    let mut fake = Fake::with(&["web"]);
    fake.reload_refusal = Some(CtlError::new(
        ErrCode::Refused,
        "reload refused: shutting down; nothing changed",
    ));
    let (code, out, err) = drive("ctl-e2e-refused", &mut fake, &["reload"], |_, _| {});
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "initctl: reload refused: shutting down; nothing changed\n"
    );
    assert_eq!(fake.verdicts, 0);
    fake.reload_refusal = None;
    // Not a reload's answer at all (a looker denied): said once, and no
    // verdict asked for (it would be denied again, or wait on another
    // operator's reload and print its lines).
    fake.reload_error = Some(CtlError::new(
        ErrCode::Denied,
        "denied: the caller lacks CAP_SYS_ADMIN",
    ));
    let (code, _, err) = drive("ctl-e2e-denied", &mut fake, &["reload"], |_, _| {});
    assert_eq!(code, 1);
    assert_eq!(err.matches("denied").count(), 1, "{err}");
    assert_eq!(fake.verdicts, 0);
    fake.reload_error = None;
    let (code, _, _) = drive("ctl-e2e-refused2", &mut fake, &["reload"], |_, _| {});
    assert_eq!(code, 0);
    assert_eq!(fake.verdicts, 1, "a reload that applied is judged");
}

#[test]
fn reload_waits_for_the_verdict_and_fails_on_a_rejection() {
    let mut fake = Fake::with(&["web"]);
    fake.reload_lines = vec!["0 added, 1 changed, 0 removed, 0 unchanged".into()];
    fake.verdict_lines =
        vec!["web: new definition rejected (exit 1): back on the last good one".into()];
    fake.verdict_rejected = 1;
    let (code, out, err) = drive("ctl-e2e-verdict", &mut fake, &["reload"], |_, _| {});
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "0 added, 1 changed, 0 removed, 0 unchanged\n\
         web: new definition rejected (exit 1): back on the last good one\n"
    );
    assert_eq!(err, "initctl: 1 unit(s) rejected or not started\n");
    fake.verdict_lines = vec!["web: ready".into()];
    fake.verdict_rejected = 0;
    let (code, out, _) = drive("ctl-e2e-verdict2", &mut fake, &["reload"], |_, _| {});
    assert_eq!(code, 0);
    assert!(out.ends_with("web: ready\n"), "{out}");
}

#[test]
fn log_and_follow_over_the_socket() {
    let mut fake = Fake::with(&["web"]);
    fake.unit("web").log.push(b"one\n");
    let (code, out, _) = drive("ctl-e2e-log", &mut fake, &["log", "web"], |_, _| {});
    assert_eq!((code, out.as_str()), (0, "one\n"));
    let (code, out, err) = drive(
        "ctl-e2e-follow",
        &mut fake,
        &["log", "web", "-f"],
        |f, i| match i {
            20 => f.unit("web").log.push(b"two\n"),
            40 => f.unit("web").log.push(b"three\n"),
            60 => f.units.clear(),
            _ => {}
        },
    );
    assert_eq!(out, "one\ntwo\nthree\n");
    // The follow ends when the unit goes away.
    assert_eq!(code, 1);
    assert_eq!(err, "initctl: no unit web\n");
}

/// A follow has no clean end: init closing it (its reader fell behind
/// for 5 s, or init re-executed then) cut it, and output is lost. Said,
/// and exit 1. (It was exit 0 and nothing said: a script could not tell.)
#[test]
fn a_follow_init_ends_is_not_a_success() {
    use std::io::Read;
    let dir = TempDir::new("ctl-follow-cut");
    let path = dir.join("control");
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let init = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let _ = s.read(&mut [0u8; 64]);
        let mut out = [0u8; 128];
        let one = crate::proto::Reply::Log {
            missed: 0,
            data: b"one\n",
        };
        let n = crate::proto::encode_reply(&one, &mut out).unwrap();
        s.write_all(&out[..n]).unwrap();
        // Closed, as `Server` closes a follower that fell behind.
    });
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = run(&argv(&["log", "web", "-f"]), &path, &mut o, &mut e);
    init.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&o), "one\n");
    assert_eq!(code, 1);
    assert_eq!(
        String::from_utf8_lossy(&e),
        "initctl: web: init ended the follow\n"
    );
}

/// Valid when it holds an `exec` line and no `bogus`.
fn fake_check(p: &Path, w: &mut dyn crate::ctl::out::Out) -> bool {
    let t = std::fs::read_to_string(p).unwrap();
    let ok = t.contains("exec = /") && !t.contains("bogus");
    if !ok {
        let _ = writeln!(w, "{}:1: bad", p.display());
    }
    ok
}

fn edit_env<'a>(dir: &'a Path, editor: &'a str) -> EditEnv<'a> {
    EditEnv {
        dir,
        tmp: dir,
        editor,
        check: &fake_check,
    }
}

/// The working copy goes to `$TMPDIR`; without it to /tmp, or to /run
/// (PID 1's tmpfs) when /tmp cannot be written (a read-only root under
/// `wren.rescue`, no /tmp mounted): the operator can still edit.
#[test]
fn edit_works_where_it_can_write() {
    let d = TempDir::new("ctl-edit-where");
    let run = d.join("run");
    let gone = d.join("no-tmp");
    assert_eq!(work_dir(None, d.path(), &run), d.path());
    assert_eq!(work_dir(None, &gone, &run), run);
    assert_eq!(work_dir(Some("".into()), &gone, &run), run);
    assert_eq!(work_dir(Some("/x".into()), &gone, &run), Path::new("/x"));
}

#[test]
fn edit_installs_a_valid_change() {
    let d = TempDir::new("ctl-edit-ok");
    let unit = d.join("web.unit");
    std::fs::write(&unit, "exec = /bin/old\n").unwrap();
    let env = edit_env(d.path(), "sed -i s/old/new/");
    let mut err = Vec::new();
    let r = edit_unit("web", &env, &mut &b""[..], &mut err);
    assert_eq!(r, Ok(Edited::Installed));
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), "exec = /bin/new\n");
    // Only the unit file is left: no staging file, no working copy.
    let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
}

/// A staging file an edit left (killed, or a power cut, between its write
/// and its rename) goes with the next edit of the unit; one of an edit
/// still going (its process alive) stays, and so do other units'.
#[test]
fn edit_sweeps_what_a_dead_edit_left() {
    let d = TempDir::new("ctl-edit-sweep");
    std::fs::write(d.join("web.unit"), "exec = /bin/old\n").unwrap();
    let dead = std::process::Command::new("/bin/true").spawn().unwrap();
    let dead_pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let stale = d.join(format!(".web.unit.new.{dead_pid}-1-0"));
    let live = d.join(".web.unit.new.1-1-0");
    let other = d.join(format!(".db.unit.new.{dead_pid}-1-0"));
    for f in [&stale, &live, &other] {
        std::fs::write(f, "exec = /bin/x\n").unwrap();
    }
    let env = edit_env(d.path(), "sed -i s/old/new/");
    let r = edit_unit("web", &env, &mut &b""[..], &mut Vec::new());
    assert_eq!(r, Ok(Edited::Installed));
    assert!(!stale.exists(), "a dead edit's staging file stays");
    assert!(live.exists(), "a live edit's staging file went");
    assert!(other.exists(), "another unit's staging file went");
}

#[test]
fn edit_without_change_installs_nothing() {
    let d = TempDir::new("ctl-edit-same");
    let env = edit_env(d.path(), "true");
    let r = edit_unit("fresh", &env, &mut &b""[..], &mut Vec::new());
    assert_eq!(r, Ok(Edited::Unchanged));
    assert!(!d.join("fresh.unit").exists());
}

/// An editor that writes `first` (a shell command's output) the first
/// time it runs, `exec = /bin/db2` after.
fn two_step_editor(d: &TempDir, first: &str) -> String {
    let script = d.join("ed.sh");
    std::fs::write(
        &script,
        format!(
            "c=\"$1.count\"; n=$(cat \"$c\" 2>/dev/null || echo 0); \
             echo $((n+1)) > \"$c\"; \
             if [ \"$n\" = 0 ]; then {first} > \"$1\"; \
             else echo 'exec = /bin/db2' > \"$1\"; fi\n"
        ),
    )
    .unwrap();
    format!("sh {}", script.display())
}

/// No working directory of `initctl edit` is left in `d`.
fn no_working_copy(d: &TempDir) {
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("wren-edit-"))
        .collect();
    assert!(left.is_empty(), "working copy left: {left:?}");
}

#[test]
fn edit_reopens_an_invalid_copy_until_valid_or_declined() {
    let d = TempDir::new("ctl-edit-again");
    let unit = d.join("db.unit");
    std::fs::write(&unit, "exec = /bin/db\n").unwrap();
    // First run breaks the file, the second fixes it.
    let editor = two_step_editor(&d, "echo bogus");
    let env = edit_env(d.path(), &editor);
    let mut err = Vec::new();
    let r = edit_unit("db", &env, &mut &b"\n"[..], &mut err);
    assert_eq!(r, Ok(Edited::Installed));
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), "exec = /bin/db2\n");
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("db.unit:1: bad"), "{err}");
    assert!(err.contains("db.unit is invalid. Edit again? [Y/n]"));

    // Declined: the installed file is left as it was.
    let env = edit_env(d.path(), "sh -c 'echo bogus > \"$0\"'");
    let r = edit_unit("db", &env, &mut &b"n\n"[..], &mut Vec::new());
    assert_eq!(r, Ok(Edited::Aborted));
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), "exec = /bin/db2\n");
    // End of input counts as no.
    let r = edit_unit("db", &env, &mut &b""[..], &mut Vec::new());
    assert_eq!(r, Ok(Edited::Aborted));
}

#[test]
fn failing_editor_aborts() {
    let d = TempDir::new("ctl-edit-fail");
    let env = edit_env(d.path(), "false");
    let r = edit_unit("x", &env, &mut &b""[..], &mut Vec::new());
    assert!(r.unwrap_err().contains("editor 'false' failed"));
}

#[test]
fn reexec_waits_for_the_new_init_and_reports_a_refusal() {
    let mut fake = Fake::with(&["web"]);
    fake.info.version = crate::proto::truncated("0.1.0");
    fake.info.path = crate::proto::truncated("/sbin/init");
    fake.info.state_format = 1;
    let (code, out, err) = drive("ctl-e2e-reexec", &mut fake, &["reexec"], |_, _| {});
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "init: wren 0.1.0 /sbin/init, state format 1, re-exec 1 took 1 units\n"
    );
    assert_eq!(fake.reexecs, [""]);
    fake.reexec_refusal = Some(CtlError::new(
        ErrCode::Refused,
        "/bin/true refused: not a wren; init keeps running",
    ));
    let (code, out, err) = drive(
        "ctl-e2e-reexec2",
        &mut fake,
        &["reexec", "/bin/true"],
        |_, _| {},
    );
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "initctl: /bin/true refused: not a wren; init keeps running\n"
    );
    assert_eq!(fake.info.reexecs, 1);
    let (code, _, err) = drive("ctl-e2e-reexec3", &mut fake, &["reexec", "rel"], |_, _| {});
    assert_eq!(code, 2, "{err}");
}

/// The installed file keeps the mode of the file it replaces (a 0600 unit
/// holding secrets in `env` stays 0600), a new unit is 0644, and two edits
/// at once never share a staging name.
#[test]
fn edit_keeps_the_mode_and_stages_under_a_unique_name() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new("ctl-edit-mode");
    let unit = d.join("secret.unit");
    std::fs::write(&unit, "exec = /bin/old\nenv = TOKEN=x\n").unwrap();
    std::fs::set_permissions(&unit, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = edit_env(d.path(), "sed -i s/old/new/");
    let r = edit_unit("secret", &env, &mut &b""[..], &mut Vec::new());
    assert_eq!(r, Ok(Edited::Installed));
    let meta = std::fs::metadata(&unit).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert!(std::fs::read_to_string(&unit).unwrap().contains("/bin/new"));

    let env = edit_env(d.path(), "sh -c 'echo \"exec = /bin/x\" > \"$0\"'");
    let r = edit_unit("fresh", &env, &mut &b""[..], &mut Vec::new());
    assert_eq!(r, Ok(Edited::Installed));
    let meta = std::fs::metadata(d.join("fresh.unit")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
    // Only the unit files are left.
    let mut left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["fresh.unit", "secret.unit"]);
}

/// Output that cannot be written (a full disk under `initctl metrics >
/// file`) is a failure, exit 1; a reader that went away (`| head`) is not.
#[test]
fn output_that_cannot_be_written_fails() {
    // As the output's writes fail: with the errno.
    struct Refuses(rustix::io::Errno);
    impl std::io::Write for Refuses {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let socket = Path::new("/nonexistent/wren/control");
    let mut e = Vec::new();
    let full = rustix::io::Errno::NOSPC;
    let code = run(&argv(&["help"]), socket, &mut Refuses(full), &mut e);
    let e = String::from_utf8(e).unwrap();
    assert_eq!(code, 1, "{e}");
    assert!(e.starts_with("initctl: cannot write the output: "), "{e}");
    let mut e = Vec::new();
    let gone = rustix::io::Errno::PIPE;
    assert_eq!(run(&argv(&["help"]), socket, &mut Refuses(gone), &mut e), 0);
    assert!(e.is_empty());
}

/// Ctrl-C, Ctrl-\ or a hang-up while the editor runs reach the editor
/// (which gets their default actions), not `initctl`, which then removes
/// the working copy. Run in a child of the harness (`edit_signals_child`):
/// without that, the signals would end the whole test binary.
#[test]
fn edit_survives_the_editor_s_signals_and_cleans_up() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ctl::tests::edit_signals_child",
            "ctl::tests::edit_signals_at_the_question_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WREN_EDIT_SIGNALS_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}\n{stdout}", out.status);
    assert!(stdout.contains("EDIT-SIGNALS-OK"), "{stdout}");
    assert!(stdout.contains("EDIT-QUESTION-OK"), "{stdout}");
}

/// Only does something when started by the test above.
#[test]
fn edit_signals_child() {
    if std::env::var_os("WREN_EDIT_SIGNALS_CHILD").is_none() {
        return;
    }
    let d = TempDir::new("ctl-edit-signals");
    let unit = d.join("web.unit");
    std::fs::write(&unit, "exec = /bin/old\n").unwrap();
    let seen = d.join("sigign");
    // The editor's own dispositions, then the three signals to initctl
    // (its parent is `initctl`: this process), as a terminal would send
    // them to the whole foreground group.
    let script = format!(
        "grep SigIgn /proc/$$/status > {}; kill -INT $PPID; kill -QUIT $PPID; kill -HUP $PPID; sleep 0.2; exit 130",
        seen.display()
    );
    let env = edit_env(d.path(), &script);
    let r = edit_unit("web", &env, &mut &b""[..], &mut Vec::new());
    assert!(matches!(r, Err(ref e) if e.contains("failed")), "{r:?}");
    let ign = std::fs::read_to_string(&seen).unwrap();
    let mask = u64::from_str_radix(ign.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
    assert_eq!(
        mask & 0b111,
        0,
        "the editor has HUP, INT or QUIT ignored: {ign}"
    );
    no_working_copy(&d);
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), "exec = /bin/old\n");
    println!("EDIT-SIGNALS-OK");
}

/// Only does something when started by the test above, after its own
/// part: the same signals at the question after an invalid copy (the
/// serial line hung up, Ctrl-C) do not end the process before it removed
/// the working copy; the question reads as declined.
#[test]
fn edit_signals_at_the_question_child() {
    if std::env::var_os("WREN_EDIT_SIGNALS_CHILD").is_none() {
        return;
    }
    struct Raising;
    impl std::io::Read for Raising {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            use nix::sys::signal::{raise, Signal};
            for sig in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGHUP] {
                raise(sig).unwrap();
            }
            Ok(0)
        }
    }
    let d = TempDir::new("ctl-edit-question");
    std::fs::write(d.join("web.unit"), "exec = /bin/old\n").unwrap();
    let env = edit_env(d.path(), "sh -c 'echo bogus > \"$0\"'");
    let mut input = std::io::BufReader::new(Raising);
    let r = edit_unit("web", &env, &mut input, &mut Vec::new());
    assert_eq!(r, Ok(Edited::Aborted));
    no_working_copy(&d);
    println!("EDIT-QUESTION-OK");
}

/// A copy saved as text that is not UTF-8 is an invalid unit: the user is
/// asked to edit it again, not told "stream did not contain valid UTF-8"
/// with the work thrown away.
#[test]
fn edit_offers_to_fix_a_copy_that_is_not_utf8() {
    let d = TempDir::new("ctl-edit-utf8");
    let unit = d.join("db.unit");
    std::fs::write(&unit, "exec = /bin/db\n").unwrap();
    let editor = two_step_editor(&d, "printf 'exec = /bin/caf\\351\\n'");
    let env = edit_env(d.path(), &editor);
    let mut err = Vec::new();
    let r = edit_unit("db", &env, &mut &b"\n"[..], &mut err);
    let err = String::from_utf8(err).unwrap();
    assert_eq!(r, Ok(Edited::Installed), "{err}");
    assert!(err.contains("db.unit: not UTF-8 text"), "{err}");
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), "exec = /bin/db2\n");
}

/// PID 1 reports `web.unit:2: not valid UTF-8`; `initctl edit web` is the
/// way to fix it: it opens the file as it is (it refused: "invalid data").
#[test]
fn edit_opens_a_unit_file_that_is_not_utf8() {
    let d = TempDir::new("edit-not-utf8");
    std::fs::write(d.join("web.unit"), b"exec = /bin/old\n# caf\xe9\n").unwrap();
    let env = edit_env(d.path(), "sh -c 'echo \"exec = /bin/new\" > \"$0\"'");
    let r = edit_unit("web", &env, &mut &b""[..], &mut Vec::new());
    assert_eq!(r, Ok(Edited::Installed));
    assert_eq!(
        std::fs::read_to_string(d.join("web.unit")).unwrap(),
        "exec = /bin/new\n"
    );
    // Left as it was, bytes and all: unchanged, nothing installed.
    std::fs::write(d.join("db.unit"), b"exec = /bin/db\n# caf\xe9\n").unwrap();
    let env = edit_env(d.path(), "true");
    let r = edit_unit("db", &env, &mut &b""[..], &mut Vec::new());
    assert_eq!(r, Ok(Edited::Unchanged));
}

/// After `initctl reexec`, the new PID 1 is told from the old by one more
/// re-exec counted, or, when it could not read the state (the count with
/// it), by how it began; that one's line says the state was unreadable
/// rather than naming a format 0.
#[test]
fn a_reexec_that_could_not_read_the_state_came_back_all_the_same() {
    use crate::proto::{InitInfo, Origin};
    let old = InitInfo {
        reexecs: 2,
        origin: Origin::HandedOver { units: 3 },
        ..InitInfo::default()
    };
    assert!(!client::came_back(&old, &old.clone()));
    let taken = InitInfo {
        reexecs: 3,
        ..old.clone()
    };
    assert!(client::came_back(&old, &taken));
    let unreadable = InitInfo {
        reexecs: 0,
        origin: Origin::Adopted {
            units: 3,
            format: 0,
        },
        ..old.clone()
    };
    assert!(client::came_back(&old, &unreadable));
    let from_boot = InitInfo::default();
    assert!(client::came_back(&from_boot, &unreadable));
    let line = super::output::init_line(&unreadable);
    assert!(
        line.ends_with(", state format 0, adopted 3 (state unreadable)"),
        "{line}"
    );
    let other = InitInfo {
        origin: Origin::Adopted {
            units: 3,
            format: 9,
        },
        ..taken
    };
    let line = super::output::init_line(&other);
    assert!(line.ends_with(", re-exec 3 adopted 3 (format 9)"), "{line}");
    // A long path: the line is cut to 80 columns, the cut marked.
    let long = InitInfo {
        path: crate::proto::truncated(&format!("/{}/init", "é".repeat(60))),
        ..other
    };
    let line = super::output::init_line(&long);
    assert_eq!(line.chars().count(), 80, "{line}");
    assert!(
        line.starts_with("init: wren ") && line.ends_with('~'),
        "{line}"
    );
}

/// A unit file that is a link (units.md allows one): edited where it
/// leads, and still a link after (it was renamed over, a file of its
/// own that hid every later change made where it had led).
#[test]
fn edit_keeps_a_linked_unit_file_a_link() {
    let d = TempDir::new("edit-link");
    let store = d.join("store");
    std::fs::create_dir(&store).unwrap();
    let target = store.join("web.unit");
    std::fs::write(&target, "exec = /bin/old\n").unwrap();
    let units = d.join("units");
    std::fs::create_dir(&units).unwrap();
    std::os::unix::fs::symlink("../store/web.unit", units.join("web.unit")).unwrap();
    let env = edit_env(&units, "sed -i s/old/new/");
    let r = edit_unit("web", &env, &mut &b""[..], &mut Vec::new());
    assert_eq!(r, Ok(Edited::Installed));
    let link = std::fs::symlink_metadata(units.join("web.unit")).unwrap();
    assert!(link.file_type().is_symlink(), "the link replaced by a file");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "exec = /bin/new\n"
    );
}

/// A FIFO named NAME.unit (a stray one cannot hold up a boot or a
/// reload) is refused at once, not opened: `edit` waited in its open for
/// a writer for ever.
#[test]
fn edit_of_a_fifo_is_refused_at_once() {
    let d = TempDir::new("edit-fifo");
    let units = d.join("units");
    std::fs::create_dir(&units).unwrap();
    let fifo = units.join("web.unit");
    crate::testutil::fifo(&fifo);
    let u = units.clone();
    let h = std::thread::spawn(move || {
        edit_unit("web", &edit_env(&u, "true"), &mut &b""[..], &mut Vec::new())
    });
    let t0 = std::time::Instant::now();
    while !h.is_finished() && t0.elapsed() < std::time::Duration::from_secs(2) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if !h.is_finished() {
        // Let it go: a writer opens and closes the FIFO.
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
    }
    let r = h.join().unwrap();
    let e = r.unwrap_err();
    assert!(e.ends_with("web.unit: not a regular file"), "{e}");
}

/// A unit file linked into a place that cannot be written (a read-only
/// file system) is refused before the editor runs: the edit was made,
/// then refused at its install, and lost with the working copy. A chain
/// of links the kernel follows (here 10) is followed. Alone, in a mount
/// namespace with a read-only tmpfs at /mnt.
#[test]
fn edit_through_a_link_into_a_read_only_place_is_refused_before_the_editor() {
    let ro = "mount -t tmpfs -o ro none /mnt";
    crate::testutil::alone_after_mounting!(
        edit_through_a_link_into_a_read_only_place_is_refused_before_the_editor,
        ro
    );
    let d = TempDir::new("edit-ro");
    let units = d.join("units");
    std::fs::create_dir(&units).unwrap();
    std::os::unix::fs::symlink("/mnt/web.unit", units.join("web.unit")).unwrap();
    let ran = d.join("ran");
    let editor = format!("touch {}", ran.display());
    let r = edit_unit(
        "web",
        &edit_env(&units, &editor),
        &mut &b""[..],
        &mut Vec::new(),
    );
    let e = r.unwrap_err();
    assert!(e.starts_with("/mnt: "), "{e}");
    assert!(!ran.exists(), "the editor ran");
    // Ten links to a file that can be written: followed, installed there.
    let target = d.join("real.unit");
    std::fs::write(&target, "exec = /bin/old\n").unwrap();
    let mut to = target.clone();
    for i in 0..10 {
        let link = d.join(format!("l{i}"));
        std::os::unix::fs::symlink(&to, &link).unwrap();
        to = link;
    }
    std::os::unix::fs::symlink(&to, units.join("db.unit")).unwrap();
    let env = edit_env(&units, "sed -i s/old/new/");
    assert_eq!(
        edit_unit("db", &env, &mut &b""[..], &mut Vec::new()),
        Ok(Edited::Installed)
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "exec = /bin/new\n"
    );
}

/// A checked edit the disk refused at its install (full: an SD card
/// filled by logs; no access check sees that before the editor) is
/// kept, and the error says where: it was lost with the working copy.
/// Alone, in a mount namespace with a 64 KiB tmpfs at /mnt.
#[test]
fn an_edit_a_full_disk_refused_is_kept() {
    let small = "mount -t tmpfs -o size=64k none /mnt";
    crate::testutil::alone_after_mounting!(an_edit_a_full_disk_refused_is_kept, small);
    let units = Path::new("/mnt");
    std::fs::write(units.join("web.unit"), "exec = /bin/old\n").unwrap();
    crate::testutil::fill_small_tmpfs(units);
    let work = TempDir::new("edit-full");
    let env = EditEnv {
        dir: units,
        tmp: work.path(),
        editor: "sed -i s/old/new/",
        check: &fake_check,
    };
    let e = edit_unit("web", &env, &mut &b""[..], &mut Vec::new()).unwrap_err();
    assert!(e.starts_with("installing /mnt/web.unit: "), "{e}");
    let (_, kept) = e.split_once("; the edit is kept in ").unwrap();
    assert!(kept.starts_with(work.path().to_str().unwrap()), "{e}");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "exec = /bin/new\n");
    assert_eq!(
        std::fs::read_to_string(units.join("web.unit")).unwrap(),
        "exec = /bin/old\n"
    );
}
