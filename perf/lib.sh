# Helpers shared by the perf/ scripts (sourced, not run). The caller sets `work` (a temp
# dir) first. Every process a script starts is recorded by PID in "$work/pids" with `track`
# (a file, not an array: servers are started inside `$( )` / `< <( )` subshells), and
# stopped by PID on exit.

: > "$work/pids"
track() { echo "$1" >> "$work/pids"; }
cleanup() {
  while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$work/pids"
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { # port, max seconds
  local deadline=$((SECONDS + ${2:-600}))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0; sleep 0.01
  done
  echo "server on $1 did not answer" >&2; exit 1
}
info() { redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v k="$3" '$1 == k { print $2 }'; }
