//! "Did you mean" for misspelt keys.

use super::KEYS;

/// Optimal string alignment distance (Levenshtein plus transpositions),
/// ASCII-case-insensitive; `None` for strings too long to bother with.
pub(super) fn edit_distance(a: &str, b: &str) -> Option<usize> {
    const N: usize = 40;
    let a = a.as_bytes();
    let b = b.as_bytes();
    // Rows of N cells hold every column 0..=len.
    if a.len() >= N || b.len() >= N {
        return None;
    }
    let same = |x: &u8, y: &u8| x.eq_ignore_ascii_case(y);
    // Three rows: the one before the previous one is needed for
    // transpositions.
    let mut prev2 = [0usize; N];
    let mut prev = [0usize; N];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    let mut a_before: Option<&u8> = None;
    for (i, ca) in a.iter().enumerate() {
        let mut cur = [0usize; N];
        let (first, rest) = cur.split_first_mut()?;
        // cur[j], the cell left of the one being computed.
        let mut left = i + 1;
        *first = left;
        // prev[j] and prev[j + 1]: diagonal and above.
        let diag_up = prev.iter().zip(prev.iter().skip(1));
        // prev2[j - 1] (nothing for j = 0, where no transposition fits).
        let diag2 = core::iter::once(&0).chain(prev2.iter());
        let mut b_before: Option<&u8> = None;
        for (((cb, cell), (&diag, &up)), &diag2) in b.iter().zip(rest).zip(diag_up).zip(diag2) {
            let cost = usize::from(!same(ca, cb));
            let mut d = (diag + cost).min(up + 1).min(left + 1);
            if a_before.is_some_and(|pa| same(pa, cb)) && b_before.is_some_and(|pb| same(pb, ca)) {
                d = d.min(diag2 + 1);
            }
            *cell = d;
            left = d;
            b_before = Some(cb);
        }
        prev2 = prev;
        prev = cur;
        a_before = Some(ca);
    }
    prev.get(b.len()).copied()
}

/// How many edits from `known` a misspelt `key` may be: 1 below 5
/// letters, 2 below 10, then 3 for a longer known key (a plural's `ies`:
/// `capability`).
fn limit(key: &str, known: &str) -> usize {
    1 + usize::from(key.len() >= 5) + usize::from(key.len() >= 10 && known.len() > key.len())
}

/// The known key closest to a misspelt one, if any is close enough.
pub fn suggest_key(key: &str) -> Option<&'static str> {
    KEYS.iter()
        // The distance is at least the difference in length: most keys are
        // ruled out without the table (fuzzing found this the parser's
        // hot spot on files full of unknown keys).
        .filter(|k| k.len().abs_diff(key.len()) <= limit(key, k))
        .filter_map(|k| edit_distance(key, k).map(|d| (d, *k)))
        .filter(|(d, k)| *d <= limit(key, k))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::{edit_distance, suggest_key, KEYS};

    /// The textbook OSA recurrence on a full matrix.
    fn reference(a: &str, b: &str) -> usize {
        let a: Vec<u8> = a.bytes().map(|c| c.to_ascii_lowercase()).collect();
        let b: Vec<u8> = b.bytes().map(|c| c.to_ascii_lowercase()).collect();
        let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in 0..=a.len() {
            for j in 0..=b.len() {
                d[i][j] = if i == 0 {
                    j
                } else if j == 0 {
                    i
                } else {
                    let cost = usize::from(a[i - 1] != b[j - 1]);
                    let mut v = (d[i - 1][j - 1] + cost)
                        .min(d[i - 1][j] + 1)
                        .min(d[i][j - 1] + 1);
                    if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                        v = v.min(d[i - 2][j - 2] + 1);
                    }
                    v
                };
            }
        }
        d[a.len()][b.len()]
    }

    #[test]
    fn matches_the_textbook_recurrence() {
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "exec",
            "exce",
            "EXEC",
            "restart",
            "retsart",
            "rsetart",
            "after",
            "aftre",
            "ca",
            "abc",
            "acb",
            "bca",
            "memory_max",
            "memroy_max",
            "stop_signal",
            "stpo_signal",
            "xyz",
            "kill_timeout",
        ];
        for a in words {
            for b in words {
                assert_eq!(edit_distance(a, b), Some(reference(a, b)), "{a:?} {b:?}");
            }
        }
        assert_eq!(edit_distance(&"x".repeat(40), "x"), None);
    }

    /// A plural key for its singular (3 edits: `y` to `ies`), but not an
    /// unrelated key as long.
    #[test]
    fn plurals_are_suggested() {
        for (typed, want) in [
            ("capability", Some("capabilities")),
            ("Capability", Some("capabilities")),
            ("namespace", Some("namespaces")),
            ("no_new_priv", Some("no_new_privs")),
            ("kill_signal", None),
            // Three letters from `stop_timeout`, as long: only a longer key
            // is let that far.
            ("boot_timeout", None),
            ("environment", None),
            ("restart_sec", None),
            ("restartsec", None),
            ("memorylimit", None),
        ] {
            assert_eq!(suggest_key(typed), want, "{typed}");
        }
    }

    /// Skipping keys by length changes no suggestion: every key with one or
    /// two letters dropped or inserted (or its tail repeated) gets what a
    /// search of all keys gives.
    #[test]
    fn the_length_filter_loses_no_suggestion() {
        let full = |key: &str| {
            KEYS.iter()
                .filter_map(|k| edit_distance(key, k).map(|d| (d, *k)))
                .filter(|(d, k)| *d <= super::limit(key, k))
                .min_by_key(|(d, _)| *d)
                .map(|(_, k)| k)
        };
        let mut tried = 0;
        for k in KEYS {
            for i in 0..k.len() {
                let (a, b) = k.split_at(i);
                let variants = [
                    format!("{a}{}", b.get(1..).unwrap_or("")),
                    format!("{a}{}", b.get(2..).unwrap_or("")),
                    format!("{a}x{b}"),
                    format!("{a}xy{b}"),
                    format!("{a}{b}{b}"),
                ];
                for v in variants {
                    assert_eq!(suggest_key(&v), full(&v), "{v:?}");
                    tried += 1;
                }
            }
        }
        assert!(tried > 100);
    }
}
