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
            "forever" => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            other => match nstests_step(&args, i) {
                Some(next) => i = next,
                None => fail(&format!("unknown step: {other}")),
            },
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
    ) || is_nstests_step(s)
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
    matches!(s, "ls" | "copy" | "trywrite" | "waitfor" | "forkbomb")
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
