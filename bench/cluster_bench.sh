#!/usr/bin/env bash
# Distributed-mode benchmarks (issue #7), side by side with standalone mode in the same run.
#   hop     The cost of the network hop: the same four shards (copies of a standalone data
#           directory loaded by bench/search_rest.sh, so the same points and the same HNSW graphs)
#           searched through standalone mode and through a router over 4 shard processes x 2
#           replicas, interleaved, ROUNDS rounds, 1/8/64 clients; and through a router that does
#           not coalesce concurrent searches to a shard (--max-searches-in-flight 0).
#   slow    p99 with one replica (s0's first) answering every search 50 ms late, through a router
#           with hedged reads and through one without (--no-hedging).
#   fanout  How the router's fan-out and merge cost grows with the number of shard processes
#           (4, 16, 64; FLAT over a small dataset): latency and router CPU per query.
# Usage: bench/cluster_bench.sh [hop|slow|fanout|all]
#   env: DATA (1M dataset), SMALL (small dataset), SRC (loaded standalone dir), EF, CLIENTS, QUERIES, ROUNDS
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
DATA=${DATA:-/tmp/vecshard-data/gmm-1m-128-l2}
SMALL=${SMALL:-/tmp/vecshard-data/small-20k-32}
SRC=${SRC:-/tmp/vecshard-bench/standalone-$(basename "$DATA")/data}
WORK=${WORK:-/tmp/vecshard-bench/cluster}
EF=${EF:-64}
CLIENTS=${CLIENTS:-1,8,64}
QUERIES=${QUERIES:-2000}
ROUNDS=${ROUNDS:-2}
BIN=${BIN:-.build/release/vecshard}
[ -x "$BIN" ] || swift build -c release --product vecshard >/dev/null
mkdir -p "$WORK"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 600); do curl -sf --http2-prior-knowledge "http://127.0.0.1:$1/readyz" > /dev/null && return 0; sleep 0.1; done; echo "port $1 not ready" >&2; exit 1; }
label() { sed -u "s/^{/{\"setup\":\"$1\",/"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# shard NAME PORT DIR [flags...]: a shard process in the background; prints its pid.
shard() {
  local name=$1 port=$2 dir=$3; shift 3
  "$BIN" serve --role shard --shard-id "$name" --host 127.0.0.1 --port "$port" --data-dir "$dir" --log-level warning "$@" \
    > "$dir.log" 2>&1 &
  echo $!
}

hop_and_slow() {
  [ -d "$SRC/shards/s0" ] || { echo "no loaded standalone data in $SRC (run bench/search_rest.sh first)" >&2; exit 1; }
  declare -A port
  for i in 0 1 2 3; do
    for r in 0 1; do
      dir="$WORK/s$i-$r"
      [ -d "$dir" ] || cp -r "$SRC/shards/s$i" "$dir"
      port[s$i-$r]=$(free_port)
    done
  done
  topology="$WORK/topology.yaml"
  {
    echo "version: 1"; echo "groups:"; echo "  - name: default"; echo "    shards:"
    for i in 0 1 2 3; do echo "      - {name: s$i, replicas: [\"127.0.0.1:${port[s$i-0]}\", \"127.0.0.1:${port[s$i-1]}\"]}"; done
  } > "$topology"
  declare -A spid
  for i in 0 1 2 3; do for r in 0 1; do spid[s$i-$r]=$(shard "s$i" "${port[s$i-$r]}" "$WORK/s$i-$r"); pids+=("${spid[s$i-$r]}"); done; done
  sa_port=$(free_port); ra_port=$(free_port); rb_port=$(free_port); rc_port=$(free_port)
  "$BIN" serve --host 127.0.0.1 --port "$sa_port" --data-dir "$SRC" --shards 4 --log-level warning > "$WORK/standalone.log" 2>&1 &
  pids+=($!)
  "$BIN" serve --role router --topology "$topology" --host 127.0.0.1 --port "$ra_port" --data-dir "$WORK/router-a" --log-level warning > "$WORK/router-a.log" 2>&1 &
  pids+=($!)
  "$BIN" serve --role router --topology "$topology" --host 127.0.0.1 --port "$rb_port" --data-dir "$WORK/router-b" --no-hedging --log-level warning > "$WORK/router-b.log" 2>&1 &
  pids+=($!)
  "$BIN" serve --role router --topology "$topology" --host 127.0.0.1 --port "$rc_port" --data-dir "$WORK/router-c" --max-searches-in-flight 0 --log-level warning > "$WORK/router-c.log" 2>&1 &
  pids+=($!)
  for p in "${port[@]}" "$sa_port" "$ra_port" "$rb_port" "$rc_port"; do wait_ready "$p"; done
  search() { "$BIN" bench-search --url "http://127.0.0.1:$1" --collection bench --data "$DATA" --clients "$CLIENTS" --sweep "ef=$EF" --queries "$QUERIES"; }

  if [ "$WHAT" = hop ] || [ "$WHAT" = all ]; then
    for round in $(seq "$ROUNDS"); do
      search "$sa_port" | label "standalone"
      search "$ra_port" | label "router+4x2 shard processes"
      search "$rc_port" | label "router+4x2 shard processes, no coalescing"
    done
  fi
  if [ "$WHAT" = slow ] || [ "$WHAT" = all ]; then
    kill "${spid[s0-0]}"; wait "${spid[s0-0]}" 2>/dev/null || true
    pids+=("$(shard s0 "${port[s0-0]}" "$WORK/s0-0" --inject-search-delay-ms 50)")
    wait_ready "${port[s0-0]}"
    sleep 2  # the routers' health checks see it back
    for round in $(seq "$ROUNDS"); do
      search "$ra_port" | label "s0 replica 0 slowed 50 ms, hedging on"
      search "$rb_port" | label "s0 replica 0 slowed 50 ms, hedging off"
    done
  fi
  cleanup
}

fanout() {
  local dim rows
  dim=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dim"])' "$SMALL/meta.json")
  metric=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metric"])' "$SMALL/meta.json")
  for n in 4 16 64; do
    dir="$WORK/fanout-$n"; rm -rf "$dir"; mkdir -p "$dir"
    topology="$dir/topology.yaml"
    { echo "version: 1"; echo "groups:"; echo "  - name: default"; echo "    shards:"; } > "$topology"
    ports=()
    for i in $(seq 0 $((n - 1))); do
      p=$(free_port); ports+=("$p")
      echo "      - {name: f$i, replicas: [\"127.0.0.1:$p\"]}" >> "$topology"
      pids+=("$(shard "f$i" "$p" "$dir/f$i" --event-loop-threads 1)")
    done
    rport=$(free_port)
    "$BIN" serve --role router --topology "$topology" --host 127.0.0.1 --port "$rport" --data-dir "$dir/router" --log-level warning > "$dir/router.log" 2>&1 &
    rpid=$!; pids+=("$rpid")
    for p in "${ports[@]}" "$rport"; do wait_ready "$p"; done
    url="http://127.0.0.1:$rport"
    curl -sf -X PUT "$url/v1/collections/bench" -d "{\"dimension\":$dim,\"metric\":\"$metric\",\"index\":{\"type\":\"flat\"}}" > /dev/null
    "$BIN" import --url "$url" --collection bench --batch 1000 "$SMALL/base.fvecs" 2> /dev/null
    for c in ${CLIENTS//,/ }; do
      before=$(cpu_ticks "$rpid")
      out=$("$BIN" bench-search --url "$url" --collection bench --data "$SMALL" --clients "$c" --sweep ef=16 --queries "$QUERIES")
      after=$(cpu_ticks "$rpid")
      # Router CPU per query: clock ticks (1/100 s) over the warm-up (200 queries) and the measured pass.
      cpu_us=$(python3 -c "import sys; print(round((int(sys.argv[2]) - int(sys.argv[1])) * 10000 / (int(sys.argv[3]) + min(200, int(sys.argv[3]))), 1))" "$before" "$after" "$QUERIES")
      echo "$out" | label "fan-out to $n shard processes" | sed "s/}\$/,\"router_cpu_us_per_query\":$cpu_us}/"
    done
    cleanup
  done
}

case "$WHAT" in
  hop|slow) hop_and_slow ;;
  fanout) fanout ;;
  all) hop_and_slow; fanout ;;
  *) echo "usage: $0 [hop|slow|fanout|all]" >&2; exit 2 ;;
esac
