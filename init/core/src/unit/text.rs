//! A string a unit definition stores at its real size (`description`,
//! `workdir`, `hostname`, `root`): one boxed str of at most `N` bytes,
//! set by the parser (boot, reload, re-exec handover), never while units
//! run. On the wire (handover) it is a plain string, as the fixed-size
//! `heapless::String` it replaces was.

use super::packed::BoxStr;
use serde::{Deserialize, Serialize};

/// At most `N` bytes of text, stored at their real size.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Text<const N: usize>(Box<str>);

/// The text does not fit in `N` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong;

impl<const N: usize> Text<N> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Append `s`, refusing (and leaving the text as it was) what would
    /// make it longer than `N` bytes.
    pub fn push_str(&mut self, s: &str) -> Result<(), TooLong> {
        let len = self.0.len().checked_add(s.len()).ok_or(TooLong)?;
        if len > N {
            return Err(TooLong);
        }
        if !s.is_empty() {
            let mut grown = std::string::String::with_capacity(len);
            grown.push_str(&self.0);
            grown.push_str(s);
            self.0 = grown.into_boxed_str();
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.0 = Box::default();
    }
}

impl<const N: usize> TryFrom<&str> for Text<N> {
    type Error = TooLong;
    fn try_from(s: &str) -> Result<Self, TooLong> {
        let mut t = Self::new();
        t.push_str(s)?;
        Ok(t)
    }
}

impl<const N: usize> core::ops::Deref for Text<N> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> AsRef<str> for Text<N> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> PartialEq<str> for Text<N> {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl<const N: usize> PartialEq<&str> for Text<N> {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl<const N: usize> core::fmt::Display for Text<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const N: usize> core::fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&*self.0, f)
    }
}

impl<const N: usize> Serialize for Text<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Text<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = BoxStr::deserialize(d)?.0;
        if s.len() > N {
            return Err(serde::de::Error::custom("text over capacity"));
        }
        Ok(Text(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_more_than_n_bytes_and_keeps_what_it_had() {
        let mut t = Text::<5>::try_from("abc").unwrap();
        assert_eq!(t.push_str("def"), Err(TooLong));
        assert_eq!(t.as_str(), "abc");
        t.push_str("de").unwrap();
        assert_eq!(t, "abcde");
        assert!(Text::<2>::try_from("abc").is_err());
        t.clear();
        assert!(t.is_empty());
    }

    /// The handover format is that of the `heapless::String` it replaces.
    #[test]
    fn wire_format_is_the_old_strings() {
        let t = Text::<768>::try_from("/srv/a:/srv/b").unwrap();
        let h = heapless::String::<768>::try_from("/srv/a:/srv/b").unwrap();
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        let ours = postcard::to_slice(&Some(&t), &mut a).unwrap();
        let old = postcard::to_slice(&Some(&h), &mut b).unwrap();
        assert_eq!(ours, old);
        let back: Option<Text<768>> = postcard::from_bytes(ours).unwrap();
        assert_eq!(back, Some(t));
        assert!(postcard::from_bytes::<Text<4>>(ours[1..].as_ref()).is_err());
    }
}
