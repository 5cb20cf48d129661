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
rm -f "$O"/* "$RO"/* "$B"/rootfs/out/*

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
wren_unit() { # VARIANT FILE (as seen from here) COUNT
    name=bench-$1
    mkfifo -m 0666 "$2.done"
    sed "s/@N@/$3/" "/bench/wren/$name.unit" > "/bench/units/$name.unit"
    initctl reload > /dev/null || say "initctl reload failed"
    if ! timeout 600 cat "$2.done" > /dev/null; then
        say "wren $1 did not reach $3 starts"
        initctl status "$name"
    fi
    rm -f "/bench/units/$name.unit"
    initctl reload > /dev/null || say "initctl reload failed"
    rm -f "$2.done"
}

# Interleaved rounds, so that a change in the host's load during the run
# hits every row alike.
# bench.n=0: no measurement, only the trace (if asked).
r=1
[ "$N" -gt 0 ] || r=$((ROUNDS + 1))
while [ "$r" -le "$ROUNDS" ]; do
    say "round $r of $ROUNDS: $PER starts per row"
    baseline plain "$O/plain.txt"
    baseline unshare "$O/unshare.txt"
    baseline unshare-proc "$O/unshare-proc.txt"
    baseline crun "$B"
    wren_unit none "$O/wren-none.txt" $((r * PER))
    wren_unit default "$O/wren-default.txt" $((r * PER))
    wren_unit net "$O/wren-net.txt" $((r * PER))
    wren_unit root "$RO/wren-root.txt" $((r * PER))
    wren_unit seccomp "$O/wren-seccomp.txt" $((r * PER))
    wren_unit userns "$O/wren-userns.txt" $((r * PER))
    r=$((r + 1))
done

if [ "$N" -gt 0 ]; then
    echo "@@BENCH-TABLE@@"
    "$K" spawnreport "$N" \
        "plain fork+exec" "$O/plain.txt" \
        "unshare -p -f -m -u -i" "$O/unshare.txt" \
        "  ... --mount-proc" "$O/unshare-proc.txt" \
        "crun" "$B/rootfs/out/crun.txt" \
        "wren namespaces=none" "$O/wren-none.txt" \
        "wren default" "$O/wren-default.txt" \
        "wren default+net" "$O/wren-net.txt" \
        "wren root" "$RO/wren-root.txt" \
        "wren default+seccomp" "$O/wren-seccomp.txt" \
        "wren default+user" "$O/wren-userns.txt"
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
    case $TRACE in root) F=$RO/wren-root.txt ;; *) F=$O/wren-$TRACE.txt ;; esac
    rm -f "$F"
    echo mono > "$T/trace_clock"
    echo 16384 > "$T/buffer_size_kb"
    if grep -qw bench.traceall /proc/cmdline; then
        echo 1 > "$T/events/syscalls/enable"
    else
        for e in clock_gettime mkdirat pipe2 clone3 execve set_tid_address; do
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
    wren_unit "$TRACE" "$F" "$TRACEN"
    echo 0 > "$T/tracing_on"
    echo "@@BENCH-TRACE@@"
    echo "# stamps (ns): $(cat "$F" | tr '\n' ' ')"
    cat "$T/trace"
    echo "@@BENCH-TRACE-END@@"
fi
sync
poweroff
