#!/bin/sh
# Guest half of bench/spawn, installed as /bench/run and run by the oneshot
# unit /bench/units/runner.unit (namespaces = none, output = console) in an
# image built with WREN_BENCH=1, booted with `wren.stamp`. Everything is
# measured in this one boot, one after the other; then the table is printed
# between @@BENCH-TABLE@@ markers and the guest powers off.
# Kernel options read here: bench.n=N (starts per row, default 100),
# bench.rounds=R (interleaved rounds, default 5), bench.trace=VARIANT
# (afterwards, trace more starts of the wren unit VARIANT with ftrace; see
# below).
PATH=/sbin:/bin:/usr/sbin:/usr/bin
export PATH
N=100
ROUNDS=5
TRACE=
TRACEN=10
UNIT_EXTRA=
for a in $(cat /proc/cmdline); do
    case $a in
        bench.n=*) N=${a#bench.n=} ;;
        bench.rounds=*) ROUNDS=${a#bench.rounds=} ;;
        bench.trace=*) TRACE=${a#bench.trace=} ;;
        bench.tracen=*) TRACEN=${a#bench.tracen=} ;;
    esac
done
K=/usr/bin/wren-testkit
O=/bench/out
RO=/bench/rootfs/out
B=/bench/bundle
rm -f "$O"/* "$RO"/* "$B"/rootfs/out/* /bench/oci-bundle/rootfs/out/*

say() { echo "bench: $*"; }
grep -qw wren.stamp /proc/cmdline || say "WARNING: booted without wren.stamp, wren rows will be empty"
# PID 1's size: a unit's child starts as a copy of it (page tables copied
# at clone3, torn down at execve).
say "PID 1: $(grep -E '^(VmSize|VmRSS|VmPTE|RssAnon|RssFile)' /proc/1/status | tr -s ' \t' ' ' | tr '\n' ' ')"
[ "$ROUNDS" -ge 1 ] && [ "$N" -ge "$ROUNDS" ] || ROUNDS=1
PER=$((N / ROUNDS))
N=$((PER * ROUNDS))

baseline() { # MODE FILE
    "$K" spawnbench "$1" "$PER" "$2" || say "$1 FAILED"
}

# A wren unit with `restart = always` and `restart_delay = 0ms` whose
# service stamps its latency and exits 0: PID 1 restarts it at once, and the
# start that brings FILE to COUNT lines writes to FILE.done (a FIFO) and
# then stays up, so the unit stops cycling after exactly COUNT starts while
# this script blocks on the FIFO (no polling competing for the CPU).
#
# The units are added once, by one `initctl reload`, and then started and
# stopped by hand. A reload puts a new unit on probation (the health gate,
# docs/units.md "Changes on reload"): its first start must stay up 1 s, and
# a service that exits at once is rejected. So that first start is a
# warm-up, not a sample: FILE already holds COUNT dummy lines, the service
# stays up, the gate passes; the file is then thrown away. Every measured
# start is a start by `initctl start` or a restart, as before the gate.
WREN_ALL="none default net root seccomp userns"
wfile() { # VARIANT -> its stamp FILE as seen from here
    case $1 in root) echo "$RO/wren-root.txt" ;; *) echo "$O/wren-$1.txt" ;; esac
}
dummies() { # FILE K: FILE holds K lines "0", writable by the userns unit too
    i=0
    while [ "$i" -lt "$2" ]; do echo 0; i=$((i + 1)); done > "$1"
    chmod 0666 "$1"
}
wait_done() { # VARIANT FILE
    if ! timeout 600 cat "$2.done" > /dev/null; then
        say "wren $1 did not reach its count"
        initctl status "bench-$1"
    fi
}
wren_load() { # COUNT VARIANT...
    c=$1
    shift
    for v in "$@"; do
        f=$(wfile "$v")
        mkfifo -m 0666 "$f.done"
        dummies "$f" "$c"
        { sed "s/@N@/$c/" "/bench/wren/bench-$v.unit"; [ -z "$UNIT_EXTRA" ] || echo "$UNIT_EXTRA"; } \
            > "/bench/units/bench-$v.unit"
    done
    initctl reload > /dev/null || say "initctl reload failed"
    for v in "$@"; do
        f=$(wfile "$v")
        wait_done "$v" "$f"
        initctl stop "bench-$v" > /dev/null || say "initctl stop bench-$v failed"
        rm -f "$f"
    done
}
# One round of a loaded unit: COUNT starts, appended to FILE.all.
wren_unit() { # VARIANT
    f=$(wfile "$1")
    initctl start "bench-$1" > /dev/null || say "initctl start bench-$1 failed"
    wait_done "$1" "$f"
    initctl stop "bench-$1" > /dev/null || say "initctl stop bench-$1 failed"
    cat "$f" >> "$f.all"
    rm -f "$f"
}

# The imported image (bench/spawn: a two-layer overlay root, output = log)
# stamps to its standard output, since a file written in its root is gone
# at the next start: the samples are the unit's log lines. It is in the boot
# unit directory, held by `after = bench-hold` until round 1 writes the
# FIFO /bench/oci-hold, so no reload (and no gate) is involved; later rounds
# start it by hand. `initctl log -f | head` blocks until the round's PER
# new lines are there (no polling); the unit is stopped right after.
OCI=
[ -e /bench/units/bench-oci.unit ] && OCI=$O/wren-oci.txt.all
# overlayfs is a module in Debian's kernel; rootfs/build ships it.
if [ -n "$OCI" ] && ! grep -qw overlay /proc/filesystems; then
    insmod /lib/modules/wren-tests/overlay.ko || say "insmod overlay.ko failed"
fi
oci_unit() {
    have=$(initctl log bench-oci 2> /dev/null | wc -l)
    if [ -p /bench/oci-hold ] && [ "$r" -eq 1 ]; then
        echo go > /bench/oci-hold
    else
        initctl start bench-oci > /dev/null || say "initctl start bench-oci failed"
    fi
    timeout 600 initctl log bench-oci -f | head -n $((have + PER)) | tail -n "$PER" >> "$OCI"
    initctl stop bench-oci > /dev/null || say "initctl stop bench-oci failed"
}

# Interleaved rounds, so that a change in the host's load during the run
# hits every row alike.
# bench.n=0: no measurement, only the trace (if asked).
r=1
if [ "$N" -gt 0 ]; then
    wren_load "$PER" $WREN_ALL
else
    r=$((ROUNDS + 1))
    # Traced alone, each restart is the first of its streak (as a SIGKILL
    # of a long-running unit is): with restart_delay = 0 it is spawned in
    # the wake-up that reaped the exit, not after a Backoff turn of the loop.
    UNIT_EXTRA="restart_delay_max = 1ms"
    [ -z "$TRACE" ] || wren_load "$TRACEN" "$TRACE"
fi
while [ "$r" -le "$ROUNDS" ]; do
    say "round $r of $ROUNDS: $PER starts per row"
    baseline plain "$O/plain.txt"
    baseline unshare "$O/unshare.txt"
    baseline unshare-proc "$O/unshare-proc.txt"
    baseline crun "$B"
    for v in $WREN_ALL; do wren_unit "$v"; done
    if [ -n "$OCI" ]; then
        baseline crun /bench/oci-bundle
        oci_unit
    fi
    r=$((r + 1))
done

if [ "$N" -gt 0 ]; then
    set -- \
        "plain fork+exec" "$O/plain.txt" \
        "unshare -p -f -m -u -i" "$O/unshare.txt" \
        "  ... --mount-proc" "$O/unshare-proc.txt" \
        "crun" "$B/rootfs/out/crun.txt" \
        "wren namespaces=none" "$O/wren-none.txt.all" \
        "wren default" "$O/wren-default.txt.all" \
        "wren default+net" "$O/wren-net.txt.all" \
        "wren root" "$RO/wren-root.txt.all" \
        "wren default+seccomp" "$O/wren-seccomp.txt.all" \
        "wren default+user" "$O/wren-userns.txt.all"
    [ -z "$OCI" ] || set -- "$@" \
        "crun oci bundle (merged)" /bench/oci-bundle/rootfs/out/crun.txt \
        "wren oci overlay 2 layers" "$OCI"
    echo "@@BENCH-TABLE@@"
    "$K" spawnreport "$N" "$@"
    echo "@@BENCH-END@@"
fi

# bench.trace=VARIANT: bench.tracen=M (default 10) more starts of that wren
# unit under ftrace, printed between @@BENCH-TRACE@@ markers (clock =
# CLOCK_MONOTONIC, the clock of WREN_SPAWN_NS). Only the few syscalls that
# mark the phases of a start are traced (plus fork/exec/context switches),
# so tracing adds little; with bench.traceall every syscall is traced, with
# bench.tracepid1 also PID 1's openat/read/write/close.
# bench/trace-phases turns the trace into a per-start breakdown.
if [ -n "$TRACE" ]; then
    T=/sys/kernel/tracing
    [ -e "$T/trace" ] || mount -t tracefs tracefs "$T"
    F=$(wfile "$TRACE")
    # The unit stops at its COUNT (PER after a measurement, else TRACEN):
    # dummy lines leave TRACEN starts to trace (at most COUNT).
    K=0
    [ "$N" -eq 0 ] || [ "$PER" -le "$TRACEN" ] || K=$((PER - TRACEN))
    dummies "$F" "$K"
    echo mono > "$T/trace_clock"
    echo 16384 > "$T/buffer_size_kb"
    if grep -qw bench.traceall /proc/cmdline; then
        echo 1 > "$T/events/syscalls/enable"
    else
        for e in clock_gettime mkdirat pipe2 clone3 execve set_tid_address; do
            echo 1 > "$T/events/syscalls/sys_enter_$e/enable"
            echo 1 > "$T/events/syscalls/sys_exit_$e/enable"
        done
        # PID 1's turns of its loop: the wake-up, the reap, the timer armed
        # and the wait in place for a child's exec (filtered in the kernel).
        for e in epoll_pwait wait4 timerfd_settime ppoll; do
            echo 'common_pid == 1' > "$T/events/syscalls/sys_enter_$e/filter"
            echo 'common_pid == 1' > "$T/events/syscalls/sys_exit_$e/filter"
            echo 1 > "$T/events/syscalls/sys_enter_$e/enable"
            echo 1 > "$T/events/syscalls/sys_exit_$e/enable"
        done
    fi
    if grep -qw bench.tracepid1 /proc/cmdline; then
        # PID 1's own file syscalls (the cgroup writes), filtered in the kernel.
        for e in openat write read close; do
            echo 'common_pid == 1' > "$T/events/syscalls/sys_enter_$e/filter"
            echo 'common_pid == 1' > "$T/events/syscalls/sys_exit_$e/filter"
            echo 1 > "$T/events/syscalls/sys_enter_$e/enable"
            echo 1 > "$T/events/syscalls/sys_exit_$e/enable"
        done
    fi
    for e in sched_process_fork sched_process_exec sched_process_exit sched_switch; do
        echo 1 > "$T/events/sched/$e/enable"
    done
    echo > "$T/trace"
    echo 1 > "$T/tracing_on"
    initctl start "bench-$TRACE" > /dev/null || say "initctl start bench-$TRACE failed"
    wait_done "$TRACE" "$F"
    echo 0 > "$T/tracing_on"
    initctl stop "bench-$TRACE" > /dev/null
    echo "@@BENCH-TRACE@@"
    echo "# stamps (ns): $(tail -n +$((K + 1)) "$F" | tr '\n' ' ')"
    cat "$T/trace"
    echo "@@BENCH-TRACE-END@@"
fi
sync
poweroff
