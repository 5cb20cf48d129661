//! Health-gated reload and edit (issue 13): a changed unit that does not
//! become ready within its `start_timeout` goes back to its last good
//! definition, file included, and runs again; the rejected file is kept as
//! NAME.unit.rejected; nothing else is touched. Three ways to be bad: the
//! program cannot be executed (its interpreter is missing: the loader's
//! check sees an executable file, execve fails with ENOENT), it exits at
//! once, it never gets ready. Fixtures: tests/units/gate/ (web is
//! `ready = notify` with `start_timeout = 3s`).

use crate::initctl_common::*;
use crate::*;

const DIR: &str = "/test/gate";
const GOOD: &str = "wren-testkit mark /run/web good notifyfd forever";

/// The bad versions of web.unit, as (what, exec line, start_timeout).
const BAD: &[(&str, &str)] = &[
    ("missing interpreter", "exec = /run/noint.sh"),
    (
        "exits at once",
        "exec = /usr/bin/wren-testkit mark /run/web bad exit 3",
    ),
    (
        "never ready",
        "exec = /usr/bin/wren-testkit mark /run/web bad forever",
    ),
];

fn bad_file(exec: &str) -> String {
    format!("{exec}\nready = notify\nstart_timeout = 2s\nnamespaces = none\n")
}

fn setup(vm: &mut Vm) -> std::collections::HashMap<String, u32> {
    vm.wait_states(&[("web", &["running"]), ("other", &["running"])], secs(30));
    heredoc(
        vm,
        "cat > /run/noint.sh",
        "#!/no/such/interpreter\nexit 0\n",
    );
    vm.sh("chmod 755 /run/noint.sh", CMD);
    pids(vm)
}

/// After a rejection: web runs its good definition again with a new
/// process, the file says so, the rejected text is beside it, and a
/// reload sees nothing to change.
fn check_put_back(vm: &mut Vm, exec: &str, before: &std::collections::HashMap<String, u32>) {
    let st = vm.wait_states(&[("web", &["running"])], secs(20));
    let web = st["web"].pid.unwrap();
    assert_ne!(Some(&web), before.get("web"), "web was not started again");
    let file = vm.sh(&format!("cat {DIR}/web.unit"), CMD);
    assert!(file.contains(GOOD), "web.unit is not the good one:\n{file}");
    assert!(file.contains("# Put back by wren"), "{file}");
    let rejected = vm.sh(&format!("cat {DIR}/web.unit.rejected"), CMD);
    assert!(
        rejected.contains(exec),
        "web.unit.rejected does not hold the bad version:\n{rejected}"
    );
    let ls = vm.sh(&format!("ls -a {DIR}"), CMD);
    assert!(!ls.contains(".restore"), "temp file left behind:\n{ls}");
    let (detail, _) = vm.sh_rc("initctl status web", CMD);
    assert!(
        detail.contains("rejected") && detail.contains("web.unit.rejected"),
        "status web does not say so:\n{detail}"
    );
    // The good one is what runs: its mark is the last one.
    let m = marks(vm, "/run/web");
    let last = m.last().unwrap();
    assert_eq!((last.0.as_str(), last.1), ("good", web), "{m:?}");
    // What was written back reads back as what runs.
    let (out, rc) = vm.sh_rc("initctl reload 2>&1", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("0 changed"), "{out}");
    assert_same_pids(before, &pids(vm), &["sh", "other"]);
}

