//! A unit that made cgroups below its own and turned controllers on for
//! them (a container runtime's way) starts again after it dies, and its
//! cgroup goes when it is removed.
use crate::*;

#[test]
fn a_unit_that_nested_cgroups_restarts_and_is_removed() {
    let mut vm = boot("nested");
    let st = vm.wait_states(&[("nest", &["running"])], Duration::from_secs(30));
    let old = st["nest"].pid.expect("running unit has a pid");
    let cg = "/sys/fs/cgroup/units/nest";
    // Its own doing, before the restart.
    wait_marks(&mut vm, "/run/nest", Duration::from_secs(15), |m| {
        m.iter().any(|(t, _, _)| t == "start")
    });
    assert_eq!(
        vm.sh(&format!("cat {cg}/cgroup.subtree_control"), CMD)
            .trim(),
        "memory pids"
    );
    assert_eq!(
        vm.sh(&format!("cat {cg}/inner/cgroup.procs"), CMD).trim(),
        old.to_string()
    );
    let restarts = st["nest"].restarts;
    vm.sh(&format!("kill -9 {old}"), CMD);
    wait_marks(&mut vm, "/run/nest", Duration::from_secs(15), |m| {
        m.iter().filter(|(t, _, _)| t == "start").count() >= 2
    });
    let st = vm.wait_states(&[("nest", &["running"])], Duration::from_secs(10));
    assert_eq!(st["nest"].restarts, restarts + 1, "{}", vm.tail());
    assert!(!vm.output().contains("nest: cannot start"), "{}", vm.tail());
    assert!(vm.saw(
        "nest: removed the cgroups its last run made below its own",
        CMD
    ));
    // The new run made its own again; removing the unit takes them all.
    vm.sh("rm /test/nested/nest.unit; initctl reload", CMD);
    let deadline = Instant::now() + Duration::from_secs(15);
    while vm
        .sh(&format!("[ -d {cg} ] && echo there"), CMD)
        .contains("there")
    {
        assert!(Instant::now() < deadline, "{cg} left: {}", vm.tail());
        std::thread::sleep(Duration::from_millis(300));
    }
}
