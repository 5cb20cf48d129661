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
//! sdnotifystuck MSG LEVELS
//!                    send MSG to $NOTIFY_SOCKET passing (SCM_RIGHTS) a unix
//!                    socket that holds a TCP socket LEVELS unix sockets down,
//!                    set to linger 20 s on unsent data its peer never reads:
//!                    whoever makes its last close waits those 20 s (needs
//!                    `lo` up; the peer is kept open for the process's life)
//! doublefork SECS [FILE]
//!                    spawn a grandchild that sleeps SECS then exits, and exit
//!                    the intermediate child at once, so the grandchild is
//!                    re-parented to PID 1; FILE receives the grandchild's pid
//! zombies N         start N children that exit at once and leave them
//!                    unreaped, then exit: PID 1 is handed N zombies in one go
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
//! (and the nstests steps at the end of this file: ls, copy, trywrite,
//! waitfor, forkbomb)
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

/// `msg` sent on `sock` (connected) with `fd` passed.
fn send_fd(sock: i32, msg: &[u8], fd: i32) {
    let mut iov = libc::iovec {
        iov_base: msg.as_ptr() as *mut _,
        iov_len: msg.len(),
    };
    // SAFETY: CMSG_SPACE of one int is a constant computation.
    let space = unsafe { libc::CMSG_SPACE(4) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: an all-zero msghdr is valid; its pointers are set below to
    // buffers that outlive the sendmsg.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.as_mut_ptr().cast();
    hdr.msg_controllen = space as _;
    // SAFETY: `hdr` has room for one cmsg header and one int (CMSG_SPACE).
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&hdr);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
    }
    // SAFETY: `hdr` points at live buffers (above).
    if unsafe { libc::sendmsg(sock, &hdr, 0) } < 0 {
        fail(&format!("sendmsg: {}", std::io::Error::last_os_error()));
    }
}

fn sdnotify_stuck(msg: &str, levels: usize) {
    use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("bind: {e}")));
    let c = std::net::TcpStream::connect(l.local_addr().unwrap_or_else(|e| fail(&e.to_string())))
        .unwrap_or_else(|e| fail(&format!("connect: {e}")));
    let (server, _) = l.accept().unwrap_or_else(|e| fail(&format!("accept: {e}")));
    let small = 4096i32;
    let setopt = |fd: i32, opt: i32, v: &[u8]| {
        // SAFETY: `v` is a live buffer of the option's size.
        unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, opt, v.as_ptr().cast(), v.len() as _) }
    };
    setopt(server.as_raw_fd(), libc::SO_RCVBUF, &small.to_ne_bytes());
    setopt(c.as_raw_fd(), libc::SO_SNDBUF, &small.to_ne_bytes());
    c.set_nonblocking(true)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut w = &c;
    while w.write(&[7u8; 4096]).is_ok() {}
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 20,
    };
    // SAFETY: a linger struct, alive for the call.
    let got = unsafe {
        std::slice::from_raw_parts(
            (&linger as *const libc::linger).cast::<u8>(),
            std::mem::size_of::<libc::linger>(),
        )
    };
    setopt(c.as_raw_fd(), libc::SO_LINGER, got);
    // Each level a datagram pair: the socket below passed on one end, the
    // other end the next level's.
    let mut inner: OwnedFd = c.into();
    for _ in 0..levels {
        let (a, b) = UnixDatagram::pair().unwrap_or_else(|e| fail(&format!("socketpair: {e}")));
        send_fd(a.as_raw_fd(), b"x", inner.as_raw_fd());
        inner = b.into();
    }
    let path = std::env::var("NOTIFY_SOCKET").unwrap_or_else(|_| fail("NOTIFY_SOCKET not set"));
    let sock = UnixDatagram::unbound().unwrap_or_else(|e| fail(&format!("socket: {e}")));
    sock.connect_addr(&sock_addr(&path))
        .unwrap_or_else(|e| fail(&format!("connect to {path}: {e}")));
    send_fd(sock.as_raw_fd(), msg.as_bytes(), inner.as_raw_fd());
    drop(inner);
    // The peer stays open, reading nothing, for the process's life.
    let _ = server.into_raw_fd();
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

