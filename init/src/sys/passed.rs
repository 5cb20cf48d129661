//! Fds a unit passes to PID 1 with a message (`SCM_RIGHTS`: on its
//! `sd_notify` socket, `systemd-notify --ready` sends one with BARRIER=1,
//! and any unit may send up to 253 a message; on a control connection).
//! PID 1 keeps none, and takes none into its own fd table: every close
//! of an fd, not only the last, calls its file's flush, which a FUSE file
//! system sends to its daemon and waits for uninterruptibly (a unit's own
//! daemon, mounted with `fusermount`, may never answer; NFS and CIFS
//! write back what is dirty); and the last close is the file's release,
//! which can wait too: a TCP socket set to linger for its unsent data
//! (for ever, at its largest), a serial port for its output to drain (30
//! s by default), a block device for its writeback. Read without room
//! for control data, or left queued when the socket is closed, the fds
//! are released by the kernel in the time of PID 1's read or close.
//!
//! So PID 1 peeks (`recv_dgram`, `recv_stream`): with no room for control
//! data, a peek says whether fds came (the kernel drops the peek's own
//! references, never the last: the message still holds one). A
//! notify datagram that carries fds is read by a closer: a copy of PID 1
//! (a fork, its own fd table, named `wren-closer`) that closes every fd
//! it was born with but the socket, reads that one datagram, makes each
//! fd not wait where it can (a socket's linger off, a terminal's pending
//! output flushed, a passed unix socket's own queue read, three levels
//! down) and closes it, waiting in its own time if it must. PID 1 takes
//! the datagram's bytes from its peek and reads the socket again only
//! once that closer is reaped (`pid1::sources`). A control request that
//! comes with fds is not read at all: the connection is turned away.
//!
//! A socket of PID 1's own that it closes with anything still queued (a
//! unit's notify socket, a control connection) is moved out of its fd
//! table into the queue of a socket pair of its own, the park: a child
//! PID 1 forks meanwhile copies no such fd. A closer takes the park,
//! reads it to its end and lets each socket go as above. PID 1 closes
//! its copies and its ends of the park after the send and the fork: not
//! the last closes, so no release is PID 1's; sockets have no flush. A
//! closer killed or dead on the way releases what it still holds in its
//! own exit.
//!
//! `CLOSERS` run at most; a closer that has ended keeps its place until
//! PID 1 reaps it (`reaped`), which is when the socket it read is read
//! again. With every place taken, a datagram with fds is left queued
//! (`Dgram::Held`), parked sockets wait in the park, and the closers
//! that have run `GRACE_MS` are killed, the younger ones once they have
//! (`due`, `tend`: those made together in a burst are left to read): a
//! linger's or a terminal's wait ends with the kill, and the release
//! goes on without waiting; a FUSE daemon's answer to a flush is waited
//! for even so. Places come free as the closers are reaped. A unit that
//! holds closers in a wait a kill does not end (a FUSE flush, a block
//! device's writeback) so holds up the datagrams with fds that other
//! units send, and what they send after them, not PID 1. Before an
//! exec, the closers are killed and waited for (`before_exec`).
//!
//! Only where no closer can be made (no memory or no pid for the copy)
//! does PID 1 read such a datagram itself, the fds to the park (its close
//! of its own copy then calls each file's flush), and where the park
//! cannot be had either (no memory for a socket, its queue full: some
//! hundreds of sockets) let them go itself, as it did before there were
//! closers.
//!
//! Not covered: the kernel's collector of unix sockets in flight, which
//! before Linux 6.8 runs in the process that closes any unix socket
//! while some are in flight, and releases what it collects there: PID 1
//! closes unix sockets.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use rustix::io::{Errno, IoSlice, IoSliceMut};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// The most fds the kernel passes with one message (`SCM_MAX_FD`).
const MAX_FDS: usize = 253;

/// How deep `let_go` follows unix sockets passed inside passed ones.
const DEPTH: u8 = 2;

/// Closers that may run at once (see the module's comment).
const CLOSERS: usize = 4;

/// The closers' pids, 0 for a free place: cleared as each is reaped
/// (`reaped`). A zombie keeps its place until that reap, which is where
/// a notify socket its closer read is read again. Free too is a place
/// whose pid is no child of PID 1's: every reap of any child in PID 1
/// calls `reaped`, so that is a test's process, whose waits do not.
static CLOSING: [AtomicU32; CLOSERS] = [const { AtomicU32::new(0) }; CLOSERS];

/// When each closer was made (CLOCK_MONOTONIC, ms).
static BORN: [AtomicU64; CLOSERS] = [const { AtomicU64::new(0) }; CLOSERS];

/// Something waits for a place (a datagram left queued, the park): set
/// when none was free, cleared by a reap that frees one.
static WANTED: AtomicBool = AtomicBool::new(false);

/// How long a closer runs before it may be killed to free its place: a
/// closer's work takes microseconds to a few milliseconds unless its
/// closes wait, and those made together in one burst (a boot's
/// `systemd-notify --ready`s) are not killed before they have read.
const GRACE_MS: u64 = 250;

/// The park's sending and receiving ends (high and low 32 bits), `NO_PARK`
/// for none: one word, so that it is taken whole (`take_park`).
static PARK: AtomicU64 = AtomicU64::new(NO_PARK);
const NO_PARK: u64 = u64::MAX;

/// Set in a closer, whose memory is its own copy of PID 1's: the fds it
/// takes it lets go itself.
static IN_CLOSER: AtomicBool = AtomicBool::new(false);

/// In a closer that reads a notify datagram: the write end of the pipe
/// PID 1 watches, closed once the datagram is read (`said_done`); -1 for
/// none.
static DONE: AtomicI32 = AtomicI32::new(-1);

