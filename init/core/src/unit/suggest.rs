//! "Did you mean" for misspelt keys.

use super::KEYS;

/// Optimal string alignment distance (Levenshtein plus transpositions),
/// ASCII-case-insensitive; `None` for strings too long to bother with.
pub(super) fn edit_distance(a: &str, b: &str) -> Option<usize> {
    const N: usize = 40;
    let a = a.as_bytes();
    let b = b.as_bytes();
    // Both lengths are below N, so every index below (at most len + 1)
    // is in bounds of the N-element rows.
    if a.len() >= N || b.len() >= N {
        return None;
    }
    // Three rows: the one before the previous one is needed for
    // transpositions.
    let mut prev2 = [0usize; N];
    let mut prev = [0usize; N];
    let mut cur = [0usize; N];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(!ca.eq_ignore_ascii_case(&cb));
            let mut d = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 {
                let (pa, pb) = (a.get(i - 1), b.get(j - 1));
                if pa.is_some_and(|pa| pa.eq_ignore_ascii_case(&cb))
                    && pb.is_some_and(|pb| pb.eq_ignore_ascii_case(&ca))
                {
                    d = d.min(prev2[j - 1] + 1);
                }
            }
            cur[j + 1] = d;
        }
        prev2 = prev;
        prev = cur;
    }
    prev.get(b.len()).copied()
}

/// The known key closest to a misspelt one, if any is close enough.
pub fn suggest_key(key: &str) -> Option<&'static str> {
    let limit = if key.len() >= 5 { 2 } else { 1 };
    KEYS.iter()
        .filter_map(|k| edit_distance(key, k).map(|d| (d, *k)))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}
