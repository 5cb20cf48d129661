set -e
insmod /lib/modules/wren-tests/zsmalloc.ko
insmod /lib/modules/wren-tests/zram.ko
echo 768M > /sys/block/zram0/disksize
mkswap /dev/zram0 > /dev/null
swapon /dev/zram0
