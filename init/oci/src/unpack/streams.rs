//! The streams a layer comes as, read as one plain tar stream: zstd in
//! several frames (skippable ones among them), and a tar archive cut
//! short after its last entry's data.

use std::cell::Cell;
use std::io::{BufRead, Read};
use std::rc::Rc;

/// The magic number of a skippable zstd frame, 0x184D2A5?, as it is
/// written (little-endian).
pub(super) fn skippable(head: &[u8]) -> bool {
    matches!(head, [m, 0x2a, 0x4d, 0x18, ..] if m & 0xf0 == 0x50)
}

/// A zstd stream as its format has it: frames one after the other until
/// the input ends (pzstd writes one per thread, zstd:chunked one per
/// chunk and skippable frames for its table of contents), each decoded
/// in turn, a skippable one passed over. ruzstd's StreamingDecoder
/// stops at the end of the first frame.
pub(super) struct ZstdFrames<R> {
    source: R,
    frame: ruzstd::decoding::FrameDecoder,
}

impl<R> ZstdFrames<R> {
    pub(super) fn new(source: R) -> Self {
        ZstdFrames {
            source,
            frame: ruzstd::decoding::FrameDecoder::new(),
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        use ruzstd::decoding::BlockDecodingStrategy;
        if buf.is_empty() {
            return Ok(0);
        }
        let broken =
            |e: FrameDecoderError| std::io::Error::other(format!("broken zstd stream: {e}"));
        loop {
            // As StreamingDecoder reads: a block decodes more than is
            // asked, and what a later block may refer back to (the
            // window) is held until the frame ends.
            while self.frame.can_collect() < buf.len() && !self.frame.is_finished() {
                let more = buf.len() - self.frame.can_collect();
                self.frame
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBytes(more))
                    .map_err(broken)?;
            }
            let n = self.frame.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // Before the first frame (a new decoder is finished), or at
            // the end of one: the next, if the input goes on.
            if self.source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            match self.frame.reset(&mut self.source) {
                Ok(()) => {}
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let want = u64::from(length);
                    let skipped =
                        std::io::copy(&mut (&mut self.source).take(want), &mut std::io::sink())?;
                    if skipped != want {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "broken zstd stream: it ends inside a skippable frame",
                        ));
                    }
                }
                Err(e) => return Err(broken(e)),
            }
        }
    }
}

/// Ends a tar stream cut short after its last entry's data (umoci 0.4
/// writes layers without the padding and end blocks) with the zero blocks
/// it lacks. Where the real stream ended is kept in `real_end`, so an
/// entry whose data runs past it is refused rather than padded.
pub(super) struct ZeroTail<R> {
    inner: R,
    pos: u64,
    real_end: Rc<Cell<Option<u64>>>,
    zeros: u64,
}

impl<R> ZeroTail<R> {
    pub(super) fn new(inner: R) -> Self {
        ZeroTail {
            inner,
            pos: 0,
            real_end: Rc::new(Cell::new(None)),
            zeros: 0,
        }
    }

    /// Where the real stream ended, once it has: shared with the reader
    /// of the entries, which holds the tail itself mutably borrowed.
    pub(super) fn real_end(&self) -> Rc<Cell<Option<u64>>> {
        self.real_end.clone()
    }
}

impl<R: Read> Read for ZeroTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.real_end.get().is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.pos += n as u64;
                return Ok(n);
            }
            self.real_end.set(Some(self.pos));
            self.zeros = (512 - self.pos % 512) % 512 + 1024;
        }
        let n = buf
            .len()
            .min(usize::try_from(self.zeros).unwrap_or(usize::MAX));
        let out = buf.get_mut(..n).unwrap_or(&mut []);
        out.fill(0);
        self.zeros -= n as u64;
        Ok(n)
    }
}