#[test]
fn gate_reload_puts_back_the_last_good_definition() {
    let mut vm = boot("gate");
    let p0 = setup(&mut vm);
    let mut before = p0.clone();
    for (what, exec) in BAD {
        heredoc(&mut vm, &format!("cat > {DIR}/web.unit"), &bad_file(exec));
        let from = vm.output_len();
        let (out, rc, took) = timed(&mut vm, "initctl reload", secs(60));
        assert_eq!(rc, 1, "{what}: a rejected change must fail reload:\n{out}");
        assert!(
            out.contains("0 added, 1 changed") && out.contains("web: new definition rejected"),
            "{what}:\n{out}"
        );
        assert!(took < 30.0, "{what}: the verdict took {took:.1} s");
        // This reload's line: an earlier one's is in the output too.
        assert!(
            vm.saw_since(from, "[FAILED] web: new definition rejected", secs(5)),
            "{what}: no console line"
        );
        check_put_back(&mut vm, exec, &before);
        before = pids(&mut vm);
    }
    assert_same_pids(&p0, &pids(&mut vm), &["sh", "other"]);

    // A good change is kept, and reload says so.
    vm.sh(&format!("sed -i 's/ good / v2 /' {DIR}/web.unit"), CMD);
    let (out, rc) = vm.sh_rc("initctl reload 2>&1", secs(60));
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("web: ready"), "{out}");
    let m = marks(&mut vm, "/run/web");
    assert_eq!(m.last().unwrap().0, "v2", "{m:?}");

    // A new unit with no good definition is stopped and set aside.
    heredoc(
        &mut vm,
        &format!("cat > {DIR}/fresh.unit"),
        "exec = /usr/bin/wren-testkit exit 1\nnamespaces = none\n",
    );
    let (out, rc) = vm.sh_rc("initctl reload 2>&1", secs(60));
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("fresh: new unit rejected"), "{out}");
    let st = vm.wait_states(&[("fresh", &["stopped"])], secs(10));
    assert_eq!(st["fresh"].pid, None);
    let ls = vm.sh(
        &format!(
            "for f in fresh.unit fresh.unit.rejected; do test -e {DIR}/$f && echo has-$f; done"
        ),
        CMD,
    );
    assert!(
        ls.contains("has-fresh.unit.rejected") && !ls.lines().any(|l| l.trim() == "has-fresh.unit"),
        "{ls}"
    );
    assert_same_pids(&p0, &pids(&mut vm), &["sh", "other"]);
}

#[test]
fn gate_edit_puts_back_the_last_good_definition() {
    let mut vm = boot("gate");
    let p0 = setup(&mut vm);
    let mut before = p0.clone();
    for (i, (what, exec)) in BAD.iter().enumerate() {
        // The editor is a script that writes the bad version.
        let ed = format!("/run/ed{i}.sh");
        heredoc(
            &mut vm,
            &format!("cat > {ed}"),
            &format!("#!/bin/sh\ncat > \"$1\" <<'X'\n{}X\n", bad_file(exec)),
        );
        vm.sh(&format!("chmod 755 {ed}"), CMD);
        let (out, rc, _) = timed(&mut vm, &format!("EDITOR={ed} initctl edit web"), secs(60));
        assert_eq!(rc, 1, "{what}: a rejected edit must fail:\n{out}");
        assert!(
            out.contains("web.unit installed") && out.contains("web: new definition rejected"),
            "{what}:\n{out}"
        );
        check_put_back(&mut vm, exec, &before);
        before = pids(&mut vm);
    }
    assert_same_pids(&p0, &pids(&mut vm), &["sh", "other"]);
}

/// Two reloads in a row: the first one's client still waits for a slow
/// unit's verdict when the second comes (SIGHUP). Its answer still has
/// the rejection that came before the second reload, and says so in its
/// exit status.
#[test]
fn gate_a_second_reload_keeps_the_first_ones_rejection_for_its_client() {
    let mut vm = boot("gate");
    setup(&mut vm);
    heredoc(
        &mut vm,
        &format!("cat > {DIR}/web.unit"),
        &bad_file(BAD[1].1),
    );
    heredoc(
        &mut vm,
        &format!("cat > {DIR}/other.unit"),
        "exec = /usr/bin/wren-testkit sleep 3 notifyfd forever\nready = notify\n\
         start_timeout = 20s\nnamespaces = none\n",
    );
    vm.sh(
        "(initctl reload > /run/r1.out 2>&1; echo $? > /run/r1.rc) & true",
        CMD,
    );
    let deadline = Instant::now() + secs(10);
    while vm.sh_rc(&format!("test -e {DIR}/web.unit.rejected"), CMD).1 != 0 {
        assert!(Instant::now() < deadline, "web was not rejected");
        std::thread::sleep(Duration::from_millis(100));
    }
    vm.sh("kill -HUP 1", CMD);
    let deadline = Instant::now() + secs(30);
    let rc = loop {
        let rc = vm.sh("cat /run/r1.rc 2>/dev/null", CMD);
        if !rc.trim().is_empty() {
            break rc;
        }
        assert!(
            Instant::now() < deadline,
            "the first reload's client still waits"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = vm.sh("cat /run/r1.out", CMD);
    assert_eq!(rc.trim(), "1", "{out}");
    assert!(out.contains("web: new definition rejected"), "{out}");
    assert!(out.contains("other: ready"), "{out}");
}
