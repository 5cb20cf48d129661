//! Lists a unit definition stores at their real size: argv and env packed
//! in one boxed str (`Packed`), `after` names and lines in a boxed slice
//! (`Few`). Grown by the parser (boot, reload), never while units run.

use serde::{Deserialize, Serialize};

/// Strings packed as `a\0b\0c` in one buffer of their real size (at most
/// `N` bytes), with their count. Used for argv and env: allocated when the
/// unit is parsed (boot, reload), never while it runs, so spawning needs
/// no allocation and a unit pays for the bytes it has, not for `N`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packed<const N: usize, const M: usize> {
    buf: Box<str>,
    count: u8,
}

/// `Packed` on the wire (handover): the text and the count.
#[derive(Serialize)]
struct PackedOut<'a> {
    buf: &'a str,
    count: u8,
}

#[derive(Deserialize)]
struct PackedIn {
    buf: BoxStr,
    count: u8,
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

impl<const N: usize, const M: usize> Serialize for Packed<N, M> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PackedOut {
            buf: &self.buf,
            count: self.count,
        }
        .serialize(s)
    }
}

impl<'de, const N: usize, const M: usize> Deserialize<'de> for Packed<N, M> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = PackedIn::deserialize(d)?;
        if w.buf.0.len() > N || usize::from(w.count) > M {
            return Err(serde::de::Error::custom("packed strings over capacity"));
        }
        Ok(Packed {
            buf: w.buf.0,
            count: w.count,
        })
    }
}

/// `Option<Box<T>>` on the wire exactly as `Option<T>` (serde without
/// its `alloc` feature has no `Box`): for rarely set definition fields
/// that a unit without them should not pay for.
pub mod opt_box {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Box<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.as_deref().serialize(s)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Box<T>>, D::Error> {
        Ok(Option::<T>::deserialize(d)?.map(Box::new))
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
            count: 0,
        }
    }

    pub fn push(&mut self, s: &str) -> Result<(), PackError> {
        if s.contains('\0') {
            return Err(PackError::Nul);
        }
        if usize::from(self.count) >= M {
            return Err(PackError::TooMany);
        }
        let need = s.len().saturating_add(usize::from(self.count > 0));
        if self.buf.len().saturating_add(need) > N {
            return Err(PackError::TooLong);
        }
        let mut grown = std::string::String::with_capacity(self.buf.len().saturating_add(need));
        grown.push_str(&self.buf);
        if self.count > 0 {
            grown.push('\0');
        }
        grown.push_str(s);
        self.buf = grown.into_boxed_str();
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let n = self.len();
        self.buf.split('\0').take(n)
    }

    pub fn first(&self) -> Option<&str> {
        self.iter().next()
    }
}
