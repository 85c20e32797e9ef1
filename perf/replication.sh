#!/usr/bin/env bash
# Replication side by side: ringkv→ringkv beside redis→redis 7.0 in the same run, one
# master/replica pair at a time (so the pairs never share the machine's memory or cores).
#
# 1. Full sync: wall time from REPLICAOF to a synced replica (master_link_status:up and the
#    replica's offset at least the master's, read just before) for each data size (GB of
#    DEBUG POPULATE values), disk-based and diskless (both servers: repl-diskless-sync no / yes
#    with delay 0, set by CONFIG SET on the master), without and with a `redis-benchmark -t set -P 16 -r <keys>` load on the master. Under load
#    the run lasts LOAD_WINDOW seconds from REPLICAOF and counts the master's sync_full in that
#    window: more than 1 is a resync loop (the replica output buffer limit, 256mb 64mb 60 by
#    default, is hit during the transfer and the replica starts over).
# 2. Master throughput: redis-benchmark -t set,get at -P 16 and -P 1 with 0, 1, 2 replicas,
#    and with 2 "sink" replicas: `PSYNC ? -1` from a shell, everything read and thrown away
#    by `cat`. Real replicas on this machine compete with the master for its cores (they
#    apply every write); sinks cost almost nothing, so that row is the master's own cost of
#    feeding two replicas, as it would be with replicas on other hosts. A second table gives
#    the master's own CPU time per request (user+system from /proc/<pid>/stat), which the
#    replicas' competition for the cores does not inflate the way it cuts throughput.
# 3. Partial resync: CLIENT KILL TYPE replica on the master, CATCHUP_WRITES writes at once,
#    time from the kill until the replica's offset equals the master's; sync_partial_ok must
#    grow and sync_full must not.
# Ratios: redis time / ringkv time for times, ringkv/redis for throughput (>1 = ringkv better).
#
#   perf/replication.sh                         # 1 GB and 4 GB (long; needs ~20 GB RAM)
#   SIZES="0.25" LOAD_WINDOW=30 perf/replication.sh   # quick look
#   SIZES="" perf/replication.sh                # only throughput and partial resync
#   RINGKV=/path/to/ringkv-server perf/replication.sh # use that binary, no cargo build
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES="${SIZES-1 4}"
VALUE_SIZE="${VALUE_SIZE:-100}"
THREADS="${THREADS:-$(nproc)}"
LOAD_WINDOW="${LOAD_WINDOW:-60}"       # seconds of write load per full sync under load
SYNC_TIMEOUT="${SYNC_TIMEOUT:-900}"    # max seconds for a full sync without load
REQUESTS="${REQUESTS:-300000}"         # per throughput test
CATCHUP_WRITES="${CATCHUP_WRITES:-10000}"

for program in redis-server redis-benchmark redis-cli python3; do
  command -v "$program" >/dev/null || { echo "$program missing: apt-get install -y redis-server redis-tools python3" >&2; exit 1; }
