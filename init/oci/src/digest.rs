//! Content digests (`sha256:HEX`) and the reader that checks one while a
//! blob streams through it.

use sha2::{Digest as _, Sha256};
use std::io::Read;

/// A `sha256:` digest (the only algorithm OCI images use in practice; any
/// other is refused by name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, String> {
        let Some(hex) = s.strip_prefix("sha256:") else {
            return Err(format!("digest `{s}`: only sha256 digests are supported"));
        };
        if hex.len() != 64 || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!("digest `{s}`: expected 64 lowercase hex digits"));
        }
        Ok(Digest { hex: hex.into() })
    }

    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(h: Sha256) -> Digest {
        let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Digest { hex }
    }

    /// The 64 hex digits: the name of a blob file and of a stored layer.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Hashes and counts what is read through it.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads what the consumer left (tar's end padding, a compressor's
    /// trailer) so the digest covers the whole blob; then digest and size.
    pub fn finish(mut self) -> std::io::Result<(Digest, u64)> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok((Digest::from_hasher(self.hasher), self.count))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let done = buf.get(..n).unwrap_or(&[]);
        self.hasher.update(done);
        self.count += n as u64;
        Ok(n)
    }
}

/// Fails a read once more than `max` bytes came through: the bound on a
/// layer's unpacked size (a gzip bomb stops here, not on the disk).
pub struct Bounded<R> {
    pub inner: R,
    pub left: u64,
    pub max: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::other(format!(
                "unpacks to more than {} bytes (--max-size)",
                self.max
            ))
        })?;
        Ok(n)
    }
}

/// Check a whole blob held in memory (index, manifest, config).
pub fn verify(what: &str, bytes: &[u8], digest: &Digest, size: u64) -> Result<(), String> {
    if bytes.len() as u64 != size {
        return Err(format!(
            "{what} {digest}: {} bytes, the descriptor says {size} (truncated or replaced blob)",
            bytes.len()
        ));
    }
    let got = Digest::of(bytes);
    if &got != digest {
        return Err(format!(
            "{what}: digest mismatch: expected {digest}, got {got}"
        ));
    }
    Ok(())
}
