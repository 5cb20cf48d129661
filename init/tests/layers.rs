//! The rules of docs/architecture.md ("What each part may use") that no
//! compiler lint checks, checked on the sources: `libc` only in `sys/`,
//! `unsafe` allowed only there, and wren-core free of the edges (no
//! files, processes, sockets or clocks: time comes in as `now`). Test
//! code is exempt: files named `tests.rs`, `testutil.rs`, anything under
//! a `tests/` folder, and every item marked `#[cfg(test)]`. A check of
//! the forms code is written in, not a parser: a test item and code on
//! one line, or a raw string holding quotes, can hide a breach from it.

// Test code: a failed check should fail loudly, so it unwraps, panics
// and indexes freely (the workspace denies these in non-test code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn is_test_file(rel: &Path) -> bool {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs"
        || name == "testutil.rs"
        || rel.components().any(|c| c.as_os_str() == "tests")
}

/// A line's code: comments, and the insides of string and character
/// literals, blanked, so that neither a word in a comment nor a brace in
/// a format string is taken for code. Block comments are rare here and
/// never hold code; `in_block` carries one across lines.
fn code_of(line: &str, in_block: &mut bool) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if *in_block {
            if b[i..].starts_with(b"*/") {
                *in_block = false;
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        match b[i] {
            b'/' if b[i..].starts_with(b"//") => break,
            b'/' if b[i..].starts_with(b"/*") => {
                *in_block = true;
                i += 2;
            }
            b'"' => {
                // Skip to the closing quote (a raw string's `#`s and
                // multi-line strings do not occur in the checked code's
                // braces; a stray one fails the test loudly, below).
                out.push('"');
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                out.push('"');
                i += 1;
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\') => {
                // A character literal ('{', '\n'); a lifetime has no
                // closing quote and is kept.
                let end = b[i + 1..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|p| i + 1 + p);
                match end {
                    Some(e) if e > i + 1 && (e == i + 2 || b[i + 1] == b'\\') => {
                        out.push_str("' '");
                        i = e + 1;
                    }
                    _ => {
                        out.push('\'');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

/// The non-test code of `text` as (line number, code) pairs: an item
/// after `#[cfg(test)]` is left out up to its end (the brace that closes
/// it, or its `;`).
fn non_test_code(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    // Some(depth) while inside a test item: the depth of braces open in it.
    let mut skipping: Option<i64> = None;
    let mut pending_cfg = false;
    for (n, line) in text.lines().enumerate() {
        let code = code_of(line, &mut in_block);
        let t = code.trim();
        if skipping.is_none() && (t.starts_with("#[cfg(test)]") || t.starts_with("#[cfg(all(test"))
        {
            pending_cfg = true;
            let rest = t.split_once(']').map(|(_, r)| r.trim()).unwrap_or("");
            if rest.is_empty() {
                continue;
            }
        }
        if pending_cfg {
            if t.starts_with("#[") && !t.contains('{') {
                // Further attributes of the same item.
                continue;
            }
            pending_cfg = false;
            skipping = Some(0);
        }
        if let Some(depth) = skipping.as_mut() {
            let mut opened = false;
            for c in code.chars() {
                match c {
                    '{' => {
                        *depth += 1;
                        opened = true;
                    }
                    '}' => *depth -= 1,
                    _ => {}
                }
            }
            // A field or a match arm ends at its comma; an item at the
            // brace that closes it or at its `;`.
            let ends = [';', ',', '}'].iter().any(|&e| t.ends_with(e));
            assert!(
                *depth >= 0,
                "line {}: braces out of balance in a test item",
                n + 1
            );
            if *depth == 0 && (opened || ends) {
                skipping = None;
            }
            continue;
        }
        out.push((n + 1, code));
    }
    assert!(skipping.is_none(), "a #[cfg(test)] item never closed");
    out
}

/// Every non-test line of the sources under `root` (relative to the
/// workspace) where `bad` finds something, as "path:line: code".
fn breaches(root: &str, skip_dir: Option<&str>, bad: &dyn Fn(&str) -> bool) -> Vec<String> {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let base = ws.join(root);
    let mut found = Vec::new();
    let files = sources(&base);
    assert!(!files.is_empty(), "no sources under {}", base.display());
    for p in files {
        let rel = p.strip_prefix(&ws).unwrap().to_path_buf();
        let in_base = p.strip_prefix(&base).unwrap();
        if is_test_file(in_base) || skip_dir.is_some_and(|d| in_base.starts_with(d)) {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for (n, code) in non_test_code(&text) {
            if bad(&code) {
                found.push(format!("{}:{n}: {}", rel.display(), code.trim()));
            }
        }
    }
    found
}

fn uses_libc(code: &str) -> bool {
    [
        "libc::",
        "use libc",
        "libc as ",
        "extern crate libc",
        "nix::libc",
    ]
    .iter()
    .any(|w| code.contains(w))
}

/// `what` is found nowhere but in wren's `sys/`: not in the rest of
/// wren, not in wren-core, not in wren-oci.
fn only_in_sys(what: &str, bad: &dyn Fn(&str) -> bool) {
    let mut found = breaches("init/src", Some("sys"), bad);
    for root in ["init/core/src", "init/oci/src"] {
        found.extend(breaches(root, None, bad));
    }
    assert!(
        found.is_empty(),
        "{what} outside init/src/sys/:\n{}",
        found.join("\n")
    );
}

#[test]
fn libc_is_used_only_in_sys() {
    only_in_sys("libc", &uses_libc);
}

#[test]
fn unsafe_code_is_allowed_only_in_sys() {
    // `allow` or `expect`, alone or among other lints.
    let allows =
        |c: &str| c.contains("unsafe_code") && (c.contains("allow") || c.contains("expect"));
    only_in_sys("unsafe allowed", &allows);
}

#[test]
fn wren_core_has_no_files_processes_sockets_or_clocks() {
    let edge = |c: &str| {
        let named = [
            "std::fs",
            "std::process",
            "std::net",
            "std::thread",
            "Instant",
            "SystemTime",
            "std::os::",
        ]
        .iter()
        .any(|w| c.contains(w));
        // `use std::{fs, net::TcpStream}`.
        let words = || c.split(|x: char| !x.is_alphanumeric() && x != '_');
        let grouped = c.contains("std::{")
            && ["fs", "process", "net", "thread", "os"]
                .iter()
                .any(|w| words().any(|t| t == *w));
        named || grouped
    };
    let found = breaches("init/core/src", None, &edge);
    assert!(
        found.is_empty(),
        "an edge used in wren-core:\n{}",
        found.join("\n")
    );
}

/// The scanner itself: what it must see and what it must leave out.
#[test]
fn the_scanner_sees_code_and_leaves_out_tests_comments_and_strings() {
    let text = r#"use rustix::io;
// libc::close in a comment
fn f() { let s = "libc::close {"; let c = '{'; g::<'_>(s); }
let x = libc::getpid(); /* libc::x */
#[cfg(test)]
mod tests {
    fn h() { if a { libc::abort() } }
}
#[cfg(test)]
use libc::c_int;
struct S {
    #[cfg(test)]
    by: libc::c_int,
}
#[cfg(test)]
#[allow(dead_code)]
fn t() {
    libc::exit(0);
}
fn after() { libc::sync() }
use nix::libc as c;
"#;
    let code = non_test_code(text);
    let hits: Vec<usize> = code
        .iter()
        .filter(|(_, c)| uses_libc(c))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(hits, vec![4, 20, 21]);
    // The lines after the test items are still read.
    assert!(code.iter().any(|(n, c)| *n == 20 && c.contains("fn after")));
    assert!(!code
        .iter()
        .any(|(n, _)| [5, 6, 7, 8, 9, 10, 12, 13, 15, 16, 17, 18, 19].contains(n)));
}
