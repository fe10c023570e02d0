#!/usr/bin/env bash
# Starts or stops the local cluster of cluster/topology.yaml: one `vecshard serve --role shard`
# process per replica address, and a router on ROUTER_PORT. State (data, logs, pids) lives under
# .cluster/. Usage: scripts/cluster.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/.."
TOPOLOGY=${TOPOLOGY:-cluster/topology.yaml}
ROUTER_PORT=${ROUTER_PORT:-8080}
STATE=${STATE:-.cluster}
BIN=.build/release/vecshard

replicas() { # shard-name address, one line per replica
  python3 - "$TOPOLOGY" <<'PY'
import re, sys
shard = None
for line in open(sys.argv[1]):
    m = re.search(r"name:\s*([\w.-]+),\s*replicas:\s*\[(.*?)\]", line)
    if m:
        for i, address in enumerate(a.strip().strip('"') for a in m.group(2).split(",")):
            print(f"{m.group(1)}-{i} {address} {len(m.group(2).split(','))}")
PY
}

# all_answer PATH TRIES: every replica answers GET /PATH with 2xx, polling every 0.1 s.
all_answer() {
  for _ in $(seq "$2"); do
    local ok=1
    while read -r _ address _; do curl -sf --http2-prior-knowledge "http://$address/$1" > /dev/null || ok=0; done < <(replicas)
    [ $ok = 1 ] && return 0
    sleep 0.1
  done
  return 1
}

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

start() {
  [ -x "$BIN" ] || swift build -c release --product vecshard
  "$BIN" topology validate "$TOPOLOGY"
  mkdir -p "$STATE"
  while read -r pod address replicas; do
    running "$pod" && continue   # start only what is not running (a killed replica comes back)
    port=${address##*:}
    # A shard with several replicas: each starts taking writes but no reads until the router has
    # synchronised it from a peer (replica repair); `--await-sync`.
    sync=""; [ "$replicas" -gt 1 ] && sync="--await-sync"
    "$BIN" serve --role shard --shard-id-from-pod-name "$pod" --host 127.0.0.1 --port "$port" $sync \
      --data-dir "$STATE/$pod" --log-level warning ${SHARD_ARGS:-} > "$STATE/$pod.log" 2>&1 &
    echo $! > "$STATE/$pod.pid"
  done < <(replicas)
  all_answer healthz 100 || true
  if ! running router; then
    "$BIN" serve --role router --topology "$TOPOLOGY" --host 127.0.0.1 --port "$ROUTER_PORT" --data-dir "$STATE/router" \
      --log-level warning > "$STATE/router.log" 2>&1 &
    echo $! > "$STATE/router.pid"
  fi
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ROUTER_PORT/readyz" > /dev/null && break; sleep 0.1; done
  # Every replica serving reads (the router synchronises the ones started with --await-sync).
  if ! all_answer readyz 300; then
    echo "some shard replicas are not serving after 30 s (see $STATE/*.log and GET /admin/shards)" >&2
    exit 1
  fi
  echo "cluster up: router http://127.0.0.1:$ROUTER_PORT, $(replicas | wc -l) shard replicas (logs in $STATE/)"
}

stop() {
  [ -d "$STATE" ] || { echo "no cluster running"; return 0; }
  for f in "$STATE"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$STATE"/*.pid; do
    [ -e "$f" ] || continue
    for _ in $(seq 100); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$f"
  done
  echo "cluster stopped (data kept in $STATE/; remove it to start empty)"
}

status() {
  for f in "$STATE"/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$name: running"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
