//! Syscall names and numbers for aarch64 and x86_64, from the libc crate's
//! `SYS_*` constants (musl and glibc, 0.2.191): every name either
//! architecture knows, sorted. Generated; a host test checks the order and
//! a few well-known numbers.

/// No such call on this architecture.
pub const NONE: u16 = u16::MAX;

/// Number of names.
pub const COUNT: usize = 361;

/// The names, sorted, blank-separated (one string: smaller than a table
/// of `&str`).
pub const NAMES: &str = concat!(
    "_sysctl accept accept4 access acct add_key adjtimex afs_syscall alarm arch_prctl ",
    "bind bpf brk capget capset chdir chmod chown chroot clock_adjtime clock_getres ",
    "clock_gettime clock_nanosleep clock_settime clone clone3 close close_range connect ",
    "copy_file_range creat delete_module dup dup2 dup3 epoll_create epoll_create1 ",
    "epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd ",
    "eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fallocate ",
    "fanotify_init fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchownat fcntl ",
    "fdatasync fgetxattr finit_module flistxattr flock fork fremovexattr fsconfig ",
    "fsetxattr fsmount fsopen fspick fstat fstatfs fsync ftruncate futex futex_waitv ",
    "futimesat get_mempolicy get_robust_list get_thread_area getcpu getcwd getdents ",
    "getdents64 getegid geteuid getgid getgroups getitimer getpeername getpgid getpgrp ",
    "getpid getpmsg getppid getpriority getrandom getresgid getresuid getrlimit getrusage ",
    "getsid getsockname getsockopt gettid gettimeofday getuid getxattr init_module ",
    "inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy ",
    "io_getevents io_pgetevents io_setup io_submit io_uring_enter io_uring_register ",
    "io_uring_setup ioctl ioperm iopl ioprio_get ioprio_set kcmp kexec_file_load ",
    "kexec_load keyctl kill landlock_add_rule landlock_create_ruleset ",
    "landlock_restrict_self lchown lgetxattr link linkat listen listxattr llistxattr ",
    "lookup_dcookie lremovexattr lseek lsetxattr lstat madvise mbind membarrier ",
    "memfd_create memfd_secret migrate_pages mincore mkdir mkdirat mknod mknodat mlock ",
    "mlock2 mlockall mmap modify_ldt mount mount_setattr move_mount move_pages mprotect ",
    "mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap mseal ",
    "msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at ",
    "nanosleep newfstatat nfsservctl open open_by_handle_at open_tree openat openat2 ",
    "pause perf_event_open personality pidfd_getfd pidfd_open pidfd_send_signal pipe ",
    "pipe2 pivot_root pkey_alloc pkey_free pkey_mprotect poll ppoll prctl pread64 preadv ",
    "preadv2 prlimit64 process_madvise process_mrelease process_vm_readv ",
    "process_vm_writev pselect6 ptrace putpmsg pwrite64 pwritev pwritev2 quotactl ",
    "quotactl_fd read readahead readlink readlinkat readv reboot recvfrom recvmmsg ",
    "recvmsg remap_file_pages removexattr rename renameat renameat2 request_key ",
    "restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo ",
    "rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_get_priority_max ",
    "sched_get_priority_min sched_getaffinity sched_getattr sched_getparam ",
    "sched_getscheduler sched_rr_get_interval sched_setaffinity sched_setattr ",
    "sched_setparam sched_setscheduler sched_yield seccomp security select semctl semget ",
    "semop semtimedop sendfile sendmmsg sendmsg sendto set_mempolicy ",
    "set_mempolicy_home_node set_robust_list set_thread_area set_tid_address ",
    "setdomainname setfsgid setfsuid setgid setgroups sethostname setitimer setns setpgid ",
    "setpriority setregid setresgid setresuid setreuid setrlimit setsid setsockopt ",
    "settimeofday setuid setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd ",
    "signalfd4 socket socketpair splice stat statfs statx swapoff swapon symlink ",
    "symlinkat sync sync_file_range syncfs sysfs sysinfo syslog tee tgkill time ",
    "timer_create timer_delete timer_getoverrun timer_gettime timer_settime ",
    "timerfd_create timerfd_gettime timerfd_settime times tkill truncate tuxcall umask ",
    "umount2 uname unlink unlinkat unshare uselib userfaultfd ustat utime utimensat ",
    "utimes vfork vhangup vmsplice vserver wait4 waitid write writev",
);