done
if [ -z "${RINGKV:-}" ]; then cargo build --release --quiet; RINGKV=target/release/ringkv-server; fi
REDIS=$(command -v redis-server)
work=$(mktemp -d)
# shellcheck source=perf/lib.sh
. perf/lib.sh
start() { # name binary dir extra... -> "port pid"
  local port; port=$(free_port)
  mkdir -p "$3"
  "$2" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$3" --enable-debug-command yes \
    --logfile "$3/$1.log" "${@:4}" >/dev/null 2>&1 &
  track $!; echo "$port $!"
}
stop() { # name pid: SIGTERM, wait (bounded) for it to be gone, then SIGKILL
  kill "$2" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$2" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$2" 2>/dev/null || true
}
binary_of() { if [ "$1" = ringkv ]; then echo "$RINGKV"; else echo "$REDIS"; fi; }
extra_args() { if [ "$1" = ringkv ]; then echo "--server-threads $THREADS"; fi; }
start_server() { # name role-dir -> "port pid", ready
  local port pid
  # shellcheck disable=SC2046
  read -r port pid < <(start "$1" "$(binary_of "$1")" "$work/$1-$2" $(extra_args "$1"))
  wait_ready "$port" 30; echo "$port $pid"
}
replicaof() { # replica-port master-port: fails loudly if the server refuses (an old binary)
  local reply; reply=$(redis-cli -p "$1" replicaof 127.0.0.1 "$2" 2>&1)
  case "$reply" in OK*) ;; *) echo "REPLICAOF on $1 failed: $reply" >&2; exit 1 ;; esac
}
# synced MASTER REPLICA: link up and the replica has at least what the master had just before.
synced() {
  local m r
  [ "$(info "$2" replication master_link_status)" = up ] || return 1
  m=$(info "$1" replication master_repl_offset); r=$(info "$2" replication master_repl_offset)
  [ -n "$m" ] && [ -n "$r" ] && [ "$r" -ge "$m" ]
}
wait_synced() { # master replica max-seconds -> seconds waited printed, or "-" on timeout
  local t deadline=$((SECONDS + $3)); t=$(now)
  while [ $SECONDS -lt $deadline ]; do
    synced "$1" "$2" && { elapsed "$t"; return 0; }; sleep 0.02
  done
  echo -
}
ratio_time() { awk -v r="$1" -v k="$2" 'BEGIN { if (r == "-" || k == "-" || k <= 0) print "-"; else printf "%.2f", r / k }'; }
ratio_rate() { awk -v r="$1" -v k="$2" 'BEGIN { printf "%.2f", (r > 0 ? k / r : 0) }'; }

declare -A result
# --- 1. Full sync -------------------------------------------------------------------------
if [ -n "$SIZES" ]; then
  echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)"
  echo "Both servers run disk (repl-diskless-sync no) and diskless (yes, delay 0) full syncs."
  echo "sync_s '-' = not synced within the window/timeout."
  echo "Under load the window is ${LOAD_WINDOW}s; sync_full > 1 in it means a resync loop."
  printf '\n%-6s %-6s %-8s %-4s %9s %9s %9s %10s\n' GB server mode load keys sync_s sync_full keys_end
  for gb in $SIZES; do
    keys=$(awk -v g="$gb" -v v="$VALUE_SIZE" 'BEGIN { printf "%d", g * 1073741824 / (v + 70) }')
    for name in redis ringkv; do
      read -r mport mpid < <(start_server "$name" "master-$gb")
      for mode in disk diskless; do
        if [ "$mode" = disk ]; then redis-cli -p "$mport" config set repl-diskless-sync no >/dev/null
        else redis-cli -p "$mport" config set repl-diskless-sync yes repl-diskless-sync-delay 0 >/dev/null; fi
        for load in no yes; do
          # A fresh dataset each time: the load adds keys (its names differ from POPULATE's).
          redis-cli -p "$mport" flushall >/dev/null
          redis-cli -p "$mport" debug populate "$keys" key "$VALUE_SIZE" >/dev/null
          full0=$(info "$mport" stats sync_full)
          read -r rport rpid < <(start_server "$name" "replica-$gb-$mode-$load")
          bench=
          if [ "$load" = yes ]; then
            redis-benchmark -p "$mport" -t set -P 16 -c 50 -n 2000000000 -r "$keys" -d "$VALUE_SIZE" -q >/dev/null 2>&1 &
            bench=$!; track "$bench"; sleep 1
          fi
          t=$(now); window_end=$((SECONDS + LOAD_WINDOW))
          replicaof "$rport" "$mport"
          if [ "$load" = yes ]; then
            sync_s=$(wait_synced "$mport" "$rport" "$LOAD_WINDOW")
            [ "$sync_s" = - ] || sync_s=$(awk -v s="$sync_s" 'BEGIN { printf "%.2f", s }')
            while [ $SECONDS -lt "$window_end" ]; do sleep 0.5; done # the whole window, bounded
            kill "$bench" 2>/dev/null || true; wait "$bench" 2>/dev/null || true
          else
            sync_s=$(wait_synced "$mport" "$rport" "$SYNC_TIMEOUT")
          fi
          full=$(( $(info "$mport" stats sync_full) - full0 ))
          keys_end=$(redis-cli -p "$mport" dbsize)
          stop "$rport" "$rpid"; rm -rf "$work/$name-replica-$gb-$mode-$load" || true
          printf '%-6s %-6s %-8s %-4s %9s %9s %9s %10s\n' "$gb" "$name" "$mode" "$load" "$keys" "$sync_s" "$full" "$keys_end"
          result[$gb,$name,$mode,$load]=$sync_s; result[$gb,$name,$mode,$load,full]=$full
        done
      done
      stop "$mport" "$mpid"; rm -rf "$work/$name-master-$gb" || true
    done
    for mode in disk diskless; do
      for load in no yes; do
        printf '%-6s %-6s %-8s %-4s %9s %9s %9s   (redis time / ringkv time; sync_full redis/ringkv)\n' "$gb" ratio "$mode" "$load" "" \
          "$(ratio_time "${result[$gb,redis,$mode,$load]}" "${result[$gb,ringkv,$mode,$load]}")" \
          "${result[$gb,redis,$mode,$load,full]}/${result[$gb,ringkv,$mode,$load,full]}"
      done
    done
    for load in no yes; do
      printf '%-6s %-6s %-8s %-4s %9s %9s %9s   (ringkv disk time / ringkv diskless time)\n' "$gb" ringkv disk/dl "$load" "" \
        "$(ratio_time "${result[$gb,ringkv,disk,$load]}" "${result[$gb,ringkv,diskless,$load]}")" ""
    done
  done
