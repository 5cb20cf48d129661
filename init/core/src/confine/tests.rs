use super::bpf::{Arch, Insn, MAX_INSNS, RET_ALLOW, RET_EPERM};
use super::*;

fn nr(name: &str, arch: Arch) -> u32 {
    let i = syscall_index(name).unwrap();
    u32::from(arch.numbers()[i])
}

/// Runs `prog` as the kernel would for one call: the subset of classic
/// BPF the builder emits.
fn run(prog: &[Insn], arch: u32, nr: u32) -> u32 {
    let mut pc = 0usize;
    let mut acc = 0u32;
    for _ in 0..10_000 {
        let i = prog[pc];
        match i.code {
            0x20 => {
                acc = match i.k {
                    0 => nr,
                    4 => arch,
                    k => panic!("load of offset {k}"),
                };
                pc += 1;
            }
            0x15 | 0x35 => {
                let hit = if i.code == 0x15 {
                    acc == i.k
                } else {
                    acc >= i.k
                };
                pc += 1 + usize::from(if hit { i.jt } else { i.jf });
            }
            0x05 => pc += 1 + i.k as usize,
            0x06 => return i.k,
            c => panic!("opcode {c:#x}"),
        }
    }
    panic!("no return");
}

fn program(sc: &Seccomp, arch: Arch) -> Vec<Insn> {
    let mut v = Vec::new();
    sc.program(arch, &mut |i| v.push(i));
    assert!(v.len() <= MAX_INSNS && v.len() <= 4096, "{} insns", v.len());
    v
}

fn spec(text: &str) -> Seccomp {
    crate::unit::parse_seccomp(text).unwrap().unwrap()
}

#[test]
fn names_are_sorted_unique_and_numbered() {
    let names: Vec<&str> = syscalls::NAMES.split(' ').collect();
    assert_eq!(names.len(), syscalls::COUNT);
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(nr("read", Arch::Aarch64), 63);
    assert_eq!(nr("read", Arch::X86_64), 0);
    assert_eq!(nr("execve", Arch::Aarch64), 221);
    assert_eq!(nr("execve", Arch::X86_64), 59);
    assert_eq!(nr("umount2", Arch::Aarch64), 39);
    assert_eq!(nr("umount2", Arch::X86_64), 166);
    assert_eq!(nr("open", Arch::Aarch64), u32::from(syscalls::NONE));
    // Newer than the libc crate's tables: a deny list must reach them.
    for arch in [Arch::Aarch64, Arch::X86_64] {
        assert_eq!(nr("fchmodat2", arch), 452);
        assert_eq!(nr("setxattrat", arch), 463);
        assert_eq!(nr("file_setattr", arch), 469);
    }
    assert_eq!(nr("uretprobe", Arch::X86_64), 335);
    assert_eq!(nr("uretprobe", Arch::Aarch64), u32::from(syscalls::NONE));
    assert_eq!(syscall_index(""), None);
    assert_eq!(syscall_index("frobnicate"), None);
}

#[test]
fn every_group_member_is_known_and_no_group_names_itself() {
    for (g, members) in groups::GROUPS.iter() {
        for m in members.split_whitespace() {
            match m.strip_prefix('@') {
                Some(sub) => {
                    assert!(groups::index(sub).is_some(), "@{g}: unknown group {m}");
                    assert_ne!(sub, *g);
                }
                None => assert!(syscall_index(m).is_some(), "@{g}: unknown call {m}"),
            }
        }
    }
}

#[test]
fn an_allow_list_allows_its_calls_and_refuses_the_rest_with_eperm() {
    let sc = spec("@system-service");
    for arch in [Arch::Aarch64, Arch::X86_64] {
        let p = program(&sc, arch);
        for ok in [
            "read",
            "write",
            "execve",
            "openat",
            "exit_group",
            "clone",
            "bind",
        ] {
            assert_eq!(run(&p, arch.audit(), nr(ok, arch)), RET_ALLOW, "{ok}");
        }
        for refused in ["umount2", "mount", "reboot", "init_module", "sethostname"] {
            assert_eq!(
                run(&p, arch.audit(), nr(refused, arch)),
                RET_EPERM,
                "{refused}"
            );
        }
        // Another ABI (32-bit ARM here) is never let through: refused as
        // any refused call is (CONTRACT: EPERM), not killed.
        assert_eq!(run(&p, 0x4000_0028, 0), RET_EPERM);
        assert_eq!(
            run(&program(&spec("~@mount"), arch), 0x4000_0028, 20),
            RET_EPERM
        );
    }
    // x86_64's x32 numbers are refused, even for an allowed call.
    let p = program(&sc, Arch::X86_64);
    assert_eq!(run(&p, Arch::X86_64.audit(), 0x4000_0000), RET_EPERM);
}