/// `[aarch64, x86_64]` number of each name, in the order of `NAMES`.
pub const NUMBERS: [[u16; 2]; COUNT] = [
    [NONE, 156], // _sysctl
    [202, 43],   // accept
    [242, 288],  // accept4
    [NONE, 21],  // access
    [89, 163],   // acct
    [217, 248],  // add_key
    [171, 159],  // adjtimex
    [NONE, 183], // afs_syscall
    [NONE, 37],  // alarm
    [NONE, 158], // arch_prctl
    [200, 49],   // bind
    [280, 321],  // bpf
    [214, 12],   // brk
    [90, 125],   // capget
    [91, 126],   // capset
    [49, 80],    // chdir
    [NONE, 90],  // chmod
    [NONE, 92],  // chown
    [51, 161],   // chroot
    [266, 305],  // clock_adjtime
    [114, 229],  // clock_getres
    [113, 228],  // clock_gettime
    [115, 230],  // clock_nanosleep
    [112, 227],  // clock_settime
    [220, 56],   // clone
    [435, 435],  // clone3
    [57, 3],     // close
    [436, 436],  // close_range
    [203, 42],   // connect
    [285, 326],  // copy_file_range
    [NONE, 85],  // creat
    [106, 176],  // delete_module
    [23, 32],    // dup
    [NONE, 33],  // dup2
    [24, 292],   // dup3
    [NONE, 213], // epoll_create
    [20, 291],   // epoll_create1
    [21, 233],   // epoll_ctl
    [NONE, 214], // epoll_ctl_old
    [22, 281],   // epoll_pwait
    [441, 441],  // epoll_pwait2
    [NONE, 232], // epoll_wait
    [NONE, 215], // epoll_wait_old
    [NONE, 284], // eventfd
    [19, 290],   // eventfd2
    [221, 59],   // execve
    [281, 322],  // execveat
    [93, 60],    // exit
    [94, 231],   // exit_group
    [48, 269],   // faccessat
    [439, 439],  // faccessat2
    [223, 221],  // fadvise64
    [47, 285],   // fallocate
    [262, 300],  // fanotify_init
    [263, 301],  // fanotify_mark
    [50, 81],    // fchdir
    [52, 91],    // fchmod
    [53, 268],   // fchmodat
    [NONE, 452], // fchmodat2
    [55, 93],    // fchown
    [54, 260],   // fchownat
    [25, 72],    // fcntl
    [83, 75],    // fdatasync
    [10, 193],   // fgetxattr
    [273, 313],  // finit_module
    [13, 196],   // flistxattr
    [32, 73],    // flock
    [NONE, 57],  // fork
    [16, 199],   // fremovexattr
    [431, 431],  // fsconfig
    [7, 190],    // fsetxattr
    [432, 432],  // fsmount
    [430, 430],  // fsopen
    [433, 433],  // fspick
    [80, 5],     // fstat
    [44, 138],   // fstatfs
    [82, 74],    // fsync
    [46, 77],    // ftruncate
    [98, 202],   // futex
    [449, 449],  // futex_waitv
    [NONE, 261], // futimesat
    [236, 239],  // get_mempolicy
    [100, 274],  // get_robust_list
    [NONE, 211], // get_thread_area
    [168, 309],  // getcpu
    [17, 79],    // getcwd
    [NONE, 78],  // getdents
    [61, 217],   // getdents64
    [177, 108],  // getegid
    [175, 107],  // geteuid
    [176, 104],  // getgid
    [158, 115],  // getgroups
    [102, 36],   // getitimer
    [205, 52],   // getpeername
    [155, 121],  // getpgid
    [NONE, 111], // getpgrp
    [172, 39],   // getpid
    [NONE, 181], // getpmsg
    [173, 110],  // getppid
    [141, 140],  // getpriority
    [278, 318],  // getrandom
    [150, 120],  // getresgid
    [148, 118],  // getresuid
    [163, 97],   // getrlimit
    [165, 98],   // getrusage
    [156, 124],  // getsid
    [204, 51],   // getsockname
    [209, 55],   // getsockopt
    [178, 186],  // gettid
    [169, 96],   // gettimeofday
    [174, 102],  // getuid
    [8, 191],    // getxattr
    [105, 175],  // init_module
    [27, 254],   // inotify_add_watch
    [NONE, 253], // inotify_init
    [26, 294],   // inotify_init1
    [28, 255],   // inotify_rm_watch
    [3, 210],    // io_cancel
    [1, 207],    // io_destroy
    [4, 208],    // io_getevents
    [292, 333],  // io_pgetevents
    [0, 206],    // io_setup
    [2, 209],    // io_submit
    [426, 426],  // io_uring_enter
    [427, 427],  // io_uring_register
    [425, 425],  // io_uring_setup
    [29, 16],    // ioctl
    [NONE, 173], // ioperm
    [NONE, 172], // iopl
    [31, 252],   // ioprio_get
    [30, 251],   // ioprio_set
    [272, 312],  // kcmp
    [294, 320],  // kexec_file_load
    [104, 246],  // kexec_load
    [219, 250],  // keyctl
    [129, 62],   // kill
    [445, 445],  // landlock_add_rule
    [444, 444],  // landlock_create_ruleset
    [446, 446],  // landlock_restrict_self
    [NONE, 94],  // lchown
    [9, 192],    // lgetxattr
    [NONE, 86],  // link
    [37, 265],   // linkat
    [201, 50],   // listen
    [11, 194],   // listxattr
    [12, 195],   // llistxattr
    [18, 212],   // lookup_dcookie
    [15, 198],   // lremovexattr
    [62, 8],     // lseek
    [6, 189],    // lsetxattr
    [NONE, 6],   // lstat
    [233, 28],   // madvise
    [235, 237],  // mbind
    [283, 324],  // membarrier
    [279, 319],  // memfd_create
    [447, 447],  // memfd_secret
    [238, 256],  // migrate_pages
    [232, 27],   // mincore
    [NONE, 83],  // mkdir
    [34, 258],   // mkdirat
    [NONE, 133], // mknod
    [33, 259],   // mknodat
    [228, 149],  // mlock
    [284, 325],  // mlock2
    [230, 151],  // mlockall
    [222, 9],    // mmap
    [NONE, 154], // modify_ldt
    [40, 165],   // mount
    [442, 442],  // mount_setattr
    [429, 429],  // move_mount
    [239, 279],  // move_pages
    [226, 10],   // mprotect
    [185, 245],  // mq_getsetattr
    [184, 244],  // mq_notify
    [180, 240],  // mq_open
    [183, 243],  // mq_timedreceive
    [182, 242],  // mq_timedsend
    [181, 241],  // mq_unlink
    [216, 25],   // mremap
    [462, 462],  // mseal
    [187, 71],   // msgctl
    [186, 68],   // msgget
    [188, 70],   // msgrcv
    [189, 69],   // msgsnd
    [227, 26],   // msync
    [229, 150],  // munlock
    [231, 152],  // munlockall
    [215, 11],   // munmap
    [264, 303],  // name_to_handle_at
    [101, 35],   // nanosleep
    [79, 262],   // newfstatat
    [42, 180],   // nfsservctl
    [NONE, 2],   // open
    [265, 304],  // open_by_handle_at
    [428, 428],  // open_tree
    [56, 257],   // openat
    [437, 437],  // openat2
    [NONE, 34],  // pause
    [241, 298],  // perf_event_open
    [92, 135],   // personality
    [438, 438],  // pidfd_getfd
    [434, 434],  // pidfd_open
    [424, 424],  // pidfd_send_signal
    [NONE, 22],  // pipe
    [59, 293],   // pipe2
    [41, 155],   // pivot_root
    [289, 330],  // pkey_alloc
    [290, 331],  // pkey_free
    [288, 329],  // pkey_mprotect
    [NONE, 7],   // poll
    [73, 271],   // ppoll
    [167, 157],  // prctl
    [67, 17],    // pread64
    [69, 295],   // preadv
    [286, 327],  // preadv2
    [261, 302],  // prlimit64
    [440, 440],  // process_madvise
    [448, 448],  // process_mrelease
    [270, 310],  // process_vm_readv
    [271, 311],  // process_vm_writev
    [72, 270],   // pselect6
    [117, 101],  // ptrace
    [NONE, 182], // putpmsg
    [68, 18],    // pwrite64
    [70, 296],   // pwritev
    [287, 328],  // pwritev2
    [60, 179],   // quotactl
    [443, 443],  // quotactl_fd
    [63, 0],     // read
    [213, 187],  // readahead
    [NONE, 89],  // readlink
    [78, 267],   // readlinkat
    [65, 19],    // readv
    [142, 169],  // reboot
    [207, 45],   // recvfrom
    [243, 299],  // recvmmsg
    [212, 47],   // recvmsg
    [234, 216],  // remap_file_pages
    [14, 197],   // removexattr
    [NONE, 82],  // rename
    [38, 264],   // renameat
    [276, 316],  // renameat2
    [218, 249],  // request_key
    [128, 219],  // restart_syscall
    [NONE, 84],  // rmdir
    [293, 334],  // rseq
    [134, 13],   // rt_sigaction
    [136, 127],  // rt_sigpending
    [135, 14],   // rt_sigprocmask
    [138, 129],  // rt_sigqueueinfo
    [139, 15],   // rt_sigreturn
    [133, 130],  // rt_sigsuspend
    [137, 128],  // rt_sigtimedwait
    [240, 297],  // rt_tgsigqueueinfo
    [125, 146],  // sched_get_priority_max
    [126, 147],  // sched_get_priority_min
    [123, 204],  // sched_getaffinity
    [275, 315],  // sched_getattr
    [121, 143],  // sched_getparam
    [120, 145],  // sched_getscheduler
    [127, 148],  // sched_rr_get_interval
    [122, 203],  // sched_setaffinity
    [274, 314],  // sched_setattr
    [118, 142],  // sched_setparam
    [119, 144],  // sched_setscheduler
    [124, 24],   // sched_yield
    [277, 317],  // seccomp
    [NONE, 185], // security
    [NONE, 23],  // select
    [191, 66],   // semctl
    [190, 64],   // semget
    [193, 65],   // semop
    [192, 220],  // semtimedop
    [71, 40],    // sendfile
    [269, 307],  // sendmmsg
    [211, 46],   // sendmsg
    [206, 44],   // sendto
    [237, 238],  // set_mempolicy
    [450, 450],  // set_mempolicy_home_node
    [99, 273],   // set_robust_list
    [NONE, 205], // set_thread_area
    [96, 218],   // set_tid_address
    [162, 171],  // setdomainname
    [152, 123],  // setfsgid
    [151, 122],  // setfsuid
    [144, 106],  // setgid
    [159, 116],  // setgroups
    [161, 170],  // sethostname
    [103, 38],   // setitimer
    [268, 308],  // setns
    [154, 109],  // setpgid
    [140, 141],  // setpriority
    [143, 114],  // setregid
    [149, 119],  // setresgid
    [147, 117],  // setresuid
    [145, 113],  // setreuid
    [164, 160],  // setrlimit
    [157, 112],  // setsid
    [208, 54],   // setsockopt
    [170, 164],  // settimeofday
    [146, 105],  // setuid
    [5, 188],    // setxattr
    [196, 30],   // shmat
    [195, 31],   // shmctl
    [197, 67],   // shmdt
    [194, 29],   // shmget
    [210, 48],   // shutdown
    [132, 131],  // sigaltstack
    [NONE, 282], // signalfd
    [74, 289],   // signalfd4
    [198, 41],   // socket
    [199, 53],   // socketpair
    [76, 275],   // splice
    [NONE, 4],   // stat
    [43, 137],   // statfs
    [291, 332],  // statx
    [225, 168],  // swapoff
    [224, 167],  // swapon
    [NONE, 88],  // symlink
    [36, 266],   // symlinkat
    [81, 162],   // sync
    [84, 277],   // sync_file_range
    [267, 306],  // syncfs
    [NONE, 139], // sysfs
    [179, 99],   // sysinfo
    [116, 103],  // syslog
    [77, 276],   // tee
    [131, 234],  // tgkill
    [NONE, 201], // time
    [107, 222],  // timer_create
    [111, 226],  // timer_delete
    [109, 225],  // timer_getoverrun
    [108, 224],  // timer_gettime
    [110, 223],  // timer_settime
    [85, 283],   // timerfd_create
    [87, 287],   // timerfd_gettime
    [86, 286],   // timerfd_settime
    [153, 100],  // times
    [130, 200],  // tkill
    [45, 76],    // truncate
    [NONE, 184], // tuxcall
    [166, 95],   // umask
    [39, 166],   // umount2
    [160, 63],   // uname
    [NONE, 87],  // unlink
    [35, 263],   // unlinkat
    [97, 272],   // unshare
    [NONE, 134], // uselib
    [282, 323],  // userfaultfd
    [NONE, 136], // ustat
    [NONE, 132], // utime
    [88, 280],   // utimensat
    [NONE, 235], // utimes
    [NONE, 58],  // vfork
    [58, 153],   // vhangup
    [75, 278],   // vmsplice
    [NONE, 236], // vserver
    [260, 61],   // wait4
    [95, 247],   // waitid
    [64, 1],     // write
    [66, 20],    // writev
];
