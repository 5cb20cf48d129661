//! The `after` checks of a set being loaded: every name must lead to a
//! valid unit, and no unit may wait for itself through a cycle.

use super::LoadedSet;

/// For each unit, the unit each of its `after` names is (`None`: no unit
/// has that name) and the line naming it; none for a unit that did not
/// parse. Looked up once for both checks, each name a binary search (at
/// 9,900 `after` lines, a quarter of `initctl check`'s instructions when
/// each check looked them up again).
pub(super) fn targets(set: &LoadedSet) -> Vec<Vec<(Option<usize>, u32)>> {
    set.units
        .iter()
        .map(|c| {
            c.def
                .iter()
                .flat_map(|def| def.after.iter().zip(c.after_lines.iter()))
                .map(|(name, line)| (set.index_of(name), *line))
                .collect()
        })
        .collect()
}

/// Drop valid units whose `after` names no unit or an invalid one, until
/// nothing changes; then report, for each dropped unit, every `after` name
/// that is missing or invalid in the end (so the result does not depend on
/// the order units were looked at). Returns whether any unit was dropped.
pub(super) fn check_after(
    set: &mut LoadedSet,
    targets: &[Vec<(Option<usize>, u32)>],
    order: &[usize],
) -> bool {
    let n = set.units.len();
    let was_valid: Vec<bool> = (0..n).map(|i| set.is_valid(i)).collect();
    let mut valid = was_valid.clone();
    let ok = |valid: &[bool], t: &Option<usize>| {
        t.is_some_and(|j| valid.get(j).copied().unwrap_or(false))
    };
    // In `order` (`cycle_groups`: each unit after those it waits for, but
    // on a cycle) one pass drops a whole chain to a missing unit; in file
    // order it was a pass per link (4,000 units each after the next: 568 M
    // host instructions to check). Units on a cycle may need more.
    let mut again = true;
    while again {
        again = false;
        for &i in order {
            let live = valid.get(i).copied().unwrap_or(false);
            let deps = targets.get(i).map(Vec::as_slice).unwrap_or_default();
            if live && deps.iter().any(|(t, _)| !ok(&valid, t)) {
                if let Some(v) = valid.get_mut(i) {
                    *v = false;
                }
                again = true;
            }
        }
    }
    let dropped: Vec<usize> = (0..n)
        .filter(|&i| was_valid.get(i) != valid.get(i))
        .collect();
    for &i in &dropped {
        let Some(def) = set.units.get(i).and_then(|c| c.def.clone()) else {
            continue;
        };
        let mut problems = Vec::new();
        for (name, (t, line)) in def.after.iter().zip(targets.get(i).into_iter().flatten()) {
            match t {
                None => problems.push((*line, format!("after: no unit named `{name}`"))),
                Some(_) if !ok(&valid, t) => {
                    problems.push((*line, format!("after: unit `{name}` is invalid")))
                }
                Some(_) => {}
            }
        }
        for (line, msg) in problems {
            set.fail(i, line, msg);
        }
    }
    !dropped.is_empty()
}

