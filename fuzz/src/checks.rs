//! The invariants the fuzz targets assert, in one place so that
//! `init/tests/fuzz_regressions.rs` replays saved inputs through exactly
//! the same checks (it includes this file with `#[path]`), and CI keeps
//! checking them without a fuzzer. Every function panics on a violation.

// Test-support code (the fuzz targets and init/tests/fuzz_regressions.rs
// run it): every violated invariant must panic, so it unwraps, panics and
// indexes freely; the workspace denies these only in non-test code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use wren::proto::{
    decode_reply, decode_request, encode_reply, encode_request, FrameDecoder, ProtoError,
    FRAME_BUF, FRAME_MAX, HEADER_LEN,
};
use wren::unit::{parse, parse_with_lines, render, ParseError, UnitDef};
use wren::vocab::UNIT_FILE_MAX;

// ---------------------------------------------------------------------------
// proto_frames

/// How many leading bytes of a `proto_frames` input may be chunk sizes.
const MAX_CHUNK_SIZES: u8 = 16;

/// A small decoder, so that its lower payload limit is exercised too.
const SMALL: usize = 64;

/// How a byte stream ends, as far as framing goes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum End {
    /// Every byte belonged to a whole frame.
    Clean,
    /// A frame (or prefix) was cut short.
    Partial,
    /// A length prefix above the limit; nothing after it is looked at.
    TooLarge(u32),
}

/// `proto_frames` input: byte 0 mod 16 is `k`, the next `k` bytes are
/// chunk sizes (used in turn; 0 means "all that is left"), the rest is
/// the byte stream a peer sends. The stream is fed to `FrameDecoder`s of
/// two sizes, through both `feed` and `spare`/`advance` (what the server
/// and client do), and must come out as the frames a plain reference
/// reading of the whole stream gives, however it is chunked. Every payload
/// goes through the request and reply decoders, and so does the raw
/// stream itself.
pub fn proto_frames(data: &[u8]) {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k % MAX_CHUNK_SIZES).min(rest.len());
    let (sizes, stream) = rest.split_at(k);

    let (frames, end) = reference_frames(stream, FRAME_MAX);
    for via_feed in [true, false] {
        let got = drive::<FRAME_BUF>(stream, sizes, via_feed);
        assert_eq!(got, (frames.clone(), end.clone()), "FRAME_BUF decoder");
        let small = reference_frames(stream, SMALL - HEADER_LEN);
        let got = drive::<SMALL>(stream, sizes, via_feed);
        assert_eq!(got, small, "{SMALL}-byte decoder");
    }
    for p in &frames {
        payload(p);
    }
    // The raw stream as a payload too, so the message decoders see inputs
    // that need no valid prefix first.
    if stream.len() <= FRAME_MAX {
        payload(stream);
    }
}

/// The frames of `stream`, read in the most literal way.
fn reference_frames(stream: &[u8], max: usize) -> (Vec<Vec<u8>>, End) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        if rest.is_empty() {
            return (frames, End::Clean);
        }
        if rest.len() < HEADER_LEN {
            return (frames, End::Partial);
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if len as usize > max {
            return (frames, End::TooLarge(len));
        }
        let total = HEADER_LEN + len as usize;
        if rest.len() < total {
            return (frames, End::Partial);
        }
        frames.push(rest[HEADER_LEN..total].to_vec());
        rest = &rest[total..];
    }
}

/// Feeds `stream` to a `FrameDecoder<N>` in the chunks `sizes` asks for,
/// taking every complete frame out as soon as it is there (the client's
/// loop; the server stops after the first one, which is a prefix of this).
fn drive<const N: usize>(stream: &[u8], sizes: &[u8], via_feed: bool) -> (Vec<Vec<u8>>, End) {
    let max = FRAME_MAX.min(N - HEADER_LEN);
    let mut dec = Box::new(FrameDecoder::<N>::new());
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut turn = 0;
    loop {
        loop {
            match dec.frame() {
                Ok(Some(p)) => {
                    assert!(p.len() <= FRAME_MAX, "frame of {} bytes", p.len());
                    assert!(
                        p.len() <= max,
                        "frame of {} bytes in a {N} decoder",
                        p.len()
                    );
                    let len = p.len();
                    frames.push(p.to_vec());
                    let before = dec.buffered();
                    dec.consume();
                    assert_eq!(dec.buffered(), before - HEADER_LEN - len, "consume");
                }
                Ok(None) => break,
                Err(ProtoError::TooLarge { len }) => {
                    assert!(len as usize > max, "prefix {len} refused, limit {max}");
                    return (frames, End::TooLarge(len));
                }
                Err(e) => panic!("frame() gave {e:?}"),
            }
        }
        assert!(dec.buffered() <= N);
        if pos == stream.len() {
            let end = if dec.buffered() == 0 {
                End::Clean
            } else {
                End::Partial
            };
            return (frames, end);
        }
        let size = match sizes.get(turn % sizes.len().max(1)) {
            None | Some(0) => stream.len() - pos,
            Some(&s) => usize::from(s),
        };
        turn += 1;
        let chunk = &stream[pos..stream.len().min(pos + size)];
        let n = if via_feed {
            dec.feed(chunk)
        } else {
            let spare = dec.spare();
            let n = spare.len().min(chunk.len());
            spare[..n].copy_from_slice(&chunk[..n]);
            dec.advance(n);
            n
        };
        assert!(n <= chunk.len());
        // A full buffer must hold a whole frame or an oversized prefix;
        // otherwise a reader waiting for the rest of the frame would hang.
        assert!(
            n > 0,
            "{N}-byte decoder full ({} bytes) with no frame and no error",
            dec.buffered()
        );
        pos += n;
    }
}

