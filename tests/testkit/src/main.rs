//! wren-testkit: a tiny static helper that boot-test units run inside the
//! image. It runs a sequence of steps given on the command line, left to
//! right, then exits 0 (unless a step exits first):
//!
//! ```text
//! mark FILE TEXT     append "TEXT PID MILLIS" to FILE (MILLIS: wall clock ms)
//! sleep SECS         sleep (fractions allowed)
//! notifyfd [LINE]    write LINE (default "ready") + "\n" to the fd in $NOTIFY_FD
//! sdnotify MSG       send MSG (e.g. READY=1) as one datagram to $NOTIFY_SOCKET
//!                    (a path, or "@name" for an abstract socket)
//! doublefork SECS [FILE]
//!                    spawn a grandchild that sleeps SECS then exits, and exit
//!                    the intermediate child at once, so the grandchild is
//!                    re-parented to PID 1; FILE receives the grandchild's pid
//! recv ADDR        bind a datagram socket at ADDR (path or "@name"), print
//!                    the first message received (to test sdnotify itself)
//! alloc MIB          allocate and touch MIB mebibytes (kept until exit)
//! exit CODE          exit with CODE now (alias: crash)
//! forever            sleep for ever (a long-running service)
//! ctlabuse SOCKET    abuse the initctl control socket (see `ctlabuse`
//!                    below): hostile clients at once, one line per result
//! ctlstall SOCKET UNIT SECS
//!                    ask init for `log -f` of UNIT, then read nothing for
//!                    SECS; then report what came (see `ctlstall` below)
//! chatter RATE       print RATE numbered 100-byte lines a second, for ever
//! ```
//!
//! e.g. `wren-testkit mark /run/order a sleep 1 sdnotify READY=1 forever`.

use std::io::Write;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::process::{exit, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn fail(msg: &str) -> ! {
    eprintln!("wren-testkit: {msg}");
    exit(100);
}

fn millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn secs(arg: &str) -> Duration {
    match arg.parse::<f64>() {
        Ok(s) if s >= 0.0 => Duration::from_secs_f64(s),
        _ => fail(&format!("bad seconds: {arg}")),
    }
}

fn mark(file: &str, text: &str) {
    let line = format!("{text} {} {}\n", std::process::id(), millis());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap_or_else(|e| fail(&format!("open {file}: {e}")));
    // One write() of a short line to an O_APPEND file: concurrent markers
    // never interleave.
    f.write_all(line.as_bytes())
        .unwrap_or_else(|e| fail(&format!("write {file}: {e}")));
}

fn notifyfd(line: &str) {
    let var = std::env::var("NOTIFY_FD").unwrap_or_else(|_| fail("NOTIFY_FD not set"));
    let fd: i32 = var
        .trim()
        .parse()
        .unwrap_or_else(|_| fail(&format!("bad NOTIFY_FD: {var}")));
    if fd < 0 {
        fail("bad NOTIFY_FD");
    }
    use std::os::fd::FromRawFd;
    // SAFETY: the supervisor hands us this fd open for writing; we own it
    // from here on, and closing it after the write is what s6 clients do.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    f.write_all(format!("{line}\n").as_bytes())
        .unwrap_or_else(|e| fail(&format!("write NOTIFY_FD {fd}: {e}")));
}

fn sdnotify(msg: &str) {
    let path = std::env::var("NOTIFY_SOCKET").unwrap_or_else(|_| fail("NOTIFY_SOCKET not set"));
    let sock = UnixDatagram::unbound().unwrap_or_else(|e| fail(&format!("socket: {e}")));
    let addr = sock_addr(&path);
    sock.send_to_addr(msg.as_bytes(), &addr)
        .unwrap_or_else(|e| fail(&format!("send to {path}: {e}")));
}

fn sock_addr(path: &str) -> SocketAddr {
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes())
    } else {
        SocketAddr::from_pathname(path)
    }
    .unwrap_or_else(|e| fail(&format!("bad socket address {path}: {e}")))
}

