//! The `log` backend of PID 1: each record is one write(2) of
//! `<PRIO>wren: message\n` to /dev/kmsg, so it lands in the kernel log
//! with the right level and interleaves correctly with kernel messages.
//!
//! No allocation: records are formatted into a fixed stack buffer and cut
//! with `...` when longer. /dev/kmsg is opened on first use; before /dev is
//! mounted (or on a host) records go to stderr without the `<PRIO>` tag.
//!
//! Note: the kernel rate-limits writes to /dev/kmsg per open file (10 lines
//! per 5 s) unless booted with `printk.devkmsg=on`; images that want every
//! line should set it.
//!
//! `console_line` writes short status lines to /dev/console for the person
//! at the serial port, never blocking PID 1.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use std::os::fd::BorrowedFd;

use heapless::String;
pub use log::Level;
use log::{LevelFilter, Log, Metadata, Record};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::sys::fd::{FdSlot, Slot};

mod console;
pub use console::{
    console_flush, console_line, console_line_later, console_retry_ms, console_waiting,
    RETRY_MAX_MS,
};
use console::{enqueue, BACKLOG};

/// Bytes of one kernel log record written by wren, tag and newline included.
pub const LINE_MAX: usize = 512;
/// Bytes of one console status line, newline included.
pub const CONSOLE_LINE_MAX: usize = 256;

/// Syslog priority of a level, as /dev/kmsg reads it.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// A record's text with every control character written as `?` (a value
/// from a unit file, an `exec` path): an escape sequence would reach the
/// serial console as a command to the terminal, a newline would forge a
/// record.
struct NoControl<'a>(fmt::Arguments<'a>);

impl fmt::Display for NoControl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Escaped<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl fmt::Write for Escaped<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                write_no_control(self.0, s)
            }
        }
        fmt::write(&mut Escaped(f), self.0)
    }
}

/// `s` into `out` with every control character written as `?`: a record's
/// text (`NoControl`), a path in a message (`pathname::Shown`).
pub(crate) fn write_no_control(out: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    let mut rest = s;
    while let Some((i, c)) = rest.char_indices().find(|(_, c)| c.is_control()) {
        out.write_str(rest.get(..i).unwrap_or(""))?;
        out.write_str("?")?;
        rest = rest.get(i + c.len_utf8()..).unwrap_or("");
    }
    out.write_str(rest)
}

/// A record's `<PRIO>` tag, when it has one.
struct Tag(Option<u8>);

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "<{p}>"),
            None => Ok(()),
        }
    }
}

/// Format one line into `out`: `<PRIO>` when `prio` is given, then
/// `prefix` and the message, cut with `...` to fit, then a newline.
/// `N` must leave room for the tag and prefix; otherwise they are cut too.
pub fn format_line<const N: usize>(
    out: &mut String<N>,
    prio: Option<u8>,
    prefix: &str,
    args: fmt::Arguments<'_>,
) {
    let out = out.as_mut_view();
    out.clear();
    // Cut as `initctl`'s messages are (`proto::write_then`): a line that
    // fits with its newline is not cut.
    // One expression: Rust 1.88 does not extend a stored `format_args!`'s
    // temporaries.
    crate::proto::write_then(
        out,
        format_args!("{}", NoControl(format_args!("{}{prefix}{args}", Tag(prio)))),
        "\n",
    );
}

static KMSG_FD: FdSlot = FdSlot::new();
static CONSOLE_FD: FdSlot = FdSlot::new();
static QUIET: AtomicBool = AtomicBool::new(false);

/// The fd in `slot`, opening `path` on first use (the slot keeps it for
/// good). Errors that mean "no /dev yet" leave the slot empty for a later
/// attempt; others give up for good so that each record does not pay a
/// failing open.
fn lazy_fd<'a>(slot: &'a FdSlot, path: &str, flags: OFlags) -> Option<BorrowedFd<'a>> {
    match slot.get() {
        Slot::Open(fd) => return Some(fd),
        Slot::GaveUp => return None,
        Slot::Empty => {}
    }
    match crate::sys::file::openat(
        rustix::fs::CWD,
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        // Another thread may have filled it first; then ours is closed.
        Ok(fd) => slot.fill(fd).fd(),
        Err(Errno::NOENT | Errno::NODEV | Errno::NXIO) => None,
        Err(_) => {
            slot.give_up();
            None
        }
    }
}