/// N children that exit at once, left unreaped (each a zombie of ours,
/// seen in /proc), then our own exit: the kernel hands them all to PID 1
/// in one step, a SIGCHLD for each, which coalesce into one.
fn zombies(n_arg: &str) {
    let n: usize = n_arg.parse().unwrap_or_else(|_| fail("bad zombie count"));
    let me = std::env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {e}")));
    // Kept, never waited for: each stays ours, a zombie once it ends,
    // until our exit hands it on.
    let children: Vec<std::process::Child> = (0..n)
        .map(|_| {
            Command::new(&me)
                .args(["exit", "0"])
                .stdin(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| fail(&format!("spawn: {e}")))
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(std::process::Child::id).collect();
    let zombie = |p: &u32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|st| st.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
            .unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !pids.iter().all(zombie) {
        if std::time::Instant::now() > deadline {
            fail("children did not all end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("{n} zombies");
    exit(0);
}

/// The protocol version init speaks, as the one byte of its postcard
/// varint (it is below 128).
const PROTO_VERSION: u8 = wren_core::proto::PROTO_VERSION as u8;
const _: () = assert!(wren_core::proto::PROTO_VERSION < 128);

fn main() {
    // bench: the clock is read before anything else (see `bench_main`).
    let started_ns = bench_clock_ns();
    bench_main(started_ns);
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
            "sdnotifystuck" => {
                let levels = arg(i + 2).parse().unwrap_or_else(|_| fail("bad LEVELS"));
                sdnotify_stuck(arg(i + 1), levels);
                i += 3;
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
            "zombies" => zombies(arg(i + 1)),
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
            "thrash" => {
                // MIB of memory written over and over, for ever: above the
                // unit's memory.max (with swap) every pass faults pages
                // back in, so the unit stalls on memory (PSI).
                let mib: usize = arg(i + 1).parse().unwrap_or_else(|_| fail("bad MiB count"));
                let mut v = vec![0u8; mib << 20];
                let mut n = 0u8;
                loop {
                    n = n.wrapping_add(1);
                    for b in v.iter_mut().step_by(4096) {
                        *b = n;
                    }
                    std::hint::black_box(&v);
                }
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
            "aslimit" => {
                aslimit(arg(i + 1), arg(i + 2));
                i += 3;
            }
            "chatter" => chatter(arg(i + 1)),
            "forever" => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            other => match nstests_step(&args, i).or_else(|| confine_step(&args, i)) {
                Some(next) => i = next,
                None => fail(&format!("unknown step: {other}")),
            },
        }
    }
}

/// `aslimit PID KIB`: PID's address space capped at its size now plus
/// KIB (`off`: uncapped), so that its next mmap or brk past that fails
/// as it would at the commit limit under strict overcommit, without
/// starving every other process as a real one would.
fn aslimit(pid: &str, kib: &str) {
    let pid: libc::pid_t = pid.parse().unwrap_or_else(|_| fail("bad pid"));
    let limit = if kib == "off" {
        libc::RLIM_INFINITY
    } else {
        let extra: u64 = kib.parse().unwrap_or_else(|_| fail("bad KiB count"));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| fail(&format!("/proc/{pid}/status: {e}")));
        let size: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmSize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| fail("no VmSize"));
        (size + extra) << 10
    };
    let r = libc::rlimit {
        rlim_cur: limit,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads the one struct given and writes nothing back.
    if unsafe { libc::prlimit(pid, libc::RLIMIT_AS, &r, std::ptr::null_mut()) } != 0 {
        fail(&format!("prlimit: {}", std::io::Error::last_os_error()));
    }
}

fn is_step(s: &str) -> bool {
    matches!(
        s,
        "mark"
            | "sleep"
            | "notifyfd"
            | "sdnotify"
            | "sdnotifystuck"
            | "doublefork"
            | "zombies"
            | "recv"
            | "alloc"
            | "thrash"
            | "exit"
            | "crash"
            | "forever"
            | "ctlabuse"
            | "ctlstall"
            | "chatter"
            | "aslimit"
    ) || is_nstests_step(s)
        || is_confine_step(s)
}

// --- confine steps (least-privilege boot tests) ----------------------------
//
// bind PORT OUT       bind a TCP socket to 0.0.0.0:PORT and close it; OUT gets
//                     "ok" or "error: <message> (errno N)"
// syscall NAME OUT    make one harmless call and report as `bind` does:
//                     umount2 (of a path that does not exist: ENOENT for
//                     root when allowed), getpid, sethostname (to the
//                     current name: only for units in their own UTS
//                     namespace)

fn is_confine_step(s: &str) -> bool {
    matches!(s, "bind" | "syscall")
}

fn confine_step(args: &[String], i: usize) -> Option<usize> {
    let arg = |k: usize| -> &str {
        args.get(i + k)
            .map(String::as_str)
            .unwrap_or_else(|| fail(&format!("missing argument after {}", args[i])))
    };
    let report = |out: &str, r: std::io::Result<()>| {
        let text = match r {
            Ok(()) => "ok\n".to_string(),
            Err(e) => nstests_err(&e),
        };
        nstests_out(out, &text);
    };
    match args.get(i)?.as_str() {
        "bind" => {
            let port: u16 = arg(1)
                .parse()
                .unwrap_or_else(|_| fail(&format!("bad port: {}", arg(1))));
            report(
                arg(2),
                std::net::TcpListener::bind(("0.0.0.0", port)).map(drop),
            );
            Some(i + 3)
        }
        "syscall" => {
            // SAFETY (all three): plain system calls on constant, NUL-ended
            // strings or a local buffer; nothing is kept.
            let rc = match arg(1) {
                "umount2" => unsafe { libc::umount2(c"/nonexistent-wren".as_ptr(), 0) },
                "getpid" => unsafe { libc::getpid().min(0) },
                "sethostname" => {
                    let mut buf = [0u8; 65];
                    let n = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), 64) };
                    let len = buf.iter().position(|b| *b == 0).unwrap_or(0);
                    if n == 0 {
                        unsafe { libc::sethostname(buf.as_ptr().cast(), len) }
                    } else {
                        n
                    }
                }
                other => fail(&format!("syscall: unknown {other}")),
            };
            let r = if rc == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            };
            report(arg(2), r);
            Some(i + 3)
        }
        _ => None,
    }
}

