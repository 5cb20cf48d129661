//! A unit's cgroup limits, stored as only the keys it sets: most units set
//! none, an isolated one typically one (`memory.max`), and a `Limits`
//! inline is 128 of a definition's bytes in every slot of PID 1's table.

use super::{Limit, Limits};

/// `Limits` as the keys a unit sets: `None` for a unit that sets none;
/// else one boxed list of words, written by the parser, boot and reload
/// (where PID 1 may allocate), never while units run. Word 0 says which
/// keys are set (bit `k`) and which of those are `max` (bit `MAX_BIT +
/// k`); then, in key order, one word per set key that holds a number
/// (`cpu.max`: its quota unless `max`, then its period). `memory.max =
/// 16M` is two words, 16 bytes, where a boxed `Limits` was 128. Compares,
/// prints and serializes as the `Limits` it reads as (`get`).
#[derive(Clone, Default)]
pub struct LimitsBox(Option<Box<[u64]>>);

/// Bit of each key in word 0, in the order of their words.
const MEMORY_MAX: u32 = 0;
const MEMORY_HIGH: u32 = 1;
const MEMORY_LOW: u32 = 2;
const MEMORY_MIN: u32 = 3;
const MEMORY_SWAP_MAX: u32 = 4;
const PIDS_MAX: u32 = 5;
const CPU_WEIGHT: u32 = 6;
const CPU_MAX: u32 = 7;
const IO_WEIGHT: u32 = 8;
/// Word 0's bit `MAX_BIT + k`: key `k` is `max` (`cpu.max`: its quota).
const MAX_BIT: u32 = 16;
/// Most words a `Limits` takes: word 0, one per key, `cpu.max`'s period.
const WORDS_MAX: usize = 11;

/// Builds the words of a `LimitsBox`, key by key in order.
#[derive(Default)]
struct Encoder {
    head: u64,
    words: [u64; WORDS_MAX],
    len: usize,
}

impl Encoder {
    fn word(&mut self, w: u64) {
        if let Some(slot) = self.words.get_mut(self.len) {
            *slot = w;
            self.len += 1;
        }
    }

    fn limit(&mut self, key: u32, l: Option<Limit>) {
        match l {
            None => {}
            Some(Limit::Max) => self.head |= 1 << key | 1 << (MAX_BIT + key),
            Some(Limit::Value(v)) => {
                self.head |= 1 << key;
                self.word(v);
            }
        }
    }

    fn weight(&mut self, key: u32, w: Option<u16>) {
        if let Some(w) = w {
            self.head |= 1 << key;
            self.word(u64::from(w));
        }
    }
}

/// Reads the words of a `LimitsBox` back, key by key in the same order.
struct Decoder<'a> {
    head: u64,
    words: core::slice::Iter<'a, u64>,
}

impl Decoder<'_> {
    fn set(&self, key: u32) -> bool {
        self.head & 1 << key != 0
    }

    fn limit(&mut self, key: u32) -> Option<Limit> {
        if !self.set(key) {
            None
        } else if self.head & 1 << (MAX_BIT + key) != 0 {
            Some(Limit::Max)
        } else {
            self.words.next().map(|&v| Limit::Value(v))
        }
    }

    fn weight(&mut self, key: u32) -> Option<u16> {
        if !self.set(key) {
            return None;
        }
        self.words.next().and_then(|&w| u16::try_from(w).ok())
    }
}

impl LimitsBox {
    /// Is there a box (some key is set)?
    pub fn is_boxed(&self) -> bool {
        self.0.is_some()
    }

    /// The limits, every key the unit did not set `None`.
    pub fn get(&self) -> Limits {
        let Some((&head, words)) = self.0.as_deref().and_then(|w| w.split_first()) else {
            return Limits::default();
        };
        let mut d = Decoder {
            head,
            words: words.iter(),
        };
        Limits {
            memory_max: d.limit(MEMORY_MAX),
            memory_high: d.limit(MEMORY_HIGH),
            memory_low: d.limit(MEMORY_LOW),
            memory_min: d.limit(MEMORY_MIN),
            memory_swap_max: d.limit(MEMORY_SWAP_MAX),
            pids_max: d.limit(PIDS_MAX),
            cpu_weight: d.weight(CPU_WEIGHT),
            cpu_max: match d.limit(CPU_MAX) {
                Some(q) => d.words.next().map(|&p| (q, p)),
                None => None,
            },
            io_weight: d.weight(IO_WEIGHT),
        }
    }

    /// Change some keys (the parser; tests): the limits are stored again.
    pub fn edit(&mut self, f: impl FnOnce(&mut Limits)) {
        let mut l = self.get();
        f(&mut l);
        *self = LimitsBox::from(l);
    }
}

