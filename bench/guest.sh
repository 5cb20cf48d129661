#!/bin/sh
# Guest half of bench/spawn, installed as /bench/run and run by the oneshot
# unit /bench/units/runner.unit (namespaces = none, output = console) in an
# image built with WREN_BENCH=1, booted with `wren.stamp`. Everything is
# measured in this one boot, one after the other; then the table is printed
# between @@BENCH-TABLE@@ markers and the guest powers off.
# Kernel options read here: bench.n=N (starts per row, default 100).
PATH=/sbin:/bin:/usr/sbin:/usr/bin
export PATH
N=100
for a in $(cat /proc/cmdline); do
    case $a in bench.n=*) N=${a#bench.n=} ;; esac
done
K=/usr/bin/wren-testkit
O=/bench/out
RO=/bench/rootfs/out
B=/bench/bundle
rm -f "$O"/* "$RO"/* "$B"/rootfs/out/*

say() { echo "bench: $*"; }
grep -qw wren.stamp /proc/cmdline || say "WARNING: booted without wren.stamp, wren rows will be empty"

baseline() { # MODE FILE
    say "$1 x $N"
    "$K" spawnbench "$1" "$N" "$2" || say "$1 FAILED"
}
baseline plain "$O/plain.txt"
baseline unshare "$O/unshare.txt"
baseline unshare-proc "$O/unshare-proc.txt"
baseline crun "$B"

# A wren unit with `restart = always` and `restart_delay = 0ms` whose
# service stamps its latency and exits 0: PID 1 restarts it at once, and the
# COUNT-th start writes to FILE.done (a FIFO) and then stays up, so the unit
# stops cycling after exactly N starts while this script blocks on the FIFO
# (no polling competing for the CPU).
wren_unit() { # VARIANT FILE (as seen from here)
    name=bench-$1
    say "wren $1 x $N"
    mkfifo "$2.done"
    sed "s/@N@/$N/" "/bench/wren/$name.unit" > "/bench/units/$name.unit"
    initctl reload > /dev/null || say "initctl reload failed"
    if ! timeout 600 cat "$2.done" > /dev/null; then
        say "wren $1 did not reach $N starts"
        initctl status "$name"
    fi
    rm -f "/bench/units/$name.unit"
    initctl reload > /dev/null || say "initctl reload failed"
    rm -f "$2.done"
}
wren_unit none "$O/wren-none.txt"
wren_unit default "$O/wren-default.txt"
wren_unit net "$O/wren-net.txt"
wren_unit root "$RO/wren-root.txt"

echo "@@BENCH-TABLE@@"
"$K" spawnreport "$N" \
    "plain fork+exec" "$O/plain.txt" \
    "unshare -p -f -m -u -i" "$O/unshare.txt" \
    "  ... --mount-proc" "$O/unshare-proc.txt" \
    "crun" "$B/rootfs/out/crun.txt" \
    "wren namespaces=none" "$O/wren-none.txt" \
    "wren default" "$O/wren-default.txt" \
    "wren default+net" "$O/wren-net.txt" \
    "wren root" "$RO/wren-root.txt"
echo "@@BENCH-END@@"
sync
poweroff