// --- nstests steps (namespace and limit boot tests) -----------------------
//
// ls DIR OUT          write DIR's entry names, sorted, one a line, to OUT
//                     ("error: ..." instead when DIR cannot be read)
// copy SRC OUT        copy SRC's content to OUT ("error: ..." if unreadable)
// trywrite FILE OUT   try to create FILE and write to it; OUT gets "ok" or
//                     "error: <message> (errno N)"
// waitfor FILE        poll until FILE exists
// forkbomb           fork copies of itself that do the same, for ever; a
//                     failed fork is retried at once (stopped by pids.max)

fn is_nstests_step(s: &str) -> bool {
    matches!(
        s,
        "ls" | "copy" | "trywrite" | "waitfor" | "forkbomb" | "mknodopen"
    )
}

fn nstests_out(out: &str, text: &str) {
    std::fs::write(out, text).unwrap_or_else(|e| fail(&format!("write {out}: {e}")));
}

fn nstests_err(e: &std::io::Error) -> String {
    format!("error: {e} (errno {})\n", e.raw_os_error().unwrap_or(0))
}

/// Runs the nstests step at `args[i]`; returns the index of the next step,
/// or None if `args[i]` is not one of them.
fn nstests_step(args: &[String], i: usize) -> Option<usize> {
    let arg = |k: usize| -> &str {
        args.get(i + k)
            .map(String::as_str)
            .unwrap_or_else(|| fail(&format!("missing argument after {}", args[i])))
    };
    match args.get(i)?.as_str() {
        "ls" => {
            let text = match std::fs::read_dir(arg(1)) {
                Ok(rd) => {
                    let mut names: Vec<String> = rd
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    names.sort();
                    names.iter().map(|n| format!("{n}\n")).collect()
                }
                Err(e) => nstests_err(&e),
            };
            nstests_out(arg(2), &text);
            Some(i + 3)
        }
        "copy" => {
            let text = std::fs::read(arg(1))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| nstests_err(&e));
            nstests_out(arg(2), &text);
            Some(i + 3)
        }
        "trywrite" => {
            let r = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(arg(1))
                .and_then(|mut f| f.write_all(b"x\n"));
            let text = match r {
                Ok(()) => "ok\n".to_string(),
                Err(e) => nstests_err(&e),
            };
            nstests_out(arg(2), &text);
            Some(i + 3)
        }
        // mknodopen PATH OUT: make PATH a device node (1,3: the null
        // device, there on every kernel and harmless) and open it; OUT
        // says `opened` or the error.
        "mknodopen" => {
            use std::os::unix::ffi::OsStrExt;
            let path = std::ffi::CString::new(std::path::Path::new(arg(1)).as_os_str().as_bytes())
                .unwrap_or_else(|_| fail("mknodopen: a NUL in the path"));
            // SAFETY: `path` is a NUL-terminated string alive for the call.
            let made =
                unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
            let text = if made != 0 {
                nstests_err(&std::io::Error::last_os_error())
            } else {
                match std::fs::File::open(arg(1)) {
                    Ok(_) => "opened\n".to_string(),
                    Err(e) => nstests_err(&e),
                }
            };
            nstests_out(arg(2), &text);
            Some(i + 3)
        }
        "waitfor" => {
            while !std::path::Path::new(arg(1)).exists() {
                std::thread::sleep(Duration::from_millis(100));
            }
            Some(i + 2)
        }
        "forkbomb" => {
            let me = std::env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {e}")));
            loop {
                // The child is never waited for: it never exits either.
                if let Ok(c) = Command::new(&me)
                    .arg("forkbomb")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                {
                    std::mem::forget(c);
                }
            }
        }
        _ => None,
    }
}

