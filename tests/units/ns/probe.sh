# The service of a unit with the default namespaces. /run is the host's
# tmpfs (the mount namespace is a private copy), so results go there.
o=/run/probe
mkdir -p $o
grep -E '^(Pid|PPid|NSpid):' /proc/$$/status > $o/self
hostname > $o/hostname
cat /proc/1/comm > $o/pid1comm
ls /proc | grep -E '^[0-9]+$' | sort -n > $o/procpids
ps -o pid,ppid,stat,comm > $o/ps
# Three double forks: the grandchildren are orphaned at once, live 2s,
# and must be reaped by this namespace's PID 1.
for i in 1 2 3; do /usr/bin/wren-testkit doublefork 2 $o/orphan$i; done
for i in 1 2 3; do awk '{print $4}' /proc/$(cat $o/orphan$i)/stat; done > $o/orphan-ppids
ps -o pid,ppid,stat,comm > $o/ps-orphans
sleep 5
ps -o pid,ppid,stat,comm > $o/ps-after
echo $$ > $o/done
exec /usr/bin/wren-testkit forever