/// /dev/kmsg, opened at its first use.
fn kmsg_fd() -> Option<BorrowedFd<'static>> {
    lazy_fd(&KMSG_FD, "/dev/kmsg", OFlags::WRONLY)
}

/// One write(2) of the whole line; a short or failed write is dropped,
/// as there is nowhere left to report it.
fn emit(fd: BorrowedFd<'_>, line: &str) {
    emit_bytes(fd, line.as_bytes());
}

fn emit_bytes(fd: BorrowedFd<'_>, line: &[u8]) {
    loop {
        match rustix::io::write(fd, line) {
            Err(Errno::INTR) => continue,
            _ => return,
        }
    }
}

/// wren's own records go through the `log` logger (`record`) by these
/// rather than by `log`'s macros, which store a file, a line and a module
/// path for each call site (a 24-byte `Location` and the code that passes
/// it: some 50 bytes of the binary a site, a hundred sites) that wren's
/// logger never prints. `debug!` evaluates its arguments only when debug
/// records are kept, as `log::debug!` does; the others are always kept.
/// (Paths through `$crate`: a crate calling them needs no `log` of its
/// own.)
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::kmsg::record($crate::kmsg::Level::Error, ::core::format_args!($($arg)+))
    };
}

/// See `error!`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::kmsg::record($crate::kmsg::Level::Warn, ::core::format_args!($($arg)+))
    };
}

/// See `error!`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::kmsg::record($crate::kmsg::Level::Info, ::core::format_args!($($arg)+))
    };
}

/// See `error!`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        if $crate::kmsg::debug_kept() {
            $crate::kmsg::record($crate::kmsg::Level::Debug, ::core::format_args!($($arg)+))
        }
    };
}

/// Debug records are kept (`wren.debug`).
pub fn debug_kept() -> bool {
    Level::Debug <= log::max_level()
}

/// One record of wren's own to the `log` logger, at `level` if that is
/// kept: target `wren`, no file, line or module path.
#[inline(never)]
pub fn record(level: Level, args: fmt::Arguments<'_>) {
    record_to(log::logger(), level, args);
}

fn record_to(logger: &dyn Log, level: Level, args: fmt::Arguments<'_>) {
    if level <= log::max_level() {
        logger.log(
            &Record::builder()
                .level(level)
                .target("wren")
                .args(args)
                .build(),
        );
    }
}

/// The wren logger.
struct Kmsg;

static LOGGER: Kmsg = Kmsg;

impl Kmsg {
    fn write_record(&self, kmsg: Option<BorrowedFd<'_>>, record: &Record<'_>) {
        let mut line: String<LINE_MAX> = String::new();
        match kmsg {
            Some(fd) => {
                events_flush(fd);
                let prio = priority(record.level());
                format_line(&mut line, Some(prio), "wren: ", *record.args());
                emit(fd, &line);
            }
            None => {
                format_line(&mut line, None, "wren: ", *record.args());
                emit(rustix::stdio::stderr(), &line);
            }
        }
    }
}

impl Log for Kmsg {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        self.write_record(kmsg_fd(), record);
    }

    fn flush(&self) {}
}

/// A unit life-cycle record (started, exited, stopped): always kept in the
/// kernel log at debug priority, so `dmesg` has the history, while the
/// console shows the short `console_line` instead of a second copy
/// (the kernel prints only records below its console log level, 7).
pub fn event(args: fmt::Arguments<'_>) {
    let mut line: String<LINE_MAX> = String::new();
    if let Some(fd) = kmsg_fd() {
        // Lines waiting from `event_later` go first: the kernel log keeps
        // the order in which they were made.
        events_flush(fd);
        format_line(&mut line, Some(7), "wren: ", args);
        emit(fd, &line);
    }
}

