//! Status lines to /dev/console for the person at the serial port:
//! a non-blocking open, a fixed backlog for what a busy line does not
//! take, and the event loop's retry of it, ever later while the line
//! is stuck.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use heapless::String;
use rustix::fs::OFlags;
use rustix::io::Errno;

use super::{
    events_flush, format_line, kmsg_fd, lazy_fd, lock, waiting, Backlog, Queue, CONSOLE_BACKLOG,
    CONSOLE_FD, CONSOLE_LINE_MAX, EVENTS, QUIET,
};

/// The console's backlog.
pub(super) static BACKLOG: Queue = Queue::new(None);

/// Write a short status line to /dev/console (a newline is added). The
/// console is opened non-blocking so a slow or stuck serial line never
/// blocks PID 1: what it does not take waits in a fixed backlog, flushed by
/// the next line or by `console_flush` (PID 1 retries while it reports
/// text waiting); when even the backlog is full, the oldest whole
/// lines go.
pub fn console_line(args: fmt::Arguments<'_>) {
    console_queue(args, true);
}

/// `console_line` for PID 1's unit status lines: the line waits in the
/// backlog (written at once only when that is half full) until the event
/// loop's `console_flush`, a moment later, so that a unit's new process
/// does not wait behind a serial line on one CPU.
pub fn console_line_later(args: fmt::Arguments<'_>) {
    console_queue(args, false);
}

/// The line into the backlog (unless `quiet`), then, if `now` or the
/// backlog is half full, as much of the backlog as the console takes.
pub(super) fn console_queue(args: fmt::Arguments<'_>, now: bool) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    let mut line: String<CONSOLE_LINE_MAX> = String::new();
    format_line(&mut line, None, "", args);
    let mut guard = lock(&BACKLOG);
    match guard.as_deref_mut() {
        Some(q) => {
            enqueue_after(q, line.as_bytes(), MID_LINE.load(Ordering::Relaxed));
            if now || q.len() > CONSOLE_BACKLOG / 2 {
                let _ = flush_locked(q);
            }
        }
        // No backlog (not PID 1's logger): what the console refuses now
        // is lost.
        None => {
            let mut q = Backlog::new();
            enqueue(&mut q, line.as_bytes());
            let _ = flush_locked(&mut q);
        }
    }
}

/// Console text (or an `event_later` record) is waiting in a backlog.
pub fn console_waiting() -> bool {
    waiting(&BACKLOG) || waiting(&EVENTS)
}

/// Write the waiting event records and retry the console backlog; true
/// while some console text is still waiting. PID 1's loop calls it once
/// /dev is there: a console that cannot be opened then never will be,
/// and what waits for it goes.
pub fn console_flush() -> bool {
    if let Some(fd) = kmsg_fd() {
        events_flush(fd);
    }
    let mut guard = lock(&BACKLOG);
    let Some(q) = guard.as_deref_mut() else {
        return false;
    };
    let before = q.len();
    if !flush_locked(q) {
        q.clear();
    }
    note_progress(q.len() < before || q.is_empty());
    !q.is_empty()
}

/// Flushes in a row that took nothing (a stuck line: every write EAGAIN).
static STALLS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
/// The first retry of a busy console.
const RETRY_MS: u64 = 20;
/// The longest wait between retries of a console that takes nothing.
pub const RETRY_MAX_MS: u64 = 5_000;

fn note_progress(progressed: bool) {
    if progressed {
        STALLS.store(0, Ordering::Relaxed);
    } else {
        STALLS.fetch_add(1, Ordering::Relaxed);
    }
}

/// When PID 1 retries the console backlog: 20 ms after a flush that
/// wrote something, twice as long after each one that wrote nothing, up
/// to `RETRY_MAX_MS`: a stuck line (flow control held, no cable) costs a
/// wake-up every few seconds, not fifty a second for ever. Event records
/// waiting go to /dev/kmsg, which the console does not hold up: 20 ms.
pub fn console_retry_ms() -> u64 {
    retry_ms(STALLS.load(Ordering::Relaxed), waiting(&EVENTS))
}

fn retry_ms(stalls: u32, events: bool) -> u64 {
    let stalls = if events { 0 } else { stalls.min(16) };
    RETRY_MS.saturating_mul(1u64 << stalls).min(RETRY_MAX_MS)
}

