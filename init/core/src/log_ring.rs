//! Per-unit output ring: what `initctl log` and `initctl status NAME` show.
//!
//! A fixed array overwritten oldest-first, plus the count of bytes ever
//! written (`write_pos`). Positions are in that stream, so a follower that
//! remembers where it stopped can ask for "everything since P" and learn how
//! much it missed when the ring has already overwritten part of it.

/// Bytes kept per unit that writes: 4 KiB is some 50 lines of typical
/// service output, enough to see why a unit died. A unit that never writes
/// pays nothing (the ring is allocated at its first output). Raise it when
/// units are few and chatty.
pub const LOG_RING_BYTES: usize = 4096;

/// Bytes of a ring, possibly in two pieces (the ring wraps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span<'a> {
    pub first: &'a [u8],
    pub second: &'a [u8],
}

impl<'a> Span<'a> {
    pub fn len(&self) -> usize {
        self.first.len() + self.second.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the last bytes that fit into `out`; returns how many.
    pub fn copy_tail(&self, out: &mut [u8]) -> usize {
        let skip = self.len().saturating_sub(out.len());
        self.skip(skip).copy_head(out)
    }

    /// Copies the first bytes that fit into `out`; returns how many.
    pub fn copy_head(&self, out: &mut [u8]) -> usize {
        let a = copy_prefix(self.first, out);
        let b = out
            .get_mut(a..)
            .map_or(0, |rest| copy_prefix(self.second, rest));
        a + b
    }

    /// The span without its first `n` bytes.
    pub fn skip(&self, n: usize) -> Span<'a> {
        match self.first.get(n..) {
            Some(first) => Span {
                first,
                second: self.second,
            },
            None => {
                let m = n.saturating_sub(self.first.len());
                Span {
                    first: self.second.get(m..).unwrap_or_default(),
                    second: &[],
                }
            }
        }
    }
}

/// Copies as much of `src` as fits at the start of `dst`; returns how much.
fn copy_prefix(src: &[u8], dst: &mut [u8]) -> usize {
    let n = src.len().min(dst.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
    n
}

/// What a follower gets for "bytes since position P".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Since<'a> {
    /// Bytes after P that were overwritten before being asked for.
    pub missed: u64,
    /// Stream position of the first byte of `data`.
    pub from: u64,
    pub data: Span<'a>,
}

/// The last `capacity` bytes a unit wrote. The buffer is allocated once,
/// at the unit's first output (a unit that never writes has none), and
/// then kept: never grown, never freed while the unit is in the table.
pub struct LogRing {
    /// Empty until the first push; then `cap` bytes.
    buf: Box<[u8]>,
    /// At most `LOG_SIZE_MAX` (1 MiB): a u32, so that with `held` the
    /// ring is no larger than with a usize.
    cap: u32,
    /// Bytes pushed into this buffer (at most its size counts): a ring
    /// that continues a stream (`restored`, `continued`) holds only
    /// these, not a whole buffer's worth before `pos`.
    held: u32,
    /// Stream position: bytes ever pushed (into this ring and those it
    /// continues); the next byte goes to `pos % capacity`.
    pos: u64,
}

/// Where a buffer comes from: `len` zero bytes, or none when memory is
/// short, asked for, not taken. PID 1 aborts on a failed allocation, and
/// with strict overcommit (vm.overcommit_memory = 2) a 1 MiB ring, or the
/// 16 KiB of a control connection, can fail. PID 1's is
/// `sys::alloc::zeroed` (the allocator's calloc, which leaves a large
/// block's fresh pages for the kernel to commit as they are written);
/// this crate has no unsafe to call that with.
pub type Zeroed = fn(usize) -> Option<Box<[u8]>>;

/// A `Zeroed` without unsafe, for hosts and tests: it writes every byte,
/// so each page of the buffer is committed at once.
pub fn zeroed(len: usize) -> Option<Box<[u8]>> {
    let mut v = std::vec::Vec::new();
    v.try_reserve_exact(len).ok()?;
    v.extend(core::iter::repeat_n(0u8, len));
    Some(v.into_boxed_slice())
}

impl Default for LogRing {
    fn default() -> Self {
        Self::with_capacity(LOG_RING_BYTES)
    }
}

impl LogRing {
    /// A ring of `n` bytes, allocated at the first push.
    pub fn with_capacity(n: usize) -> Self {
        LogRing {
            buf: Box::default(),
            cap: u32::try_from(n).unwrap_or(u32::MAX),
            held: 0,
            pos: 0,
        }
    }

