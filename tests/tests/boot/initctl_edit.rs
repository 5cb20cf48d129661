//! `initctl edit NAME` with a scripted editor, typed on the console:
//! installs and applies a valid change, refuses a typo with FILE:LINE and
//! the "Edit again? [Y/n]" prompt while the old definition keeps running.
//! Fixtures: tests/units/ctledit/ (the running unit directory is
//! /test/ctledit, given with wren.units=).

use crate::initctl_common::*;
use crate::*;
use wren_boot_tests::clean;

const DIR: &str = "/test/ctledit";
const PROMPT: &str = "Edit again? [Y/n] ";

fn settle(vm: &mut Vm) -> std::collections::HashMap<String, u32> {
    vm.wait_states(
        &[
            ("solo", &["running"]),
            ("child", &["running"]),
            ("other", &["running"]),
        ],
        secs(30),
    );
    pids(vm)
}

/// Runs `cmd`, which asks `PROMPT` once; answers `answer` at the prompt.
/// Returns (what came before the prompt, what came after, exit status).
fn answer_prompt(vm: &mut Vm, cmd: &str, answer: &str) -> (String, String, i32) {
    vm.wait_shell(BOOT);
    // Synchronise first, so that the expects below start after this point.
    vm.sh("true", CMD);
    let tag = format!("{}", std::process::id() % 1000 + 7000);
    vm.send(&format!("{cmd}; echo \"@@X\"\"{tag}:$?@@\"\n"));
    let before = clean(&vm.expect(PROMPT, CMD));
    vm.send(&format!("{answer}\n"));
    let after = clean(&vm.expect(&format!("@@X{tag}:"), CMD));
    let rc = clean(&vm.expect("@@", CMD));
    let rc: i32 = rc.trim_end_matches("@@").trim().parse().unwrap_or(-1);
    (before, after, rc)
}

fn no_leftovers(vm: &mut Vm) {
    let out = vm.sh(&format!("ls -a {DIR}/ /tmp/"), CMD);
    assert!(
        !out.contains(".unit.new"),
        "staging file left behind:\n{out}"
    );
    assert!(
        !out.contains("wren-edit-"),
        "working copy left behind:\n{out}"
    );
}

/// `initctl edit` works on /etc/units (see `initctl_edit_uses_the_running_unit_directory`
/// for the unit directory given with wren.units=): /etc/units is made a
/// link to the running directory first, so that this test checks the edit
/// itself.
#[test]
fn initctl_edit_installs_valid_changes_and_refuses_typos() {
    let mut vm = boot("ctledit");
    let p0 = settle(&mut vm);
    vm.sh(&format!("rm -rf /etc/units && ln -s {DIR} /etc/units"), CMD);
    let (out, rc) = vm.sh_rc("readlink /etc/units; cat /etc/units/solo.unit", CMD);
    assert_eq!(rc, 0);
    assert!(out.starts_with(DIR) && out.contains(" v1 "), "{out}");

    // A scripted editor (through sh -c, so it carries arguments).
    let (out, rc, _) = timed(&mut vm, "EDITOR='sed -i s/v1/v2/' initctl edit solo", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("solo.unit installed"), "{out}");
    assert!(
        out.contains("0 added, 1 changed, 0 removed"),
        "not applied:\n{out}"
    );
    let st = vm.wait_states(&[("solo", &["running"])], secs(10));
    let solo1 = st["solo"].pid.unwrap();
    assert_ne!(solo1, p0["solo"], "solo not restarted");
    let p1 = pids(&mut vm);
    assert_same_pids(&p0, &p1, &["sh", "child", "other"]);
    assert!(vm
        .sh(&format!("cat {DIR}/solo.unit"), CMD)
        .contains("mark /run/solo v2 forever"));
    let m = marks(&mut vm, "/run/solo");
    assert_eq!(
        m.last().map(|(t, p, _)| (t.as_str(), *p)),
        Some(("v2", solo1)),
        "{m:?}"
    );
    no_leftovers(&mut vm);

    // A typo: refused with FILE:LINE, the operator declines to edit again,
    // nothing is installed and the running definition stays.
    let before_file = vm.sh(&format!("cat {DIR}/solo.unit"), CMD);
    let line = before_file
        .lines()
        .position(|l| l.starts_with("memory.max"))
        .unwrap()
        + 1;
    let (before, after, rc) = answer_prompt(
        &mut vm,
        "EDITOR='sed -i s/^memory.max/memroy.max/' initctl edit solo",
        "n",
    );
    assert!(
        before.contains(&format!(
            "solo.unit:{line}: unknown key `memroy.max` (did you mean `memory.max`?)"
        )),
        "typo not reported with its line:\n{before}"
    );
    assert_eq!(rc, 1, "declined edit must fail:\n{after}");
    assert!(after.contains("left unchanged"), "{after}");
    assert_eq!(vm.sh(&format!("cat {DIR}/solo.unit"), CMD), before_file);
    std::thread::sleep(Duration::from_millis(500));
    assert_same_pids(&p1, &pids(&mut vm), &["sh", "solo", "child", "other"]);
    assert!(!vm.sh("initctl cat solo", CMD).contains("memroy"));
    no_leftovers(&mut vm);

    // A typo, then yes: the editor opens the same copy again; fixed there,
    // it is installed and applied.
    heredoc(
        &mut vm,
        "cat > /tmp/ed.sh",
        "# 1st run: a typo; 2nd run: fix it and change the mark.\n\
         n=$(cat /tmp/ed.count 2>/dev/null || echo 0)\n\
         echo $((n + 1)) > /tmp/ed.count\n\
         if [ \"$n\" = 0 ]; then sed -i 's/^memory.max/memroy.max/' \"$1\"\n\
         else sed -i 's/^memroy.max/memory.max/; s/ v2 / v3 /' \"$1\"; fi\n",
    );
    let (before, after, rc) =
        answer_prompt(&mut vm, "EDITOR='sh /tmp/ed.sh' initctl edit solo", "y");
    assert!(before.contains(&format!("solo.unit:{line}:")), "{before}");
    assert_eq!(rc, 0, "{after}");
    assert!(after.contains("solo.unit installed"), "{after}");
    assert_eq!(
        vm.sh("cat /tmp/ed.count", CMD).trim(),
        "2",
        "editor not re-opened"
    );
    let st = vm.wait_states(&[("solo", &["running"])], secs(10));
    let solo2 = st["solo"].pid.unwrap();
    assert_ne!(solo2, solo1);
    assert_same_pids(&p1, &pids(&mut vm), &["sh", "child", "other"]);
    assert!(vm
        .sh("initctl cat solo", CMD)
        .contains("mark /run/solo v3 forever"));
    no_leftovers(&mut vm);

    // Saved unchanged: nothing installed, nothing restarted.
    let (out, rc, _) = timed(&mut vm, "EDITOR=true initctl edit solo", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("solo.unit unchanged"), "{out}");
    assert_eq!(vm.unit("solo").unwrap().pid, Some(solo2));
    // An editor that fails: nothing installed, exit 1.
    let (out, rc, _) = timed(&mut vm, "EDITOR=false initctl edit solo", CMD);
    assert_eq!(rc, 1, "{out}");
    assert_eq!(vm.unit("solo").unwrap().pid, Some(solo2));
    no_leftovers(&mut vm);
}

