#!/usr/bin/env bash
# Persistence side by side: ringkv-server and redis-server 7.0 on the same data in the same
# run, one server at a time (so they never share the machine's memory or cores).
#
# For each data size (GB of DEBUG POPULATE values) and each server:
#   populate     DEBUG POPULATE time
#   save_s       foreground SAVE wall time
#   bgsave_s     BGSAVE wall time (command to child reaped)
#   fork_us      latest_fork_usec of that BGSAVE (the pause clients see)
#   load_s       restart to first PONG, loading the file just written
#   cow_MB       rdb_last_cow_size of a BGSAVE made while redis-benchmark -t set -P 16 writes
#   rdb_MB       size of the file
# then AOF throughput: redis-benchmark -t set at -P 16 with appendfsync everysec and always.
#
#   perf/persistence.sh                  # 1 GB and 4 GB (about 10 minutes, needs ~16 GB RAM)
#   SIZES="0.25" perf/persistence.sh     # quick look
#   AOF=no perf/persistence.sh           # skip the AOF part
#   SIZES="" perf/persistence.sh         # only the AOF part
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES="${SIZES-1 4}"
VALUE_SIZE="${VALUE_SIZE:-100}"
AOF="${AOF:-yes}"
AOF_REQUESTS="${AOF_REQUESTS:-1000000}"
THREADS="${THREADS:-$(nproc)}"

for program in redis-server redis-benchmark redis-cli python3; do
  command -v "$program" >/dev/null || { echo "$program missing: apt-get install -y redis-server redis-tools python3" >&2; exit 1; }
done
cargo build --release --quiet
RINGKV=target/release/ringkv-server
REDIS=$(command -v redis-server)
work=$(mktemp -d)
# shellcheck source=perf/lib.sh
. perf/lib.sh
wait_bgsave() { # port: until the child is reaped (bounded)
  local deadline=$((SECONDS + 1200))
  while [ "$(info "$1" persistence rdb_bgsave_in_progress)" != 0 ]; do
    [ $SECONDS -lt $deadline ] || { echo "BGSAVE did not finish" >&2; exit 1; }
    sleep 0.01
  done
}
start() { # name binary dir extra... -> "port pid"
  local port; port=$(free_port)
  "$2" --port "$port" --bind 127.0.0.1 --save "" --dir "$3" --enable-debug-command yes \
    --logfile "$3/$1.log" "${@:4}" >/dev/null 2>&1 &
  track $!; echo "$port $!"
}
stop() { redis-cli -p "$1" shutdown nosave >/dev/null 2>&1 || true; wait "$2" 2>/dev/null || true; }
extra_args() { [ "$1" = ringkv ] && echo "--server-threads $THREADS" || true; }

echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)"
printf '\n%-7s %-7s %9s %9s %9s %9s %9s %9s %9s %9s\n' GB server keys populate save_s bgsave_s fork_us load_s cow_MB rdb_MB
declare -A result
for gb in $SIZES; do
  keys=$(awk -v g="$gb" -v v="$VALUE_SIZE" 'BEGIN { printf "%d", g * 1073741824 / (v + 70) }')
  for name in redis ringkv; do
    binary=$REDIS; [ "$name" = ringkv ] && binary=$RINGKV
    dir="$work/$name-$gb"; mkdir -p "$dir"
    # shellcheck disable=SC2046
    read -r port pid < <(start "$name" "$binary" "$dir" $(extra_args "$name")); wait_ready "$port" 30
    t=$(now); redis-cli -p "$port" debug populate "$keys" key "$VALUE_SIZE" >/dev/null; populate=$(elapsed "$t")
    t=$(now); redis-cli -p "$port" save >/dev/null; save=$(elapsed "$t")
    t=$(now); redis-cli -p "$port" bgsave >/dev/null; wait_bgsave "$port"; bgsave=$(elapsed "$t")
    fork_us=$(info "$port" stats latest_fork_usec)
    rdb_mb=$(( $(stat -c %s "$dir/dump.rdb") / 1048576 ))
    # Copy-on-write under a write load.
    redis-benchmark -p "$port" -t set -P 16 -c 50 -n 100000000 -r "$keys" -d "$VALUE_SIZE" -q >/dev/null 2>&1 &
    bench=$!; track "$bench"
    sleep 2
    redis-cli -p "$port" bgsave >/dev/null; wait_bgsave "$port"
    kill "$bench" 2>/dev/null || true; wait "$bench" 2>/dev/null || true
    cow_mb=$(( $(info "$port" persistence rdb_last_cow_size) / 1048576 ))
    # The file from the loaded-only BGSAVE above was replaced by the one under load; save
    # again without load so both servers load the same amount of data.
    redis-cli -p "$port" flushall >/dev/null
    redis-cli -p "$port" debug populate "$keys" key "$VALUE_SIZE" >/dev/null
    redis-cli -p "$port" save >/dev/null
    stop "$port" "$pid"
    # shellcheck disable=SC2046
    t=$(now); read -r port pid < <(start "$name" "$binary" "$dir" $(extra_args "$name")); wait_ready "$port"; load=$(elapsed "$t")
    loaded=$(redis-cli -p "$port" dbsize)
    [ "$loaded" = "$keys" ] || { echo "$name loaded $loaded keys, expected $keys" >&2; exit 1; }
    stop "$port" "$pid"
    rm -f "$dir/dump.rdb"
    printf '%-7s %-7s %9s %9s %9s %9s %9s %9s %9s %9s\n' "$gb" "$name" "$keys" "$populate" "$save" "$bgsave" "$fork_us" "$load" "$cow_mb" "$rdb_mb"
    result[$gb,$name,save]=$save; result[$gb,$name,bgsave]=$bgsave; result[$gb,$name,load]=$load; result[$gb,$name,fork]=$fork_us
  done
  ratio() { awk -v r="${result[$gb,redis,$1]}" -v k="${result[$gb,ringkv,$1]}" 'BEGIN { printf "%.2f", (k > 0 ? r / k : 0) }'; }
  printf '%-7s %-7s %9s %9s %9s %9s %9s %9s   (redis time / ringkv time; >1 = ringkv faster)\n' "$gb" ratio "" "" "$(ratio save)" "$(ratio bgsave)" "$(ratio fork)" "$(ratio load)"
done

if [ "$AOF" = yes ]; then
  printf '\n%-10s %4s %12s %12s %6s\n' appendfsync P redis/s ringkv/s ratio
  for fsync in everysec always; do
    for pipeline in 16 1; do
      declare -A rps
      for name in redis ringkv; do
        binary=$REDIS; [ "$name" = ringkv ] && binary=$RINGKV
        dir="$work/aof-$name"; rm -rf "$dir"; mkdir -p "$dir"
        # shellcheck disable=SC2046
        read -r port pid < <(start "$name" "$binary" "$dir" --appendonly yes --appendfsync "$fsync" $(extra_args "$name")); wait_ready "$port" 30
        n=$AOF_REQUESTS; [ "$fsync" = always ] && n=$((AOF_REQUESTS / 10))
        rps[$name]=$(redis-benchmark -p "$port" -t set -P "$pipeline" -c 50 -n "$n" -r 100000 -d "$VALUE_SIZE" --csv 2>/dev/null | tail -1 | tr -d '"' | cut -d, -f2)
        stop "$port" "$pid"
      done
      ratio=$(awk -v r="${rps[redis]}" -v k="${rps[ringkv]}" 'BEGIN { printf "%.2f", (r > 0 ? k / r : 0) }')
      printf '%-10s %4s %12.0f %12.0f %6s\n' "$fsync" "$pipeline" "${rps[redis]}" "${rps[ringkv]}" "$ratio"
    done
  done
fi