/// As much of `q` as the console takes; false when there is no console
/// to take it (none yet, or given up).
fn flush_locked(q: &mut Backlog) -> bool {
    let flags = OFlags::WRONLY | OFlags::NOCTTY | OFlags::NONBLOCK;
    match lazy_fd(&CONSOLE_FD, "/dev/console", flags) {
        Some(fd) => {
            if let Some(last) = drain(q, |b| rustix::io::write(fd, b)) {
                MID_LINE.store(last != b'\n', Ordering::Relaxed);
            }
            true
        }
        // No console (yet): nothing can take it; keep what fits.
        None => false,
    }
}

/// The console took part of the backlog's first line (under the
/// backlog's lock).
static MID_LINE: AtomicBool = AtomicBool::new(false);

/// Append `line`, making room by dropping the oldest whole lines.
pub(super) fn enqueue(q: &mut Backlog, line: &[u8]) {
    enqueue_after(q, line, false);
}

/// `enqueue` to a console that took part of the first line (`mid`): if
/// that line goes, a newline ends what the console showed of it, so the
/// next line is not glued to its head (`[FAILED] [  OK  ] x: running`).
fn enqueue_after(q: &mut Backlog, line: &[u8], mid: bool) {
    let line = line.get(..CONSOLE_BACKLOG.min(line.len())).unwrap_or(&[]);
    let mut end = false;
    while !q.is_empty() && CONSOLE_BACKLOG - q.len() < line.len() + usize::from(end) {
        // A failure is what the one at the port must see: the oldest line
        // that is not one goes first (a console held by flow control
        // lost a `[FAILED]` to the `[  OK  ]` lines of the restarts after).
        if drop_oldest_but_failures(q, mid) {
            continue;
        }
        // Drop up to and including the oldest newline.
        while let Some(c) = q.pop_front() {
            if c == b'\n' {
                break;
            }
        }
        // The front line, shown in part, goes: a newline in its place,
        // still the front (`mid` stays: it ends what was shown).
        end |= mid;
    }
    if end {
        let _ = q.push_front(b'\n');
    }
    for &c in line {
        let _ = q.push_back(c);
    }
}

/// Removes the oldest whole line of `q` that is not a `[FAILED]` one (not
/// the front line when the console showed part of it: `mid`); false when
/// there is none. Without allocating: the lines before it go round to the
/// back, it goes, and the rest go round after them again.
fn drop_oldest_but_failures(q: &mut Backlog, mid: bool) -> bool {
    const FAILED: &[u8] = b"[FAILED]";
    // One pass: `matched`, how much of FAILED the line opens with so far.
    let (mut start, mut matched) = (0, 0);
    let mut victim = None;
    for (i, &c) in q.iter().enumerate() {
        if c != b'\n' {
            if i - start == matched && FAILED.get(matched) == Some(&c) {
                matched += 1;
            }
            continue;
        }
        let failed = matched == FAILED.len();
        let shown = mid && start == 0;
        if !(failed || shown) {
            victim = Some((start, i + 1));
            break;
        }
        (start, matched) = (i + 1, 0);
    }
    let Some((from, to)) = victim else {
        return false;
    };
    let rotate = |q: &mut Backlog, n: usize| {
        for _ in 0..n {
            if let Some(c) = q.pop_front() {
                let _ = q.push_back(c);
            }
        }
    };
    let rest = q.len() - to;
    rotate(q, from);
    for _ in from..to {
        q.pop_front();
    }
    rotate(q, rest);
    true
}