/// The datagram is read: `DONE` closed, so that PID 1 reads the socket
/// again while the closes of its fds wait.
fn said_done() {
    let fd = DONE.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: `fd` is the pipe's write end the closer kept open
        // (`become_closer`) and stored here; swapped out, this is its one
        // owner, and nothing else in the closer closes it.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

/// The fds of one message.
type Fds = heapless::Vec<OwnedFd, MAX_FDS>;

/// What `recv_dgram` did with the datagram at the head of a socket.
#[derive(Debug)]
pub enum Dgram {
    /// Read: its bytes, cut to the buffer. It carried no fds (or, where no
    /// closer could be made, those it carried went to the park).
    Read(usize),
    /// Peeked, its `bytes` in the buffer: it carries fds, and the closer
    /// `pid` reads it. The socket is not to be read until that closer has
    /// (`read`, a pipe's read end, at its end of file: the closer closes
    /// the other end once it has the datagram, or dies) or, without
    /// `read` (no pipe to be had), until it is reaped (`reaped`): what is
    /// read meanwhile would be that datagram again.
    Reading {
        bytes: usize,
        pid: u32,
        read: Option<OwnedFd>,
    },
    /// It carries fds and every closer's place is taken (those closers
    /// that have run `GRACE_MS` killed, the others at `due`): left queued,
    /// unread. The socket is not to be read until a closer is reaped.
    Held,
}

/// The datagram at the head of `sock` (a socket only PID 1 reads), its
/// bytes into `buf`, without waiting. One that carries fds is read by a
/// closer, which inherits the socket: PID 1 never takes those fds into
/// its own table, so no close of PID 1's calls their files' flush.
pub fn recv_dgram(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Dgram, Errno> {
    let (bytes, fds) = peek(sock, buf)?;
    if !fds {
        // The same datagram taken, none reading it but PID 1.
        rustix::net::recv(sock, &mut [0u8; 0], RecvFlags::DONTWAIT)?;
        return Ok(Dgram::Read(bytes));
    }
    let Some(place) = free_place() else {
        return Ok(Dgram::Held);
    };
    let (read, done) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        Ok((r, w)) => (Some(r), Some(w)),
        Err(_) => (None, None),
    };
    let reader = super::clone::clone_into(crate::unit::Namespaces::NONE, None, || {
        let keep = done.as_ref().map(AsFd::as_fd);
        become_closer(&[Some(sock), keep]);
        // Said once the datagram is taken, before its fds' closes: PID 1
        // reads the socket again while they wait.
        DONE.store(keep.map_or(-1, |d| d.as_raw_fd()), Ordering::Relaxed);
        // One datagram, the one peeked: its fds let go as a socket PID 1
        // closes lets go what is queued on it.
        let _ = recv_at(sock, &mut [0u8; 512], DEPTH + 1);
        super::clone::exit(0)
    });
    match reader {
        Ok(pid) => {
            took(place, pid);
            Ok(Dgram::Reading { bytes, pid, read })
        }
        // No copy to be had (no memory, no pid): read here, as before
        // there were closers (the fds to the park, where PID 1's close of
        // its own copy still calls each file's flush).
        Err(_) => recv_at(sock, buf, DEPTH).map(Dgram::Read),
    }
}

/// Some bytes of a stream into `buf`, as read(2) would read them, without
/// waiting; EPERM, and nothing read, where fds come with them (a peek
/// says so): PID 1 takes none into its table, and a peer that sends them
/// is turned away (its connection closed by `close`, which hands it to a
/// closer with what is queued).
pub fn recv_stream(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    let (bytes, fds) = peek(sock, buf)?;
    if fds {
        return Err(Errno::PERM);
    }
    // Exactly the bytes peeked: fds come only with later messages, which
    // a read of no more than these does not reach.
    let got = buf.get_mut(..bytes).unwrap_or_default();
    Ok(rustix::net::recv(sock, got, RecvFlags::DONTWAIT)?.0)
}

/// What is at the head of `sock` into `buf`, left there, without waiting:
/// its bytes, and whether fds come with them. No room for control data:
/// the kernel says fds came (`MSG_CTRUNC`) and drops the peek's own
/// references to them, never the last: the message holds one. It says
/// so for credentials too, were the socket to ask for them (SO_PASSCRED,
/// SO_PASSPIDFD, SO_PASSSEC): PID 1's do not.
fn peek(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, bool), Errno> {
    let mut none = RecvAncillaryBuffer::default();
    let flags = RecvFlags::DONTWAIT | RecvFlags::PEEK;
    let peeked = rustix::net::recvmsg(sock, &mut [IoSliceMut::new(buf)], &mut none, flags)?;
    Ok((peeked.bytes, peeked.flags.contains(ReturnFlags::CTRUNC)))
}

/// One datagram or stream message of `sock` into `buf`, the fds passed
/// with it handed to a closer (`hand_off`): a closer's read, and PID 1's
/// where no closer could be made.
fn recv_at(sock: BorrowedFd<'_>, buf: &mut [u8], depth: u8) -> Result<usize, Errno> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(buf)],
        &mut control,
        RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
    )?;
    said_done();
    let mut fds = Fds::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(passed) = message {
            for fd in passed {
                // One message holds at most MAX_FDS: never refused.
                if IN_CLOSER.load(Ordering::Relaxed) {
                    let_go(fd, depth);
                } else if let Err(fd) = fds.push(fd) {
                    let_go(fd, depth);
                }
            }
        }
    }
    hand_off(fds, depth);
    Ok(got.bytes)
}

/// Reads a closer makes of a socket passed inside a passed one.
const DRAIN_READS: usize = 16;