/// One frame payload through both message decoders: errors are only ever
/// `Version` or `Malformed`, and what decodes re-encodes to a frame that
/// decodes to the same message.
pub fn payload(p: &[u8]) {
    let mut buf = vec![0u8; FRAME_BUF];
    match decode_request(p) {
        Ok(req) => {
            let n = encode_request(&req, &mut buf)
                .unwrap_or_else(|e| panic!("decoded {req:?} does not re-encode: {e:?}"));
            let again = reframe(&buf[..n]);
            assert_eq!(decode_request(&again), Ok(req), "request roundtrip");
            // Encoding is canonical: the second encoding is the first.
            let mut buf2 = vec![0u8; FRAME_BUF];
            let m = encode_request(&decode_request(&again).unwrap(), &mut buf2).unwrap();
            assert_eq!(buf[..n], buf2[..m], "request encoding is not stable");
        }
        Err(e) => decode_error(e),
    }
    match decode_reply(p) {
        Ok(rep) => {
            let n = encode_reply(&rep, &mut buf)
                .unwrap_or_else(|e| panic!("decoded {rep:?} does not re-encode: {e:?}"));
            let again = reframe(&buf[..n]);
            assert_eq!(decode_reply(&again).as_ref(), Ok(&rep), "reply roundtrip");
        }
        Err(e) => decode_error(e),
    }
}

fn decode_error(e: ProtoError) {
    assert!(
        matches!(e, ProtoError::Version { .. } | ProtoError::Malformed),
        "decoding gave {e:?}"
    );
}

/// The payload of a whole encoded frame, taken out by a `FrameDecoder`.
fn reframe(frame: &[u8]) -> Vec<u8> {
    assert!(frame.len() - HEADER_LEN <= FRAME_MAX);
    let mut dec = Box::new(FrameDecoder::<FRAME_BUF>::new());
    assert_eq!(dec.feed(frame), frame.len());
    let p = dec.frame().unwrap().expect("an encoded frame is complete");
    assert_eq!(
        p.len() + HEADER_LEN,
        frame.len(),
        "prefix of an encoded frame"
    );
    p.to_vec()
}

// ---------------------------------------------------------------------------
// unit_file

/// The unit name inputs are parsed as.
pub const UNIT_NAME: &str = "web";

/// How many of the inputs the loader also reads (one in this many, picked
/// by a hash of the input, so a saved input always takes the same path).
/// The loader writes a file and lists and reads a directory: a few system
/// calls that cost some hundred times the parser's work on a short input,
/// so loading every input would spend the fuzzer's time in the kernel.
/// Valid UTF-8 is what the parser decides; the loader adds only the file
/// and program checks, so one in 256 keeps them tried hundreds of
/// thousands of times in a 10^7 run.
const LOAD_UTF8: u32 = 256;
/// Non-UTF-8 inputs never reach the parser: all the loader does with them
/// is find the first bad byte and its line, so one in 16.
const LOAD_NON_UTF8: u32 = 16;

/// `unit_file` input: the bytes of a unit file. Valid UTF-8 goes through
/// the parser directly; the bytes also go through the loader
/// (`load_dir_at`) from a file in `dir`, as PID 1 and `initctl check` read
/// them: always when `always_load` or when they are too large for a unit
/// file, else for one UTF-8 input in [`LOAD_UTF8`] and one other in
/// [`LOAD_NON_UTF8`].
pub fn unit_file(data: &[u8], dir: &UnitDir, always_load: bool) {
    let parsed = std::str::from_utf8(data).ok().map(unit_text);
    let hash = data
        .iter()
        .fold(0u32, |h, &b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let every = if parsed.is_some() {
        LOAD_UTF8
    } else {
        LOAD_NON_UTF8
    };
    if always_load || hash % every == 0 || data.len() > UNIT_FILE_MAX {
        dir.load(data, parsed.as_ref());
    }
}

/// Parses `text`; every unit that parses must render back to itself.
/// Returns what `parse_all` returned and the errors it reported.
pub fn unit_text(text: &str) -> (Option<UnitDef>, Vec<ParseError>) {
    let mut errs = Vec::new();
    let mut after_lines = Vec::new();
    let all = parse_with_lines(UNIT_NAME, text, &mut |e| errs.push(e)).map(|(def, lines, _)| {
        after_lines = lines.as_slice().to_vec();
        def
    });
    let one = parse(UNIT_NAME, text);
    let lines = u32::try_from(text.split('\n').count()).unwrap_or(u32::MAX);
    for e in &errs {
        assert!(e.line <= lines, "error on line {} of {lines}", e.line);
        assert!(!e.msg.is_empty(), "empty error message");
    }
    match (&all, &one) {
        (Some(a), Ok(b)) => {
            assert_eq!(a, b, "parse and parse_all differ");
            assert!(errs.is_empty(), "a unit and errors: {errs:?}");
            lines_point_at_keys(text, a, &after_lines);
            roundtrip(a);
        }
        (None, Err(e)) => assert_eq!(errs.first(), Some(e), "first error differs"),
        _ => panic!("parse_all gave {all:?} with {errs:?}, parse gave {one:?}"),
    }
    (all, errs)
}

/// `exec_line` and the `after` lines name the lines their keys are on.
fn lines_point_at_keys(text: &str, def: &UnitDef, after_lines: &[u32]) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let line = |n: u32| {
        text.split('\n')
            .nth(n.saturating_sub(1) as usize)
            .unwrap_or_else(|| panic!("line {n} is past the end"))
            .trim_start()
    };
    assert!(line(def.exec_line).starts_with("exec"), "exec_line");
    assert_eq!(def.after.len(), after_lines.len(), "after_lines");
    for &l in after_lines {
        assert!(line(l).starts_with("after"), "after_lines");
    }
}