fi

# --- 2. Master throughput with 0, 1, 2 replicas ----------------------------------------------
declare -A rps cpu
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # pid -> user+system clock ticks
throughput() { # name port label pid: SET and GET at -P 16 and -P 1 into rps[name,label,P,test],
  # and the master's own CPU per request (user+system, all its threads) into cpu[...]: what a
  # replica costs the master itself, apart from the CPU the replicas take on this machine
  local pipeline n t before value
  for pipeline in 16 1; do
    n=$REQUESTS; [ "$pipeline" = 1 ] && n=$((REQUESTS / 3))
    for t in set get; do
      before=$(cpu_ticks "$4")
      value=$(redis-benchmark -p "$2" -t "$t" -P "$pipeline" -c 50 -n "$n" -r 100000 -d "$VALUE_SIZE" --csv 2>/dev/null |
        tail -n +2 | tr -d '"' | cut -d, -f2)
      rps[$1,$3,$pipeline,${t^^}]=$value
      cpu[$1,$3,$pipeline,${t^^}]=$(awk -v d="$(( $(cpu_ticks "$4") - before ))" -v hz="$(getconf CLK_TCK)" -v n="$n" \
        'BEGIN { printf "%.2f", d * 1e6 / hz / n }')
    done
  done
}
sink() { # master-port -> pid: a replica that reads and discards everything (see the header)
  ( exec 3<>"/dev/tcp/127.0.0.1/$1"; printf 'PSYNC ? -1\r\n' >&3; exec cat <&3 >/dev/null ) &
  track $!; echo $!
}
for name in redis ringkv; do
  read -r mport mpid < <(start_server "$name" tp-master)
  replicas=()
  for count in 0 1 2; do
    if [ "$count" -gt 0 ]; then
      read -r rport rpid < <(start_server "$name" "tp-replica-$count")
      replicas+=("$rpid")
      replicaof "$rport" "$mport"
      [ "$(wait_synced "$mport" "$rport" 60)" != - ] || { echo "$name replica $count did not sync" >&2; exit 1; }
    fi
    throughput "$name" "$mport" "$count" "$mpid"
  done
  for pid in "${replicas[@]}"; do stop "" "$pid"; done
  # Disk-based: a diskless sync waits for the replica's first ACK, which a sink never sends.
  redis-cli -p "$mport" config set repl-diskless-sync no >/dev/null
  sinks=()
  for _ in 1 2; do sinks+=("$(sink "$mport")"); done
  deadline=$((SECONDS + 120))
  until [ "$(redis-cli -p "$mport" info replication | grep -c 'state=online')" -ge 2 ]; do
    [ $SECONDS -lt $deadline ] || { echo "$name: the sink replicas did not come online" >&2; exit 1; }
    sleep 0.2
  done
  throughput "$name" "$mport" 2s "$mpid"
  for pid in "${sinks[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop "$mport" "$mpid"
