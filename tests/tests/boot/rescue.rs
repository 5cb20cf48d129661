use crate::*;

#[test]
fn empty_unit_directory_gives_the_rescue_shell() {
    let mut vm = Vm::boot("empty", "");
    assert!(vm.saw("starting rescue shell", BOOT), "no rescue message");
    // "wren: no valid unit[ in DIR], starting rescue shell"
    assert!(
        vm.output().contains("wren: no valid unit"),
        "rescue not for lack of units"
    );
    vm.wait_shell(BOOT);
    // The shell runs under a living PID 1 (wren), not as PID 1.
    assert_eq!(vm.sh("cat /proc/1/comm", CMD).trim(), "init");
    let ppid = vm.sh("awk '{print $4}' /proc/$$/stat", CMD);
    assert_eq!(ppid.trim(), "1");
    assert_eq!(vm.sh("echo ok", CMD), "ok\n");
    assert!(!vm.output().contains("Kernel panic"));
}

#[test]
fn wren_rescue_on_the_command_line_gives_the_rescue_shell_only() {
    let mut vm = Vm::boot("order", "wren.rescue");
    assert!(
        vm.saw("wren: wren.rescue given, starting rescue shell", BOOT),
        "no rescue message"
    );
    vm.wait_shell(BOOT);
    assert_eq!(vm.sh("cat /proc/1/comm", CMD).trim(), "init");
    vm.sh("sleep 2", CMD);
    assert_eq!(
        vm.sh("cat /run/order 2>/dev/null | wc -l", CMD).trim(),
        "0",
        "units started under wren.rescue"
    );
}
