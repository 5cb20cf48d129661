//! Lists a unit definition stores at their real size: argv and env packed
//! in one boxed str (`Packed`), `after` names and lines in a boxed slice
//! (`Few`). Grown by the parser (boot, reload), never while units run.

use serde::{Deserialize, Serialize};

/// Strings packed as `a\0b\0c\0` in one buffer of their real size (at
/// most `N` bytes as `a\0b\0c`, at most `M` strings): each ends in a NUL,
/// so their number is that of the NULs and the definition holds no count
/// beside the pointer (16 bytes, not 24). Used for argv and env: allocated
/// when the unit is parsed (boot, reload), never while it runs, so
/// spawning needs no allocation and a unit pays for the bytes it has, not
/// for `N`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packed<const N: usize, const M: usize> {
    buf: Box<str>,
}

/// A `Box<str>` for serde without its `alloc` feature.
pub(super) struct BoxStr(pub(super) Box<str>);

impl<'de> Deserialize<'de> for BoxStr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = BoxStr;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BoxStr, E> {
                Ok(BoxStr(v.into()))
            }
        }
        d.deserialize_str(V)
    }
}

/// At most `N` items, stored at their real number: grown one item at a
/// time by the parser (boot, reload), never while units run. Reads like a
/// slice; `push` refuses the `N+1`th item as a full `heapless::Vec` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Few<T, const N: usize> {
    items: Box<[T]>,
}

impl<T, const N: usize> Default for Few<T, N> {
    fn default() -> Self {
        Few {
            items: Box::default(),
        }
    }
}

impl<T: Clone, const N: usize> Few<T, N> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.items.len() >= N {
            return Err(item);
        }
        let mut v = std::vec::Vec::with_capacity(self.items.len().saturating_add(1));
        v.extend_from_slice(&self.items);
        v.push(item);
        self.items = v.into_boxed_slice();
        Ok(())
    }

    pub fn as_slice(&self) -> &[T] {
        &self.items
    }

    /// The first `N` of `items`, in one allocation of their real size
    /// (none when empty).
    pub fn from_slice(items: &[T]) -> Self {
        Few {
            items: items.iter().take(N).cloned().collect(),
        }
    }
}

impl<T, const N: usize> core::ops::Deref for Few<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<T, const N: usize> core::ops::DerefMut for Few<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.items
    }
}

impl<'a, T, const N: usize> IntoIterator for &'a Few<T, N> {
    type Item = &'a T;
    type IntoIter = core::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T: Serialize, const N: usize> Serialize for Few<T, N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.items.len()))?;
        for i in self.items.iter() {
            seq.serialize_element(i)?;
        }
        seq.end()
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Few<T, N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(core::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for V<T, N> {
            type Value = Few<T, N>;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "at most {N} items")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Few<T, N>, A::Error> {
                let mut v = std::vec::Vec::new();
                while let Some(i) = a.next_element()? {
                    if v.len() >= N {
                        return Err(serde::de::Error::custom("too many items"));
                    }
                    v.push(i);
                }
                Ok(Few {
                    items: v.into_boxed_slice(),
                })
            }
        }
        d.deserialize_seq(V::<T, N>(core::marker::PhantomData))
    }
}

/// Why a `Packed` push failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackError {
    TooMany,
    TooLong,
    /// An embedded NUL cannot be passed to execve.
    Nul,
}

impl<const N: usize, const M: usize> Packed<N, M> {
    pub fn new() -> Self {
        Packed {
            buf: Box::default(),
        }
    }

    pub fn push(&mut self, s: &str) -> Result<(), PackError> {
        if s.contains('\0') {
            return Err(PackError::Nul);
        }
        if self.len() >= M {
            return Err(PackError::TooMany);
        }
        // `N` bounds the strings with a NUL between them, not after each.
        let grown = self.buf.len().saturating_add(s.len()).saturating_add(1);
        if grown.saturating_sub(1) > N {
            return Err(PackError::TooLong);
        }
        let mut buf = std::string::String::with_capacity(grown);
        buf.push_str(&self.buf);
        buf.push_str(s);
        buf.push('\0');
        self.buf = buf.into_boxed_str();
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.buf.bytes().filter(|&b| b == 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.buf.split_terminator('\0')
    }

    pub fn first(&self) -> Option<&str> {
        self.iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type P = Packed<16, 3>;

    fn packed(items: &[&str]) -> P {
        let mut p = P::new();
        for i in items {
            p.push(i).unwrap();
        }
        p
    }

    #[test]
    fn strings_read_back_with_their_number_and_empty_ones() {
        for items in [
            &[][..],
            &[""],
            &["", ""],
            &["a", "", "bc"],
            &["/bin/sleep", "1"],
        ] {
            let p = packed(items);
            assert_eq!(p.iter().collect::<Vec<_>>(), items);
            assert_eq!(p.len(), items.len());
            assert_eq!(p.is_empty(), items.is_empty());
            assert_eq!(p.first(), items.first().copied());
        }
        assert_eq!(core::mem::size_of::<P>(), 16);
    }

    #[test]
    fn capacities_count_the_strings_with_a_nul_between_them() {
        // 16 bytes as `0123456\0abcdefgh`: fits; one more byte does not.
        let mut p = packed(&["0123456"]);
        assert_eq!(p.push("abcdefghi"), Err(PackError::TooLong));
        assert_eq!(p.push("abcdefgh"), Ok(()));
        assert_eq!(p.iter().collect::<Vec<_>>(), ["0123456", "abcdefgh"]);
        assert_eq!(packed(&[]).push(&"x".repeat(17)), Err(PackError::TooLong));
        assert_eq!(packed(&[]).push(&"x".repeat(16)), Ok(()));
        assert_eq!(packed(&["a", "b", "c"]).push("d"), Err(PackError::TooMany));
        assert_eq!(packed(&[]).push("a\0b"), Err(PackError::Nul));
    }
}
