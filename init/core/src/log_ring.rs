//! Per-unit output ring: what `initctl log` and `initctl status NAME` show.
//!
//! A fixed array overwritten oldest-first, plus the count of bytes ever
//! written (`write_pos`). Positions are in that stream, so a follower that
//! remembers where it stopped can ask for "everything since P" and learn how
//! much it missed when the ring has already overwritten part of it.

/// Bytes kept per unit. 64 units x 4 KiB = 256 KiB at most, which a small
/// board can spare; 4 KiB is some 50 lines of typical service output, enough
/// to see why a unit died. Raise it when units are few and chatty.
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
        let a = self.first.len().min(out.len());
        out[..a].copy_from_slice(&self.first[..a]);
        let b = self.second.len().min(out.len() - a);
        out[a..a + b].copy_from_slice(&self.second[..b]);
        a + b
    }

    /// The span without its first `n` bytes.
    pub fn skip(&self, n: usize) -> Span<'a> {
        if n <= self.first.len() {
            Span {
                first: &self.first[n..],
                second: self.second,
            }
        } else {
            let m = (n - self.first.len()).min(self.second.len());
            Span {
                first: &self.second[m..],
                second: &[],
            }
        }
    }
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
/// when the unit is loaded (or its `log_size` changes), never while it
/// runs.
pub struct LogRing {
    buf: Box<[u8]>,
    /// Bytes ever pushed; the next byte goes to `pos % capacity`.
    pos: u64,
}

impl Default for LogRing {
    fn default() -> Self {
        Self::with_capacity(LOG_RING_BYTES)
    }
}

impl LogRing {
    pub fn with_capacity(n: usize) -> Self {
        LogRing {
            buf: vec![0; n].into_boxed_slice(),
            pos: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    fn index(&self, p: u64) -> usize {
        // capacity > 0 wherever this is called; the result is < capacity.
        (p % self.buf.len() as u64) as usize
    }

    /// Appends `data`, overwriting the oldest bytes once full.
    pub fn push(&mut self, data: &[u8]) {
        if self.buf.is_empty() {
            self.pos += data.len() as u64;
            return;
        }
        let n = self.buf.len();
        let skip = data.len().saturating_sub(n);
        let keep = &data[skip..];
        let at = self.index(self.pos + skip as u64);
        let a = keep.len().min(n - at);
        self.buf[at..at + a].copy_from_slice(&keep[..a]);
        self.buf[..keep.len() - a].copy_from_slice(&keep[a..]);
        self.pos += data.len() as u64;
    }

    /// Stream position after the newest byte: grows with every push.
    pub fn write_pos(&self) -> u64 {
        self.pos
    }

    /// Stream position of the oldest byte still held.
    pub fn start_pos(&self) -> u64 {
        self.pos.saturating_sub(self.buf.len() as u64)
    }

    pub fn len(&self) -> usize {
        // <= capacity, so the cast is exact.
        (self.pos - self.start_pos()) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.pos == 0
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
        let len = (to - from) as usize;
        let at = self.index(from);
        if at + len <= n {
            Span {
                first: &self.buf[at..at + len],
                second: &[],
            }
        } else {
            Span {
                first: &self.buf[at..],
                second: &self.buf[..len - (n - at)],
            }
        }
    }

    fn byte(&self, p: u64) -> u8 {
        self.buf[self.index(p)]
    }

    /// The last `n` lines. A trailing line without `\n` counts as a line;
    /// the oldest line is left out when the ring has cut its beginning off
    /// (unless it is the only line there is).
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
        match oldest_break {
            Some(b) if start > 0 => self.span(b + 1, self.pos),
            _ => self.contents(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn zero_sized_ring_does_not_panic() {
        let mut r = LogRing::with_capacity(0);
        r.push(b"abc");
        assert_eq!(r.write_pos(), 3);
        assert!(r.contents().is_empty());
        assert!(r.tail_lines(2).is_empty());
        assert_eq!(r.since(0).missed, 3);
    }
}
