//! Postcard's format, written and read by hand: what the two hand-written
//! codecs share, the control protocol's (`proto::wire`) and the re-exec
//! state's (`handover::wire`). Each is tested against postcard itself
//! through the serde derives its types keep for that.
//!
//! Postcard, as used here: integers above a byte are LEB128 varints
//! (signed ones zigzagged first), a `u8` one byte as it is, a `bool` or an
//! `Option`'s tag one byte of 0 or 1, an enum variant a varint of its
//! index, text and bytes a varint length then the bytes, a sequence its
//! varint length then the elements, a struct or tuple its fields in order.

/// `v` as a varint: the bytes, in `b`.
pub(crate) fn varint(mut v: u64, b: &mut [u8; 10]) -> &[u8] {
    let mut n = 0;
    for slot in b.iter_mut() {
        // The low seven bits; the cast keeps exactly them.
        *slot = (v & 0x7f) as u8;
        v >>= 7;
        n += 1;
        if v == 0 {
            break;
        }
        *slot |= 0x80;
    }
    b.get(..n).unwrap_or_default()
}

/// Zigzag: 0, -1, 1, -2 ... as 0, 1, 2, 3 ...
pub(crate) fn zigzag(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

/// Writes postcard's forms: what a codec's writer has beside `raw`, the
/// one place its bytes go (a frame's `Vec`, or a fixed slice).
pub(crate) trait Put {
    fn raw(&mut self, b: &[u8]);

    fn byte(&mut self, b: u8) {
        self.raw(&[b]);
    }

    fn varint(&mut self, v: u64) {
        let mut b = [0u8; 10];
        self.raw(varint(v, &mut b));
    }

    fn i32(&mut self, v: i32) {
        self.varint(zigzag(v));
    }

    fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.raw(b);
    }
}

/// Reads from a payload; `None` is a malformed message.
pub(crate) struct In<'a> {
    pub(crate) rest: &'a [u8],
}

impl<'a> In<'a> {
    pub(crate) fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    /// A varint of a `bits`-wide integer: at most as many bytes as it
    /// takes, the last one without bits beyond the width (postcard's rule).
    pub(crate) fn varint(&mut self, bits: u32) -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        while shift < bits {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            let last = shift + 7 >= bits;
            if last && (b & 0x80 != 0 || part >> (bits - shift) != 0) {
                return None;
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
        }
        None
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        u16::try_from(self.varint(16)?).ok()
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.varint(32)?).ok()
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.varint(64)
    }

    pub(crate) fn i32(&mut self) -> Option<i32> {
        Some(unzigzag(self.u32()?))
    }

    /// An `i16`: its zigzag in at most a `u16`'s varint.
    pub(crate) fn i16(&mut self) -> Option<i16> {
        i16::try_from(unzigzag(u32::from(self.u16()?))).ok()
    }

    /// An enum variant's index.
    pub(crate) fn tag(&mut self) -> Option<u32> {
        self.u32()
    }

    pub(crate) fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    pub(crate) fn opt<T>(&mut self, f: fn(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.flag()? {
            f(self).map(Some)
        } else {
            Some(None)
        }
    }

    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u64()?).ok()?;
        let (b, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(b)
    }

    pub(crate) fn str(&mut self) -> Option<&'a str> {
        core::str::from_utf8(self.bytes()?).ok()
    }
}

/// Zigzag back; the casts reinterpret the 32 bits.
fn unzigzag(z: u32) -> i32 {
    ((z >> 1) as i32) ^ -((z & 1) as i32)
}

/// Every prefix of `bytes` and every byte of it set to a few values that
/// matter to varints, tags and flags, and one byte more at the end: what
/// the codecs' tests read with postcard and by hand.
#[cfg(test)]
pub(crate) fn corruptions(bytes: &[u8]) -> std::vec::Vec<std::vec::Vec<u8>> {
    let mut out = std::vec::Vec::new();
    for n in 0..bytes.len() {
        out.extend(bytes.get(..n).map(<[u8]>::to_vec));
        for b in [
            0x00, 0x01, 0x02, 0x03, 0x04, 0x09, 0x0a, 0x0b, 0x0f, 0x10, 0x7f, 0x80, 0xff,
        ] {
            let mut p = bytes.to_vec();
            if let Some(at) = p.get_mut(n) {
                *at = b;
            }
            out.push(p);
        }
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    out.push(longer);
    out
}
