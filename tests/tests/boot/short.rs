//! PID 1 when malloc would refuse: strict overcommit at its commit limit
//! (`vm.overcommit_memory = 2`), played by an address-space limit on
//! PID 1 alone (`wren-testkit aslimit`), so that the shell and `initctl`
//! still run. A reload or a re-exec, which allocate as they go and would
//! abort PID 1 (a kernel panic) at the first allocation refused, is
//! refused whole, and said; once memory is back, it works.
use crate::*;
use wren_boot_tests::secs;

#[test]
fn a_reload_or_reexec_pid1_has_no_memory_for_is_refused() {
    let mut vm = boot("short");
    let st = vm.wait_states(&[("a", &["running"]), ("b", &["running"])], secs(30));
    let a = st["a"].pid;
    vm.sh("sed -i 's/start/again/' /test/short/a.unit", CMD);

    // Not a page more: SIGHUP's reload (it allocated at once, and PID 1
    // died of it before) is refused.
    vm.sh("wren-testkit aslimit 1 0; kill -HUP 1", CMD);
    assert!(
        vm.saw("reload refused: PID 1 is short of memory (", secs(10)),
        "{}",
        vm.output()
    );
    // 64 KiB more: room for a connection's buffers (32 KiB), not for
    // a reload's or a re-exec's (128 KiB and more).
    vm.sh("wren-testkit aslimit 1 64", CMD);
    let (out, rc) = vm.sh_rc("initctl reload", CMD);
    assert_ne!(rc, 0, "{out}");
    assert!(
        out.contains("reload refused: PID 1 is short of memory ("),
        "{out}"
    );
    assert!(out.contains("KiB not to be had); nothing changed"), "{out}");
    let (out, rc) = vm.sh_rc("initctl reexec", CMD);
    assert_ne!(rc, 0, "{out}");
    assert!(
        out.contains("refused: PID 1 is short of memory (") && out.contains("init keeps running"),
        "{out}"
    );
    let st = vm.wait_states(&[("a", &["running"]), ("b", &["running"])], secs(10));
    assert_eq!(st["a"].pid, a, "a was restarted by a refused reload");

    // Memory back: the same reload works.
    vm.sh("wren-testkit aslimit 1 off", CMD);
    let (out, rc) = vm.sh_rc("initctl reload", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("1 changed"), "{out}");
    let st = vm.wait_states(&[("a", &["running"])], secs(10));
    assert_ne!(st["a"].pid, a, "a not restarted by the reload");
    let m = wait_marks(&mut vm, "/run/again", secs(10), |m| !m.is_empty());
    assert!(mark(&m, "start").is_some(), "{m:?}");
    assert!(!vm.output().contains("Kernel panic"));
}

/// A probation's revert comes after its reload, whenever the new run
/// fails, and it allocates (the last good definition put back, its filter
/// built again): with malloc refusing every block, PID 1 takes them from
/// its reserve, says so, and the unit runs on its last good definition.
#[test]
fn a_revert_when_malloc_refuses_is_served_from_the_reserve() {
    let mut vm = boot("short");
    let st = vm.wait_states(&[("gated", &["running"])], secs(30));
    let good = st["gated"].pid;
    vm.sh(
        "printf 'exec = /usr/bin/wren-testkit forever\\nready = notify\\nstart_timeout = 2s\\n\
         seccomp = ~@reboot\\n' > /test/short/gated.unit",
        CMD,
    );
    // The reload with memory; its new run is not ready within 2 s, and
    // not a page more is to be had by then.
    vm.sh("kill -HUP 1; sleep 0.5; wren-testkit aslimit 1 0", CMD);
    assert!(
        vm.saw("gated: new definition rejected", secs(20)),
        "{}",
        vm.output()
    );
    assert!(
        vm.saw("PID 1 took them from its reserve (", secs(5)),
        "{}",
        vm.output()
    );
    vm.sh("wren-testkit aslimit 1 off", CMD);
    let st = vm.wait_states(&[("gated", &["running"])], secs(20));
    assert_ne!(st["gated"].pid, good);
    let cat = vm.sh("initctl cat gated", CMD);
    assert!(cat.contains("@mount") && !cat.contains("@reboot"), "{cat}");
    assert!(!vm.output().contains("Kernel panic"));
}