#[test]
fn an_allow_list_always_has_what_exec_and_exit_need() {
    let sc = spec("read write");
    let p = program(&sc, Arch::Aarch64);
    for ok in ["execve", "exit_group", "read", "brk"] {
        assert_eq!(
            run(&p, Arch::Aarch64.audit(), nr(ok, Arch::Aarch64)),
            RET_ALLOW
        );
    }
    assert_eq!(
        run(&p, Arch::Aarch64.audit(), nr("openat", Arch::Aarch64)),
        RET_EPERM
    );
}

#[test]
fn a_deny_list_refuses_its_calls_and_allows_the_rest() {
    let sc = spec("~@mount sethostname");
    assert!(sc.deny);
    for arch in [Arch::Aarch64, Arch::X86_64] {
        let p = program(&sc, arch);
        for refused in ["mount", "umount2", "pivot_root", "sethostname"] {
            assert_eq!(
                run(&p, arch.audit(), nr(refused, arch)),
                RET_EPERM,
                "{refused}"
            );
        }
        for ok in ["read", "execve", "reboot"] {
            assert_eq!(run(&p, arch.audit(), nr(ok, arch)), RET_ALLOW, "{ok}");
        }
    }
    // x32: a denied call under its x32 number is refused too.
    let p = program(&sc, Arch::X86_64);
    let x32_mount = 0x4000_0000 | nr("mount", Arch::X86_64);
    assert_eq!(run(&p, Arch::X86_64.audit(), x32_mount), RET_EPERM);
}

#[test]
fn the_largest_list_still_jumps_within_range() {
    let mut sc = Seccomp::default();
    for i in 0..syscalls::COUNT {
        sc.names.insert(i);
    }
    for arch in [Arch::Aarch64, Arch::X86_64] {
        let p = program(&sc, arch);
        for name in ["read", "zzz_not"]
            .iter()
            .filter_map(|n| syscall_index(n).map(|_| *n))
        {
            assert_eq!(run(&p, arch.audit(), nr(name, arch)), RET_ALLOW);
        }
        // The last name in the table (past the first block).
        let last = syscalls::NAMES
            .split(' ')
            .rfind(|n| nr(n, arch) != 0xffff)
            .unwrap();
        assert_eq!(run(&p, arch.audit(), nr(last, arch)), RET_ALLOW, "{last}");
        assert_eq!(run(&p, arch.audit(), 4000), RET_EPERM);
    }
}

#[test]
fn capability_names_in_either_spelling() {
    assert_eq!(caps::number("net_bind_service"), Some(10));
    assert_eq!(caps::number("CAP_NET_BIND_SERVICE"), Some(10));
    assert_eq!(caps::number("cap_sys_admin"), Some(caps::SYS_ADMIN));
    assert_eq!(caps::number("checkpoint_restore"), Some(caps::LAST));
    assert_eq!(caps::number("CAP_"), None);
    assert_eq!(caps::number("fly"), None);
    assert_eq!(caps::Caps::ALL.count(), 41);
}

#[test]
fn summary_line() {
    let def = crate::unit::parse(
        "web",
        "exec = /bin/x\nuser = www\ncapabilities = net_bind_service net_raw\nseccomp = @system-service\nread_only = yes\n",
    )
    .unwrap();
    let s = format!("{}", Summary(&def));
    let calls = def.seccomp.unwrap().effective().len();
    assert_eq!(
        s,
        format!("namespaces pid mount uts ipc, user www, capabilities net_bind_service,net_raw, no_new_privs, seccomp allow {calls} calls, / read-only")
    );
    let def = crate::unit::parse("x", "exec = /bin/x\nnamespaces = none\n").unwrap();
    assert_eq!(
        format!("{}", Summary(&def)),
        "namespaces none, user root, capabilities all, seccomp none, / read-write"
    );
    let def = crate::unit::parse(
        "c",
        "exec = /bin/x\nnamespaces = user mount pid\nuser_map = 200000 1000\nroot = /srv/box\nroot_overlay = yes\ncapabilities = none\n",
    )
    .unwrap();
    assert_eq!(
        format!("{}", Summary(&def)),
        "namespaces pid mount user (root = uid 200000 outside), user root, capabilities none, seccomp none, /srv/box overlay"
    );
    // Layers with no `root_overlay`: read-only, as the kernel mounts them;
    // a plain directory is the unit's to write.
    let root = |r: &str| {
        let def = crate::unit::parse("c", &format!("exec = /bin/x\nroot = {r}\n")).unwrap();
        format!("{}", Summary(&def))
    };
    assert!(root("/l/a:/l/b").ends_with(", /l/a:/l/b read-only"));
    assert!(root("/srv/box").ends_with(", /srv/box read-write"));
}

