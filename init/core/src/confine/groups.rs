//! The documented `@groups` of `seccomp` (docs/units.md, "seccomp"):
//! named lists of system calls, after systemd's groups of the same names.
//! A group may name other groups. A host test checks that every member is
//! a name in `syscalls::NAMES` and that no group refers to itself.

/// `(name without @, members blank-separated)`: one string per group, as a
/// table of `&str` would cost 16 bytes of data a member. The index of a
/// group here is its bit in `Seccomp::groups`.
pub const GROUPS: [(&str, &str); 20] = [
    // What every program needs to start and end; always part of an allow
    // list (the filter is installed before execve).
    (
        "default",
        concat!(
            "arch_prctl brk clock_getres clock_gettime clock_nanosleep execve exit ",
            "exit_group futex futex_requeue futex_wait futex_waitv futex_wake ",
            "get_robust_list getegid geteuid getgid getgroups ",
            "getpid getppid getrandom gettid gettimeofday getuid madvise membarrier ",
            "mmap mprotect mremap munmap nanosleep pause prlimit64 restart_syscall ",
            "rseq rt_sigreturn sched_getaffinity sched_yield set_robust_list ",
            // `write`: a failed execve is reported to PID 1 with one (the
            // filter is in place by then); refused, it read as a success.
            "set_tid_address time write",
        ),
    ),
    (
        "basic-io",
        concat!(
            "close close_range dup dup2 dup3 lseek pread64 preadv preadv2 pwrite64 ",
            "pwritev pwritev2 read readv write writev",
        ),
    ),
    (
        "file-system",
        concat!(
            "access chdir chmod close creat faccessat faccessat2 fallocate fchdir ",
            "fchmod fchmodat fchmodat2 fcntl fgetxattr file_getattr file_setattr ",
            "flistxattr fremovexattr fsetxattr fstat getxattrat listxattrat ",
            "removexattrat setxattrat ",
            "fstatfs ftruncate futimesat getcwd getdents getdents64 getxattr ",
            "inotify_add_watch inotify_init inotify_init1 inotify_rm_watch lgetxattr ",
            "link linkat listxattr llistxattr lremovexattr lsetxattr lstat mkdir ",
            "mkdirat mknod mknodat newfstatat open openat openat2 readlink ",
            "readlinkat removexattr rename renameat renameat2 rmdir setxattr stat ",
            "statfs statx symlink symlinkat truncate unlink unlinkat utime utimensat ",
            "utimes",
        ),
    ),
    (
        "network-io",
        concat!(
            "accept accept4 bind connect getpeername getsockname getsockopt listen ",
            "recvfrom recvmmsg recvmsg sendmmsg sendmsg sendto setsockopt shutdown ",
            "socket socketpair",
        ),
    ),
    (
        "process",
        concat!(
            "capget clone clone3 execveat fork getrusage kill pidfd_getfd pidfd_open ",
            "pidfd_send_signal prctl rt_sigqueueinfo rt_tgsigqueueinfo setns tgkill ",
            "times tkill unshare vfork wait4 waitid",
        ),
    ),
    (
        "io-event",
        concat!(
            "epoll_create epoll_create1 epoll_ctl epoll_pwait epoll_pwait2 ",
            "epoll_wait eventfd eventfd2 poll ppoll pselect6 select",
        ),
    ),
    (
        "signal",
        concat!(
            "rt_sigaction rt_sigpending rt_sigprocmask rt_sigsuspend rt_sigtimedwait ",
            "sigaltstack signalfd signalfd4",
        ),
    ),
    (
        "timer",
        concat!(
            "alarm getitimer setitimer timer_create timer_delete timer_getoverrun ",
            "timer_gettime timer_settime timerfd_create timerfd_gettime ",
            "timerfd_settime",
        ),
    ),
    (
        "ipc",
        concat!(
            "memfd_create mq_getsetattr mq_notify mq_open mq_timedreceive ",
            "mq_timedsend mq_unlink msgctl msgget msgrcv msgsnd pipe pipe2 ",
            "process_vm_readv process_vm_writev semctl semget semop semtimedop shmat ",
            "shmctl shmdt shmget",
        ),
    ),
    ("sync", "fdatasync fsync msync sync sync_file_range syncfs"),
    (
        "setuid",
        "setgid setgroups setregid setresgid setresuid setreuid setuid",
    ),
    ("chown", "chown fchown fchownat lchown"),
    (
        "resources",
        concat!(
            "getpriority getrlimit ioprio_get ioprio_set sched_getattr ",
            "sched_getparam sched_getscheduler sched_setaffinity sched_setattr ",
            "sched_setparam sched_setscheduler setpriority setrlimit",
        ),
    ),
    (
        "aio",
        concat!(
            "io_cancel io_destroy io_getevents io_pgetevents io_setup io_submit ",
            "io_uring_enter io_uring_register io_uring_setup",
        ),
    ),
    ("memlock", "mlock mlock2 mlockall munlock munlockall"),
    // What a typical service needs; not @mount, @reboot, @module or
    // @raw-io, nor swapon, the clock, the hostname, ptrace, bpf or acct.
    (
        "system-service",
        concat!(
            "@default @basic-io @file-system @network-io @process @io-event @signal ",
            "@timer @ipc @sync @setuid @chown @resources @aio @memlock capset ",
            "copy_file_range fadvise64 flock get_mempolicy getcpu getpgid getpgrp ",
            "getresgid getresuid getsid ioctl kcmp mincore name_to_handle_at ",
            "personality readahead sched_get_priority_max sched_get_priority_min ",
            "sched_rr_get_interval sendfile setfsgid setfsuid setpgid setsid splice ",
            "sysinfo tee umask uname vmsplice",
        ),
    ),
    (
        "mount",
        concat!(
            "chroot fsconfig fsmount fsopen fspick mount mount_setattr move_mount ",
            "open_tree pivot_root umount2",
        ),
    ),
    ("reboot", "kexec_file_load kexec_load reboot"),
    ("module", "delete_module finit_module init_module"),
    ("raw-io", "ioperm iopl"),
];

/// The index of group `name` (without `@`).
pub fn index(name: &str) -> Option<usize> {
    GROUPS.iter().position(|(n, _)| *n == name)
}