// ---- BEGIN bench: spawn-latency benchmark (bench/spawn) --------------------
//
// Subcommands, each the whole command line (not a step sequence):
//
// stamp FILE [COUNT]
//     append `now - $WREN_SPAWN_NS` (CLOCK_MONOTONIC ns; `now` read as the
//     first thing in main) as one line to FILE and exit 0. With COUNT: once
//     FILE holds COUNT lines, write "done" to the FIFO FILE.done (blocking
//     until someone reads it) and then sleep for ever instead of exiting,
//     so a `restart = always` unit stops cycling at exactly COUNT starts.
// spawnbench MODE N FILE
//     N times, one after the other: read the clock, fork, and in the child
//     execve the service with WREN_SPAWN_NS set to that reading; wait for
//     it. The service is `wren-testkit stamp FILE`, run as:
//       plain         fork+execve of it
//       unshare       /bin/unshare -p -f -m -u -i (BusyBox) of it
//       unshare-proc  the same with --mount-proc
//       crun          `crun run` of the OCI bundle in directory FILE, whose
//                     config.json is written (after the clock reading) with
//                     WREN_SPAWN_NS in process.env; the service stamps
//                     /out/crun.txt inside the bundle's rootfs
// spawnreport N LABEL FILE [LABEL FILE]...
//     print the table: per FILE, the median and p90 of its first N values,
//     in microseconds.

/// CLOCK_MONOTONIC in nanoseconds.
fn bench_clock_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_MONOTONIC: i32 = 1;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec (64-bit time_t on the
    // targets this helper is built for: aarch64 and x86_64 musl).
    let rc = unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Runs a bench subcommand and exits; returns for anything else.
fn bench_main(started_ns: u64) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["stamp", file] => bench_stamp(started_ns, file, None),
        ["stamp", file, count] => {
            let n = count.parse().unwrap_or_else(|_| fail("bad COUNT"));
            bench_stamp(started_ns, file, Some(n))
        }
        ["spawnbench", mode, n, file] => {
            let n = n.parse().unwrap_or_else(|_| fail("bad N"));
            bench_spawn(mode, n, file)
        }
        ["spawnreport", n, rest @ ..] if !rest.is_empty() && rest.len() % 2 == 0 => {
            let n = n.parse().unwrap_or_else(|_| fail("bad N"));
            bench_report(n, rest)
        }
        ["stamp" | "spawnbench" | "spawnreport", ..] => fail(
            "usage: stamp FILE [COUNT] | spawnbench MODE N FILE | spawnreport N (LABEL FILE)...",
        ),
        _ => return,
    }
    exit(0);
}

