echo "ticker: hello"
i=0
while :; do
    echo "tick $i"
    i=$((i + 1))
    sleep 1
done
