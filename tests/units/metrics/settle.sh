# Waits (60 s at most) until every unit of this scenario rests where
# SETTLED in tests/tests/boot/metrics.rs says (the top test checks the two
# lists agree); prints @@D1@@ when they do, @@D0@@ when they never did.
# A file, so the test types one short line: a loaded TCG guest can drop
# characters typed into its serial console.
want="sh:running hog:running idle:running once:exited crashy:failed oomy:failed"
for i in $(seq 60); do
    s=$(initctl status | awk 'NR>1 {printf "%s:%s ", $1, $2}')
    ok=1
    for w in $want; do
        case " $s" in *" $w "*) ;; *) ok=0 ;; esac
    done
    [ $ok = 1 ] && break
    sleep 1
done
echo "@@D${ok}@@"