impl From<Limits> for LimitsBox {
    fn from(l: Limits) -> Self {
        let mut e = Encoder::default();
        e.limit(MEMORY_MAX, l.memory_max);
        e.limit(MEMORY_HIGH, l.memory_high);
        e.limit(MEMORY_LOW, l.memory_low);
        e.limit(MEMORY_MIN, l.memory_min);
        e.limit(MEMORY_SWAP_MAX, l.memory_swap_max);
        e.limit(PIDS_MAX, l.pids_max);
        e.weight(CPU_WEIGHT, l.cpu_weight);
        if let Some((q, p)) = l.cpu_max {
            e.limit(CPU_MAX, Some(q));
            e.word(p);
        }
        e.weight(IO_WEIGHT, l.io_weight);
        if e.head == 0 {
            return LimitsBox(None);
        }
        let words = e.words.get(..e.len).unwrap_or(&[]);
        LimitsBox(Some(
            core::iter::once(e.head)
                .chain(words.iter().copied())
                .collect(),
        ))
    }
}

impl PartialEq for LimitsBox {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for LimitsBox {}

impl PartialEq<Limits> for LimitsBox {
    fn eq(&self, other: &Limits) -> bool {
        self.get() == *other
    }
}

impl core::fmt::Debug for LimitsBox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&self.get(), f)
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
        assert_eq!(d.limits.get().memory_max, Some(Limit::Value(16 << 20)));
        assert_eq!(d.limits.get().pids_max, None);
        // Only the key set is stored: its bits and its number.
        assert_eq!(d.limits.0.as_deref().map(<[u64]>::len), Some(2));
    }

    /// Every key alone, at each kind of value, and all of them at once,
    /// read back as they were set, compare as they read, and travel as
    /// the `Limits` they read as.
    #[test]
    fn every_key_reads_back_as_set() {
        let values = [
            Limit::Max,
            Limit::Value(0),
            Limit::Value(16 << 20),
            Limit::Value(u64::MAX),
        ];
        let mut cases = vec![Limits::default()];
        for v in values {
            for set in [
                |l: &mut Limits, v| l.memory_max = Some(v),
                |l: &mut Limits, v| l.memory_high = Some(v),
                |l: &mut Limits, v| l.memory_low = Some(v),
                |l: &mut Limits, v| l.memory_min = Some(v),
                |l: &mut Limits, v| l.memory_swap_max = Some(v),
                |l: &mut Limits, v| l.pids_max = Some(v),
                |l: &mut Limits, v| l.cpu_max = Some((v, 100_000)),
            ] {
                let mut l = Limits::default();
                set(&mut l, v);
                cases.push(l);
            }
        }
        for w in [1, 100, 10_000, u16::MAX] {
            cases.push(Limits {
                cpu_weight: Some(w),
                ..Limits::default()
            });
            cases.push(Limits {
                io_weight: Some(w),
                ..Limits::default()
            });
        }
        let all = Limits {
            memory_max: Some(Limit::Value(64 << 20)),
            memory_high: Some(Limit::Max),
            memory_low: Some(Limit::Value(16 << 20)),
            memory_min: Some(Limit::Value(8 << 20)),
            memory_swap_max: Some(Limit::Value(0)),
            pids_max: Some(Limit::Value(100)),
            cpu_weight: Some(200),
            cpu_max: Some((Limit::Value(50_000), 20_000)),
            io_weight: Some(300),
        };
        cases.push(all);
        cases.push(Limits {
            cpu_max: Some((Limit::Max, 7)),
            io_weight: Some(1),
            ..all
        });
        for (i, l) in cases.iter().enumerate() {
            let b = LimitsBox::from(*l);
            assert_eq!(b.get(), *l, "case {i}");
            assert_eq!(b, *l);
            assert_eq!(b.is_boxed(), *l != Limits::default());
            for (j, m) in cases.iter().enumerate() {
                let other = LimitsBox::from(*m);
                assert_eq!(b == other, l == m, "cases {i} and {j}");
                assert_eq!(b == *m, l == m, "case {i} and limits {j}");
            }
            assert_eq!(format!("{b:?}"), format!("{l:?}"));
        }
    }

    #[test]
    fn edit_changes_only_the_keys_it_sets() {
        let mut b = LimitsBox::default();
        b.edit(|l| l.pids_max = Some(Limit::Max));
        b.edit(|l| l.memory_low = Some(Limit::Value(4096)));
        let l = b.get();
        assert_eq!(l.pids_max, Some(Limit::Max));
        assert_eq!(l.memory_low, Some(Limit::Value(4096)));
        assert_eq!(l.memory_max, None);
        b.edit(|l| *l = Limits::default());
        assert!(!b.is_boxed());
    }

    #[test]
    fn sizes() {
        assert!(core::mem::size_of::<LimitsBox>() <= 16);
        // The two `Packed` lists hold no count: 8 bytes less each.
        assert!(core::mem::size_of::<UnitDef>() <= 392);
        assert!(core::mem::size_of::<UnitDef>() <= 400);
    }
}
