//! Unit output made safe for the operator's terminal: a unit's bytes must
//! not drive it (clear the screen, set the title, move the cursor, answer
//! back through it). Control characters other than newline and tab are
//! shown instead of sent: C0 and DEL in caret form as `cat -v` does (ESC
//! is `^[`, CR `^M`, DEL `^?`), C1 as `\x9b`, whether UTF-8 encoded or a
//! stray byte. Everything else, UTF-8 or not, passes as it is.
//!
//! Output comes in chunks (`log -f`), and a UTF-8 sequence may be cut
//! between two: the tail of an incomplete one is held for the next chunk.

/// The state between chunks: at most the first three bytes of a UTF-8
/// sequence the last chunk ended inside.
#[derive(Default)]
pub struct Visible {
    held: Vec<u8>,
}

impl Visible {
    /// Renders `data` after what was held into `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut bytes = std::mem::take(&mut self.held);
        bytes.extend_from_slice(data);
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    push_text(text, out);
                    rest = &[];
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    push_text(std::str::from_utf8(good).unwrap_or_default(), out);
                    match e.error_len() {
                        // Cut at the end of the chunk: wait for the rest.
                        None => {
                            self.held = bad.to_vec();
                            rest = &[];
                        }
                        Some(n) => {
                            let (invalid, after) = bad.split_at(n.min(bad.len()));
                            invalid.iter().for_each(|b| push_byte(*b, out));
                            rest = after;
                        }
                    }
                }
            }
        }
    }

    /// The end of the output: a sequence still held is not completed.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        std::mem::take(&mut self.held)
            .iter()
            .for_each(|b| push_byte(*b, out));
    }
}

/// `data` rendered whole.
pub fn render(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut v = Visible::default();
    v.feed(data, &mut out);
    v.finish(&mut out);
    out
}

fn push_text(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match u32::from(c) {
            0x0a | 0x09 => out.push(c as u8),
            b @ 0..=0x1f => out.extend_from_slice(&[b'^', 0x40 + b as u8]),
            0x7f => out.extend_from_slice(b"^?"),
            b @ 0x80..=0x9f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

/// A byte that is not part of valid UTF-8: in the C1 range an 8-bit
/// terminal would take it as a control, so it is shown; others pass.
fn push_byte(b: u8, out: &mut Vec<u8>) {
    if (0x80..=0x9f).contains(&b) {
        out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
    } else {
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_not_sent() {
        assert_eq!(
            render(b"plain text\n\tindented\n"),
            b"plain text\n\tindented\n"
        );
        assert_eq!(render(b"\x1b[2J\x1b[H"), b"^[[2J^[[H");
        assert_eq!(render(b"\x1b]0;title\x07"), b"^[]0;title^G");
        assert_eq!(render(b"a\rb\x00c\x7fd"), b"a^Mb^@c^?d");
        // C1, UTF-8 encoded and as a stray byte (CSI).
        assert_eq!(render("x\u{9b}2J".as_bytes()), b"x\\x9b2J");
        assert_eq!(render(b"x\x9b2J"), b"x\\x9b2J");
        // Other text, UTF-8 or not, passes.
        assert_eq!(render("café ✓".as_bytes()), "café ✓".as_bytes());
        assert_eq!(render(b"\xe9t\xe9"), b"\xe9t\xe9");
    }

    #[test]
    fn a_sequence_cut_between_chunks_is_joined() {
        let whole = "é\u{9b}✓\x1b".as_bytes();
        for cut in 0..=whole.len() {
            let mut v = Visible::default();
            let mut out = Vec::new();
            let (a, b) = whole.split_at(cut);
            v.feed(a, &mut out);
            v.feed(b, &mut out);
            v.finish(&mut out);
            assert_eq!(out, "é\\x9b✓^[".as_bytes(), "cut at {cut}");
        }
        // An incomplete sequence at the very end is shown byte by byte.
        assert_eq!(render(b"ok\xe2\x9c"), b"ok\xe2\\x9c");
    }
}
