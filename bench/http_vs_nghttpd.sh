#!/usr/bin/env bash
# HTTP/2 benchmark of the foundation, side by side with its anchors in the same run:
#   1. h2load against GET /healthz on vecshard and on nghttpd serving a body of the same size,
#      interleaved (A B A B ...), ROUNDS rounds each: req/s medians and the ratio.
#   2. The project's own client (vecshard bench-http-client: one connection, 100 concurrent
#      requests) against h2load with the same shape (-c 1 -m 100) on the same vecshard server.
# Servers are pinned to core 0 and load generators to core 1 when the machine has two cores, so
# the figures measure the server, not the scheduler. Prints JSON lines, then a summary.
# BIN=path runs another vecshard binary (e.g. a saved build, to compare before/after);
# SKIP_BUILD=1 skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-200000}
BIN=${BIN:-.build/release/vecshard}
[[ -n "${SKIP_BUILD:-}" ]] || swift build -c release --product vecshard >/dev/null

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

pin_server="" pin_client=""
if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then pin_server="taskset -c 0"; pin_client="taskset -c 1"; fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do curl -s --http2-prior-knowledge -o /dev/null "http://127.0.0.1:$1/healthz" && return 0; sleep 0.1; done; echo "server on $1 did not start" >&2; exit 1; }

vs_port=$(free_port)
$pin_server "$BIN" serve --host 127.0.0.1 --port "$vs_port" --data-dir "$work/data" --event-loop-threads 1 --log-level warning &
pids+=($!)
mkdir -p "$work/docroot"
printf '%s' '{"status":"ok"}' > "$work/docroot/healthz"
ng_port=$(free_port)
$pin_server nghttpd --no-tls -d "$work/docroot" "$ng_port" >/dev/null 2>&1 &
pids+=($!)
wait_port "$vs_port"; wait_port "$ng_port"

body_vs=$(curl -s --http2-prior-knowledge "http://127.0.0.1:$vs_port/healthz" | wc -c)
body_ng=$(curl -s --http2-prior-knowledge "http://127.0.0.1:$ng_port/healthz" | wc -c)
[[ "$body_vs" == "$body_ng" ]] || { echo "body sizes differ: $body_vs vs $body_ng" >&2; exit 1; }

h2load_rps() { # url, clients, streams per client
  $pin_client h2load -n "$REQUESTS" -c "$2" -m "$3" "$1" 2>/dev/null | awk '/^finished in/ {gsub(",", "", $4); print int($4)}'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }

: > "$work/vs" ; : > "$work/ng" ; : > "$work/own" ; : > "$work/h2c1"
for round in $(seq "$ROUNDS"); do
  for target in vs ng; do
    port=$vs_port; [[ $target == ng ]] && port=$ng_port
    rps=$(h2load_rps "http://127.0.0.1:$port/healthz" 10 10)
    echo "{\"bench\":\"h2load -c 10 -m 10\",\"server\":\"$([[ $target == vs ]] && echo vecshard || echo nghttpd)\",\"round\":$round,\"rps\":$rps}"
    echo "$rps" >> "$work/$target"
  done
  own=$($pin_client "$BIN" bench-http-client --peer "127.0.0.1:$vs_port" --path /healthz --concurrency 100 --requests "$REQUESTS" --threads 1)
  echo "$own"
  echo "$own" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rps"])' >> "$work/own"
  rps=$(h2load_rps "http://127.0.0.1:$vs_port/healthz" 1 100)
  echo "{\"bench\":\"h2load -c 1 -m 100\",\"server\":\"vecshard\",\"round\":$round,\"rps\":$rps}"
  echo "$rps" >> "$work/h2c1"
done

vs=$(median < "$work/vs"); ng=$(median < "$work/ng"); own=$(median < "$work/own"); h2c1=$(median < "$work/h2c1")
python3 - "$vs" "$ng" "$own" "$h2c1" <<'PY'
import json, sys
vs, ng, own, h2 = map(int, sys.argv[1:])
print(json.dumps({"summary": "server", "vecshard_rps_median": vs, "nghttpd_rps_median": ng,
                  "ratio": round(vs / ng, 3), "goal": ">= 1.0"}))
print(json.dumps({"summary": "client", "own_client_rps_median": own, "h2load_rps_median": h2,
                  "ratio": round(own / h2, 3), "goal": ">= 0.5"}))
PY