    /// A new, empty ring of `n` bytes that goes on from stream position
    /// `pos`: a follower's position stays valid, and what came before
    /// counts as missed, not as this one's start (`resized` then puts
    /// back what it keeps).
    pub fn continued(n: usize, pos: u64) -> Self {
        let mut r = Self::with_capacity(n);
        r.pos = pos;
        r
    }

    /// This ring remade with `n` bytes (a reload, or the health gate's
    /// revert, changed `log_size`): it keeps the newest bytes that fit and
    /// the stream position, so what the last run said (why a definition
    /// was rejected, above all) is still shown. Allocates only if there is
    /// something to keep.
    pub fn resized(&self, n: usize, alloc: Zeroed) -> Self {
        let kept = self.contents().skip(self.len().saturating_sub(n));
        Self::ending_at(n, self.pos, [kept.first, kept.second], alloc)
    }

    /// A ring of `n` bytes at stream position `end` whose last bytes are
    /// `parts`, oldest first: `resized`'s and `restored`'s ring.
    fn ending_at(n: usize, end: u64, parts: [&[u8]; 2], alloc: Zeroed) -> Self {
        let held: usize = parts.iter().map(|p| p.len()).sum();
        let mut r = Self::continued(n, end.saturating_sub(held as u64));
        for p in parts {
            r.push_in(p, alloc);
        }
        r
    }

    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// Holds its buffer (something was written).
    pub fn is_allocated(&self) -> bool {
        !self.buf.is_empty()
    }

    /// A ring handed over on `reexec`: `held` (oldest first) are the last
    /// bytes before stream position `pos`, so followers' positions stay
    /// valid.
    pub fn restored(capacity: usize, pos: u64, held: &[u8], alloc: Zeroed) -> Self {
        Self::ending_at(capacity, pos, [held, &[]], alloc)
    }

    /// Where stream position `p` sits in the buffer: `< capacity`, or 0
    /// for a zero-sized ring.
    fn index(&self, p: u64) -> usize {
        // The remainder is below capacity, a usize, so the cast is exact.
        p.checked_rem(self.buf.len() as u64).unwrap_or(0) as usize
    }

    /// `push_in` with `zeroed`, which writes the whole buffer: for tests
    /// and hosts. PID 1 pushes with its allocator's (`push_in`).
    pub fn push(&mut self, data: &[u8]) {
        self.push_in(data, zeroed);
    }

    /// Appends `data`, overwriting the oldest bytes once full. The first
    /// push that brings bytes allocates the buffer (one allocation, from
    /// `alloc`).
    pub fn push_in(&mut self, data: &[u8], alloc: Zeroed) {
        if self.buf.is_empty() && self.cap > 0 && !data.is_empty() {
            // Without the memory nothing is held, and a reader is told of
            // the loss.
            if let Some(buf) = alloc(self.capacity()) {
                self.buf = buf;
            }
        }
        let n = self.buf.len();
        if n > 0 {
            // Counted only when stored: bytes pushed while the memory was
            // refused fall before the oldest held, a loss a reader is
            // told of, not zeros of a buffer allocated later.
            let pushed = u32::try_from(data.len()).unwrap_or(u32::MAX);
            self.held = self.held.saturating_add(pushed).min(self.cap);
            // Only the last `n` bytes can survive; they go in from the
            // write position to the end of the buffer, then wrap to its
            // start (which they cannot pass: at most `n` bytes).
            let skip = data.len().saturating_sub(n);
            let keep = data.get(skip..).unwrap_or_default();
            let at = self.index(self.pos.saturating_add(skip as u64));
            let (head, tail) = self.buf.split_at_mut_checked(at).unwrap_or_default();
            let a = copy_prefix(keep, tail);
            copy_prefix(keep.get(a..).unwrap_or_default(), head);
        }
        self.pos = self.pos.saturating_add(data.len() as u64);
    }

    /// Stream position after the newest byte: grows with every push.
    pub fn write_pos(&self) -> u64 {
        self.pos
    }

    /// Stream position of the oldest byte still held.
    pub fn start_pos(&self) -> u64 {
        let held = (self.buf.len() as u64).min(u64::from(self.held));
        self.pos.saturating_sub(held)
    }

    pub fn len(&self) -> usize {
        // <= capacity, so the cast is exact.
        (self.pos - self.start_pos()) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everything held.
    pub fn contents(&self) -> Span<'_> {
        self.span(self.start_pos(), self.pos)
    }