/// A unit with `after =` is checked among the other units of its
/// directory: a valid edit of it is installed.
/// (Fails at 71c42b9: ctl.rs `edit` checks the working copy alone, in its
/// temporary directory, with `units_dir::check`, so every `after =` target
/// is "no unit named ..."; `units_dir::check_in_context` is meant for it.)
#[test]
fn initctl_edit_checks_a_unit_among_its_siblings() {
    let mut vm = boot("ctledit");
    let p0 = settle(&mut vm);
    vm.sh(&format!("rm -rf /etc/units && ln -s {DIR} /etc/units"), CMD);
    // stdin from /dev/null: a refusal answers the prompt with end of input
    // rather than waiting for the console.
    let (out, rc, _) = timed(
        &mut vm,
        "EDITOR='sed -i s/v1/v2/' initctl edit child </dev/null",
        CMD,
    );
    assert_eq!(rc, 0, "valid edit of a unit with `after =` refused:\n{out}");
    assert!(out.contains("child.unit installed"), "{out}");
    let st = vm.wait_states(&[("child", &["running"])], secs(10));
    assert_ne!(st["child"].pid.unwrap(), p0["child"]);
    assert_same_pids(&p0, &pids(&mut vm), &["sh", "solo", "other"]);
}

/// With wren.units=DIR, `initctl edit` and `initctl check` work on DIR, the
/// unit directory init runs from (docs/boot.md, "Kernel command line": `wren.units=DIR` is "another
/// unit directory"; 5: edit opens "the unit file", check defaults to "the
/// unit directory").
/// (Fails at 71c42b9: ctl.rs uses the constant `UNITS_DIR` = /etc/units
/// for both, whatever directory PID 1 was booted with.)
#[test]
fn initctl_edit_uses_the_running_unit_directory() {
    let mut vm = boot("ctledit");
    let p0 = settle(&mut vm);
    let mut problems = Vec::new();
    let (out, rc, _) = timed(
        &mut vm,
        "EDITOR='sed -i s/v1/v2/' initctl edit solo </dev/null",
        CMD,
    );
    let file = vm.sh(&format!("cat {DIR}/solo.unit"), CMD);
    if rc != 0 || !file.contains(" v2 ") {
        problems.push(format!(
            "`initctl edit solo` did not edit {DIR}/solo.unit (exit {rc}):\n{out}\n{DIR}/solo.unit:\n{file}"
        ));
    } else {
        let st = vm.wait_states(&[("solo", &["running"])], secs(10));
        if st["solo"].pid == Some(p0["solo"]) {
            problems.push("solo not restarted after `initctl edit solo`".into());
        }
    }
    // `initctl check` without arguments checks the running directory.
    vm.sh(&format!("echo 'memroy.max = 1M' >> {DIR}/other.unit"), CMD);
    let (out, rc, _) = timed(&mut vm, "initctl check", CMD);
    if rc != 1 || !out.contains("other.unit:") {
        problems.push(format!(
            "`initctl check` missed the typo in {DIR}/other.unit (exit {rc}):\n{out}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
