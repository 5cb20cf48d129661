//! The server against real sockets, with `fake` as PID 1's loop.

use super::fake::Fake;
use super::*;
use crate::log_ring::LOG_RING_BYTES;
use crate::proto::{decode_reply, encode_request, LastExit};
use crate::proto::{FrameDecoder, Request, FRAME_BUF, PROTO_VERSION, TAIL_LINES, TEXT_MAX};
use crate::testutil::TempDir;
use crate::vocab::ShutdownKind;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

const ROOT: u32 = 0;

fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

struct Rig {
    _dir: TempDir,
    path: PathBuf,
    server: Server,
    fake: Fake,
    now: u64,
}

impl Rig {
    fn new(tag: &str) -> Rig {
        let dir = TempDir::new(tag);
        let path = dir.join("run").join("control");
        let server = Server::bind(&path, uid()).unwrap();
        Rig {
            _dir: dir,
            path,
            server,
            fake: Fake::with(&["web", "db"]),
            now: 1_000,
        }
    }

    /// A client waiting for `start NAME`, served.
    fn start(&mut self, name: &str) -> UnixStream {
        let mut s = self.connect();
        send(&mut s, &Request::Start { name });
        self.pump();
        s
    }

    /// A `log -f` client of unit `name`, its request sent.
    fn follow(&self, name: &str) -> UnixStream {
        let mut s = self.connect();
        send(&mut s, &Request::Log { name, follow: true });
        s
    }

    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.path).unwrap();
        s.set_nonblocking(true).unwrap();
        s
    }

    fn pump(&mut self) {
        for _ in 0..4 {
            self.server.on_ready(self.now, &mut self.fake);
            self.server.poll_waiters(self.now, &mut self.fake);
        }
    }

    /// Pumps until no client is left, for at most 5 s: a child another test
    /// forks holds a copy of our socket until its exec, so a hang-up can
    /// reach the server a moment after the drop.
    fn pump_until_no_clients(&mut self) {
        let start = std::time::Instant::now();
        loop {
            self.pump();
            if self.server.clients() == 0 || start.elapsed().as_secs() >= 5 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Sends `req`, runs the server, returns the replies and whether
    /// the server closed.
    fn ask(&mut self, req: Request<'_>) -> (Vec<Vec<u8>>, bool) {
        let mut s = self.connect();
        send(&mut s, &req);
        self.pump();
        collect(&mut s)
    }

    /// `ask` for a request the server answers and then closes on.
    fn ask_closed(&mut self, req: Request<'_>) -> (Vec<Vec<u8>>, bool) {
        let mut s = self.connect();
        send(&mut s, &req);
        self.pump();
        collect_closed(&mut s)
    }
}

fn send(s: &mut UnixStream, req: &Request<'_>) {
    let mut buf = [0u8; 256];
    let n = encode_request(req, &mut buf).unwrap();
    s.write_all(&buf[..n]).unwrap();
}

/// Every whole frame available now, and whether the peer closed.
fn collect(s: &mut UnixStream) -> (Vec<Vec<u8>>, bool) {
    collect_within(s, false)
}

/// Every frame until the server closes, for at most 5 s: a child another
/// test forks holds a copy of the server's end until its exec, so the end
/// of a connection the server closed can come a moment later.
fn collect_closed(s: &mut UnixStream) -> (Vec<Vec<u8>>, bool) {
    collect_within(s, true)
}

fn collect_within(s: &mut UnixStream, until_closed: bool) -> (Vec<Vec<u8>>, bool) {
    let start = std::time::Instant::now();
    let mut dec = Box::new(FrameDecoder::<FRAME_BUF>::new());
    let mut frames = Vec::new();
    let mut eof = false;
    loop {
        match s.read(dec.spare()) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => dec.advance(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !until_closed || start.elapsed().as_secs() >= 5 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // The server closed with our bytes unread: a reset.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                eof = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
        while let Some(p) = dec.frame().unwrap() {
            frames.push(p.to_vec());
            dec.consume();
        }
    }
    assert_eq!(dec.buffered(), 0, "partial frame left");
    (frames, eof)
}

fn one(frames: &[Vec<u8>]) -> Reply<'_> {
    assert_eq!(frames.len(), 1, "expected one reply");
    decode_reply(&frames[0]).unwrap()
}

/// The server told the client `ErrCode::Busy` and closed.
fn told_busy(s: &mut UnixStream) {
    let (frames, eof) = collect_closed(s);
    assert_eq!(err_code(&frames), ErrCode::Busy);
    assert!(eof);
}

fn err_code(frames: &[Vec<u8>]) -> ErrCode {
    match one(frames) {
        Reply::Error(e) => e.code,
        other => panic!("not an error: {other:?}"),
    }
}

#[test]
fn socket_and_directory_are_private() {
    let rig = Rig::new("ctl-perm");
    let dir_mode = std::fs::metadata(rig.path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    let sock_mode = std::fs::metadata(&rig.path).unwrap().permissions().mode();
    assert_eq!(sock_mode & 0o777, 0o600);
    // Binding again replaces the stale socket.
    drop(rig.server);
    assert!(Server::bind(&rig.path, uid()).is_ok());
    // But never a file that is not a socket.
    let f = rig.path.with_file_name("plain");
    std::fs::write(&f, b"x").unwrap();
    assert!(matches!(
        Server::bind(&f, uid()),
        Err(ServerError::NotSocket(_))
    ));
}

#[test]
fn status_lists_every_unit_and_closes() {
    let mut rig = Rig::new("ctl-status");
    let (frames, eof) = rig.ask_closed(Request::Status {
        name: None,
        from: 0,
    });
    match one(&frames) {
        Reply::Status { units: v, .. } => {
            let names: Vec<&str> = v.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["web", "db"]);
            assert_eq!(v[1].pid, 101);
        }
        other => panic!("{other:?}"),
    }
    assert!(eof);
    assert_eq!(rig.server.clients(), 0);
}

#[test]
fn status_of_one_unit_carries_the_log_tail() {
    let mut rig = Rig::new("ctl-detail");
    let mut text = String::new();
    for i in 0..30 {
        text.push_str(&format!("line {i}\n"));
    }
    rig.fake.unit("db").log.push(text.as_bytes());
    let (frames, _) = rig.ask(Request::Status {
        name: Some("db"),
        from: 0,
    });
    match one(&frames) {
        Reply::Detail { detail, log } => {
            assert_eq!(detail.status.name, "db");
            assert_eq!(detail.last_exit, LastExit::Code(3));
            let log = std::str::from_utf8(log).unwrap();
            assert_eq!(log.lines().count(), TAIL_LINES);
            assert!(log.starts_with("line 20\n") && log.ends_with("line 29\n"));
        }
        other => panic!("{other:?}"),
    }
    let (frames, _) = rig.ask(Request::Status {
        name: Some("nope"),
        from: 0,
    });
    assert_eq!(err_code(&frames), ErrCode::NoSuchUnit);
}

/// A unit whose last lines are longer than a frame: `status NAME` still
/// answers, with as much of their end as fits beside the detail.
#[test]
fn status_of_one_unit_with_long_lines_fits_a_frame() {
    let mut rig = Rig::new("ctl-detail-long");
    let u = rig.fake.unit("db");
    *u.log = crate::log_ring::LogRing::with_capacity(64 * 1024);
    let mut text = "y".repeat(20_000);
    text.push('\n');
    u.log.push(text.as_bytes());
    let (frames, _) = rig.ask(Request::Status {
        name: Some("db"),
        from: 0,
    });
    match one(&frames) {
        Reply::Detail { detail, log } => {
            assert_eq!(detail.status.name, "db");
            assert_eq!(log.len(), crate::proto::DETAIL_TAIL_MAX);
            assert!(log.ends_with(b"yyy\n"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_gets_an_error_and_the_connection_closed() {
    let mut rig = Rig::new("ctl-garbage");
    let mut s = rig.connect();
    // A good version, then bytes that are no request.
    s.write_all(&[5, 0, 0, 0, PROTO_VERSION as u8, 0xee, 0xee, 0xee, 0xee])
        .unwrap();
    rig.pump();
    let (frames, eof) = collect_closed(&mut s);
    assert_eq!(err_code(&frames), ErrCode::BadRequest);
    assert!(eof);
    assert_eq!(rig.server.clients(), 0);
    // The server still serves the next one.
    let (frames, _) = rig.ask(Request::Status {
        name: None,
        from: 0,
    });
    assert!(matches!(one(&frames), Reply::Status { .. }));
}

#[test]
fn four_gib_prefix_is_refused_without_waiting_for_the_body() {
    let mut rig = Rig::new("ctl-huge");
    let mut s = rig.connect();
    s.write_all(&u32::MAX.to_le_bytes()).unwrap();
    rig.pump();
    let (frames, eof) = collect_closed(&mut s);
    assert_eq!(err_code(&frames), ErrCode::BadRequest);
    assert!(eof);
}

#[test]
fn truncated_frame_then_half_close_gets_an_error() {
    let mut rig = Rig::new("ctl-trunc");
    let mut s = rig.connect();
    let mut buf = [0u8; 64];
    let n = encode_request(&Request::Start { name: "web" }, &mut buf).unwrap();
    s.write_all(&buf[..n - 2]).unwrap();
    rig.pump();
    // Nothing yet: the frame is incomplete.
    assert_eq!(collect(&mut s), (vec![], false));
    s.shutdown(std::net::Shutdown::Write).unwrap();
    rig.pump();
    let (frames, eof) = collect_closed(&mut s);
    assert_eq!(err_code(&frames), ErrCode::BadRequest);
    assert!(eof);
    assert!(rig.fake.actions.is_empty());
    assert_eq!(rig.server.clients(), 0);
}

#[test]
fn truncated_frame_then_full_close_frees_the_slot() {
    let mut rig = Rig::new("ctl-trunc2");
    let mut s = rig.connect();
    s.write_all(&[9, 0, 0, 0, 1]).unwrap();
    rig.pump();
    assert_eq!(rig.server.clients(), 1);
    drop(s);
    rig.pump_until_no_clients();
    assert_eq!(rig.server.clients(), 0);
    assert_eq!(rig.server.next_deadline(), None);
}

#[test]
fn other_protocol_version_is_told_so() {
    let mut rig = Rig::new("ctl-version");
    let mut s = rig.connect();
    let mut body = [0u8; 16];
    let p = postcard::to_slice(&(PROTO_VERSION + 7, Request::Reload), &mut body).unwrap();
    let mut frame = (p.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(p);
    s.write_all(&frame).unwrap();
    rig.pump();
    let (frames, _) = collect(&mut s);
    match one(&frames) {
        Reply::Error(e) => {
            assert_eq!(e.code, ErrCode::Version);
            assert!(e.message.contains(&format!("{}", PROTO_VERSION + 7)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn silent_client_is_dropped_while_another_is_served() {
    let mut rig = Rig::new("ctl-silent");
    let mut silent = rig.connect();
    // Half a prefix, then nothing.
    silent.write_all(&[3, 0]).unwrap();
    rig.pump();
    assert_eq!(rig.server.next_deadline(), Some(1_000 + CLIENT_TIMEOUT_MS));
    rig.now += 1_000;
    let (frames, eof) = rig.ask_closed(Request::Status {
        name: None,
        from: 0,
    });
    assert!(matches!(one(&frames), Reply::Status { .. }));
    assert!(eof);
    assert_eq!(rig.server.clients(), 1);
    rig.now = 1_000 + CLIENT_TIMEOUT_MS - 1;
    rig.server.on_timer(rig.now);
    assert_eq!(rig.server.clients(), 1);
    rig.now += 1;
    rig.server.on_timer(rig.now);
    assert_eq!(rig.server.clients(), 0);
    assert_eq!(collect_closed(&mut silent), (vec![], true));
    assert_eq!(rig.server.next_deadline(), None);
}

#[test]
fn connections_beyond_the_table_are_refused_at_once() {
    let mut rig = Rig::new("ctl-full");
    let held: Vec<UnixStream> = (0..MAX_CLIENTS).map(|_| rig.connect()).collect();
    rig.pump();
    assert_eq!(rig.server.clients(), MAX_CLIENTS);
    let mut extra = rig.connect();
    rig.pump();
    told_busy(&mut extra);
    assert_eq!(rig.server.clients(), MAX_CLIENTS);
    // A freed slot is usable again.
    drop(held);
    rig.pump_until_no_clients();
    assert_eq!(rig.server.clients(), 0);
    let (frames, _) = rig.ask(Request::Status {
        name: None,
        from: 0,
    });
    assert!(matches!(one(&frames), Reply::Status { .. }));
}

#[test]
fn other_users_are_refused() {
    let dir = TempDir::new("ctl-uid");
    let path = dir.join("control");
    // Tests run as root; allow only someone else.
    let other = if uid() == ROOT { 4242 } else { ROOT };
    let mut server = Server::bind(&path, other).unwrap();
    let mut fake = Fake::with(&["web"]);
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_nonblocking(true).unwrap();
    send(&mut s, &Request::Shutdown(ShutdownKind::Reboot));
    server.on_ready(0, &mut fake);
    let (frames, eof) = collect_closed(&mut s);
    assert_eq!(err_code(&frames), ErrCode::Denied);
    assert!(eof);
    assert!(fake.shutdowns.is_empty());
    assert_eq!(server.clients(), 0);
}

#[test]
fn start_reply_waits_until_the_unit_settles() {
    let mut rig = Rig::new("ctl-start");
    let mut s = rig.connect();
    send(&mut s, &Request::Start { name: "web" });
    rig.pump();
    assert_eq!(rig.fake.actions, ["start web"]);
    assert_eq!(collect(&mut s), (vec![], false));
    // Waiting clients have no deadline: the client times out itself.
    assert_eq!(rig.server.next_deadline(), None);
    rig.now += 60_000;
    rig.pump();
    assert_eq!(collect(&mut s), (vec![], false));
    rig.fake.settle = Some(Ok(()));
    rig.server.poll_waiters(rig.now, &mut rig.fake);
    let (frames, eof) = collect_closed(&mut s);
    assert_eq!(one(&frames), Reply::Ok);
    assert!(eof);
}

#[test]
fn failed_start_and_unknown_units_are_errors() {
    let mut rig = Rig::new("ctl-startfail");
    let mut s = rig.connect();
    send(&mut s, &Request::Restart { name: "db" });
    rig.pump();
    rig.fake.settle = Some(Err(CtlError::new(ErrCode::Failed, "db failed: exit 1")));
    rig.server.poll_waiters(rig.now, &mut rig.fake);
    let (frames, _) = collect(&mut s);
    assert_eq!(err_code(&frames), ErrCode::Failed);
    let (frames, _) = rig.ask(Request::Stop { name: "nope" });
    assert_eq!(err_code(&frames), ErrCode::NoSuchUnit);
    let long = "x".repeat(40);
    let (frames, _) = rig.ask(Request::Stop { name: &long });
    assert_eq!(err_code(&frames), ErrCode::NoSuchUnit);
    assert_eq!(rig.fake.actions, ["restart db"]);
}

#[test]
fn already_settled_action_replies_at_once() {
    let mut rig = Rig::new("ctl-settled");
    rig.fake.settle = Some(Ok(()));
    let mut s = rig.connect();
    send(&mut s, &Request::Stop { name: "db" });
    rig.server.on_ready(rig.now, &mut rig.fake);
    let (frames, eof) = collect_closed(&mut s);
    assert_eq!(one(&frames), Reply::Ok);
    assert!(eof);
}

#[test]
fn waiter_that_hangs_up_frees_its_slot() {
    let mut rig = Rig::new("ctl-hangup");
    let mut s = rig.connect();
    send(&mut s, &Request::Start { name: "web" });
    rig.pump();
    assert_eq!(rig.server.clients(), 1);
    drop(s);
    rig.pump_until_no_clients();
    assert_eq!(rig.server.clients(), 0);
}

#[test]
fn shutdown_is_acknowledged_then_done() {
    let mut rig = Rig::new("ctl-shutdown");
    let (frames, _) = rig.ask(Request::Shutdown(ShutdownKind::Poweroff));
    assert_eq!(one(&frames), Reply::Ok);
    assert_eq!(rig.fake.shutdowns, [ShutdownKind::Poweroff]);
}

#[test]
fn log_sends_the_ring_and_closes() {
    let mut rig = Rig::new("ctl-log");
    rig.fake.unit("web").log.push(b"hello\nworld\n");
    let (frames, eof) = rig.ask_closed(Request::Log {
        name: "web",
        follow: false,
    });
    assert_eq!(
        one(&frames),
        Reply::Log {
            missed: 0,
            data: b"hello\nworld\n"
        }
    );
    assert!(eof);
    // Empty ring: nothing, then the close.
    assert_eq!(
        rig.ask(Request::Log {
            name: "db",
            follow: false
        }),
        (vec![], true)
    );
    rig.fake.unit("db").captured = false;
    let (frames, _) = rig.ask(Request::Log {
        name: "db",
        follow: false,
    });
    assert_eq!(err_code(&frames), ErrCode::NoLog);
}

#[test]
fn log_follow_is_fed_new_output_and_told_of_losses() {
    let mut rig = Rig::new("ctl-follow");
    rig.fake.unit("web").log.push(b"old\n");
    let mut s = rig.follow("web");
    rig.pump();
    let (frames, eof) = collect(&mut s);
    assert_eq!(
        one(&frames),
        Reply::Log {
            missed: 0,
            data: b"old\n"
        }
    );
    assert!(!eof);
    // No new output: nothing sent.
    rig.pump();
    assert_eq!(collect(&mut s), (vec![], false));
    rig.fake.unit("web").log.push(b"new\n");
    rig.server.poll_waiters(rig.now, &mut rig.fake);
    let (frames, _) = collect(&mut s);
    assert_eq!(
        one(&frames),
        Reply::Log {
            missed: 0,
            data: b"new\n"
        }
    );
    // More than the ring holds between two polls: the loss is told.
    let burst = vec![b'z'; LOG_RING_BYTES + 10];
    rig.fake.unit("web").log.push(&burst);
    rig.server.poll_waiters(rig.now, &mut rig.fake);
    let (frames, _) = collect(&mut s);
    match one(&frames) {
        Reply::Log { missed, data } => {
            assert_eq!(missed, 10);
            assert_eq!(data.len(), LOG_RING_BYTES);
        }
        other => panic!("{other:?}"),
    }
    // Followers have no deadline.
    rig.now += 10 * CLIENT_TIMEOUT_MS;
    rig.pump();
    assert_eq!(rig.server.clients(), 1);
    // The unit disappears: the follower is told and closed.
    rig.fake.units.retain(|u| u.status.name != "web");
    rig.server.poll_waiters(rig.now, &mut rig.fake);
    let (frames, eof) = collect_closed(&mut s);
    assert_eq!(err_code(&frames), ErrCode::NoSuchUnit);
    assert!(eof);
}

/// A follower of a quiet unit whose ring holds more than two chunks gets
/// the whole ring at once, not one chunk a wake-up of PID 1 (nothing
/// else woke it for the rest).
#[test]
fn a_quiet_unit_s_whole_ring_reaches_a_new_follower() {
    let mut rig = Rig::new("ctl-follow-big");
    let cap = 64 * 1024;
    *rig.fake.unit("web").log = crate::log_ring::LogRing::with_capacity(cap);
    let text: Vec<u8> = (0..cap).map(|i| b'a' + (i % 26) as u8).collect();
    rig.fake.unit("web").log.push(&text);
    let mut s = rig.follow("web");
    // One turn of the loop: the request is read and answered, then the
    // waiters are tended once.
    rig.server.on_ready(rig.now, &mut rig.fake);
    rig.server.on_ready(rig.now, &mut rig.fake);
    rig.server.poll_waiters(rig.now, &mut rig.fake);
    let (frames, _) = collect(&mut s);
    let mut got = Vec::new();
    for f in &frames {
        match decode_reply(f).unwrap() {
            Reply::Log { data, .. } => got.extend_from_slice(data),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got.len(), cap, "{} frames", frames.len());
    assert!(got == text);
}

#[test]
fn follower_that_does_not_read_is_resumed_without_blocking() {
    let mut rig = Rig::new("ctl-slow");
    let mut s = rig.follow("web");
    rig.pump();
    // Fill the socket: the server must neither block nor lose track.
    let mut total = 0u64;
    for i in 0..2_000u32 {
        let line = format!("{i:0>63}\n");
        rig.fake.unit("web").log.push(line.as_bytes());
        total += line.len() as u64;
        rig.server.poll_waiters(rig.now, &mut rig.fake);
    }
    // Read everything now, letting the server refill as room appears.
    let mut got = 0u64;
    let mut missed = 0u64;
    for _ in 0..200 {
        let (frames, eof) = collect(&mut s);
        assert!(!eof);
        for f in &frames {
            match decode_reply(f).unwrap() {
                Reply::Log { missed: m, data } => {
                    got += data.len() as u64;
                    missed += m;
                }
                other => panic!("{other:?}"),
            }
        }
        rig.pump();
    }
    assert_eq!(got + missed, total);
    assert!(got > 0);
}

#[test]
fn follower_that_stops_reading_is_dropped_after_the_timeout() {
    let mut rig = Rig::new("ctl-stall");
    let _s = rig.follow("web");
    rig.pump();
    // Output keeps coming and the client never reads: the socket fills.
    for i in 0..2_000u32 {
        rig.fake
            .unit("web")
            .log
            .push(format!("{i:0>63}\n").as_bytes());
        rig.server.poll_waiters(rig.now, &mut rig.fake);
    }
    assert_eq!(rig.server.clients(), 1);
    assert_eq!(
        rig.server.next_deadline(),
        Some(rig.now + CLIENT_TIMEOUT_MS)
    );
    rig.now += CLIENT_TIMEOUT_MS;
    rig.pump();
    rig.server.on_timer(rig.now);
    assert_eq!(
        rig.server.clients(),
        0,
        "the stalled follower keeps its slot"
    );
}

#[test]
fn cat_and_reload_carry_text() {
    let mut rig = Rig::new("ctl-cat");
    let (frames, _) = rig.ask(Request::Cat { name: "web" });
    assert_eq!(one(&frames), Reply::Cat("exec = /bin/web\n"));
    // Text larger than a frame is cut with a note, not dropped.
    rig.fake.cat_bytes = FRAME_BUF;
    let (frames, _) = rig.ask(Request::Cat { name: "web" });
    match one(&frames) {
        Reply::Cat(t) => {
            assert!(t.len() <= TEXT_MAX);
            assert!(t.ends_with("# (truncated)\n"));
        }
        other => panic!("{other:?}"),
    }
    rig.fake.reload_lines = vec!["a.unit:3: unknown key".into(), "started b".into()];
    rig.fake.reload_invalid = true;
    let (frames, _) = rig.ask(Request::Reload);
    match one(&frames) {
        Reply::Reload { result, report } => {
            assert_eq!(result.unwrap_err().code, ErrCode::Invalid);
            assert_eq!(report, "a.unit:3: unknown key\nstarted b");
        }
        other => panic!("{other:?}"),
    }
    rig.fake.reload_lines = (0..2_000).map(|i| format!("line {i}")).collect();
    rig.fake.reload_invalid = false;
    let (frames, _) = rig.ask(Request::Reload);
    match one(&frames) {
        Reply::Reload { result, report } => {
            assert!(result.is_ok());
            assert!(report.starts_with("line 0\nline 1\n"));
            assert!(
                report.ends_with("more lines"),
                "{}",
                &report[report.len() - 40..]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_requests_in_one_frame_burst_only_first_is_served() {
    let mut rig = Rig::new("ctl-two");
    let mut s = rig.connect();
    let mut buf = [0u8; 64];
    let a = encode_request(&Request::Shutdown(ShutdownKind::Halt), &mut buf).unwrap();
    let b = encode_request(&Request::Shutdown(ShutdownKind::Reboot), &mut buf[a..]).unwrap();
    s.write_all(&buf[..a + b]).unwrap();
    rig.pump();
    let (frames, eof) = collect_closed(&mut s);
    assert_eq!(one(&frames), Reply::Ok);
    assert!(eof);
    assert_eq!(rig.fake.shutdowns, [ShutdownKind::Halt]);
}

#[test]
fn commands_come_out_one_at_a_time_and_late_answers_are_dropped() {
    let mut rig = Rig::new("ctl-poll");
    let mut a = rig.connect();
    send(
        &mut a,
        &Request::Status {
            name: Some("web"),
            from: 0,
        },
    );
    let (id, cmd) = rig.server.poll(rig.now).unwrap();
    assert_eq!(cmd, Command::Detail("web".try_into().unwrap()));
    // Unanswered, the client hangs up: its slot is freed and an answer
    // that comes after goes nowhere.
    drop(a);
    let start = std::time::Instant::now();
    while rig.server.clients() != 0 && start.elapsed().as_secs() < 5 {
        assert_eq!(rig.server.poll(rig.now), None);
    }
    assert_eq!(rig.server.poll(rig.now), None);
    assert_eq!(rig.server.clients(), 0);
    let mut b = rig.connect();
    send(&mut b, &Request::Reload);
    let (id_b, cmd) = rig.server.poll(rig.now).unwrap();
    assert_eq!(cmd, Command::Reload);
    assert_ne!(id, id_b, "a reused slot has a new id");
    rig.server.answer(id, &Reply::Ok, rig.now);
    assert_eq!(collect(&mut b), (vec![], false));
    rig.server.answer(id_b, &Reply::Ok, rig.now);
    let (frames, eof) = collect_closed(&mut b);
    assert_eq!(one(&frames), Reply::Ok);
    assert!(eof);
}

#[test]
fn a_burst_larger_than_the_table_is_served_when_each_is_answered_at_once() {
    let mut rig = Rig::new("ctl-burst");
    let mut all: Vec<UnixStream> = (0..MAX_CLIENTS + 4).map(|_| rig.connect()).collect();
    for s in all.iter_mut() {
        send(
            s,
            &Request::Status {
                name: None,
                from: 0,
            },
        );
    }
    rig.server.on_ready(rig.now, &mut rig.fake);
    for s in all.iter_mut() {
        let (frames, eof) = collect_closed(s);
        assert!(matches!(one(&frames), Reply::Status { .. }));
        assert!(eof);
    }
    assert_eq!(rig.server.clients(), 0);
}

/// Clients that wait (followers, start waiters) never fill the table: with
/// `MAX_WAITING` of them, one more lets the oldest follower go, and a
/// plain request still gets in and is answered at once.
#[test]
fn waiting_clients_leave_room_for_the_operator() {
    let mut rig = Rig::new("ctl-reserve");
    let follow = |rig: &mut Rig| {
        let s = rig.follow("web");
        rig.pump();
        s
    };
    let mut followers: Vec<UnixStream> = (0..MAX_WAITING).map(|_| follow(&mut rig)).collect();
    assert_eq!(rig.server.clients(), MAX_WAITING);
    for s in &mut followers {
        assert!(!collect(s).1);
    }
    // A start waiter on top: the oldest follower is let go, told why.
    let mut w = rig.connect();
    send(&mut w, &Request::Start { name: "web" });
    rig.pump();
    told_busy(&mut followers[0]);
    assert_eq!(collect(&mut w), (vec![], false));
    for s in &mut followers[1..] {
        assert_eq!(collect(s), (vec![], false));
    }
    assert_eq!(rig.server.clients(), MAX_WAITING);
    // More followers: each lets the oldest follower go, never the waiter.
    let mut more: Vec<UnixStream> = (0..MAX_WAITING).map(|_| follow(&mut rig)).collect();
    assert_eq!(rig.server.clients(), MAX_WAITING);
    assert_eq!(collect(&mut w), (vec![], false));
    // The operator gets in.
    let (frames, eof) = rig.ask_closed(Request::Status {
        name: None,
        from: 0,
    });
    assert!(matches!(one(&frames), Reply::Status { .. }));
    assert!(eof);
    // The waiter is still answered when its unit settles.
    for s in &mut more {
        let _ = collect(s);
    }
    rig.fake.settle = Some(Ok(()));
    rig.server.poll_waiters(rig.now, &mut rig.fake);
    assert_eq!(one(&collect(&mut w).0), Reply::Ok);
}

/// With waiters only, the oldest waiter is let go.
#[test]
fn the_oldest_waiter_goes_when_no_follower_can() {
    let mut rig = Rig::new("ctl-reserve-w");
    let mut waiters: Vec<UnixStream> = (0..=MAX_WAITING).map(|_| rig.start("web")).collect();
    assert_eq!(rig.server.clients(), MAX_WAITING);
    told_busy(&mut waiters[0]);
    for s in &mut waiters[1..] {
        assert_eq!(collect(s), (vec![], false));
    }
}

/// A connection of a peer that may only look, its request not sent yet:
/// marked so after its accept (tests run with CAP_SYS_ADMIN), whether or
/// not `free_slot` would have let it in.
fn look(rig: &mut Rig) -> UnixStream {
    let s = rig.connect();
    rig.pump();
    for c in rig.server.clients.iter_mut() {
        if c.fd.is_some() && c.mode == Mode::Reading {
            c.observer = true;
        }
    }
    s
}

/// Lookers (a unit's root without CAP_SYS_ADMIN) got slots while they
/// alone held fewer than `MAX_WAITING`, whatever the operator's waiting
/// clients held: with two of those, six idle lookers filled the table
/// and the operator's `status` was refused. Lookers and waiting clients
/// now share the `MAX_WAITING`, and a waiting client more lets a
/// looker's go first. Alone: a looker closed must be a connection closed,
/// and a sibling test's fork would hold a copy of its socket.
#[test]
fn lookers_and_waiting_clients_together_leave_the_operator_its_slots() {
    crate::testutil::alone!(lookers_and_waiting_clients_together_leave_the_operator_its_slots);
    let mut rig = Rig::new("ctl-lookers");
    let mut start = rig.start("web");
    let mut follow = rig.follow("web");
    rig.pump();
    let mut lookers = Vec::new();
    while rig.server.free_slot(true).is_some() && lookers.len() < MAX_CLIENTS {
        lookers.push(look(&mut rig));
    }
    assert_eq!(lookers.len(), MAX_WAITING - 2);
    let (frames, _) = rig.ask_closed(Request::Status {
        name: None,
        from: 0,
    });
    assert!(matches!(one(&frames), Reply::Status { .. }));
    // The first looker's slot taken by a new one: the newest, whatever
    // its slot.
    drop(lookers.remove(0));
    rig.pump();
    assert!(rig.server.free_slot(true).is_some());
    lookers.push(look(&mut rig));
    // The operator's third waiting client: the oldest looker goes, not
    // its waiter nor its follower.
    let mut stop = rig.start("db");
    told_busy(&mut lookers[0]);
    for s in [&mut start, &mut stop] {
        assert_eq!(collect(s), (vec![], false));
    }
    assert!(!collect(&mut follow).1);
    assert_eq!(rig.server.clients(), MAX_WAITING);
}

/// With `MAX_WAITING` of the operator's waiters, a looker's `log -f` let
/// the oldest of them go: a looker pushed out the operator. Such a
/// looker is refused at its accept now; were one there all the same, its
/// follow lets itself go.
#[test]
fn a_looker_never_pushes_out_the_operator_s_waiters() {
    let mut rig = Rig::new("ctl-looker-w");
    let mut waiters: Vec<UnixStream> = (0..MAX_WAITING).map(|_| rig.start("web")).collect();
    assert_eq!(rig.server.free_slot(true), None);
    let mut l = look(&mut rig);
    send(
        &mut l,
        &Request::Log {
            name: "web",
            follow: true,
        },
    );
    rig.pump();
    told_busy(&mut l);
    for s in &mut waiters {
        assert_eq!(collect(s), (vec![], false));
    }
}

/// A connection's buffer lives while it is open, the scratch while one
/// is: a PID 1 that once served eight clients at a time kept their
/// buffers (about 150 KB) for good.
#[test]
fn a_connection_s_buffers_go_back_when_it_closes() {
    let mut rig = Rig::new("ctl-grown");
    assert_eq!(rig.server.take_grown(), 0, "no buffer before any client");
    let status = Request::Status {
        name: None,
        from: 0,
    };
    // One client after another: each has its buffer and the scratch
    // anew, given back at its close.
    for _ in 0..3 {
        let (frames, _) = rig.ask_closed(status);
        assert!(matches!(one(&frames), Reply::Status { .. }));
        assert_eq!(rig.server.take_grown(), 2, "its buffer and the scratch");
        assert!(rig.server.scratch.is_empty(), "the scratch kept");
    }
    // Two at once (one silent): the second has its buffer, and shares
    // the scratch, kept until the silent one goes.
    let silent = rig.connect();
    rig.pump();
    assert_eq!(rig.server.take_grown(), 2);
    let (frames, _) = rig.ask_closed(status);
    assert!(matches!(one(&frames), Reply::Status { .. }));
    assert_eq!(rig.server.take_grown(), 1);
    assert!(!rig.server.scratch.is_empty());
    drop(silent);
    rig.pump_until_no_clients();
    assert!(rig.server.scratch.is_empty());
}

/// Memory short when an operator connects (strict overcommit at its
/// limit): PID 1 aborted on the connection's buffer. Now the connection
/// is turned away, and the listener pauses as for accept's ENOMEM: the
/// next one waits, then is served.
#[test]
fn a_connection_without_memory_for_its_buffer_is_turned_away() {
    let mut rig = Rig::new("ctl-nomem");
    let status = Request::Status {
        name: None,
        from: 0,
    };
    let mut s = rig.connect();
    send(&mut s, &status);
    crate::sys::alloc::short_of_memory(TEXT_MAX, || rig.pump());
    // Told why: "too many clients" sent operators looking for clients.
    let (frames, eof) = collect_closed(&mut s);
    match one(&frames) {
        Reply::Error(e) => {
            assert_eq!(e.code, ErrCode::Busy);
            assert!(e.to_string().contains("short of memory"), "{e}");
        }
        other => panic!("not an error: {other:?}"),
    }
    assert!(eof);
    assert_eq!(rig.server.clients(), 0);
    assert_eq!(rig.server.next_deadline(), Some(rig.now + ACCEPT_PAUSE_MS));
    let mut next = rig.connect();
    send(&mut next, &status);
    rig.pump();
    assert_eq!(
        collect(&mut next),
        (vec![], false),
        "taken during the pause"
    );
    rig.now += ACCEPT_PAUSE_MS;
    rig.pump();
    let (frames, _) = collect_closed(&mut next);
    assert!(matches!(one(&frames), Reply::Status { .. }));
}

/// In a process of its own: it lowers the fd limit, which would fail
/// other tests' opens in this one. accept fails with
/// EMFILE while a connection is queued: the server's fd, which PID 1's
/// epoll watches, is not left readable (PID 1 would wake for it at once,
/// for ever); after `ACCEPT_PAUSE_MS` the connection is served.
#[test]
fn an_accept_without_fds_pauses_the_listener_instead_of_spinning() {
    use rustix::fd::AsRawFd;
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    crate::testutil::alone!(an_accept_without_fds_pauses_the_listener_instead_of_spinning);
    let mut rig = Rig::new("ctl-emfile");
    let mut s = rig.connect();
    send(
        &mut s,
        &Request::Status {
            name: None,
            from: 0,
        },
    );
    let readable = |srv: &Server| !crate::testutil::poll_in(srv.fd(), 0).is_empty();
    assert!(readable(&rig.server), "a connection is queued");
    let old = getrlimit(Resource::Nofile);
    let probe = rustix::io::dup(rig.server.fd()).unwrap();
    let limit = Rlimit {
        current: Some(probe.as_raw_fd() as u64 + 1),
        maximum: old.maximum,
    };
    setrlimit(Resource::Nofile, limit).unwrap();
    let mut hog = Vec::new();
    while let Ok(fd) = rustix::io::dup(&probe) {
        hog.push(fd);
    }
    rig.pump();
    let spinning = readable(&rig.server);
    drop(hog);
    setrlimit(Resource::Nofile, old).unwrap();
    assert!(
        !spinning,
        "the server's fd stays readable: PID 1 would spin"
    );
    assert_eq!(
        rig.server.next_deadline(),
        Some(rig.now + ACCEPT_PAUSE_MS),
        "no time to take connections again"
    );
    rig.pump();
    assert_eq!(rig.server.clients(), 0, "taken during the pause");
    rig.now += ACCEPT_PAUSE_MS;
    rig.server.on_timer(rig.now);
    rig.pump();
    let (frames, _) = collect(&mut s);
    assert!(matches!(one(&frames), Reply::Status { .. }));
}

/// A client that sends `start web` and then shuts its writing side (as
/// `nc -N` and `socat` do) still waits for its answer and gets it.
#[test]
fn a_half_closed_waiter_still_gets_its_answer() {
    let mut rig = Rig::new("ctl-halfclose");
    let mut s = rig.connect();
    send(&mut s, &Request::Start { name: "web" });
    s.shutdown(std::net::Shutdown::Write).unwrap();
    rig.pump();
    assert_eq!(rig.server.clients(), 1, "let go at its half-close");
    rig.fake.settle = Some(Ok(()));
    rig.pump();
    let (frames, _) = collect(&mut s);
    assert_eq!(one(&frames), Reply::Ok);
}

/// The same for `log -f`: the stream goes on after the half-close, and
/// the slot is freed once the follower is gone altogether.
#[test]
fn a_half_closed_follower_keeps_following_until_it_hangs_up() {
    let mut rig = Rig::new("ctl-halfclose-f");
    rig.fake.unit("web").log.push(b"one\n");
    let mut s = rig.follow("web");
    s.shutdown(std::net::Shutdown::Write).unwrap();
    rig.pump();
    rig.fake.unit("web").log.push(b"two\n");
    rig.pump();
    let (frames, eof) = collect(&mut s);
    assert!(!eof, "the stream ended at the half-close");
    assert_eq!(frames.len(), 2);
    drop(s);
    rig.pump_until_no_clients();
    assert_eq!(rig.server.clients(), 0);
}

/// A follower that writes after its request (not initctl, which sends
/// one request) is let go: its bytes would wake PID 1 again and again.
#[test]
fn a_follower_that_writes_after_its_request_is_let_go() {
    let mut rig = Rig::new("ctl-chatter");
    rig.fake.unit("web").log.push(b"one\n");
    let mut s = rig.follow("web");
    rig.pump();
    assert_eq!(rig.server.clients(), 1);
    s.write_all(&[0u8; 4096]).unwrap();
    rig.pump_until_no_clients();
    assert_eq!(rig.server.clients(), 0);
}

/// A follower that sends a byte with a socket holding a lingering one
/// three unix sockets down: looked at, not read (a read with no room for
/// fds released them in PID 1's time: the linger's 20 s), and let go, the
/// socket going to a closer. The same sent out of band: read inline
/// (`SO_OOBINLINE`), so the peek sees it; left aside, it would be released
/// with the connection in PID 1's close.
#[test]
fn a_follower_that_passes_an_fd_after_its_request_does_not_hold_pid1() {
    use std::os::fd::AsFd;
    for flags in [rustix::net::SendFlags::empty(), rustix::net::SendFlags::OOB] {
        let mut rig = Rig::new("ctl-passes");
        rig.fake.unit("web").log.push(b"one\n");
        let s = rig.follow("web");
        rig.pump();
        assert_eq!(rig.server.clients(), 1);
        let (inner, _server) = crate::testutil::nested(3);
        crate::testutil::send_with_fd_flags(s.as_fd(), b"x", inner.as_fd(), flags);
        drop(inner);
        let t = std::time::Instant::now();
        rig.pump_until_no_clients();
        let took = t.elapsed();
        assert!(
            took < std::time::Duration::from_secs(2),
            "{flags:?}: {took:?}"
        );
        assert_eq!(rig.server.clients(), 0);
    }
}

/// A request sent with an fd (initctl sends none) is turned away unread:
/// a read would take the fd into PID 1's table, whose close of it calls
/// the file's flush (a FUSE daemon's answer, waited for). The connection
/// is closed without an answer, nothing is done, and a closer releases
/// the fd with what was queued (`sys::passed`). The same with the fd on
/// an out-of-band byte (read inline, so the peek sees it). In a process
/// of its own: the closers' places are global.
#[test]
fn a_request_that_passes_an_fd_is_turned_away_unread() {
    use std::os::fd::AsFd;
    crate::testutil::alone!(a_request_that_passes_an_fd_is_turned_away_unread);
    for flags in [rustix::net::SendFlags::empty(), rustix::net::SendFlags::OOB] {
        let mut rig = Rig::new("ctl-passes-request");
        let mut s = rig.connect();
        let mut buf = [0u8; 256];
        let n = encode_request(&Request::Stop { name: "web" }, &mut buf).unwrap();
        let (x, y) = crate::testutil::dgram_pair();
        crate::testutil::send_with_fd_flags(s.as_fd(), &buf[..n], y.as_fd(), flags);
        drop(y);
        rig.pump_until_no_clients();
        let (frames, eof) = collect_closed(&mut s);
        assert!(frames.is_empty() && eof, "{flags:?}: {frames:?}");
        assert!(rig.fake.actions.is_empty(), "{flags:?}");
        let t = std::time::Instant::now();
        while rustix::net::send(&x, b"y", rustix::net::SendFlags::DONTWAIT)
            != Err(rustix::io::Errno::CONNREFUSED)
        {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "{flags:?}: a closer closes it"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// A peer of the right uid without CAP_SYS_ADMIN (a unit running as root
/// with its capabilities dropped) may look, not change anything: a stop,
/// a reload or a reboot is denied, `status` answered.
#[test]
fn a_root_peer_without_sys_admin_may_only_look() {
    let mut rig = Rig::new("ctl-observer");
    let observe = |rig: &mut Rig| {
        let s = rig.connect();
        rig.pump();
        for c in rig.server.clients.iter_mut().filter(|c| c.fd.is_some()) {
            c.observer = true;
        }
        s
    };
    for req in [
        Request::Stop { name: "web" },
        Request::Reload,
        Request::Verdict,
        Request::Shutdown(ShutdownKind::Reboot),
    ] {
        let mut s = observe(&mut rig);
        send(&mut s, &req);
        rig.pump();
        let (frames, _) = collect_closed(&mut s);
        assert_eq!(err_code(&frames), ErrCode::Denied, "{req:?}");
    }
    assert!(rig.fake.actions.is_empty() && rig.fake.shutdowns.is_empty());
    let mut s = observe(&mut rig);
    send(
        &mut s,
        &Request::Status {
            name: None,
            from: 0,
        },
    );
    rig.pump();
    let (frames, _) = collect_closed(&mut s);
    assert!(matches!(one(&frames), Reply::Status { .. }));
    // What decides it: the peer's effective capabilities.
    assert!(
        super::may_change(std::process::id() as i32),
        "this test runs as root"
    );
    // Root in 400 groups (a /proc/PID/status longer than 2 KiB) is
    // the operator still; root without CAP_SYS_ADMIN is not.
    let groups: Vec<String> = (1000..1400).map(|g| g.to_string()).collect();
    let mut many = std::process::Command::new("setpriv")
        .args(["--groups", &groups.join(","), "sleep", "5"])
        .spawn()
        .unwrap();
    let mut capless = std::process::Command::new("setpriv")
        .args(["--inh-caps=-all", "--bounding-set=-sys_admin", "sleep", "5"])
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let exec_done = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
    };
    while !(exec_done(many.id()) && exec_done(capless.id())) {
        assert!(t.elapsed().as_secs() < 5, "setpriv did not exec sleep");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", many.id())).unwrap();
    assert!(status.len() > 2048, "{}", status.len());
    let told = (
        super::may_change(many.id() as i32),
        super::may_change(capless.id() as i32),
    );
    for c in [&mut many, &mut capless] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_eq!(told, (true, false));
    // Root in a user namespace of its own has a full CapEff there, which
    // counts for nothing over PID 1's: only a looker.
    let mut inner = std::process::Command::new("unshare")
        .args(["-Ur", "sleep", "5"])
        .spawn()
        .unwrap();
    let pid = inner.id();
    let t = std::time::Instant::now();
    while crate::sys::file::same_namespace(pid, "user") != Some(false) {
        assert!(
            t.elapsed().as_secs() < 5,
            "unshare -Ur made no user namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let told = super::may_change(pid as i32);
    let _ = inner.kill();
    let _ = inner.wait();
    assert!(
        !told,
        "root of its own user namespace taken for the operator"
    );
    // A peer whose namespace cannot be read (gone between the reads) is
    // no operator, but where PID 1 has none either.
    assert!(super::in_pid1_user_ns(Some(true), || true));
    assert!(!super::in_pid1_user_ns(Some(false), || false));
    assert!(!super::in_pid1_user_ns(None, || true));
    assert!(super::in_pid1_user_ns(None, || false));
    // Such peers hold at most MAX_WAITING slots, idle or not: the
    // operator always gets in.
    let held: Vec<_> = (0..super::MAX_WAITING).map(|_| observe(&mut rig)).collect();
    assert_eq!(rig.server.free_slot(true), None);
    assert!(rig.server.free_slot(false).is_some());
    drop(held);
    // Across a re-exec too: the followers a new PID 1 adopts are looked
    // at again (here told), and the cap holds for them.
    let mut new = Rig::new("ctl-observer-adopt");
    let web = crate::vocab::Name::try_from("web").unwrap();
    let pairs: Vec<_> = (0..=super::MAX_WAITING)
        .map(|_| std::os::unix::net::UnixStream::pair().unwrap())
        .collect();
    let adopted = pairs
        .iter()
        .filter(|(a, _)| {
            let fd = rustix::fd::OwnedFd::from(a.try_clone().unwrap());
            new.server.adopt_follower_as(fd, web.clone(), 0, true)
        })
        .count();
    assert_eq!(adopted, super::MAX_WAITING, "a seventh such follower");
    assert_eq!(new.server.free_slot(true), None);
    assert!(new.server.free_slot(false).is_some());
}