fn recv(path: &str) {
    let sock = UnixDatagram::bind_addr(&sock_addr(path))
        .unwrap_or_else(|e| fail(&format!("bind {path}: {e}")));
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .unwrap_or_else(|e| fail(&format!("recv {path}: {e}")));
    println!("{}", String::from_utf8_lossy(&buf[..n]));
}

fn doublefork(secs_arg: &str, pidfile: Option<&str>) {
    let me = std::env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {e}")));
    // Intermediate child: spawns the grandchild and exits at once, so the
    // grandchild's parent dies and the kernel re-parents it to PID 1 (or the
    // nearest subreaper). We wait for the intermediate child so that *we*
    // do not leave a zombie of our own.
    let mut args = vec!["__spawn".to_string(), "sleep".into(), secs_arg.into()];
    if let Some(f) = pidfile {
        args.push(f.into());
    }
    let st = Command::new(&me)
        .args(&args)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| fail(&format!("spawn: {e}")));
    if !st.success() {
        fail("intermediate child failed");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Internal: the intermediate child of `doublefork`.
    if args.first().map(String::as_str) == Some("__spawn") {
        let me = std::env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {e}")));
        let child = Command::new(me)
            .arg("sleep")
            .arg(args.get(2).map(String::as_str).unwrap_or("1"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("spawn: {e}")));
        if let Some(f) = args.get(3) {
            std::fs::write(f, format!("{}\n", child.id()))
                .unwrap_or_else(|e| fail(&format!("write {f}: {e}")));
        }
        // Exit without waiting: the grandchild becomes an orphan.
        exit(0);
    }
    if args.is_empty() {
        fail("usage: wren-testkit STEP... (see the source for steps)");
    }
    let mut i = 0;
    let arg = |i: usize| -> &str {
        args.get(i)
            .map(String::as_str)
            .unwrap_or_else(|| fail(&format!("missing argument after {}", args[i - 1])))
    };
    while i < args.len() {
        match args[i].as_str() {
            "mark" => {
                mark(arg(i + 1), arg(i + 2));
                i += 3;
            }
            "sleep" => {
                std::thread::sleep(secs(arg(i + 1)));
                i += 2;
            }
            "notifyfd" => {
                // Optional LINE: anything that is not a step name.
                match args.get(i + 1).map(String::as_str) {
                    Some(l) if !is_step(l) => {
                        notifyfd(l);
                        i += 2;
                    }
                    _ => {
                        notifyfd("ready");
                        i += 1;
                    }
                }
            }
            "sdnotify" => {
                sdnotify(arg(i + 1));
                i += 2;
            }
            "doublefork" => match args.get(i + 2).map(String::as_str) {
                Some(f) if !is_step(f) => {
                    doublefork(arg(i + 1), Some(f));
                    i += 3;
                }
                _ => {
                    doublefork(arg(i + 1), None);
                    i += 2;
                }
            },
            "recv" => {
                recv(arg(i + 1));
                i += 2;
            }
            "alloc" => {
                let mib: usize = arg(i + 1).parse().unwrap_or_else(|_| fail("bad MiB count"));
                let mut v = vec![0u8; mib << 20];
                // Touch every page so it is really charged to the cgroup.
                for b in v.iter_mut().step_by(4096) {
                    *b = 1;
                }
                std::mem::forget(v);
                i += 2;
            }
            "exit" | "crash" => {
                let code: i32 = arg(i + 1).parse().unwrap_or_else(|_| fail("bad exit code"));
                exit(code);
            }
            "ctlabuse" => {
                ctlabuse(arg(i + 1));
                i += 2;
            }
            "ctlstall" => {
                ctlstall(arg(i + 1), arg(i + 2), secs(arg(i + 3)));
                i += 4;
            }
            "chatter" => chatter(arg(i + 1)),
            "forever" => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            other => fail(&format!("unknown step: {other}")),
        }
    }
}

fn is_step(s: &str) -> bool {
    matches!(
        s,
        "mark"
            | "sleep"
            | "notifyfd"
            | "sdnotify"
            | "doublefork"
            | "recv"
            | "alloc"
            | "exit"
            | "crash"
            | "forever"
            | "ctlabuse"
            | "ctlstall"
            | "chatter"
    )
}

