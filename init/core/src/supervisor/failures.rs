//! The times of a unit's recent failed starts, for `start_limit`: as many
//! as its COUNT (the limit is hit when the COUNT-th latest is within the
//! window), none without a limit. Sized when the definition is set (boot,
//! reload, revert, re-exec handover), never while the unit runs.

use crate::unit::StartLimit;
use crate::vocab::{due, Due, Millis, START_LIMIT_MAX};
use serde::{Deserialize, Serialize};

/// Oldest first, the set ones before the free ones: a `Due` never being
/// 0, a free entry costs no length field (16 bytes a unit, not 24).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failures {
    times: Box<[Option<Due>]>,
}

impl Failures {
    /// Room for `limit`'s COUNT times (none without a limit).
    pub fn for_limit(limit: Option<StartLimit>) -> Self {
        let n = limit.map_or(0, |l| usize::from(l.count).min(START_LIMIT_MAX));
        Failures {
            times: std::vec![None; n].into_boxed_slice(),
        }
    }

    /// Sized again for `limit`, keeping the latest times that fit.
    pub fn resize(&mut self, limit: Option<StartLimit>) {
        let mut new = Self::for_limit(limit);
        if new.times.len() == self.times.len() {
            return;
        }
        let skip = self.len().saturating_sub(new.times.len());
        for t in self.iter().skip(skip) {
            new.push(t);
        }
        *self = new;
    }

    /// Record a failure at `now`, forgetting the oldest when full.
    pub fn push(&mut self, now: Millis) {
        if let Some(free) = self.times.iter_mut().find(|t| t.is_none()) {
            *free = due(now);
        } else if !self.times.is_empty() {
            self.times.rotate_left(1);
            if let Some(last) = self.times.last_mut() {
                *last = due(now);
            }
        }
    }

    pub fn clear(&mut self) {
        self.times.fill(None);
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.times.first().is_none_or(|t| t.is_none())
    }

    pub fn iter(&self) -> impl Iterator<Item = Millis> + '_ {
        self.times.iter().map_while(|t| t.map(Due::get))
    }

    /// As handed over (`times` oldest first); `Supervisor::restore` sizes
    /// them again.
    pub(crate) fn from_times(times: &[Millis]) -> Self {
        Failures {
            times: times.iter().map(|&t| due(t)).collect(),
        }
    }
}

/// On the wire (handover) the times as a sequence, as the fixed-size
/// deque this replaces was; `Supervisor::restore` sizes them again.
impl Serialize for Failures {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for t in self.iter() {
            seq.serialize_element(&t)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Failures {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let times = heapless::Vec::<Millis, START_LIMIT_MAX>::deserialize(d)?;
        Ok(Failures::from_times(&times))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(count: u16) -> Option<StartLimit> {
        Some(StartLimit {
            count,
            window: 1000,
        })
    }

    #[test]
    fn keeps_the_latest_count_times_oldest_first() {
        let mut f = Failures::for_limit(limit(3));
        for t in 1..=5 {
            f.push(t);
        }
        assert_eq!(f.iter().collect::<std::vec::Vec<_>>(), [3, 4, 5]);
        f.clear();
        assert!(f.is_empty());
        f.push(9);
        assert_eq!(f.iter().collect::<std::vec::Vec<_>>(), [9]);
    }

    #[test]
    fn no_limit_no_room() {
        let mut f = Failures::for_limit(None);
        f.push(1);
        assert!(f.is_empty());
        assert_eq!(core::mem::size_of_val(&*f.times), 0);
        assert_eq!(core::mem::size_of::<Failures>(), 16);
    }

    #[test]
    fn resize_keeps_the_latest_that_fit() {
        let mut f = Failures::for_limit(limit(4));
        for t in 1..=4 {
            f.push(t);
        }
        f.resize(limit(2));
        assert_eq!(f.iter().collect::<std::vec::Vec<_>>(), [3, 4]);
        f.resize(limit(5));
        f.push(7);
        assert_eq!(f.iter().collect::<std::vec::Vec<_>>(), [3, 4, 7]);
    }

    /// The handover format is that of the fixed-size deque it replaces.
    #[test]
    fn wire_format_is_the_old_deques() {
        let mut f = Failures::for_limit(limit(3));
        let mut d = heapless::Deque::<Millis, START_LIMIT_MAX>::new();
        for t in [5, 300, 70_000, 1 << 40] {
            f.push(t);
            if d.len() == 3 {
                d.pop_front();
            }
            let _ = d.push_back(t);
        }
        let mut a = [0u8; 128];
        let mut b = [0u8; 128];
        let ours = postcard::to_slice(&f, &mut a).unwrap();
        let old = postcard::to_slice(&d, &mut b).unwrap();
        assert_eq!(ours, old);
        let mut back: Failures = postcard::from_bytes(ours).unwrap();
        back.resize(limit(3));
        assert_eq!(
            back.iter().collect::<std::vec::Vec<_>>(),
            [300, 70_000, 1 << 40]
        );
    }
}