/// Write from the front of `q` until it is empty or the writer is full;
/// the last byte written, if any.
fn drain(q: &mut Backlog, mut write: impl FnMut(&[u8]) -> Result<usize, Errno>) -> Option<u8> {
    let mut last = None;
    while !q.is_empty() {
        let n = {
            let (front, _) = q.as_slices();
            match write(front) {
                Ok(0) | Err(Errno::AGAIN) => return last,
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                // A console that errors will not recover by retrying.
                Err(_) => {
                    q.clear();
                    return None;
                }
            }
        };
        for _ in 0..n {
            last = q.pop_front();
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line the console took part of, then dropped for room (a busy
    /// serial line): a newline ends what the console showed of it, so the
    /// next line is not glued to its head (`[FAILED] [  OK  ] u1:
    /// running`: a unit that came up shown as failed, the failure gone).
    #[test]
    fn a_line_dropped_after_part_of_it_was_shown_is_ended() {
        let mut q = Backlog::new();
        enqueue(&mut q, b"[FAILED] db: exit 1\n");
        let mut console = std::vec::Vec::new();
        let mut room = 9;
        let last = drain(&mut q, |b| {
            let n = b.len().min(room);
            room -= n;
            console.extend_from_slice(&b[..n]);
            if n == 0 {
                Err(Errno::AGAIN)
            } else {
                Ok(n)
            }
        });
        let mid = last.is_some_and(|c| c != b'\n');
        assert!(mid);
        for i in 0..200 {
            enqueue_after(&mut q, format!("[  OK  ] u{i}: running\n").as_bytes(), mid);
        }
        drain(&mut q, |b| {
            console.extend_from_slice(b);
            Ok(b.len())
        });
        let text = std::string::String::from_utf8(console).unwrap();
        let mut lines = text.lines();
        // The failure is kept whole (the OK lines went first for room).
        assert_eq!(lines.next(), Some("[FAILED] db: exit 1"));
        assert!(lines.all(|l| l.starts_with("[  OK  ] u")), "{text}");
        // A full line that does not fit with the newline ends, bounded.
        let mut q = Backlog::new();
        enqueue(&mut q, b"x");
        enqueue_after(&mut q, &[b'y'; CONSOLE_BACKLOG], true);
        assert_eq!(q.len(), CONSOLE_BACKLOG);
    }

    /// A console that takes nothing for a while (flow control held): the
    /// `[FAILED]` lines are kept, the `[  OK  ]` lines after them go for
    /// room, oldest first, in order. With nothing but failures, the
    /// oldest of them goes.
    #[test]
    fn a_full_backlog_keeps_its_failures() {
        let mut q = Backlog::new();
        enqueue(&mut q, b"[  OK  ] a: running\n");
        enqueue(&mut q, b"[FAILED] db: start limit hit\n");
        for i in 0..100 {
            enqueue(&mut q, format!("[  OK  ] web{i}: running\n").as_bytes());
        }
        let text: std::vec::Vec<u8> = q.iter().copied().collect();
        let text = std::string::String::from_utf8(text).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("[FAILED] db: start limit hit"));
        let oks: std::vec::Vec<&str> = lines.collect();
        assert!(oks.len() > 50, "{text}");
        assert_eq!(oks.last(), Some(&"[  OK  ] web99: running"));
        assert!(oks
            .windows(2)
            .all(|w| w[0] < w[1] || w[0].len() < w[1].len()));
        let mut q = Backlog::new();
        for i in 0..100 {
            enqueue(&mut q, format!("[FAILED] u{i:02}: exit 1\n").as_bytes());
        }
        // 21 bytes a line: the newest that fit.
        let first = format!("[FAILED] u{:02}: exit 1\n", 100 - CONSOLE_BACKLOG / 21);
        let front: std::vec::Vec<u8> = q.iter().take(first.len()).copied().collect();
        assert_eq!(front, first.as_bytes());
    }

    /// A console that takes nothing is retried ever later, up to
    /// `RETRY_MAX_MS`; one that takes something, at once again.
    #[test]
    fn a_stuck_console_is_retried_ever_later() {
        STALLS.store(0, Ordering::Relaxed);
        let stalls = || STALLS.load(Ordering::Relaxed);
        assert_eq!(retry_ms(stalls(), false), 20);
        for _ in 0..40 {
            note_progress(false);
        }
        assert_eq!(retry_ms(stalls(), false), RETRY_MAX_MS);
        // Event records waiting for /dev/kmsg are not held up by it.
        assert_eq!(retry_ms(stalls(), true), 20);
        note_progress(true);
        assert_eq!(retry_ms(stalls(), false), 20);
    }

    #[test]
    fn console_backlog_keeps_what_a_busy_line_refuses() {
        let mut q = Backlog::new();
        enqueue(&mut q, b"one\n");
        enqueue(&mut q, b"two\n");
        let mut taken = std::vec::Vec::new();
        // The line takes 3 bytes, then is full.
        let mut room = 3;
        drain(&mut q, |b| {
            if room == 0 {
                return Err(Errno::AGAIN);
            }
            let n = b.len().min(room);
            room -= n;
            taken.extend_from_slice(&b[..n]);
            Ok(n)
        });
        assert_eq!(taken, b"one");
        assert_eq!(q.len(), 5);
        drain(&mut q, |b| {
            taken.extend_from_slice(b);
            Ok(b.len())
        });
        assert_eq!(taken, b"one\ntwo\n");
        assert!(q.is_empty());
    }

    #[test]
    fn console_backlog_drops_the_oldest_whole_lines_when_full() {
        let mut q = Backlog::new();
        let line = [b'x'; 999];
        for _ in 0..5 {
            enqueue(&mut q, &line);
            enqueue(&mut q, b"\n");
        }
        // Only whole lines remain: two of them fit in 2048 bytes.
        assert_eq!(q.len(), 2000);
        assert_eq!(q.iter().filter(|&&c| c == b'\n').count(), 2);
        assert_eq!(q.front(), Some(&b'x'));
    }
}
