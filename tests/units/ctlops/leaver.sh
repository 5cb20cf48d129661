# $1: name. Dies on TERM; its setsid child ignores TERM and HUP.
setsid /bin/sh -c 'trap "" TERM HUP; echo $$ > /run/'"$1"'.child; exec sleep 100000' &
echo "$1: up"
while :; do sleep 1; done
