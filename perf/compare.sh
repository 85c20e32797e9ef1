#!/usr/bin/env bash
# Side-by-side throughput and latency: ringkv-server and redis-server 7.0 in the same run,
# redis-benchmark's default tests at -c 50 with -P 1 and -P 16, then memory per key for 1M
# small string keys. Prints one table: requests/s of each, the ratio, p50/p99 latency.
#
#   perf/compare.sh                 # full run (a few minutes)
#   REQUESTS=100000 perf/compare.sh # quicker
#   THREADS="1 2" perf/compare.sh   # ringkv with 1 and with 2 event loops
#   PIN=yes THREADS=1 perf/compare.sh # servers on CPU 0, redis-benchmark on CPU 1: the
#                                     # steadiest one-loop comparison on a 2-core machine
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS="${REQUESTS:-300000}"
CLIENTS="${CLIENTS:-50}"
TESTS="${TESTS:-PING_INLINE,PING_MBULK,SET,GET,INCR,LPUSH,RPUSH,LPOP,RPOP,SADD,HSET,SPOP,ZADD,ZPOPMIN,LRANGE_100,LRANGE_300,LRANGE_600,MSET}"
THREADS="${THREADS:-$(nproc)}"
PIPELINES="${PIPELINES:-1 16}"
KEYS_FOR_MEMORY="${KEYS_FOR_MEMORY:-1000000}"
PIN="${PIN:-no}"
SERVER_CPU=(); CLIENT_CPU=()
if [ "$PIN" = yes ]; then SERVER_CPU=(taskset -c 0); CLIENT_CPU=(taskset -c 1); fi

for program in redis-server redis-benchmark redis-cli; do
  command -v "$program" >/dev/null || { echo "$program missing: apt-get install -y redis-server redis-tools" >&2; exit 1; }
done
cargo build --release --quiet
RINGKV=target/release/ringkv-server
work=$(mktemp -d)
# shellcheck source=perf/lib.sh
. perf/lib.sh
start() { # name binary extra-args...
  local port; port=$(free_port)
  "${SERVER_CPU[@]}" "$2" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" "${@:3}" >"$work/$1.log" 2>&1 &
  track $!; wait_ready "$port" 10; echo "$port $!"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# bench PORT PIPELINE -> CSV lines "test",rps,avg,min,p50,p95,p99,max
bench() { "${CLIENT_CPU[@]}" redis-benchmark -p "$1" -c "$CLIENTS" -n "$REQUESTS" -P "$2" -t "$TESTS" --csv 2>/dev/null | tail -n +2 | tr -d '"'; }

printf '\n%-12s %3s %4s %12s %12s %6s %9s %9s %9s %9s\n' test P loops redis/s ringkv/s ratio r.p50ms k.p50ms r.p99ms k.p99ms
for threads in $THREADS; do
  for pipeline in $PIPELINES; do
    read -r rport rpid < <(start redis "$(command -v redis-server)")
    bench "$rport" "$pipeline" > "$work/redis.csv"; stop "$rpid"
    read -r kport kpid < <(start ringkv "$RINGKV" --server-threads "$threads")
    bench "$kport" "$pipeline" > "$work/ringkv.csv"; stop "$kpid"
    join -t, <(sort "$work/redis.csv") <(sort "$work/ringkv.csv") | while IFS=, read -r name r_rps _ _ r_p50 _ r_p99 _ k_rps _ _ k_p50 _ k_p99 _; do
      ratio=$(awk -v a="$k_rps" -v b="$r_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
      printf '%-12s %3s %4s %12.0f %12.0f %6s %9s %9s %9s %9s\n' "$name" "$pipeline" "$threads" "$r_rps" "$k_rps" "$ratio" "$r_p50" "$k_p50" "$r_p99" "$k_p99"
    done
  done
done

# Memory per key: 1M small string keys via DEBUG POPULATE, used_memory and RSS deltas,
# read two seconds after the fill for both servers.
echo
printf '%-8s %14s %14s %12s %12s\n' server used_memory rss bytes/key rss/key
for which in redis ringkv; do
  if [ "$which" = redis ]; then read -r port pid < <(start redis "$(command -v redis-server)" --enable-debug-command yes)
  else read -r port pid < <(start ringkv "$RINGKV" --enable-debug-command yes); fi
  used0=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ {print $2+0}')
  rss0=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory_rss:/ {print $2+0}')
  redis-cli -p "$port" debug populate "$KEYS_FOR_MEMORY" key 10 >/dev/null
  sleep 2 # steady state: ringkv returns freed pages to the OS once a second
  used1=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ {print $2+0}')
  rss1=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory_rss:/ {print $2+0}')
  awk -v w="$which" -v u0="$used0" -v u1="$used1" -v r0="$rss0" -v r1="$rss1" -v n="$KEYS_FOR_MEMORY" \
    'BEGIN { printf "%-8s %14d %14d %12.1f %12.1f\n", w, u1, r1, (u1-u0)/n, (r1-r0)/n }'
  stop "$pid"
done