/// Event text (`<7>wren: ...\n` records) waiting for the loop's timer.
pub const EVENT_BACKLOG: usize = CONSOLE_BACKLOG;

static EVENTS: Queue = Queue::new(None);

/// `event` for the line that follows a unit's new process: it waits in a
/// fixed backlog, written on the event loop's next `console_flush` (or
/// before the next `event`), so that the new process runs first on one CPU
/// instead of behind PID 1's /dev/kmsg write. A full backlog is written at
/// once rather than dropping a line.
pub fn event_later(args: fmt::Arguments<'_>) {
    let Some(fd) = kmsg_fd() else {
        return;
    };
    let mut line: String<LINE_MAX> = String::new();
    format_line(&mut line, Some(7), "wren: ", args);
    let mut guard = lock(&EVENTS);
    let Some(q) = guard.as_deref_mut() else {
        // No backlog (not PID 1's logger): the record goes now.
        emit(fd, &line);
        return;
    };
    if EVENT_BACKLOG - q.len() < line.len() {
        drain_records(q, |r| emit_bytes(fd, r));
    }
    enqueue(q, line.as_bytes());
}

/// A status line: `tag` and `args` on the console, `args` as an `event`;
/// with `later`, both wait as `console_line_later` and `event_later` do.
/// One set of arguments for the two lines: less code at each call site
/// than a `format_args!` for each.
pub fn status(tag: &str, later: bool, args: fmt::Arguments<'_>) {
    console::console_queue(format_args!("{tag} {args}"), !later);
    match later {
        true => event_later(args),
        false => event(args),
    }
}

/// Set in a child forked from PID 1 (`forked`).
static FORKED: AtomicBool = AtomicBool::new(false);

/// Called first in a child forked from PID 1 that may log (a `root`
/// unit's child logs how it entered its root): the backlogs it holds are
/// copies of PID 1's, whose lines PID 1 writes itself, so the child
/// leaves them alone and its own records go straight out.
pub fn forked() {
    FORKED.store(true, Ordering::Relaxed);
}

/// Write the waiting event records, one write(2) each.
fn events_flush(fd: BorrowedFd<'_>) {
    if FORKED.load(Ordering::Relaxed) {
        return;
    }
    if let Some(q) = lock(&EVENTS).as_deref_mut() {
        drain_records(q, |r| emit_bytes(fd, r));
    }
}

/// Hand each whole line of `q` (newline included) to `write`, oldest first.
fn drain_records(q: &mut Backlog, mut write: impl FnMut(&[u8])) {
    let mut rec: heapless::Vec<u8, LINE_MAX> = heapless::Vec::new();
    while let Some(c) = q.pop_front() {
        // Records are whole lines of at most LINE_MAX bytes (format_line).
        let _ = rec.push(c);
        if c == b'\n' || rec.len() >= LINE_MAX {
            write(&rec);
            rec.clear();
        }
    }
    if !rec.is_empty() {
        write(&rec);
    }
}

/// Install the logger (once; later calls only change the level). Debug
/// records are kept when `debug`, otherwise Info and above.
pub fn init(debug: bool) {
    let _ = log::set_logger(&LOGGER);
    set_debug(debug);
    // The two backlogs live on PID 1's heap, not in the binary's .bss:
    // every process of the binary (each unit's exec'd reaper above all)
    // maps .bss and touches the libc state at its end, so 4 KiB of
    // backlog there cost each of them a resident page they never use.
    for q in [&BACKLOG, &EVENTS] {
        let mut g = lock(q);
        if g.is_none() {
            *g = Some(Box::new(Backlog::new()));
        }
    }
}

