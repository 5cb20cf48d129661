#!/bin/sh
# Guest half of bench/inits, installed as /bench/driver in every image of
# the suite. /bench/t0 (bench/inits-probe.c) forks it just before it execs
# the init under test, so it runs the same way under every init, as a
# child of PID 1 and outside the supervision tree. It is SCHED_IDLE, and
# so is every program it runs: on the guest's one CPU it runs when the
# boot's own tasks leave the CPU free (or at a weight of 3 against their
# 1024), so that its work stays out of the boot it measures. It prints
# "@@M NAME VALUE" figures (from /bench/probe) between @@BENCH-START@@
# and @@BENCH-DONE@@ (or @@BENCH-NOTREADY@@), then powers the guest off.
# /bench/n: number of services; /bench/kills: restarts to time;
# /bench/idle: seconds of the idle window.
PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH
P=/bench/probe
N=$(cat /bench/n)
KILLS=$(cat /bench/kills)
IDLE=$(cat /bench/idle)
echo "@@BENCH-START@@ init=$(cat /bench/init) n=$N"

# Blocks (inotify) until every service stamped its start; gives up after
# 30 s without a new one (e.g. units the init refused).
if ! $P ready "$N" 30; then
    echo "@@BENCH-NOTREADY@@"
    sync
    poweroff -f
fi
# The init mounted /proc itself or not (BusyBox init, runit, s6 here don't).
[ -r /proc/1/stat ] || mount -t proc proc /proc
$P cpu
# bench.trace (bench/trace-boot): the boot was traced from the kernel's
# command line; print the trace and stop there.
if grep -qw bench.trace /proc/cmdline; then
    mkdir -p /tmp/tr
    mount -t tracefs tracefs /tmp/tr
    echo 0 > /tmp/tr/tracing_on
    echo "@@BENCH-TRACE@@"
    cat /tmp/tr/trace
    echo "@@BENCH-TRACE-END@@"
    echo "@@BENCH-DONE@@"
    sync
    poweroff -f
fi
# Let the supervisors finish what follows a start before measuring memory.
sleep 2
$P mem
$P idle "$IDLE"
# Restart latency: a different, long-running service each time, the kills
# more than 1 s apart (BusyBox init, runit and s6 throttle restarts of a
# service that ran less than 1 s).
i=1
while [ "$i" -le "$KILLS" ] && [ "$i" -le "$N" ]; do
    $P restart "$i" || echo "@@M restart_failed $i"
    sleep 2
    i=$((i + 1))
done
echo "@@BENCH-DONE@@"
sync
poweroff -f
