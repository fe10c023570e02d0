#!/usr/bin/env bash
# The router benchmark of a gen.py dataset through the REST API (issue #6), and, with
# MODE=cluster, the same against `make cluster`'s multi-process layout (issue #7):
#   1. load: create the collection (HNSW M 16, efC 200 unless INDEX says otherwise), `vecshard
#      import` over HTTP/2 (insert throughput), flush, wait until every index is built;
#   2. search: `vecshard bench-search` with 1, 8 and 64 concurrent clients over HTTP/2 for each
#      value of SWEEP (recall@10 against the exact ground truth, QPS, p50/p99);
#   3. router overhead (standalone only): the same shards searched in-process, no HTTP.
# The loaded data stays in WORK so later runs skip step 1 (LOAD=0 to insist).
# Usage: bench/search_rest.sh [DATASET_DIR]    env: WORK, SWEEP, CLIENTS, QUERIES, SHARDS, MODE
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${1:-/tmp/vecshard-data/gmm-1m-128-l2}
MODE=${MODE:-standalone}
WORK=${WORK:-/tmp/vecshard-bench/$MODE-$(basename "$DATA")}
SWEEP=${SWEEP:-ef=32,64,128}
CLIENTS=${CLIENTS:-1,8,64}
QUERIES=${QUERIES:-2000}
SHARDS=${SHARDS:-4}
INDEX=${INDEX:-'{"type":"hnsw","m":16,"ef_construction":200}'}
COLLECTION=bench
BIN=${BIN:-.build/release/vecshard}
[ -x "$BIN" ] || swift build -c release --product vecshard >/dev/null
[ -f "$DATA/meta.json" ] || { echo "no dataset in $DATA (python3 ../shared/bench/gen.py ...)" >&2; exit 1; }
metric=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metric"])' "$DATA/meta.json")
dim=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dim"])' "$DATA/meta.json")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$WORK"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

if [ "$MODE" = cluster ]; then
  port=${ROUTER_PORT:-8080}
  STATE="$WORK" ROUTER_PORT=$port bash scripts/cluster.sh start
  trap 'STATE="$WORK" bash scripts/cluster.sh stop' EXIT
else
  port=$(free_port)
  "$BIN" serve --host 127.0.0.1 --port "$port" --data-dir "$WORK/data" --shards "$SHARDS" --log-level warning > "$WORK/serve.log" 2>&1 &
  pids+=($!)
fi
url="http://127.0.0.1:$port"
for _ in $(seq 300); do curl -sf "$url/readyz" > /dev/null && break; sleep 0.1; done

state() { curl -s "$url/v1/collections/$COLLECTION" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("count",-1), d.get("index_state","missing"))' 2>/dev/null || echo "-1 missing"; }
read -r count _ <<< "$(state)"
rows=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["n"])' "$DATA/meta.json")
if [ "${LOAD:-1}" = 1 ] && [ "$count" != "$rows" ]; then
  curl -sf -X PUT "$url/v1/collections/$COLLECTION" -d "{\"dimension\":$dim,\"metric\":\"$metric\",\"index\":$INDEX}" > /dev/null || true
  t0=$(date +%s.%N)
  "$BIN" import --restart --url "$url" --collection "$COLLECTION" --batch 1000 --concurrency 4 "$DATA/base.fvecs"
  t1=$(date +%s.%N)
  curl -sf -X POST "$url/admin/collections/$COLLECTION/flush" > /dev/null
  while read -r _ s <<< "$(state)"; [ "$s" != ready ]; do sleep 2; done
  t2=$(date +%s.%N)
  python3 -c 'import sys; n,a,b,c=int(sys.argv[1]),*map(float,sys.argv[2:]); print(f"{{\"bench\":\"load\",\"rows\":{n},\"import_s\":{b-a:.1f},\"insert_rows_per_s\":{n/(b-a):.0f},\"flush_and_index_s\":{c-b:.1f}}}")' "$rows" "$t0" "$t1" "$t2"
fi
echo "{\"bench\":\"collection\",\"state\":$(curl -s "$url/v1/collections/$COLLECTION")}"

"$BIN" bench-search --url "$url" --collection "$COLLECTION" --data "$DATA" --clients "$CLIENTS" --sweep "$SWEEP" --queries "$QUERIES" ${OVERSAMPLE:+--oversample $OVERSAMPLE}

if [ "$MODE" = standalone ] && [ "${IN_PROCESS:-1}" = 1 ]; then
  cleanup; pids=()
  "$BIN" bench-search --in-process "$WORK/data" --shards "$SHARDS" --collection "$COLLECTION" --data "$DATA" --clients "$CLIENTS" --sweep "$SWEEP" --queries "$QUERIES" ${OVERSAMPLE:+--oversample $OVERSAMPLE}
fi