/// The longest line `Summary` can make fits `status NAME`'s field: every
/// namespace with a map, the longest user name, every capability but the
/// shortest (all of them read "all"), a seccomp list, a root of
/// `ROOT_BYTES`. A root cut there (the field was 200 bytes) lost the very
/// layers and "overlay" the line is for.
#[test]
fn the_longest_confinement_line_fits() {
    use crate::proto::CONFINEMENT_MAX;
    let shortest = caps::Caps::ALL.names().min_by_key(|n| n.len()).unwrap();
    let caps: Vec<&str> = caps::Caps::ALL.names().filter(|&n| n != shortest).collect();
    let layer = |i: usize| format!("/{i}{}", "l".repeat(93));
    let root: Vec<String> = (0..crate::vocab::MAX_ROOT_LAYERS).map(layer).collect();
    let root = root.join(":");
    assert!(root.len() <= crate::vocab::ROOT_BYTES && root.len() > crate::vocab::ROOT_BYTES - 8);
    let text = format!(
        "exec = /bin/x\nnamespaces = user mount pid uts ipc net cgroup\nuser_map = 4294966295 1000\nuser = {}\ncapabilities = {}\nseccomp = ~@mount\nroot = {root}\nroot_overlay = yes\n",
        "u".repeat(crate::vocab::ID_NAME_MAX),
        caps.join(" "),
    );
    let def = crate::unit::parse("x", &text).unwrap();
    let line = format!("{}", Summary(&def));
    assert!(line.ends_with(" overlay"), "{line}");
    assert!(line.len() <= CONFINEMENT_MAX, "{} bytes", line.len());
    let sent: heapless::String<CONFINEMENT_MAX> = crate::proto::formatted(format_args!("{line}"));
    assert_eq!(sent.as_str(), line);
}

/// Like `run`, counting the instructions a call passes.
fn steps(prog: &[Insn], arch: u32, nr: u32) -> usize {
    let mut pc = 0usize;
    for n in 1..10_000 {
        let i = prog[pc];
        match i.code {
            0x20 => pc += 1,
            0x15 | 0x35 => {
                let acc = nr;
                let hit = if i.code == 0x15 {
                    acc == i.k
                } else {
                    acc >= i.k
                };
                // The arch compare is the only one on the arch.
                let hit = if pc == 1 { arch == i.k } else { hit };
                pc += 1 + usize::from(if hit { i.jt } else { i.jf });
            }
            0x05 => pc += 1 + i.k as usize,
            0x06 => return n,
            c => panic!("opcode {c:#x}"),
        }
    }
    panic!("no return");
}

#[test]
fn every_number_gets_its_answer_through_a_short_search() {
    for text in [
        "@system-service",
        "~@mount @reboot sethostname",
        "read",
        "@default",
    ] {
        let sc = spec(text);
        let set = sc.effective();
        for arch in [Arch::Aarch64, Arch::X86_64] {
            let p = program(&sc, arch);
            let mut longest = 0;
            for nr in 0..600u32 {
                let named = (arch.numbers().iter().enumerate())
                    .any(|(i, n)| u32::from(*n) == nr && set.has(i));
                let want = if named == sc.deny {
                    RET_EPERM
                } else {
                    RET_ALLOW
                };
                assert_eq!(run(&p, arch.audit(), nr), want, "{text} {arch:?} {nr}");
                longest = longest.max(steps(&p, arch.audit(), nr));
            }
            assert!(
                longest <= 30,
                "{text} {arch:?}: {longest} instructions for one call"
            );
        }
    }
}

#[test]
fn a_service_filter_is_small() {
    for arch in [Arch::Aarch64, Arch::X86_64] {
        let n = program(&spec("@system-service"), arch).len();
        let longest = (0..600u32)
            .map(|nr| steps(&program(&spec("@system-service"), arch), arch.audit(), nr))
            .max()
            .unwrap();
        println!("@system-service on {arch:?}: {n} instructions, at most {longest} per call");
        assert!(n < 200, "{arch:?}: {n} instructions");
    }
}