// ---------------------------------------------------------------------------
// ctlabuse: protocol robustness of PID 1's control socket (initctl boot
// tests, tests/tests/boot/initctl_abuse.rs). Added by the ctltests branch.
// ---------------------------------------------------------------------------

/// How long an abusive client waits for init to answer or hang up.
const ABUSE_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the truncated-frame clients stay connected mid-frame, so that
/// they are in flight while the test talks to init.
const ABUSE_HOLD: Duration = Duration::from_secs(3);

/// Connects to SOCKET with several hostile clients at once, each in its own
/// thread, and prints one line per client once it is done:
///
/// ```text
/// ctlabuse KIND: reply=BYTES eof=yes|no ms=MILLIS text=PRINTABLE
/// ```
///
/// `reply`: bytes init sent back; `eof`: init closed the connection;
/// `ms`: from connecting to that close (or to giving up); `text`: the
/// printable ASCII of the reply (error messages travel as plain UTF-8 in
/// postcard). Kinds:
///
/// - `garbage`: ASCII text instead of a frame (its first 4 bytes read as a
///   ~1.8 GB length prefix).
/// - `malformed`: a well-sized frame whose payload is not a message.
/// - `version`: a well-formed frame of protocol version 999.
/// - `huge`: a 4-GiB length prefix (0xffffffff), then some bytes.
/// - `truncated`: half a frame, held for a while, then a half-close (the
///   client may still read the reply).
/// - `truncated-close`: half a frame, held, then a full close.
/// - `silent`: connects and never speaks.
/// - `slow`: a length prefix, then one byte every 250 ms (never finishes).
///
/// When every client is connected and has sent its first bytes, prints
/// `ctlabuse: in flight` (flushed) so a test can talk to init meanwhile;
/// at the end `ctlabuse: done`.
fn ctlabuse(socket: &str) {
    use std::io::Read;
    use std::net::Shutdown;
    use std::os::unix::net::UnixStream;
    use std::sync::{Arc, Barrier};
    use std::time::Instant;

    type Plan = (&'static str, Vec<u8>, &'static str);
    let mut malformed = vec![5u8, 0, 0, 0];
    // Version 1, then an enum tag no Request has, then junk.
    malformed.extend_from_slice(&[0x01, 0x7f, 0xff, 0xff, 0x00]);
    let mut version = vec![3u8, 0, 0, 0];
    // Version 999 as a postcard varint (0xe7 0x07), then a tag.
    version.extend_from_slice(&[0xe7, 0x07, 0x00]);
    let mut huge = vec![0xffu8, 0xff, 0xff, 0xff];
    huge.extend_from_slice(&[0x01; 16]);
    // A 100-byte frame of which 6 bytes come.
    let truncated = vec![100u8, 0, 0, 0, 0x01, 0x00];
    let plans: Vec<Plan> = vec![
        (
            "garbage",
            b"hello init, are you there?\r\n".to_vec(),
            "read",
        ),
        ("malformed", malformed, "read"),
        ("version", version, "read"),
        ("huge", huge, "read"),
        ("truncated", truncated.clone(), "hold-halfclose"),
        ("truncated-close", truncated, "hold-close"),
        ("silent", Vec::new(), "read"),
        ("slow", vec![64u8, 0, 0, 0], "dribble"),
    ];
    let barrier = Arc::new(Barrier::new(plans.len() + 1));
    let mut handles = Vec::new();
    for (kind, first, how) in plans {
        let barrier = barrier.clone();
        let socket = socket.to_string();
        handles.push(std::thread::spawn(move || {
            let t0 = Instant::now();
            let conn = UnixStream::connect(&socket);
            let mut s = match conn {
                Ok(s) => s,
                Err(e) => {
                    barrier.wait();
                    return format!("ctlabuse {kind}: connect failed: {e}");
                }
            };
            let sent = s.write_all(&first);
            barrier.wait();
            if let Err(e) = sent {
                return format!("ctlabuse {kind}: write failed: {e}");
            }
            match how {
                "hold-halfclose" => {
                    std::thread::sleep(ABUSE_HOLD);
                    let _ = s.shutdown(Shutdown::Write);
                }
                "hold-close" => {
                    std::thread::sleep(ABUSE_HOLD);
                    drop(s);
                    return format!(
                        "ctlabuse {kind}: closed by client ms={}",
                        t0.elapsed().as_millis()
                    );
                }
                "dribble" => {
                    // One byte at a time until init hangs up (a write
                    // fails) or the frame would be complete.
                    let mut n = 0;
                    while n < 63 && t0.elapsed() < ABUSE_READ_TIMEOUT {
                        std::thread::sleep(Duration::from_millis(250));
                        if s.write_all(&[0x01]).is_err() {
                            break;
                        }
                        n += 1;
                    }
                }
                _ => {}
            }
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let mut reply = Vec::new();
            let mut eof = false;
            let mut b = [0u8; 512];
            while t0.elapsed() < ABUSE_READ_TIMEOUT {
                match s.read(&mut b) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => reply.extend_from_slice(&b[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::Interrupted
                        ) => {}
                    // ECONNRESET and the like: init dropped us.
                    Err(_) => {
                        eof = true;
                        break;
                    }
                }
            }
            let text: String = reply
                .iter()
                .map(|&c| {
                    if (0x20..0x7f).contains(&c) {
                        c as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!(
                "ctlabuse {kind}: reply={} eof={} ms={} text={text}",
                reply.len(),
                if eof { "yes" } else { "no" },
                t0.elapsed().as_millis()
            )
        }));
    }
    barrier.wait();
    println!("ctlabuse: in flight");
    let _ = std::io::stdout().flush();
    for h in handles {
        match h.join() {
            Ok(line) => println!("{line}"),
            Err(_) => println!("ctlabuse: a client thread panicked"),
        }
        let _ = std::io::stdout().flush();
    }
    println!("ctlabuse: done");
}

/// A `log -f` client that stops reading: asks for `log -f` of UNIT, reads
/// nothing for STALL, then drains what comes (for 2 s at most) and prints
///
/// ```text
/// ctlstall: reply=BYTES eof=yes|no ms=MILLIS
/// ```
///
/// (ms from connecting to the end of the drain). The request is encoded by
/// hand: postcard of (PROTO_VERSION 1, Request::Log { name, follow: true }),
/// `Log` being variant 5 of `Request`.
fn ctlstall(socket: &str, unit: &str, stall: Duration) {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;
    if unit.is_empty() || unit.len() > 32 {
        fail("ctlstall: unit name of 1-32 bytes");
    }
    let mut payload = vec![0x01u8, 0x05, unit.len() as u8];
    payload.extend_from_slice(unit.as_bytes());
    payload.push(0x01);
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&payload);
    let t0 = Instant::now();
    let mut s = UnixStream::connect(socket)
        .unwrap_or_else(|e| fail(&format!("ctlstall: connect {socket}: {e}")));
    s.write_all(&frame)
        .unwrap_or_else(|e| fail(&format!("ctlstall: write: {e}")));
    println!("ctlstall: stalled");
    let _ = std::io::stdout().flush();
    std::thread::sleep(stall);
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut total = 0usize;
    let mut eof = false;
    let mut b = [0u8; 4096];
    // The unit may write for ever: drain for 2 s at most.
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_secs(2) {
        match s.read(&mut b) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => total += n,
            // Quiet for 500 ms: drained.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                eof = true;
                break;
            }
        }
    }
    println!(
        "ctlstall: reply={total} eof={} ms={}",
        if eof { "yes" } else { "no" },
        t0.elapsed().as_millis()
    );
}

/// Prints RATE numbered lines of 100 bytes a second to stdout, for ever
/// (a chatty unit for log capture under load).
fn chatter(rate: &str) -> ! {
    let rate: u32 = match rate.parse() {
        Ok(r) if r > 0 => r,
        _ => fail("chatter: RATE must be a positive number"),
    };
    let out = std::io::stdout();
    let pause = Duration::from_secs(1) / rate;
    let mut n: u64 = 0;
    loop {
        // 100 bytes with the newline.
        let line = format!("chatter {n:>12} {}\n", "x".repeat(78));
        let _ = out.lock().write_all(line.as_bytes());
        n += 1;
        std::thread::sleep(pause);
    }
}
