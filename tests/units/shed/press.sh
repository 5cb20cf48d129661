# Once the test creates /run/press.go: writes more memory than is
# available, over and over for 20 s, then exits (pressure gone).
while [ ! -e /run/press.go ]; do sleep 0.2; done
avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
mib=$((avail + 96))
echo "$avail $mib" > /run/press.size
/usr/bin/wren-testkit mark /run/press start thrash $mib &
sleep 20
kill -9 $!
echo done > /run/press.done
exec /usr/bin/wren-testkit forever