/// PID 1's fd 2, where records go without /dev/kmsg (a kernel without
/// printk), is the console the kernel opened for it, blocking: a stuck
/// serial line would stop PID 1 at its next record. After this, what the
/// line does not take at once is dropped instead.
///
/// Not by O_NONBLOCK on that open file: the kernel's fds 0-2 are one, and
/// whatever was forked before init's exec shares it (an initramfs
/// script's job left running, a benchmark's driver), whose writes would
/// then fail with EAGAIN on a busy line. Fd 2 becomes an open of PID 1's
/// own, non-blocking; only if the console cannot be opened so is the
/// flag set on the open file it has.
pub fn unblock_stderr() {
    let stderr = rustix::stdio::stderr();
    match private_nonblocking(c"/dev/console", stderr) {
        Some(own) if rustix::stdio::dup2_stderr(&own).is_ok() => {}
        _ => {
            let _ = rustix::io::ioctl_fionbio(stderr, true);
        }
    }
}

/// `path` opened non-blocking, if it is the character device `fd` is
/// open on: the same device, in an open file of this process's own.
fn private_nonblocking(path: &core::ffi::CStr, fd: BorrowedFd<'_>) -> Option<rustix::fd::OwnedFd> {
    let flags = OFlags::WRONLY | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let own = rustix::fs::openat(rustix::fs::CWD, path, flags, Mode::empty()).ok()?;
    let (a, b) = (rustix::fs::fstat(&own).ok()?, rustix::fs::fstat(fd).ok()?);
    // The device, not the node: the kernel opened the initramfs's, this
    // may be devtmpfs's, with other permissions.
    let chr = |m| rustix::fs::FileType::from_raw_mode(m) == rustix::fs::FileType::CharacterDevice;
    (chr(a.st_mode) && chr(b.st_mode) && a.st_rdev == b.st_rdev).then_some(own)
}

/// Change the level after `init`, e.g. once `wren.debug` has been read
/// from /proc/cmdline (which needs /proc mounted, after the first logs).
pub fn set_debug(debug: bool) {
    log::set_max_level(if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    });
}

/// `quiet` on the command line: no console status lines.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Console text a busy serial line has not taken yet.
pub const CONSOLE_BACKLOG: usize = 2048;

type Backlog = heapless::Deque<u8, CONSOLE_BACKLOG>;

/// A backlog, allocated by `init` (PID 1's logger); None in other
/// processes, which write at once.
type Queue = std::sync::Mutex<Option<Box<Backlog>>>;

/// Text is waiting in `q`.
fn waiting(q: &'static Queue) -> bool {
    lock(q).as_ref().is_some_and(|q| !q.is_empty())
}

