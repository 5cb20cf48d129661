# $1: prefix of the result files.
ip -o link > $1.link 2>&1
ip -o addr > $1.addr 2>&1
ping -c 1 -W 3 127.0.0.1 > $1.ping 2>&1
echo "rc=$?" >> $1.ping
echo done > $1.done
exec /usr/bin/wren-testkit forever