done
printf '\n%-4s %3s %8s %11s %11s %7s %9s %9s\n' test P replicas redis/s ringkv/s k/r redis/0 ringkv/0
for test in SET GET; do
  for pipeline in 16 1; do
    for count in 0 1 2 2s; do
      r=${rps[redis,$count,$pipeline,$test]:-0}; k=${rps[ringkv,$count,$pipeline,$test]:-0}
      printf '%-4s %3s %8s %11.0f %11.0f %7s %9s %9s\n' "$test" "$pipeline" "$count" "$r" "$k" "$(ratio_rate "$r" "$k")" \
        "$(ratio_rate "${rps[redis,0,$pipeline,$test]:-0}" "$r")" "$(ratio_rate "${rps[ringkv,0,$pipeline,$test]:-0}" "$k")"
    done
  done
done
echo
echo "Master CPU per request (user+system of the master process, microseconds; x/0 = against 0 replicas)"
printf '%-4s %3s %8s %9s %9s %8s %8s\n' test P replicas redis_us ringkv_us redis/0 ringkv/0
for test in SET GET; do
  for pipeline in 16 1; do
    for count in 0 1 2 2s; do
      r=${cpu[redis,$count,$pipeline,$test]:-0}; k=${cpu[ringkv,$count,$pipeline,$test]:-0}
      printf '%-4s %3s %8s %9s %9s %8s %8s\n' "$test" "$pipeline" "$count" "$r" "$k" \
        "$(ratio_rate "${cpu[redis,0,$pipeline,$test]:-0}" "$r")" "$(ratio_rate "${cpu[ringkv,0,$pipeline,$test]:-0}" "$k")"
    done
  done
done

# --- 3. Partial resync catch-up ---------------------------------------------------------------
printf '\n%-7s %8s %10s %12s %14s\n' server writes catchup_s partial_ok+ full_sync+
declare -A catchup
for name in redis ringkv; do
  read -r mport mpid < <(start_server "$name" ps-master)
  read -r rport rpid < <(start_server "$name" ps-replica)
  redis-cli -p "$mport" debug populate 100000 key "$VALUE_SIZE" >/dev/null
  replicaof "$rport" "$mport"
  [ "$(wait_synced "$mport" "$rport" 60)" != - ] || { echo "$name replica did not sync" >&2; exit 1; }
  partial0=$(info "$mport" stats sync_partial_ok); full0=$(info "$mport" stats sync_full)
  t=$(now)
  redis-cli -p "$mport" client kill type replica >/dev/null
  redis-benchmark -p "$mport" -t set -P 16 -c 1 -n "$CATCHUP_WRITES" -r 100000 -d "$VALUE_SIZE" -q >/dev/null 2>&1
  m=$(info "$mport" replication master_repl_offset)
  deadline=$((SECONDS + 60)); catchup[$name]=-
  while [ $SECONDS -lt $deadline ]; do
    if [ "$(info "$rport" replication master_link_status)" = up ] &&
       [ "$(info "$rport" replication master_repl_offset)" -ge "$m" ]; then catchup[$name]=$(elapsed "$t"); break; fi
    sleep 0.01
  done
  partial=$(( $(info "$mport" stats sync_partial_ok) - partial0 )); full=$(( $(info "$mport" stats sync_full) - full0 ))
  printf '%-7s %8s %10s %12s %14s\n' "$name" "$CATCHUP_WRITES" "${catchup[$name]}" "$partial" "$full"
  [ "$partial" -ge 1 ] || echo "  $name: sync_partial_ok did not grow (the replica did a full sync?)"
  stop "$rport" "$rpid"; stop "$mport" "$mpid"
done
printf '%-7s %8s %10s   (redis time / ringkv time)\n' ratio "" "$(ratio_time "${catchup[redis]}" "${catchup[ringkv]}")"
