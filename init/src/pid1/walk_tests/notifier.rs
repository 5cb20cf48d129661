//! The walk's `ready = sd_notify` program: this test binary again, run by
//! a unit as `sd_notify_unit` with `$WALK_NOTIFY` set (a /bin/sh cannot
//! send a datagram). It says to `$NOTIFY_SOCKET` what its plan says, in
//! order, then sleeps as a service does:
//!
//! - `s<ms>`: sleep
//! - `r`: `READY=1`
//! - `b`: `BARRIER=1` with a pipe's write end, then a wait (a second at
//!   most) for PID 1 to close it, as `systemd-notify --ready` does
//!   (PID 1 has a closer read that datagram: `sys::passed`)
//! - `w<ms>x<n>`: `WATCHDOG=1` n times, every ms
//! - `e<code>`: exit
//!
//! A datagram to a socket gone (its run let go of) is not an error.

use super::Rng;
use rustix::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// The unit's `exec` and `env` lines for a random plan; `watchdog`: the
/// unit has one (every 20 ms at most, `watchdog = 60ms`).
pub(super) fn unit_lines(rng: &mut Rng, watchdog: bool) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut plan = rng
        .pick(&["r", "r", "s20 r", "s120 r", "b r", "r b", ""])
        .to_owned();
    if watchdog {
        plan += rng.pick(&[" w20x1000", " w20x3", " w80x10", ""]);
    }
    plan += rng.pick(&["", "", "", " e0", " e1"]);
    format!(
        "exec = {} --exact pid1::walk_tests::notifier::sd_notify_unit --test-threads=1 -q\n\
         env = WALK_NOTIFY={}\n",
        exe.display(),
        plan.trim().replace(' ', ",")
    )
}

/// Not a test: the walk's sd_notify unit (see the module), which does
/// nothing without `$WALK_NOTIFY`.
#[test]
fn sd_notify_unit() {
    let (Ok(plan), Ok(path)) = (std::env::var("WALK_NOTIFY"), std::env::var("NOTIFY_SOCKET"))
    else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        std::process::exit(2);
    };
    let say = |msg: &str| {
        let _ = sock.send_to(msg.as_bytes(), &path);
    };
    let ms = |n: &str| Duration::from_millis(n.parse().unwrap_or(0));
    for step in plan.split(',').filter(|s| !s.is_empty()) {
        let (op, arg) = step.split_at(1);
        match op {
            "s" => std::thread::sleep(ms(arg)),
            "r" => say("READY=1"),
            "b" => barrier(&path),
            "w" => {
                let (every, n) = arg.split_once('x').unwrap_or((arg, "1"));
                for _ in 0..n.parse().unwrap_or(1) {
                    say("WATCHDOG=1");
                    std::thread::sleep(ms(every));
                }
            }
            "e" => std::process::exit(arg.parse().unwrap_or(0)),
            _ => std::process::exit(3),
        }
    }
    std::thread::sleep(Duration::from_secs(30));
}

/// `BARRIER=1` with a pipe's write end, and a wait for its hang-up: the
/// fd closed by whoever read the datagram.
fn barrier(path: &str) {
    let (Ok((rd, wr)), Ok(sock)) = (rustix::pipe::pipe(), UnixDatagram::unbound()) else {
        return;
    };
    if sock.connect(path).is_err() {
        return;
    }
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [core::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [wr.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let iov = [rustix::io::IoSlice::new(b"BARRIER=1")];
    if rustix::net::sendmsg(&sock, &iov, &mut control, SendFlags::empty()).is_err() {
        return;
    }
    drop(wr);
    let _ = crate::testutil::poll_in(&rd, 1);
}
