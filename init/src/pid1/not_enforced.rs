//! A unit's not-enforced limit keys as bits: the edge keeps them for
//! `initctl status NAME` for as long as the unit exists, so it holds two
//! bytes rather than the 168 of the list `cgroup` reports them in.
//! Only the cgroup's own entry and limit files (`cgroup::settings`) fit:
//! at most 16, checked by the tests below.

use crate::cgroup::NotEnforced;

/// Every name `cgroup` may report as not enforced, in the order it
/// reports them: `missing::NO_CGROUP`, then its limit files.
fn keys() -> impl Iterator<Item = &'static str> {
    let files = crate::cgroup::settings(&crate::unit::Limits::default()).map(|s| s.file);
    core::iter::once(crate::cgroup::missing::NO_CGROUP).chain(files)
}

/// A set of `keys()` (bit `i` for the `i`th).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct KeySet(u16);

impl KeySet {
    pub(super) const EMPTY: KeySet = KeySet(0);

    /// The set of `list`'s names. A name not in `keys()` would be lost:
    /// the host test below checks that `cgroup` reports none.
    pub(super) fn of(list: &NotEnforced) -> KeySet {
        if list.is_empty() {
            return KeySet::EMPTY;
        }
        let bits = keys()
            .enumerate()
            .filter(|(_, k)| list.contains(k))
            .fold(0u16, |b, (i, _)| b | (1 << i));
        KeySet(bits)
    }

    fn names(self) -> impl Iterator<Item = &'static str> {
        keys()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, k)| k)
    }
}

/// Space-separated, in `KEYS` order (as `cgroup` listed them).
impl core::fmt::Display for KeySet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, k) in self.names().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(k)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::missing::not_enforced;
    use crate::unit::{Limit, Limits};

    /// Every key set: what `cgroup` says with no hierarchy, which lists
    /// every limit file it knows.
    fn every_key() -> NotEnforced {
        let v = Some(Limit::Value(1));
        not_enforced(&Limits {
            memory_max: v,
            memory_high: v,
            memory_low: v,
            memory_min: v,
            memory_swap_max: v,
            pids_max: v,
            cpu_weight: Some(10),
            cpu_max: Some((Limit::Value(1000), 100_000)),
            io_weight: Some(10),
        })
    }

    #[test]
    fn every_name_cgroup_reports_survives_as_a_bit_in_order() {
        let all = every_key();
        assert_eq!(all.len(), 10, "{all:?}");
        assert_eq!(all.len(), keys().count());
        let set = KeySet::of(&all);
        assert_eq!(set.names().collect::<Vec<_>>(), all.as_slice());
        let text = all.join(" ");
        assert_eq!(set.to_string(), text);
    }

    /// `status NAME` sends the list whole, every key set or not (its
    /// field was 96 bytes: with no cgroup2, `io.weight` was dropped).
    #[test]
    fn every_key_fits_not_enforced() {
        let all = KeySet::of(&every_key());
        let sent: heapless::String<{ crate::proto::NOT_ENFORCED_MAX }> =
            crate::proto::formatted(format_args!("{all}"));
        assert_eq!(sent.as_str(), every_key().join(" "));
    }

    #[test]
    fn a_subset_reads_back_as_itself_and_empty_as_nothing() {
        let mut some = NotEnforced::new();
        some.push("memory.low").unwrap();
        some.push("cpu.max").unwrap();
        let set = KeySet::of(&some);
        assert_eq!(set.to_string(), "memory.low cpu.max");
        assert_ne!(set, KeySet::EMPTY);
        assert_eq!(KeySet::of(&NotEnforced::new()), KeySet::EMPTY);
        assert_eq!(KeySet::EMPTY.to_string(), "");
    }
}