/// What is still queued on `sock` taken (`recv_at`), before its close
/// would release the fds passed with it as they are: `reads` reads at
/// most, a datagram or a stream's message with fds each, or 512 bytes
/// of a stream without.
fn drain_at(sock: BorrowedFd<'_>, depth: u8, reads: usize) {
    let mut buf = [0u8; 512];
    for _ in 0..reads {
        match recv_at(sock, &mut buf, depth) {
            Ok(0) if reads == usize::MAX => return,
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Close `sock`, a socket of PID 1's own (a unit's readiness socket, a
/// control connection; a pipe is closed as it is). Its close would
/// release what is still queued on it, the fds passed with that as they
/// are: one with anything queued goes to a closer as a parked fd would
/// (it reads it, `DRAIN_READS` reads, `DEPTH` levels down, and closes
/// it); one with nothing, the common case, is closed at once.
pub fn close(sock: OwnedFd) {
    // Nothing more can come (a sender gets EPIPE), so what the peek finds
    // queued is all there is.
    let _ = rustix::net::shutdown(&sock, rustix::net::Shutdown::Read);
    if queued(sock.as_fd()) {
        let mut fds = Fds::new();
        let _ = fds.push(sock);
        hand_off(fds, DEPTH + 1);
    }
}

/// Whether anything is queued on `sock` (false for what is not a socket).
/// A peek takes references of its own on the fds queued and drops only
/// those: it releases nothing.
fn queued(sock: BorrowedFd<'_>) -> bool {
    match peek(sock, &mut [0u8; 1]) {
        // A stream's end of file; a datagram socket's empty datagram.
        Ok((0, _)) => super::sockopt::socket_type(sock) != Ok(SocketType::STREAM),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// `fds` out of PID 1's table: sent into the park (PID 1's copies then
/// closed, not the last: the park's queue holds the files), which a
/// closer takes (`unpark`). Let go here where the park cannot be had,
/// and in a closer.
fn hand_off(fds: Fds, depth: u8) {
    if fds.is_empty() {
        return;
    }
    // (A closer lets every fd go as it reads it: `fds` is empty there.)
    let Some((tx, rx)) = take_park().or_else(new_park) else {
        return let_go_all(fds, depth);
    };
    if send_fds(tx.as_fd(), &fds).is_err() {
        put_park(tx, rx);
        return let_go_all(fds, depth);
    }
    drop(fds);
    put_park(tx, rx);
    unpark();
}

/// The park to a closer, if a place is free and the copy can be made
/// (`free_place`: with every place taken, those past their grace are
/// killed, and PID 1's reap of a closer calls this again; a copy that
/// cannot be made is tried again at `due`).
pub fn unpark() {
    if PARK.load(Ordering::Relaxed) == NO_PARK {
        return;
    }
    let Some(place) = free_place() else {
        return;
    };
    let Some((tx, rx)) = take_park() else {
        return;
    };
    match give(rx.as_fd()) {
        // PID 1's ends closed (`tx`, `rx` dropped): the closer has its
        // copy of `rx` and reads what is queued there, all there will be
        // (the park is no longer PID 1's), its own copy of `tx` closed
        // first.
        Ok(pid) => {
            took(place, pid);
            RETRY_AT.store(0, Ordering::Relaxed);
        }
        Err(_) => {
            put_park(tx, rx);
            if running().next().is_none() {
                RETRY_AT.store(ms().saturating_add(RETRY_MS).max(1), Ordering::Relaxed);
            }
        }
    }
}

/// A closer's place not held by a child (0, or no child of PID 1's); with
/// none, `WANTED` set and the closers that have run `GRACE_MS` killed,
/// so that places come free as they are reaped (the younger are killed
/// at `due`, if still running).
fn free_place() -> Option<usize> {
    #[cfg(test)]
    if !REAPS_ITSELF.load(Ordering::Relaxed) {
        reap_ended();
    }
    if let Some(i) = first_free() {
        return Some(i);
    }
    WANTED.store(true, Ordering::Relaxed);
    kill_aged(ms());
    None
}

/// The first place not held by a child of PID 1's (see `CLOSING`).
fn first_free() -> Option<usize> {
    CLOSING
        .iter()
        .position(|c| !super::raw::child(c.load(Ordering::Relaxed)))
}

/// The running closers made `GRACE_MS` or more before `now` killed, once
/// (`KILLED`: one in a wait a kill does not end runs on, and is not
/// `due` again).
fn kill_aged(now: u64) {
    for (pid, born) in running() {
        if now >= born.load(Ordering::Relaxed).saturating_add(GRACE_MS) {
            kill(pid);
            born.store(KILLED, Ordering::Relaxed);
        }
    }
}

/// The closers still running (not ended, not reaped), with their `BORN`.
fn running() -> impl Iterator<Item = (u32, &'static AtomicU64)> {
    CLOSING
        .iter()
        .zip(&BORN)
        .map(|(c, born)| (c.load(Ordering::Relaxed), born))
        .filter(|&(pid, _)| super::raw::running_child(pid))
}

/// SIGKILL for the running closer `pid` (not 0, so never the whole
/// process group: `running_child` is false for 0).
fn kill(pid: u32) {
    if let Ok(p) = i32::try_from(pid) {
        let _ = super::signal::kill(p, libc::SIGKILL);
    }
}

/// `BORN` of a closer killed.
const KILLED: u64 = u64::MAX;

/// When PID 1's loop is next to call `tend`: while something waits for a
/// place, the soonest a running closer not yet killed has run
/// `GRACE_MS`. None when nothing waits, or when no closer is left to kill
/// (every one ended, or killed: a reap comes, but for one in a wait a
/// kill does not end, which is left to it).
pub fn due() -> Option<u64> {
    let kills = WANTED
        .load(Ordering::Relaxed)
        .then(|| {
            running()
                .map(|(_, born)| born.load(Ordering::Relaxed))
                .filter(|&born| born != KILLED)
                .map(|born| born.saturating_add(GRACE_MS))
                .min()
        })
        .flatten();
    // A closer for the park that could not be made, with none running
    // whose reap would try again: tried again then.
    let retry = Some(RETRY_AT.load(Ordering::Relaxed))
        .filter(|&t| t != 0 && PARK.load(Ordering::Relaxed) != NO_PARK);
    kills.into_iter().chain(retry).min()
}

/// At `due`: the closers that have run `GRACE_MS` killed, their reaps
/// to free their places for what waits.
pub fn tend() {
    let now = ms();
    if WANTED.load(Ordering::Relaxed) {
        kill_aged(now);
    }
    let retry = RETRY_AT.load(Ordering::Relaxed);
    if retry != 0 && now >= retry {
        RETRY_AT.store(0, Ordering::Relaxed);
        unpark();
    }
}

/// When `unpark` tries again for a park whose closer could not be made
/// (no memory, no pid) while none ran (ms; 0 for never).
static RETRY_AT: AtomicU64 = AtomicU64::new(0);

/// How long after a closer for the park could not be made it is tried
/// again, where no closer's reap would (a wake-up a second at most,
/// only while fds wait).
const RETRY_MS: u64 = 1000;

/// `pid`, just made, in place `i`.
fn took(i: usize, pid: u32) {
    if let (Some(c), Some(born)) = (CLOSING.get(i), BORN.get(i)) {
        born.store(ms(), Ordering::Relaxed);
        c.store(pid, Ordering::Relaxed);
    }
}

fn ms() -> u64 {
    super::clock::now_ms()
}

/// How long `before_exec` waits for the closers it kills to end, in
/// naps of 1 ms.
const EXEC_WAIT_MS: u64 = 100;

/// Before PID 1's exec (`initctl reexec`). A closer yet to read its
/// notify datagram would read it after the exec, while the new PID 1,
/// which knows nothing of it, reads the socket too: that datagram's bytes
/// taken twice, or the next one taken unseen. So the closers are killed
/// and waited for, `EXEC_WAIT_MS` at most: a kill ends one at once but in
/// a wait it does not end, a close's (a FUSE flush), which comes after
/// its read. Then the exec would close the park in its time: fds waiting
/// there go to a closer whether a place is free or not; where none can be
/// made, they are released here, as the exec would.
pub fn before_exec() {
    for (pid, _) in running() {
        kill(pid);
    }
    // Counted, not timed: bounded even by a clock that cannot be read.
    for _ in 0..EXEC_WAIT_MS {
        if running().next().is_none() {
            break;
        }
        super::clock::sleep(core::time::Duration::from_millis(1));
    }
    if let Some((_tx, rx)) = take_park() {
        let _ = give(rx.as_fd());
    }
}

/// A child of PID 1 reaped: its place freed if it was a closer (true),
/// for what waits (the caller hands on the park, `unpark`, and reads
/// again the sockets left queued).
pub fn reaped(pid: u32) -> bool {
    let freed = pid != 0
        && CLOSING.iter().any(|c| {
            c.compare_exchange(pid, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        });
    if freed {
        WANTED.store(false, Ordering::Relaxed);
    }
    freed
}

/// A closer for the park whose receiving end is `rx`.
fn give(rx: BorrowedFd<'_>) -> Result<u32, Errno> {
    super::clone::clone_into(crate::unit::Namespaces::NONE, None, || {
        become_closer(&[Some(rx)]);
        // Each fd let go as a socket PID 1 closes would be (`close`): one
        // level deeper than those of a message need.
        drain_at(rx, DEPTH + 1, usize::MAX);
        super::clone::exit(0)
    })
}

/// In a closer, which keeps of PID 1's fds only `keep`, the socket it
/// reads (and a notify datagram's reader, its pipe's write end): the
/// others are not its to keep open (the listener, the units' pipes, the
/// watchdog; the park's sending end), and every fd it reads it lets go
/// itself.
fn become_closer(keep: &[Option<BorrowedFd<'_>>]) {
    IN_CLOSER.store(true, Ordering::Relaxed);
    let _ = rustix::thread::set_name(c"wren-closer");
    let mut kept: heapless::Vec<BorrowedFd<'_>, 2> = heapless::Vec::new();
    for fd in keep.iter().flatten() {
        let _ = kept.push(*fd);
    }
    super::fd::close_all_but(&kept);
}

/// A new park: a stream pair, so that its queue holds some hundreds of
/// messages (a datagram pair's, `net.unix.max_dgram_qlen`, ten), both
/// ends above the fds a child started through the trampoline gets (where
/// the kernel lets `fd::raise` move them and the trampoline runs: else a
/// child holds a copy until its exec, which only keeps the park's queue
/// alive longer).
fn new_park() -> Option<(OwnedFd, OwnedFd)> {
    let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
    let (tx, rx) =
        rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, flags, None).ok()?;
    Some((super::fd::raise(tx), super::fd::raise(rx)))
}

/// `fds` sent on `tx` with one byte.
fn send_fds(tx: BorrowedFd<'_>, fds: &Fds) -> Result<(), Errno> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let mut raw: heapless::Vec<BorrowedFd<'_>, MAX_FDS> = heapless::Vec::new();
    for fd in fds {
        let _ = raw.push(fd.as_fd());
    }
    if !control.push(SendAncillaryMessage::ScmRights(&raw)) {
        return Err(Errno::NOBUFS);
    }
    let sent = rustix::net::sendmsg(tx, &[IoSlice::new(&[0])], &mut control, SendFlags::DONTWAIT)?;
    match sent {
        1 => Ok(()),
        _ => Err(Errno::AGAIN),
    }
}

fn take_park() -> Option<(OwnedFd, OwnedFd)> {
    let both = PARK.swap(NO_PARK, Ordering::Relaxed);
    // The two halves are fds `put_park` stored: not negative.
    let (tx, rx) = ((both >> 32) as u32 as i32, both as u32 as i32);
    if both == NO_PARK || tx < 0 || rx < 0 {
        return None;
    }
    // SAFETY: both numbers were put there by `put_park` from fds it gave up
    // ownership of (`into_raw_fd`), and are swapped out here, so these
    // OwnedFds are their one owner; nothing else closes them meanwhile
    // (PID 1 closes no number it does not own).
    Some(unsafe { (OwnedFd::from_raw_fd(tx), OwnedFd::from_raw_fd(rx)) })
}

fn put_park(tx: OwnedFd, rx: OwnedFd) {
    // Fds are not negative: the casts keep their values.
    let (tx, rx) = (tx.into_raw_fd() as u32, rx.into_raw_fd() as u32);
    PARK.store(u64::from(tx) << 32 | u64::from(rx), Ordering::Relaxed);
}

fn let_go_all(fds: Fds, depth: u8) {
    for fd in fds {
        let_go(fd, depth);
    }
}

/// Close `fd` so that the close does not wait: a socket's linger turned
/// off (refused by what is not one), a terminal's unsent output dropped;
/// a unix socket's own queue read first (`depth` levels of sockets
/// passed inside passed ones), as its close would release the fds in it
/// as they are.
fn let_go(fd: OwnedFd, depth: u8) {
    let _ = rustix::net::sockopt::set_socket_linger(&fd, None);
    if rustix::termios::isatty(&fd) {
        let _ = rustix::termios::tcflush(&fd, rustix::termios::QueueSelector::OFlush);
    }
    if let Some(d) = depth.checked_sub(1) {
        if rustix::net::getsockname(&fd).is_ok_and(|a| a.address_family() == AddressFamily::UNIX) {
            drain_at(fd.as_fd(), d, DRAIN_READS);
        }
    }
}

/// A test that reaps as PID 1's loop does (its own process): `free_place`
/// leaves the closers that have ended to it.
#[cfg(test)]
static REAPS_ITSELF: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
pub fn reaps_itself() {
    REAPS_ITSELF.store(true, Ordering::Relaxed);
}

/// The closers' places: their pids, 0 for a free one (the tests of PID 1).
#[cfg(test)]
pub fn places() -> [u32; CLOSERS] {
    CLOSING.each_ref().map(|c| c.load(Ordering::Relaxed))
}

/// Fds wait in the park, and no closer's making failed (which `due`
/// tries again): a place must be taken, each (the tests of PID 1).
#[cfg(test)]
pub fn parked() -> bool {
    PARK.load(Ordering::Relaxed) != NO_PARK && RETRY_AT.load(Ordering::Relaxed) == 0
}

/// The free places taken by `pids`, children of the test's process as
/// closers are PID 1's, until one has none: a walk's crowd, so that a
/// datagram with fds waits for a place (`Dgram::Held`) until PID 1 kills
/// the aged and reaps them. How many were taken.
#[cfg(test)]
pub fn crowd(pids: &[u32]) -> usize {
    let mut taken = 0;
    for &pid in pids {
        let Some(i) = first_free() else { break };
        took(i, pid);
        taken += 1;
    }
    taken
}

/// In a test's process, which has no PID 1 loop to reap them, unless it
/// `reaps_itself`: the closers that have ended reaped and their places
/// freed (a zombie keeps its place), as a place is looked for.
#[cfg(test)]
fn reap_ended() {
    for c in &CLOSING {
        let pid = c.load(Ordering::Relaxed);
        if super::raw::child(pid) && !super::raw::running_child(pid) {
            let _ = crate::testutil::wait_status(pid);
            let _ = reaped(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{dgram_pair as pair, lingering, nested, send_with_fd};
    use std::time::{Duration, Instant};

    /// What a closer does, here: a lingering socket let go does not wait
    /// (20 s without the linger turned off), nor one queued in a unix
    /// socket `DEPTH` levels down, whose close would release it as it is.
    #[test]
    fn let_go_waits_neither_on_a_lingering_socket_nor_on_one_queued_in_a_socket() {
        let (c, _server) = lingering();
        let t = Instant::now();
        let_go(c.into(), DEPTH);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let (inner, _server) = nested(usize::from(DEPTH));
        let t = Instant::now();
        let_go(inner, DEPTH);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    /// What `close` decides on: whether anything is queued (an empty
    /// datagram may carry fds).
    #[test]
    fn what_is_queued() {
        let (a, b) = pair();
        assert!(!queued(b.as_fd()));
        rustix::net::send(&a, b"", SendFlags::empty()).unwrap();
        assert!(queued(b.as_fd()));
        let flags = SocketFlags::CLOEXEC;
        let (s, t) =
            rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, flags, None).unwrap();
        assert!(!queued(t.as_fd()));
        rustix::io::write(&s, b"x").unwrap();
        assert!(queued(t.as_fd()));
        drop(s);
        let _ = rustix::io::read(&t, &mut [0u8; 1]).unwrap();
        assert!(!queued(t.as_fd()), "a stream at its end of file");
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert!(!queued(r.as_fd()), "a pipe is not a socket");
    }

    /// A stream's bytes are read as they come; with fds among them,
    /// nothing is read (EPERM), and what is queued stays for a closer.
    #[test]
    fn a_stream_with_fds_is_not_read() {
        let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
        let (s, t) =
            rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, flags, None).unwrap();
        rustix::io::write(&s, b"abc").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(recv_stream(t.as_fd(), &mut buf), Ok(3));
        assert_eq!(&buf[..3], b"abc");
        assert!(!queued(t.as_fd()));
        assert_eq!(recv_stream(t.as_fd(), &mut buf), Err(Errno::AGAIN));
        let (x, y) = pair();
        rustix::io::write(&s, b"de").unwrap();
        send_with_fd(s.as_fd(), b"f", y.as_fd());
        drop(y);
        assert_eq!(recv_stream(t.as_fd(), &mut buf), Err(Errno::PERM));
        assert!(queued(t.as_fd()));
        assert!(!gone(&x), "not released");
    }

    fn closers() -> Vec<u32> {
        CLOSING
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .filter(|&p| p != 0)
            .collect()
    }

    /// `pid` ended within `secs`, reaped and its place freed as PID 1's
    /// loop does (`reaped`): its exit code, None if it had not.
    fn ended_within(pid: u32, secs: u64) -> Option<i32> {
        if !crate::testutil::ended_in(pid, secs) {
            return None;
        }
        let st = crate::testutil::wait_status(pid);
        assert!(reaped(pid));
        st.map(|s| s.exit_status().or(s.terminating_signal()).unwrap_or(-1))
    }

    /// The peer of `x` is gone (its last copy closed): a send is refused.
    fn gone(x: &OwnedFd) -> bool {
        rustix::net::send(x, b"y", SendFlags::DONTWAIT) == Err(Errno::CONNREFUSED)
    }

    /// `recv_dgram` of `sock`'s head datagram, which carries fds: its bytes
    /// and the closer that reads it.
    fn reading(sock: &OwnedFd, buf: &mut [u8]) -> (usize, u32) {
        match recv_dgram(sock.as_fd(), buf) {
            Ok(Dgram::Reading { bytes, pid, .. }) => (bytes, pid),
            got => panic!("a closer reads it: {got:?}"),
        }
    }

    /// Every closer's place taken by a running child (a `sleep`).
    fn every_place_taken() -> Vec<std::process::Child> {
        let sleepers: Vec<_> = (0..CLOSERS)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("30")
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (i, s) in sleepers.iter().enumerate() {
            took(i, s.id());
        }
        sleepers
    }

    /// Every sleeper still runs: taken for closers made a moment ago, none
    /// was killed.
    fn spared(sleepers: &mut [std::process::Child]) {
        for s in sleepers {
            assert!(s.try_wait().unwrap().is_none(), "killed within its grace");
        }
    }

    /// `GRACE_MS` waited for, as PID 1's timer does (`due`), then `tend`.
    fn grace_over() {
        let at = due().expect("a closer to kill, in time");
        assert!(at > ms() && at <= ms() + GRACE_MS, "{at}");
        std::thread::sleep(Duration::from_millis(at.saturating_sub(ms()) + 1));
        tend();
        assert_eq!(due(), None, "killed once");
    }

    /// The sleepers were killed (the places taken, a closer wanted), and
    /// are reaped as PID 1 reaps, their places freed.
    fn killed(sleepers: Vec<std::process::Child>) {
        for mut s in sleepers {
            let st = s.wait().unwrap();
            assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9));
            assert!(reaped(s.id()));
        }
    }

    /// A socket of PID 1's closed (`close`) with a socket passed on it
    /// queued: the passed socket's peer (`gone` once it is closed).
    fn closed_with_one_queued() -> OwnedFd {
        let (q, held) = pair();
        let (x, y) = pair();
        send_with_fd(q.as_fd(), b"x", y.as_fd());
        drop(y);
        close(held);
        x
    }

    /// The closer `pid`, named so, still runs (it waits).
    fn waiting_closer(pid: u32) {
        let t = Instant::now();
        let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        while comm().trim() != "wren-closer" {
            assert!(t.elapsed() < Duration::from_secs(10), "{}", comm());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(crate::sys::raw::running_child(pid), "the closer waits");
        assert_eq!(closers(), vec![pid]);
    }

    /// In a process of its own: the places and the park are global, and
    /// its closers are reaped there.
    #[test]
    fn closers_take_what_pid1_is_passed() {
        crate::testutil::alone!(closers_take_what_pid1_is_passed);
        reaps_itself();
        let (a, b) = pair();
        let mut buf = [0u8; 64];
        // 1. A lingering socket four unix sockets down (deeper than a
        // closer reads): its datagram's bytes come at once, a closer reads
        // the datagram and waits out the linger, and ends once the peer is
        // gone.
        let (inner, server) = nested(usize::from(DEPTH) + 2);
        send_with_fd(a.as_fd(), b"FDSTORE=1", inner.as_fd());
        drop(inner);
        let t = Instant::now();
        let Ok(Dgram::Reading {
            bytes: 9,
            pid,
            read: Some(read),
        }) = recv_dgram(b.as_fd(), &mut buf)
        else {
            panic!("a closer reads it");
        };
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(&buf[..9], b"FDSTORE=1");
        // Its pipe says it has the datagram while its close still waits.
        assert!(!crate::testutil::poll_in(&read, 10).is_empty(), "said");
        assert_eq!(rustix::io::read(&read, &mut [0u8; 1]), Ok(0));
        waiting_closer(pid);
        assert!(!queued(b.as_fd()), "the closer took the datagram");
        assert!(PARK.load(Ordering::Relaxed) == NO_PARK, "nothing parked");
        drop(server);
        assert_eq!(ended_within(pid, 10), Some(0));
        // 2. A datagram without fds is read here.
        rustix::net::send(&a, b"READY=1", SendFlags::empty()).unwrap();
        assert!(matches!(
            recv_dgram(b.as_fd(), &mut buf),
            Ok(Dgram::Read(7))
        ));
        assert!(!queued(b.as_fd()));
        assert_eq!(closers(), Vec::<u32>::new());
        // 3. So is none of a pipe's: a closer closes it, its reader sees
        // the end.
        let (r, w) = rustix::pipe::pipe().unwrap();
        send_with_fd(a.as_fd(), b"BARRIER=1", w.as_fd());
        drop(w);
        let (n, pid) = reading(&b, &mut buf);
        assert_eq!(n, 9);
        assert_eq!(ended_within(pid, 10), Some(0));
        assert_eq!(rustix::io::read(&r, &mut [0u8; 1]), Ok(0));
        // 4. A closer that has ended keeps its place until its reap, which
        // reads its socket again: another takes another place.
        let (_r, w) = rustix::pipe::pipe().unwrap();
        send_with_fd(a.as_fd(), b"BARRIER=1", w.as_fd());
        send_with_fd(a.as_fd(), b"BARRIER=1", w.as_fd());
        drop(w);
        let (n, first) = reading(&b, &mut buf);
        assert_eq!(n, 9);
        assert!(crate::testutil::ended_in(first, 10));
        let (n, second) = reading(&b, &mut buf);
        assert_eq!(n, 9);
        assert_eq!(closers(), vec![first, second]);
        assert_eq!(ended_within(first, 10), Some(0));
        assert_eq!(ended_within(second, 10), Some(0));
        // 5. Every place taken by closers just made: the datagram is left
        // queued, unread, and they are not killed; once they have run
        // `GRACE_MS`, they are; a place freed, a closer reads it.
        let mut sleepers = every_place_taken();
        let (x, y) = pair();
        send_with_fd(a.as_fd(), b"x", y.as_fd());
        drop(y);
        assert!(matches!(recv_dgram(b.as_fd(), &mut buf), Ok(Dgram::Held)));
        assert!(queued(b.as_fd()) && !gone(&x), "left as it was");
        spared(&mut sleepers);
        grace_over();
        killed(sleepers);
        let (n, pid) = reading(&b, &mut buf);
        assert_eq!(n, 1);
        assert_eq!(ended_within(pid, 10), Some(0));
        assert!(gone(&x), "the closer closed it");
        // 6. A socket closed with something queued goes to a closer; an
        // empty one is closed here.
        let x = closed_with_one_queued();
        let pid = *closers().first().expect("a closer for the socket");
        assert_eq!(ended_within(pid, 10), Some(0));
        assert!(gone(&x));
        let (_q, empty) = pair();
        close(empty);
        assert_eq!(closers(), Vec::<u32>::new());
        // 7. Every place taken: the socket waits in the park, the closers
        // are killed once they have run `GRACE_MS`; a place freed, a
        // closer takes the park.
        let mut sleepers = every_place_taken();
        let x = closed_with_one_queued();
        assert!(!gone(&x), "parked, not closed");
        assert!(PARK.load(Ordering::Relaxed) != NO_PARK);
        spared(&mut sleepers);
        grace_over();
        killed(sleepers);
        unpark();
        let pid = *closers().first().expect("a closer for the park");
        assert_eq!(ended_within(pid, 10), Some(0));
        assert!(gone(&x), "the closer closed it");
        // 8. Before an exec, the closers are killed and waited for, and
        // the park goes to a closer though every place is taken.
        let sleepers = every_place_taken();
        let x = closed_with_one_queued();
        assert!(!gone(&x), "parked");
        let t = Instant::now();
        before_exec();
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert!(PARK.load(Ordering::Relaxed) == NO_PARK);
        let t = Instant::now();
        while !gone(&x) {
            assert!(t.elapsed() < Duration::from_secs(10), "the park's closer");
            std::thread::sleep(Duration::from_millis(20));
        }
        killed(sleepers);
    }

    /// Every close of a FUSE file, not only the last, sends its daemon a
    /// FLUSH and waits for the answer, uninterruptibly. A unit passes PID
    /// 1 such a file with READY=1, its daemon slow to answer (3 s): the
    /// read returns at once, and the FLUSH comes from the closer, never
    /// from PID 1 (the kernel names the caller's pid in the request).
    /// In a process of its own: the places are global; it mounts a FUSE
    /// file system.
    #[test]
    fn a_file_whose_flush_waits_is_closed_by_a_closer() {
        crate::testutil::alone!(a_file_whose_flush_waits_is_closed_by_a_closer);
        let fs = fuse::Fs::mount();
        let f = std::fs::File::open(fs.file()).unwrap();
        let (a, b) = pair();
        send_with_fd(a.as_fd(), b"READY=1", f.as_fd());
        drop(f);
        fs.slow_flush(Duration::from_secs(3));
        let t = Instant::now();
        let got = recv_dgram(b.as_fd(), &mut [0u8; 16]);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        let Ok(Dgram::Reading { bytes: 7, pid, .. }) = got else {
            panic!("{got:?}");
        };
        assert_eq!(ended_within(pid, 10), Some(0));
        assert_eq!(fs.slow_flushes(), vec![pid], "flushed by the closer alone");
    }

    /// A FUSE file system of one empty file, `f`, served by a thread of
    /// the test: just enough of the protocol (`linux/fuse.h`, 7.31) for a
    /// lookup, an open and a close.
    mod fuse {
        use std::io::{Read, Write};
        use std::path::PathBuf;
        use std::sync::{Arc, Mutex};
        use std::time::Duration;

        const LOOKUP: u32 = 1;
        const GETATTR: u32 = 3;
        const OPEN: u32 = 14;
        const RELEASE: u32 = 18;
        const FLUSH: u32 = 25;
        const INIT: u32 = 26;
        /// Requests that take no answer.
        const FORGET: u32 = 2;
        const INTERRUPT: u32 = 36;
        const DESTROY: u32 = 38;
        const BATCH_FORGET: u32 = 42;

        #[derive(Default)]
        struct Shared {
            /// FLUSHes are answered after this long, when set.
            slow: Option<Duration>,
            /// The pids of the FLUSHes answered so slowly.
            slow_flushes: Vec<u32>,
        }

        pub struct Fs {
            dir: crate::testutil::TempDir,
            shared: Arc<Mutex<Shared>>,
            server: Option<std::thread::JoinHandle<()>>,
        }

        impl Fs {
            pub fn mount() -> Fs {
                if !std::path::Path::new("/dev/fuse").exists() {
                    // FUSE's misc device, as udev would make it.
                    let dev = rustix::fs::makedev(10, 229);
                    let mode = rustix::fs::FileType::CharacterDevice;
                    rustix::fs::mknodat(rustix::fs::CWD, "/dev/fuse", mode, 0o666.into(), dev)
                        .expect("/dev/fuse: needs root and FUSE");
                }
                let dev = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/fuse")
                    .expect("/dev/fuse: needs root and FUSE");
                let dir = crate::testutil::TempDir::new("passed-fuse");
                let data = format!(
                    "fd={},rootmode=40000,user_id=0,group_id=0",
                    std::os::fd::AsRawFd::as_raw_fd(&dev)
                );
                rustix::mount::mount(
                    "wren-test",
                    dir.path(),
                    "fuse",
                    rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
                    Some(std::ffi::CString::new(data).unwrap().as_c_str()),
                )
                .expect("mount a FUSE file system: needs root and FUSE");
                let shared = Arc::new(Mutex::new(Shared::default()));
                let s = shared.clone();
                let server = std::thread::spawn(move || serve(dev, &s));
                Fs {
                    dir,
                    shared,
                    server: Some(server),
                }
            }

            pub fn file(&self) -> PathBuf {
                self.dir.path().join("f")
            }

            pub fn slow_flush(&self, by: Duration) {
                self.shared.lock().unwrap().slow = Some(by);
            }

            pub fn slow_flushes(&self) -> Vec<u32> {
                self.shared.lock().unwrap().slow_flushes.clone()
            }
        }

        impl Drop for Fs {
            fn drop(&mut self) {
                let _ =
                    rustix::mount::unmount(self.dir.path(), rustix::mount::UnmountFlags::DETACH);
                if let Some(s) = self.server.take() {
                    let _ = s.join();
                }
            }
        }

        fn u32_at(b: &[u8], at: usize) -> u32 {
            u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
        }

        /// A regular file's or the root directory's `fuse_attr`.
        fn attr(node: u64) -> Vec<u8> {
            let mode: u32 = if node == 1 { 0o040755 } else { 0o100644 };
            let mut a = Vec::with_capacity(88);
            a.extend(node.to_ne_bytes()); // ino
            a.extend([0u8; 5 * 8]); // size, blocks, atime, mtime, ctime
            a.extend([0u8; 3 * 4]); // their nanoseconds
            a.extend(mode.to_ne_bytes());
            a.extend(1u32.to_ne_bytes()); // nlink
            a.extend([0u8; 3 * 4]); // uid, gid, rdev
            a.extend(4096u32.to_ne_bytes()); // blksize
            a.extend(0u32.to_ne_bytes()); // flags
            a
        }

        fn serve(mut dev: std::fs::File, shared: &Mutex<Shared>) {
            let mut buf = vec![0u8; 1 << 17];
            loop {
                // ENODEV once unmounted.
                let Ok(n) = dev.read(&mut buf) else {
                    return;
                };
                let req = &buf[..n];
                let (opcode, unique) = (
                    u32_at(req, 4),
                    u64::from_ne_bytes(req[8..16].try_into().unwrap()),
                );
                let node = u64::from_ne_bytes(req[16..24].try_into().unwrap());
                let pid = u32_at(req, 32);
                let (error, body): (i32, Vec<u8>) = match opcode {
                    INIT => {
                        let mut o = Vec::with_capacity(64);
                        o.extend(7u32.to_ne_bytes()); // major
                        o.extend(31u32.to_ne_bytes()); // minor
                        o.extend(0u32.to_ne_bytes()); // max_readahead
                        o.extend(0u32.to_ne_bytes()); // flags
                        o.extend(1u16.to_ne_bytes()); // max_background
                        o.extend(1u16.to_ne_bytes()); // congestion_threshold
                        o.extend(4096u32.to_ne_bytes()); // max_write
                        o.extend(1u32.to_ne_bytes()); // time_gran
                        o.resize(64, 0);
                        (0, o)
                    }
                    LOOKUP if &req[40..n] == b"f\0" => {
                        let mut o = Vec::with_capacity(128);
                        o.extend(2u64.to_ne_bytes()); // nodeid
                        o.extend(0u64.to_ne_bytes()); // generation
                        o.extend(60u64.to_ne_bytes()); // entry_valid
                        o.extend(60u64.to_ne_bytes()); // attr_valid
                        o.extend([0u8; 8]); // their nanoseconds
                        o.extend(attr(2));
                        (0, o)
                    }
                    LOOKUP => (-libc::ENOENT, Vec::new()),
                    GETATTR => {
                        let mut o = Vec::with_capacity(104);
                        o.extend(60u64.to_ne_bytes()); // attr_valid
                        o.extend([0u8; 8]); // its nanoseconds, padding
                        o.extend(attr(node));
                        (0, o)
                    }
                    OPEN => (0, vec![0u8; 16]), // fh 0, no open flags
                    FLUSH => {
                        let slow = shared.lock().unwrap().slow;
                        if let Some(by) = slow {
                            std::thread::sleep(by);
                            shared.lock().unwrap().slow_flushes.push(pid);
                        }
                        (0, Vec::new())
                    }
                    RELEASE => (0, Vec::new()),
                    FORGET | INTERRUPT | DESTROY | BATCH_FORGET => continue,
                    _ => (-libc::ENOSYS, Vec::new()),
                };
                let mut out = Vec::with_capacity(16 + body.len());
                out.extend((16 + body.len() as u32).to_ne_bytes());
                out.extend(error.to_ne_bytes());
                out.extend(unique.to_ne_bytes());
                out.extend(body);
                // ENOENT for a request interrupted meanwhile.
                let _ = dev.write(&out);
            }
        }
    }
}
