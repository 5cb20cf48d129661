use crate::*;

#[test]
fn broken_unit_files_are_reported_with_file_and_line_and_the_rest_boots() {
    let mut vm = boot("broken");
    vm.wait_states(
        &[("good", &["running"]), ("sh", &["running"])],
        Duration::from_secs(30),
    );
    let t = Duration::from_secs(10);
    for needle in [
        "wren: /test/broken/typo.unit:3:",
        "wren: /test/broken/relative.unit:2:",
        "wren: /test/broken/badsize.unit:2:",
        "wren: /test/broken/missing.unit:1:",
        "wren: /test/broken/noexec.unit",
    ] {
        assert!(
            vm.saw(needle, t),
            "no report {needle:?} (log: {})",
            vm.log_path.display()
        );
    }
    // The misspelt key gets a suggestion.
    let out = vm.output();
    let line = out.lines().find(|l| l.contains("typo.unit:3:")).unwrap();
    assert!(line.contains("memory.max"), "no suggestion: {line}");
    let st = vm.status();
    for bad in ["typo", "relative", "badsize", "missing", "noexec"] {
        assert!(
            !st.iter()
                .any(|u| u.name == bad && ["running", "starting"].contains(&u.state.as_str())),
            "{bad} is running: {st:?}"
        );
    }
    assert!(!out.contains("Kernel panic"));
}