fn lock(q: &'static Queue) -> std::sync::MutexGuard<'static, Option<Box<Backlog>>> {
    q.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::fd::AsRawFd;

    /// PID 1's stderr made non-blocking in an open file of its own: the
    /// one it was given (shared with whatever was forked before init's
    /// exec) keeps blocking writes. Not the device: left as it is.
    #[test]
    fn stderr_is_unblocked_in_an_open_file_of_its_own() {
        use rustix::fs::{Mode, OFlags};
        use std::os::fd::AsFd;
        let given = rustix::fs::open("/dev/null", OFlags::WRONLY, Mode::empty()).unwrap();
        let own = private_nonblocking(c"/dev/null", given.as_fd()).expect("same device");
        let nonblock = |fd: BorrowedFd<'_>| {
            rustix::fs::fcntl_getfl(fd)
                .unwrap()
                .contains(OFlags::NONBLOCK)
        };
        assert!(nonblock(own.as_fd()));
        assert!(!nonblock(given.as_fd()), "the given open file was changed");
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert!(private_nonblocking(c"/dev/null", r.as_fd()).is_none());
        let zero = rustix::fs::open("/dev/zero", OFlags::RDONLY, Mode::empty()).unwrap();
        assert!(private_nonblocking(c"/dev/null", zero.as_fd()).is_none());
    }

    /// A record to a console that takes nothing (a full pipe here, a
    /// stuck serial line in the field) is dropped, once the fd is
    /// non-blocking as `unblock_stderr` makes fd 2: the write does not
    /// wait.
    #[test]
    fn a_record_to_a_stuck_console_does_not_wait() {
        use rustix::fd::AsFd;
        let (_rd, wr) = rustix::pipe::pipe().unwrap();
        rustix::io::ioctl_fionbio(wr.as_fd(), true).unwrap();
        while rustix::io::write(&wr, &[0u8; 4096]).is_ok() {}
        let (tx, rx) = std::sync::mpsc::channel();
        let fd = rustix::io::dup(&wr).unwrap();
        std::thread::spawn(move || {
            emit(fd.as_fd(), "wren: a record\n");
            let _ = tx.send(());
        });
        let waited = rx.recv_timeout(std::time::Duration::from_secs(2));
        assert!(waited.is_ok(), "the write waits for the console");
    }

    fn line<const N: usize>(prio: Option<u8>, args: fmt::Arguments<'_>) -> String<N> {
        let mut s = String::new();
        format_line(&mut s, prio, "wren: ", args);
        s
    }

    /// A control character in what a record says (a unit file's value,
    /// an `exec` path) reaches no terminal: an escape sequence or a line
    /// break is written `?`; other text, multi-byte included, as it is.
    #[test]
    fn control_characters_are_written_as_question_marks() {
        let l: String<64> = line(None, format_args!("x{}y", "a\u{1b}[2J\nb\u{9b}c\u{e9}\t"));
        assert_eq!(l.as_str(), "wren: xa?[2J?b?c\u{e9}?y\n");
        // The cut still lands on a character boundary.
        let l: String<16> = line(
            None,
            format_args!("{}", "\u{7}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}"),
        );
        assert_eq!(l.as_str(), "wren: ?\u{e9}\u{e9}...\n");
    }

    /// wren's records reach the logger with their level and text, and no
    /// file, line or module path; a debug record's arguments are not even
    /// evaluated unless debug records are kept.
    #[test]
    fn records_carry_level_and_text_only_and_debug_is_lazy() {
        struct Capture(std::sync::Mutex<Vec<(Level, std::string::String, bool)>>);
        impl Log for Capture {
            fn enabled(&self, _: &Metadata<'_>) -> bool {
                true
            }
            fn log(&self, r: &Record<'_>) {
                let whereless =
                    r.file().is_none() && r.line().is_none() && r.module_path().is_none();
                self.0
                    .lock()
                    .unwrap()
                    .push((r.level(), r.args().to_string(), whereless));
            }
            fn flush(&self) {}
        }
        let c = Capture(std::sync::Mutex::new(Vec::new()));
        set_debug(false);
        record_to(&c, Level::Warn, format_args!("a {}", 1));
        record_to(&c, Level::Debug, format_args!("dropped"));
        assert_eq!(
            *c.0.lock().unwrap(),
            [(Level::Warn, "a 1".to_string(), true)]
        );
        let mut evaluated = false;
        crate::debug!("{}", {
            evaluated = true;
            1
        });
        assert!(
            !evaluated,
            "debug! evaluated its arguments while debug is off"
        );
    }

    /// The backlogs are PID 1's heap, made by `init`, not .bss every
    /// process of the binary maps.
    #[test]
    fn init_allocates_both_backlogs() {
        init(false);
        assert!(lock(&BACKLOG).is_some());
        assert!(lock(&EVENTS).is_some());
        let before = crate::sys::alloc::thread_count();
        init(false);
        assert_eq!(
            crate::sys::alloc::thread_count(),
            before,
            "a second init allocates nothing"
        );
    }

    #[test]
    fn event_backlog_gives_back_whole_records_in_order() {
        let mut q = Backlog::new();
        let mut s: String<LINE_MAX> = String::new();
        format_line(
            &mut s,
            Some(7),
            "wren: ",
            format_args!("a: running (pid 2)"),
        );
        enqueue(&mut q, s.as_bytes());
        format_line(&mut s, Some(7), "wren: ", format_args!("b: caf\u{e9}"));
        enqueue(&mut q, s.as_bytes());
        let mut got = std::vec::Vec::new();
        drain_records(&mut q, |r| got.push(r.to_vec()));
        assert_eq!(
            got,
            [
                b"<7>wren: a: running (pid 2)\n".to_vec(),
                "<7>wren: b: caf\u{e9}\n".as_bytes().to_vec()
            ]
        );
        assert!(q.is_empty());
    }

    #[test]
    fn priorities() {
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Warn), 4);
        assert_eq!(priority(Level::Info), 6);
        assert_eq!(priority(Level::Debug), 7);
        assert_eq!(priority(Level::Trace), 7);
    }

    #[test]
    fn formats_a_kmsg_record() {
        let s: String<LINE_MAX> = line(Some(6), format_args!("started {} (pid {})", "web", 42));
        assert_eq!(s, "<6>wren: started web (pid 42)\n");
        let s: String<LINE_MAX> = line(None, format_args!("no /dev yet"));
        assert_eq!(s, "wren: no /dev yet\n");
        // The buffer is reused: format_line starts afresh.
        let mut s: String<64> = String::new();
        format_line(&mut s, Some(3), "wren: ", format_args!("one"));
        format_line(&mut s, Some(3), "wren: ", format_args!("two"));
        assert_eq!(s, "<3>wren: two\n");
    }

    #[test]
    fn long_records_are_cut_with_dots() {
        let long = "x".repeat(1000);
        let s: String<LINE_MAX> = line(Some(4), format_args!("{long}"));
        assert_eq!(s.len(), LINE_MAX);
        assert!(s.starts_with("<4>wren: xxx"));
        assert!(s.ends_with("x...\n"));
        // A line that fits with its newline is not cut (its end is
        // usually the errno: `(os error 2)` came out `(os error...`).
        let mut s: String<16> = String::new();
        format_line(&mut s, None, "", format_args!("{}", "y".repeat(15)));
        assert_eq!(s, "yyyyyyyyyyyyyyy\n");
        format_line(&mut s, None, "", format_args!("{}", "y".repeat(16)));
        assert_eq!(s, "yyyyyyyyyyyy...\n");
    }

    #[test]
    fn cuts_on_a_character_boundary() {
        // 'é' is two bytes; the cut must not split it.
        let mut s: String<16> = String::new();
        format_line(&mut s, None, "", format_args!("aaaaaaaaaaaé{}", "zzz"));
        assert_eq!(s, "aaaaaaaaaaa...\n");
        assert!(s.len() <= 16);
    }

    #[test]
    fn records_reach_the_fd_whole_with_their_tag() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        for _ in 0..2 {
            LOGGER.write_record(
                Some(std::os::fd::AsFd::as_fd(&w)),
                &Record::builder()
                    .level(Level::Warn)
                    .args(format_args!("unit {} failed", "db"))
                    .build(),
            );
        }
        drop(w);
        let mut buf = [0u8; 128];
        let mut got = std::vec::Vec::new();
        loop {
            let n = rustix::io::read(&r, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(
            std::str::from_utf8(&got).unwrap(),
            "<4>wren: unit db failed\n<4>wren: unit db failed\n"
        );
    }

    #[test]
    fn lazy_fd_retries_on_missing_and_gives_up_on_other_errors() {
        let slot = FdSlot::new();
        let dir = TempDir::new("kmsg");
        let path = dir.join("kmsg");
        let p = path.to_str().unwrap();
        assert!(lazy_fd(&slot, p, OFlags::WRONLY).is_none());
        assert!(
            matches!(slot.get(), Slot::Empty),
            "missing: try again later"
        );
        std::fs::write(&path, "").unwrap();
        let fd = lazy_fd(&slot, p, OFlags::WRONLY).unwrap();
        emit(fd, "hello\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\n");
        let Slot::Open(stored) = slot.get() else {
            panic!("not kept")
        };
        let raw = stored.as_raw_fd();
        assert!(raw >= 0);
        // Opened once: the same fd again.
        assert_eq!(lazy_fd(&slot, p, OFlags::WRONLY).unwrap().as_raw_fd(), raw);

        // A directory cannot be opened for writing: not a "later" error.
        let slot2 = FdSlot::new();
        assert!(lazy_fd(&slot2, dir.to_str().unwrap(), OFlags::WRONLY).is_none());
        assert!(matches!(slot2.get(), Slot::GaveUp));
        // Dropping the slot closes its fd.
    }
}
