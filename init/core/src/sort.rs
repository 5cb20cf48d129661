//! One small stable sort for the few lists wren sorts (unit files, errors,
//! `initctl top` rows, seccomp syscall numbers). std's sorts are fast on
//! large inputs but each element type instantiates 2 to 4 KB of code, and
//! six instances were 15 KB of the binary (issue 10, the 400 KiB budget).
//! Here: binary insertion sort, O(n log n) comparisons and O(n²) element
//! moves (one `memmove` for each element inserted), which for the at most
//! few thousand elements wren sorts is milliseconds.

/// Sort `v` stably so that no element is `less` than one before it.
pub fn sort_by<T>(v: &mut [T], mut less: impl FnMut(&T, &T) -> bool) {
    for i in 1..v.len() {
        let pos = match (v.get(i), v.get(..i)) {
            // After every equal element already in place: stable.
            (Some(x), Some(sorted)) => sorted.partition_point(|y| !less(x, y)),
            _ => break,
        };
        // One move of the run, not a swap per place: a directory listed
        // newest first (ramfs, an initramfs) puts each file at the front.
        if let Some(run) = v.get_mut(pos..=i) {
            run.rotate_right(1);
        }
    }
}

/// In `sorted`, sorted (stably) by `key`, the first element whose key is
/// `k`: with a stable sort, the first of its run in the original order.
pub fn find_first<T: Copy, K: Ord>(sorted: &[T], key: impl Fn(&T) -> K, k: K) -> Option<T> {
    let at = sorted.partition_point(|x| key(x) < k);
    sorted.get(at).copied().filter(|x| key(x) == k)
}

/// `sort_by` on `Ord`.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, |a, b| a < b);
}

/// `sort_by` on a key.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a) < key(b));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the cases are the same each run.
    fn numbers(seed: u64, n: usize, modulo: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) % modulo
            })
            .collect()
    }

    #[test]
    fn sorts_as_std_does_stably() {
        for (seed, n, modulo) in [(1, 0, 5), (2, 1, 5), (3, 2, 5), (4, 50, 5), (5, 300, 1000)] {
            // (key, original position): equal keys must keep their order.
            let mut ours: Vec<(u64, usize)> = numbers(seed, n, modulo)
                .into_iter()
                .enumerate()
                .map(|(i, k)| (k, i))
                .collect();
            let mut std = ours.clone();
            sort_by_key(&mut ours, |p| p.0);
            std.sort_by_key(|p| p.0);
            assert_eq!(ours, std, "seed {seed}");
        }
        let mut words = vec!["b", "c", "a", "b"];
        sort(&mut words);
        assert_eq!(words, ["a", "b", "b", "c"]);
        let mut desc = vec![1, 3, 2];
        sort_by(&mut desc, |a, b| a > b);
        assert_eq!(desc, [3, 2, 1]);
    }
}
