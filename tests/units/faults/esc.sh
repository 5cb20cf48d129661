printf 'before\033[2J\033[Hafter\033]0;pwned\007\302\2332Jcr\rend\n'
exec /usr/bin/wren-testkit forever
