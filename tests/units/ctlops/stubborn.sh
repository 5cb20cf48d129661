# $1: name. Ignores TERM (so does everything it forks); the child starts a
# new session, so a signal to our process group misses it.
trap '' TERM
setsid /bin/sh -c 'echo $$ > /run/'"$1"'.child; exec sleep 100000' &
echo "$1: up"
while :; do sleep 1; done
