# Reports its stop signal on the console, then exits cleanly.
trap 'echo "svc-$1: got TERM"; exit 0' TERM
echo "svc-$1: up"
while :; do sleep 1 & wait $!; done