/// `render` gives unit-file text that fits a unit file, parses back to
/// the same definition (line numbers aside: they are where the keys sit
/// in the text) and renders to the same text again.
pub fn roundtrip(def: &UnitDef) {
    let mut out = String::new();
    render(def, &mut out).expect("rendering into a String cannot fail");
    assert!(
        out.len() <= UNIT_FILE_MAX,
        "rendered unit of {} bytes does not fit a unit file:\n{out}",
        out.len()
    );
    let back = parse(&def.name, &out)
        .unwrap_or_else(|e| panic!("rendered unit does not parse: {e:?}\n{out}"));
    assert_eq!(
        without_lines(&back),
        without_lines(def),
        "rendered unit parses to another definition:\n{out}"
    );
    let mut again = String::new();
    render(&back, &mut again).unwrap();
    assert_eq!(again, out, "render is not stable");
}

fn without_lines(def: &UnitDef) -> UnitDef {
    let mut d = def.clone();
    d.exec_line = 0;
    d
}

/// A scratch unit directory and a sysroot with a few programs in it.
pub struct UnitDir {
    root: PathBuf,
}

/// Programs the sysroot has, so units running them can load.
const PROGRAMS: [&str; 4] = ["bin/true", "bin/sh", "bin/httpd", "usr/bin/wren-testkit"];

impl UnitDir {
    /// Creates `root` (which must not exist or be empty) with `units/` and
    /// `sysroot/`.
    pub fn new(root: &Path) -> UnitDir {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(root.join("units")).unwrap();
        for p in PROGRAMS {
            let f = root.join("sysroot").join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, b"#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        UnitDir {
            root: root.to_path_buf(),
        }
    }

    /// Writes `data` as the only unit file and loads the directory.
    /// `parsed` is what the parser made of it when it is UTF-8.
    fn load(&self, data: &[u8], parsed: Option<&(Option<UnitDef>, Vec<ParseError>)>) {
        let dir = self.root.join("units");
        std::fs::write(dir.join(format!("{UNIT_NAME}.unit")), data).unwrap();
        let mut defs = Default::default();
        let mut errs = Vec::new();
        wren::config::load_dir_at(&self.root.join("sysroot"), &dir, &mut defs, &mut |e| {
            errs.push(e)
        });
        assert!(defs.len() <= 1);
        for e in &errs {
            assert!(
                e.file.ends_with(&format!("{UNIT_NAME}.unit")),
                "{}: error about another file",
                e.file
            );
        }
        let too_big = data.len() > UNIT_FILE_MAX;
        match (too_big, parsed) {
            (true, _) => {
                assert!(defs.is_empty());
                assert!(
                    errs.iter().any(|e| e.msg.contains("larger than")),
                    "{errs:?}"
                );
            }
            (false, None) => {
                assert!(defs.is_empty(), "a non-UTF-8 file loaded");
                let bad = std::str::from_utf8(data).unwrap_err().valid_up_to();
                let line = data[..bad].iter().filter(|b| **b == b'\n').count() + 1;
                assert!(
                    errs.iter()
                        .any(|e| e.msg.contains("UTF-8") && e.line as usize == line),
                    "{errs:?}"
                );
            }
            (false, Some((Some(def), _))) => {
                if let Some(got) = defs.first() {
                    assert_eq!(got, def, "the loader and the parser differ");
                } else {
                    assert!(!errs.is_empty(), "a valid unit neither loaded nor refused");
                }
            }
            (false, Some((None, perrs))) => {
                assert!(defs.is_empty(), "an invalid unit loaded");
                for pe in perrs {
                    assert!(
                        errs.iter()
                            .any(|e| e.line == pe.line && e.msg == pe.msg.as_str()),
                        "parse error {pe:?} not reported by the loader: {errs:?}"
                    );
                }
            }
        }
    }
}
