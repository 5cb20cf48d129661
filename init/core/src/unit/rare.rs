//! A unit's cgroup limits, stored only when it sets one: most units set
//! none, and a `Limits` inline is 128 of a definition's bytes in every
//! slot of PID 1's table.

use super::Limits;
use serde::{Deserialize, Serialize};

/// The limits every unit has that sets none: what an unset box reads as.
static NO_LIMITS: Limits = Limits {
    memory_max: None,
    memory_high: None,
    memory_low: None,
    memory_min: None,
    memory_swap_max: None,
    pids_max: None,
    cpu_weight: None,
    cpu_max: None,
    io_weight: None,
};

/// `Limits` behind a pointer (8 bytes), allocated at the first key set
/// (`DerefMut`: the parser, boot and reload, where PID 1 may allocate);
/// reads of a unit that set none see `NO_LIMITS`. Compares, prints and
/// serializes as the `Limits` it reads as.
#[derive(Clone, Default)]
pub struct LimitsBox(Option<Box<Limits>>);

impl LimitsBox {
    /// Is there a box (some key was set, even to its default)?
    pub fn is_boxed(&self) -> bool {
        self.0.is_some()
    }
}

impl From<Limits> for LimitsBox {
    fn from(l: Limits) -> Self {
        if l == NO_LIMITS {
            LimitsBox(None)
        } else {
            LimitsBox(Some(Box::new(l)))
        }
    }
}

impl core::ops::Deref for LimitsBox {
    type Target = Limits;
    fn deref(&self) -> &Limits {
        self.0.as_deref().unwrap_or(&NO_LIMITS)
    }
}

impl core::ops::DerefMut for LimitsBox {
    fn deref_mut(&mut self) -> &mut Limits {
        self.0.get_or_insert_with(|| Box::new(NO_LIMITS))
    }
}

impl PartialEq for LimitsBox {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for LimitsBox {}

impl PartialEq<Limits> for LimitsBox {
    fn eq(&self, other: &Limits) -> bool {
        **self == *other
    }
}

impl core::fmt::Debug for LimitsBox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&**self, f)
    }
}

impl Serialize for LimitsBox {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for LimitsBox {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Limits::deserialize(d).map(LimitsBox::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::{parse, Limit, UnitDef};

    fn parse_unit_for_test(text: &str) -> UnitDef {
        parse("t", text).unwrap()
    }

    #[test]
    fn a_unit_without_limits_holds_no_box() {
        let d = parse_unit_for_test("exec = /bin/true\n");
        assert!(!d.limits.is_boxed());
        assert_eq!(d.limits, Limits::default());
        let d = parse_unit_for_test("exec = /bin/true\nmemory.max = 16M\n");
        assert!(d.limits.is_boxed());
        assert_eq!(d.limits.memory_max, Some(Limit::Value(16 << 20)));
        assert_eq!(d.limits.pids_max, None);
    }

    #[test]
    fn compares_and_travels_as_the_limits_it_reads_as() {
        let empty = LimitsBox::default();
        let mut boxed_default = LimitsBox::default();
        let l: &mut Limits = &mut boxed_default;
        l.cpu_weight = None;
        assert!(boxed_default.is_boxed());
        assert_eq!(empty, boxed_default);
        let mut set = LimitsBox::default();
        let l: &mut Limits = &mut set;
        l.pids_max = Some(Limit::Max);
        assert_ne!(set, empty);
        for l in [&empty, &set] {
            let mut a = [0u8; 64];
            let mut b = [0u8; 64];
            let a = postcard::to_slice(l, &mut a).unwrap();
            let b = postcard::to_slice(&**l, &mut b).unwrap();
            assert_eq!(a, b);
            let back: LimitsBox = postcard::from_bytes(a).unwrap();
            assert_eq!(&back, l);
            assert_eq!(back.is_boxed(), l != &empty);
        }
        assert!(core::mem::size_of::<LimitsBox>() <= 8);
        assert!(core::mem::size_of::<UnitDef>() <= 400);
    }
}
