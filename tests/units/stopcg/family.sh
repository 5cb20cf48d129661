# $1: a child in its own session (out of the main process group) that traps
# TERM, leaves a marker, and takes a second to go. With `wait` as $2 the
# main process waits for it on TERM (in a PID namespace the kernel kills
# what is left once the main process, and so the reaper, ends).
setsid /bin/sh -c 'trap "echo got-TERM > /run/'"$1"'.marker; sleep 1; exit 0" TERM
echo $$ > /run/'"$1"'.child
while :; do sleep 1 & wait $!; done' &
echo $$ > /run/$1.main
if [ "$2" = wait ]; then trap 'wait; exit 0' TERM; else trap 'exit 0' TERM; fi
while :; do sleep 1 & wait $!; done