    /// Bytes from stream position `pos` on. A position older than the ring
    /// yields what is left and how much was lost; one at or past the end
    /// yields nothing.
    pub fn since(&self, pos: u64) -> Since<'_> {
        let start = self.start_pos();
        let from = pos.clamp(start, self.pos);
        Since {
            missed: start.saturating_sub(pos),
            from,
            data: self.span(from, self.pos),
        }
    }

    /// `start_pos() <= from <= to <= write_pos()`.
    fn span(&self, from: u64, to: u64) -> Span<'_> {
        let n = self.buf.len();
        if n == 0 || from >= to {
            return Span::default();
        }
        // At most capacity (a usize) by the precondition; `min` keeps a
        // broken caller from reading past it.
        let len = usize::try_from(to.saturating_sub(from)).map_or(n, |l| l.min(n));
        let (head, tail) = self
            .buf
            .split_at_checked(self.index(from))
            .unwrap_or_default();
        match tail.get(..len) {
            Some(first) => Span { first, second: &[] },
            // Wraps: the rest is at the start of the buffer.
            None => Span {
                first: tail,
                second: head.get(..len.saturating_sub(tail.len())).unwrap_or(head),
            },
        }
    }

    fn byte(&self, p: u64) -> u8 {
        self.buf.get(self.index(p)).copied().unwrap_or(0)
    }

    /// The last `n` lines. A trailing line without `\n` counts as a line;
    /// the oldest line is left out when the ring has cut its beginning off
    /// (a full ring past the stream's start), unless it is the only line
    /// there is.
    pub fn tail_lines(&self, n: usize) -> Span<'_> {
        let start = self.start_pos();
        if n == 0 || self.pos == start {
            return Span::default();
        }
        // A final newline ends the last line; it does not start another.
        let mut p = self.pos;
        if self.byte(p - 1) == b'\n' {
            p -= 1;
        }
        let mut seen = 0;
        let mut oldest_break = None;
        while p > start {
            p -= 1;
            if self.byte(p) == b'\n' {
                seen += 1;
                if seen == n {
                    return self.span(p + 1, self.pos);
                }
                oldest_break = Some(p);
            }
        }
        // Only a full buffer can have lost the start of its oldest line:
        // a ring that continues a stream (`continued`, `restored`) begins
        // past 0 at a byte of its own, which is not cut.
        let full = self.held >= self.cap;
        match oldest_break {
            Some(b) if start > 0 && full => self.span(b + 1, self.pos),
            _ => self.contents(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output written while its ring's memory was refused is lost and
    /// said to be: a ring allocated at a later write holds that write
    /// only, not zeros standing for the earlier bytes.
    #[test]
    fn bytes_pushed_without_memory_are_a_loss_not_zeros() {
        let mut r = LogRing::with_capacity(64);
        r.push_in(b"lost lost lost\n", |_| None);
        assert!(!r.is_allocated() && r.is_empty());
        r.push_in(b"ok\n", zeroed);
        assert_eq!(bytes(r.contents()), b"ok\n");
        let s = r.since(0);
        assert_eq!((s.missed, bytes(s.data)), (15, b"ok\n".to_vec()));
        // So for a ring handed over on a re-exec whose memory was refused.
        let mut back = LogRing::restored(64, 18, b"lost lost lost\nok\n", |_| None);
        back.push(b"up\n");
        assert_eq!(bytes(back.contents()), b"up\n");
        assert_eq!(back.since(0).missed, 18);
    }

    #[test]
    fn a_restored_ring_keeps_positions_and_bytes() {
        let r = written(8, b"0123456789abc");
        let back = LogRing::restored(8, r.write_pos(), &bytes(r.contents()), zeroed);
        assert_eq!(back.write_pos(), r.write_pos());
        assert_eq!(back.start_pos(), r.start_pos());
        let mut a = vec![0u8; 8];
        back.contents().copy_head(&mut a);
        assert_eq!(a, b"56789abc");
    }

    /// Restored at a larger size (a reload raised `log_size`, the unit
    /// not started since): what was held, no zeros before it, and the
    /// loss counted from where it really begins.
    #[test]
    fn a_ring_restored_larger_holds_only_what_it_had() {
        let r = written(8, b"abcdefghijklmnopqrst");
        let mut back = LogRing::restored(16, r.write_pos(), &bytes(r.contents()), zeroed);
        assert_eq!(back.capacity(), 16);
        assert_eq!(bytes(back.contents()), b"mnopqrst");
        assert_eq!(back.start_pos(), 12);
        assert_eq!(back.since(0).missed, 12);
        back.push(b"uv");
        assert_eq!(bytes(back.contents()), b"mnopqrstuv");
    }

    /// A ring remade at another size goes on from the stream position:
    /// a follower there reads the new bytes from their start and is told
    /// of the old ones it had not read.
    #[test]
    fn a_continued_ring_keeps_the_stream_position() {
        let mut r = LogRing::continued(16, 100);
        assert!(r.is_empty());
        assert_eq!(r.since(100).data.len(), 0);
        r.push(b"new");
        let s = r.since(100);
        assert_eq!((s.missed, bytes(s.data)), (0, b"new".to_vec()));
        assert_eq!(r.since(90).missed, 10);
        assert_eq!(bytes(r.contents()), b"new");
    }

    /// A ring remade at another size keeps its newest bytes and its
    /// stream position: larger, all of them; smaller, the last that fit;
    /// one that held nothing stays unallocated.
    #[test]
    fn a_resized_ring_keeps_its_newest_bytes() {
        let mut r = LogRing::with_capacity(8);
        r.push(b"0123456789ab");
        let big = r.resized(32, zeroed);
        assert_eq!(bytes(big.contents()), b"456789ab");
        assert_eq!((big.write_pos(), big.capacity()), (12, 32));
        let small = r.resized(4, zeroed);
        assert_eq!(bytes(small.contents()), b"89ab");
        assert_eq!(small.since(6).missed, 2);
        let mut small = small;
        small.push(b"cd");
        assert_eq!(bytes(small.contents()), b"abcd");
        assert_eq!(small.write_pos(), 14);
        let never = LogRing::with_capacity(8).resized(16, zeroed);
        assert!(!never.is_allocated() && never.is_empty());
    }

    /// A ring of `n` bytes after `data` was pushed.
    fn written(n: usize, data: &[u8]) -> LogRing {
        let mut r = LogRing::with_capacity(n);
        r.push(data);
        r
    }

    fn bytes(s: Span<'_>) -> Vec<u8> {
        let mut v = s.first.to_vec();
        v.extend_from_slice(s.second);
        v
    }

    #[test]
    fn holds_everything_until_full() {
        let mut r = LogRing::with_capacity(8);
        assert!(r.is_empty());
        r.push(b"abc");
        r.push(b"def");
        assert_eq!(bytes(r.contents()), b"abcdef");
        assert_eq!((r.start_pos(), r.write_pos(), r.len()), (0, 6, 6));
    }

    #[test]
    fn overwrites_the_oldest_bytes() {
        let mut r = LogRing::with_capacity(8);
        r.push(b"abcdef");
        r.push(b"ghij");
        assert_eq!(bytes(r.contents()), b"cdefghij");
        assert_eq!((r.start_pos(), r.write_pos(), r.len()), (2, 10, 8));
        // Wrapped: the span really is in two pieces.
        assert!(!r.contents().second.is_empty());
    }

    #[test]
    fn a_push_larger_than_the_ring_keeps_its_end() {
        let mut r = LogRing::with_capacity(4);
        r.push(b"x");
        r.push(b"0123456789");
        assert_eq!(bytes(r.contents()), b"6789");
        assert_eq!(r.write_pos(), 11);
        // And the ring still wraps correctly after it.
        r.push(b"ab");
        assert_eq!(bytes(r.contents()), b"89ab");
    }

    #[test]
    fn every_split_of_a_stream_gives_the_same_ring() {
        let stream: Vec<u8> = (0..100u8).collect();
        for chunk in 1..20 {
            let mut r = LogRing::with_capacity(13);
            for c in stream.chunks(chunk) {
                r.push(c);
            }
            assert_eq!(bytes(r.contents()), &stream[87..], "chunk {chunk}");
        }
    }

    #[test]
    fn since_reports_missed_bytes() {
        let mut r = LogRing::with_capacity(8);
        r.push(b"abcd");
        let s = r.since(0);
        assert_eq!((s.missed, s.from, bytes(s.data)), (0, 0, b"abcd".to_vec()));
        let s = r.since(2);
        assert_eq!((s.missed, s.from, bytes(s.data)), (0, 2, b"cd".to_vec()));
        r.push(b"efghijkl");
        // 'a'..'d' were overwritten: a follower at 2 lost "cd".
        let s = r.since(2);
        assert_eq!(
            (s.missed, s.from, bytes(s.data)),
            (2, 4, b"efghijkl".to_vec())
        );
        // Up to date, or from the future: nothing.
        assert!(r.since(12).data.is_empty());
        let s = r.since(99);
        assert_eq!((s.missed, s.from), (0, 12));
        assert!(s.data.is_empty());
    }

    #[test]
    fn tail_lines_counts_from_the_end() {
        let mut r = LogRing::with_capacity(64);
        r.push(b"one\ntwo\nthree\n");
        assert_eq!(bytes(r.tail_lines(1)), b"three\n");
        assert_eq!(bytes(r.tail_lines(2)), b"two\nthree\n");
        assert_eq!(bytes(r.tail_lines(3)), b"one\ntwo\nthree\n");
        assert_eq!(bytes(r.tail_lines(10)), b"one\ntwo\nthree\n");
        assert!(r.tail_lines(0).is_empty());
        // An unterminated last line counts.
        r.push(b"four");
        assert_eq!(bytes(r.tail_lines(1)), b"four");
        assert_eq!(bytes(r.tail_lines(2)), b"three\nfour");
    }

    /// A ring that continues a stream (a new `log_size`, a re-exec) holds
    /// whole lines from where it took over: its oldest is shown.
    #[test]
    fn tail_lines_keeps_the_first_line_of_a_continued_ring() {
        let mut r = LogRing::continued(64, 1000);
        r.push(b"one\ntwo\n");
        assert_eq!(bytes(r.tail_lines(10)), b"one\ntwo\n");
        let back = LogRing::restored(64, r.write_pos(), b"one\ntwo\n", zeroed);
        assert_eq!(bytes(back.tail_lines(10)), b"one\ntwo\n");
    }

    #[test]
    fn tail_lines_drops_a_line_cut_by_the_wrap() {
        let mut r = LogRing::with_capacity(10);
        r.push(b"aaaaaa\nbb\ncc\n");
        // Held: "aaa\nbb\ncc\n": "aaa" is the end of a longer line.
        assert_eq!(bytes(r.contents()), b"aaa\nbb\ncc\n");
        assert_eq!(bytes(r.tail_lines(5)), b"bb\ncc\n");
        assert_eq!(bytes(r.tail_lines(2)), b"bb\ncc\n");
        // One long line with no newline at all is shown as it is.
        let mut r = LogRing::with_capacity(4);
        r.push(b"abcdefgh");
        assert_eq!(bytes(r.tail_lines(3)), b"efgh");
        assert!(LogRing::with_capacity(4).tail_lines(3).is_empty());
    }

    #[test]
    fn span_copies_head_and_tail() {
        let mut r = LogRing::with_capacity(8);
        r.push(b"abcdefghij");
        let s = r.contents();
        let mut out = [0u8; 5];
        assert_eq!(s.copy_tail(&mut out), 5);
        assert_eq!(&out, b"fghij");
        assert_eq!(s.copy_head(&mut out), 5);
        assert_eq!(&out, b"cdefg");
        let mut big = [0u8; 20];
        assert_eq!(s.copy_tail(&mut big), 8);
        assert_eq!(&big[..8], b"cdefghij");
        assert_eq!(bytes(s.skip(7)), b"j");
        assert!(s.skip(100).is_empty());
    }

    #[test]
    fn the_buffer_comes_with_the_first_bytes() {
        let mut r = LogRing::with_capacity(64);
        assert!(!r.is_allocated());
        assert_eq!(r.capacity(), 64);
        assert!(r.contents().is_empty());
        assert!(r.since(0).data.is_empty());
        assert!(r.tail_lines(3).is_empty());
        r.push(b"");
        assert!(!r.is_allocated(), "no bytes, no buffer");
        r.push(b"hello\n");
        assert!(r.is_allocated());
        assert_eq!(bytes(r.contents()), b"hello\n");
        assert_eq!(r.capacity(), 64);
    }

    #[test]
    fn zero_sized_ring_does_not_panic() {
        let mut r = LogRing::with_capacity(0);
        r.push(b"abc");
        assert_eq!(r.write_pos(), 3);
        assert!(r.contents().is_empty());
        assert!(r.tail_lines(2).is_empty());
        assert_eq!(r.since(0).missed, 3);
    }
}