fn bench_stamp(now: u64, file: &str, count: Option<usize>) {
    let var = std::env::var("WREN_SPAWN_NS").unwrap_or_else(|_| fail("WREN_SPAWN_NS not set"));
    let then: u64 = var
        .trim()
        .parse()
        .unwrap_or_else(|_| fail(&format!("bad WREN_SPAWN_NS: {var}")));
    let line = format!("{}\n", now.saturating_sub(then));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap_or_else(|e| fail(&format!("open {file}: {e}")));
    f.write_all(line.as_bytes())
        .unwrap_or_else(|e| fail(&format!("write {file}: {e}")));
    drop(f);
    let Some(count) = count else { return };
    let lines = std::fs::read_to_string(file)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    if lines < count {
        return;
    }
    let done = format!("{file}.done");
    std::fs::write(&done, "done\n").unwrap_or_else(|e| fail(&format!("write {done}: {e}")));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn bench_cstr(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap_or_else(|_| fail("NUL in argument"))
}

/// The OCI config for `spawnbench crun`: what wren's `root` unit with the
/// default namespaces and `memory.max = 32M` gets (proc, a /dev tmpfs,
/// devpts, shm, a private /tmp; pid mount uts ipc; a cgroup with
/// memory.max).
fn bench_oci_config(spawn_ns: u64) -> String {
    format!(
        r#"{{
  "ociVersion": "1.0.2",
  "process": {{
    "terminal": false,
    "user": {{ "uid": 0, "gid": 0 }},
    "args": ["/usr/bin/wren-testkit", "stamp", "/out/crun.txt"],
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "TERM=linux", "WREN_SPAWN_NS={spawn_ns}"],
    "cwd": "/"
  }},
  "root": {{ "path": "rootfs", "readonly": false }},
  "hostname": "crun",
  "mounts": [
    {{ "destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"] }},
    {{ "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "noexec", "mode=755", "size=64k"] }},
    {{ "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] }},
    {{ "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "nodev", "mode=1777"] }},
    {{ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"] }}
  ],
  "linux": {{
    "namespaces": [{{ "type": "pid" }}, {{ "type": "mount" }}, {{ "type": "uts" }}, {{ "type": "ipc" }}],
    "cgroupsPath": "/bench-crun",
    "resources": {{ "memory": {{ "limit": 33554432 }} }}
  }}
}}
"#
    )
}

fn bench_spawn(mode: &str, n: usize, file: &str) {
    use std::ffi::{c_char, CString};
    extern "C" {
        fn fork() -> i32;
        fn execve(
            path: *const c_char,
            argv: *const *const c_char,
            envp: *const *const c_char,
        ) -> i32;
        fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
        fn _exit(code: i32) -> !;
    }
    let me = std::env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {e}")));
    let me = me.to_str().unwrap_or_else(|| fail("non-UTF-8 exe path"));
    let crun_argv = [
        "/usr/bin/crun",
        "run",
        "--no-pivot",
        "--bundle",
        file,
        "wren-bench",
    ];
    let mut argv: Vec<&str> = match mode {
        "plain" => vec![me],
        "unshare" => vec!["/bin/unshare", "-p", "-f", "-m", "-u", "-i", me],
        "unshare-proc" => vec![
            "/bin/unshare",
            "-p",
            "-f",
            "-m",
            "-u",
            "-i",
            "--mount-proc",
            me,
        ],
        "crun" => crun_argv.to_vec(),
        _ => fail(&format!("unknown spawnbench mode {mode}")),
    };
    if mode != "crun" {
        argv.extend(["stamp", file]);
    }
    let argv_c: Vec<CString> = argv.iter().map(|s| bench_cstr(s)).collect();
    let mut argv_p: Vec<*const c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let path = bench_cstr("PATH=/usr/sbin:/usr/bin:/sbin:/bin");
    let config = format!("{file}/config.json");
    for i in 0..n {
        let t = bench_clock_ns();
        if mode == "crun" {
            std::fs::write(&config, bench_oci_config(t))
                .unwrap_or_else(|e| fail(&format!("write {config}: {e}")));
        }
        let stamp = bench_cstr(&format!("WREN_SPAWN_NS={t}"));
        let envp = [path.as_ptr(), stamp.as_ptr(), std::ptr::null()];
        // SAFETY: this process is single-threaded, so the child may run
        // anything; it only calls execve and _exit on pointers built above,
        // which stay valid (the child has a copy of them).
        let pid = unsafe { fork() };
        if pid == 0 {
            // SAFETY: argv_p and envp are null-terminated arrays of
            // NUL-terminated strings that outlive the call.
            unsafe {
                execve(argv_p[0], argv_p.as_ptr(), envp.as_ptr());
                _exit(127)
            }
        }
        if pid < 0 {
            fail(&format!("fork: {}", std::io::Error::last_os_error()));
        }
        let mut status = 0i32;
        // SAFETY: waits for the child just forked; `status` is writable.
        let r = unsafe { waitpid(pid, &mut status, 0) };
        if r != pid || status != 0 {
            fail(&format!(
                "spawnbench {mode}: run {i} failed (wait status {status:#x})"
            ));
        }
    }
}

fn bench_read(file: &str) -> Vec<u64> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Median and p90 (nearest rank) of `v`, which must be sorted.
fn bench_quantiles(v: &[u64]) -> Option<(f64, u64)> {
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid] as f64
    } else {
        (v[mid - 1] as f64 + v[mid] as f64) / 2.0
    };
    let rank = (v.len() * 9).div_ceil(10);
    Some((median, v[rank.max(1) - 1]))
}

fn bench_report(n: usize, pairs: &[&str]) {
    println!("spawn latency to first instruction, median over {n} (p90), us");
    for pair in pairs.chunks(2) {
        let (label, file) = (pair[0], pair[1]);
        let mut v = bench_read(file);
        v.truncate(n);
        v.sort_unstable();
        match bench_quantiles(&v) {
            Some((median, p90)) => {
                let short = if v.len() < n {
                    format!("  (only {} samples)", v.len())
                } else {
                    String::new()
                };
                println!(
                    "{label:<26}{:>9.0} ({:.0}){short}",
                    median / 1000.0,
                    p90 as f64 / 1000.0
                )
            }
            None => println!("{label:<26}      n/a (no samples in {file})"),
        }
    }
}

// ---- END bench ---------------------------------------------------------------

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
    let v = PROTO_VERSION;
    let mut malformed = vec![5u8, 0, 0, 0];
    // The current version, then an enum tag no Request has, then junk.
    malformed.extend_from_slice(&[v, 0x7f, 0xff, 0xff, 0x00]);
    let mut version = vec![3u8, 0, 0, 0];
    // Version 999 as a postcard varint (0xe7 0x07), then a tag.
    version.extend_from_slice(&[0xe7, 0x07, 0x00]);
    let mut huge = vec![0xffu8, 0xff, 0xff, 0xff];
    huge.extend_from_slice(&[0x01; 16]);
    // A 100-byte frame of which 6 bytes come.
    let truncated = vec![100u8, 0, 0, 0, v, 0x00];
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
/// hand: postcard of (PROTO_VERSION, Request::Log { name, follow: true }),
/// `Log` being variant 5 of `Request`.
fn ctlstall(socket: &str, unit: &str, stall: Duration) {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;
    if unit.is_empty() || unit.len() > 32 {
        fail("ctlstall: unit name of 1-32 bytes");
    }
    let mut payload = vec![PROTO_VERSION, 0x05, unit.len() as u8];
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

#[cfg(test)]
mod bench_tests {
    use super::*;

    #[test]
    fn quantiles_of_odd_even_and_single() {
        assert_eq!(bench_quantiles(&[]), None);
        assert_eq!(bench_quantiles(&[7]), Some((7.0, 7)));
        assert_eq!(bench_quantiles(&[1, 2, 3, 4]), Some((2.5, 4)));
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(bench_quantiles(&v), Some((50.5, 90)));
        let v: Vec<u64> = (1..=11).collect();
        assert_eq!(bench_quantiles(&v), Some((6.0, 10)));
    }

    #[test]
    fn clock_is_monotonic_and_nonzero() {
        let a = bench_clock_ns();
        let b = bench_clock_ns();
        assert!(a > 0 && b >= a);
    }
}