/// For each unit, its group of units that wait for each other through
/// `after` (a strongly connected component, by Tarjan's search), or `None`
/// when it is on no cycle; and every unit in the order the search
/// closed their groups, each after the units it waits for outside its
/// group. One pass over the links: a search from every
/// unit, which only the units on a cycle need, took time quadratic in
/// the units (4,000 units in layers of 16, each after the whole layer
/// before: 0.58 s on the host, issue 10). Its own stack of calls, not
/// recursion: a chain of 4,000 `after` must not deepen PID 1's stack.
pub(super) fn cycle_groups(deps: &[Vec<(Option<usize>, u32)>]) -> (Vec<Option<usize>>, Vec<usize>) {
    /// Order of discovery, the earliest discovered unit reachable through
    /// units still open, and whether it is open (in no group yet).
    #[derive(Clone, Copy)]
    struct Mark {
        order: usize,
        low: usize,
        open: bool,
    }
    const NEW: usize = usize::MAX;
    let fresh = Mark {
        order: NEW,
        low: NEW,
        open: false,
    };
    let mut marks = vec![fresh; deps.len()];
    let mut group = vec![None; deps.len()];
    let mut open: Vec<usize> = Vec::new();
    // (unit, its next link to follow).
    let mut calls: Vec<(usize, usize)> = Vec::new();
    let mut seen = 0;
    let mut closed = Vec::with_capacity(deps.len());
    for root in 0..deps.len() {
        calls.push((root, 0));
        while let Some((v, next)) = calls.last_mut() {
            let v = *v;
            let link = deps.get(v).and_then(|d| d.get(*next)).map(|&(w, _)| w);
            *next += 1;
            let Some(m) = marks.get_mut(v) else { break };
            if m.order == NEW {
                *m = Mark {
                    order: seen,
                    low: seen,
                    open: true,
                };
                seen += 1;
                open.push(v);
            } else if *next == 1 {
                // A root already in a group.
                calls.pop();
                continue;
            }
            let (order, low) = (m.order, m.low);
            if let Some(w) = link {
                // A name no unit has leads nowhere.
                match w.and_then(|w| marks.get(w).map(|mw| (w, *mw))) {
                    Some((w, mw)) if mw.order == NEW => calls.push((w, 0)),
                    Some((_, mw)) if mw.open => {
                        if let Some(m) = marks.get_mut(v) {
                            m.low = m.low.min(mw.order);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            calls.pop();
            if let Some(p) = calls.last().and_then(|&(p, _)| marks.get_mut(p)) {
                p.low = p.low.min(low);
            }
            if low != order {
                continue;
            }
            // `v` heads a group: itself and everything above it on
            // `open`. One unit alone is on a cycle only if it waits for
            // itself.
            let cyclic = open.last() != Some(&v)
                || deps
                    .get(v)
                    .is_some_and(|d| d.iter().any(|&(w, _)| w == Some(v)));
            while let Some(u) = open.pop() {
                closed.push(u);
                if let Some(m) = marks.get_mut(u) {
                    m.open = false;
                }
                if let Some(g) = group.get_mut(u).filter(|_| cyclic) {
                    *g = Some(v);
                }
                if u == v {
                    break;
                }
            }
        }
    }
    (group, closed)
}

/// Find every valid unit on an `after` cycle, report the shortest cycle
/// through each and drop them all. Returns whether any was dropped.
pub(super) fn drop_cycles(
    set: &mut LoadedSet,
    targets: &[Vec<(Option<usize>, u32)>],
    groups: &[Option<usize>],
) -> bool {
    let n = set.units.len();
    // A valid unit's links lead to valid units only (`check_after` is
    // done): its group (found over every link, before any unit was
    // dropped) and its searches hold no other.
    let deps = targets;
    // A cycle through a unit stays within its group.
    let same =
        |a: usize, b: usize| groups.get(a).copied().flatten() == groups.get(b).copied().flatten();
    let mut cycles: Vec<(usize, u32, Vec<usize>)> = Vec::new();
    // One set of buffers for every search, each cleared of what the last
    // one touched: fresh `n`-sized ones for each unit made musl map and
    // unmap them once a unit (issue 10: 0.4 ms a unit of a traced boot).
    let mut prev: Vec<Option<usize>> = vec![None; n];
    let mut seen = vec![false; n];
    // The breadth-first queue, kept whole (`head` is its front) so that
    // the units it reached can be cleared afterwards.
    let mut queue: Vec<usize> = Vec::new();
    for start in 0..n {
        if !set.is_valid(start) || groups.get(start).copied().flatten().is_none() {
            continue;
        }
        for &u in &queue {
            if let Some(s) = seen.get_mut(u) {
                *s = false;
            }
            if let Some(p) = prev.get_mut(u) {
                *p = None;
            }
        }
        queue.clear();
        let mut head = 0;
        let mut closing = None;
        for &(d, _) in deps.get(start).into_iter().flatten() {
            let Some(d) = d.filter(|&d| same(start, d)) else {
                continue;
            };
            if let Some(s) = seen.get_mut(d) {
                if !*s {
                    *s = true;
                    queue.push(d);
                }
            }
        }
        'bfs: while let Some(&u) = queue.get(head) {
            head += 1;
            if u == start {
                closing = Some(u);
                break;
            }
            for &(d, _) in deps.get(u).into_iter().flatten() {
                let Some(d) = d else { continue };
                if d == start {
                    if let Some(p) = prev.get_mut(start) {
                        *p = Some(u);
                    }
                    closing = Some(start);
                    break 'bfs;
                }
                if !same(start, d) {
                    continue;
                }
                if let Some(s) = seen.get_mut(d) {
                    if !*s {
                        *s = true;
                        if let Some(p) = prev.get_mut(d) {
                            *p = Some(u);
                        }
                        queue.push(d);
                    }
                }
            }
        }
        if closing.is_none() {
            continue;
        }
        // Walk back from `start` to its first step: start <- ... <- first.
        let mut path = vec![start];
        let mut cur = prev.get(start).copied().flatten();
        while let Some(u) = cur {
            path.push(u);
            cur = prev.get(u).copied().flatten();
        }
        // The one entry set outside the queue: cleared for the next search.
        if let Some(p) = prev.get_mut(start) {
            *p = None;
        }
        path.push(start);
        path.reverse();
        // path = start, first, ..., start
        let first = path.get(1).copied().unwrap_or(start);
        let line = deps
            .get(start)
            .and_then(|d| d.iter().find(|(j, _)| *j == Some(first)))
            .map(|(_, l)| *l)
            .unwrap_or(0);
        cycles.push((start, line, path));
    }
    let any = !cycles.is_empty();
    for (unit, line, path) in cycles {
        let names: Vec<&str> = path
            .iter()
            .filter_map(|j| set.units.get(*j).map(|c| c.name.as_str()))
            .collect();
        let msg = format!("after: cycle {}", names.join(" -> "));
        set.fail(unit, line, msg);
    }
    any
}
