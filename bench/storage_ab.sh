#!/usr/bin/env bash
# Two vecshard binaries' `bench-storage` upserts, interleaved (A B A B ...) on the same disk, so a
# before/after comparison does not depend on how fast this VM's disk and CPUs are this minute.
#   bash bench/storage_ab.sh OLD_BIN NEW_BIN [ROUNDS]
# Prints every JSON line with the binary's label, then per case the medians of vectors/s and of
# the end-to-end WAL MB/s over dd (each run measures dd itself first).
set -euo pipefail
a=${1:?old binary}; b=${2:?new binary}; rounds=${3:-2}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for round in $(seq "$rounds"); do
  for label in A B; do
    bin=$a; [[ $label == B ]] && bin=$b
    "$bin" bench-storage --parts disk,upsert --upsert128 "${N128:-300000}" --upsert768 "${N768:-60000}" \
      --directory "${DIR:-/tmp/vecshard-bench-storage}-$label" 2>/dev/null \
      | grep '"part":"upsert"' | sed "s/^{/{\"bin\":\"$label\",\"round\":$round,/" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cases = sorted({(r["dimension"], r["writers"]) for r in rows})
for dim, writers in cases:
    line = {"dimension": dim, "writers": writers}
    for label in "AB":
        sel = [r for r in rows if r["bin"] == label and r["dimension"] == dim and r["writers"] == writers]
        line[label + "_vectors_per_s"] = round(statistics.median(r["vectors_per_s"] for r in sel))
        line[label + "_vs_dd_direct"] = round(statistics.median(r["vs_dd_direct"] for r in sel), 3)
    line["B_over_A"] = round(line["B_vectors_per_s"] / line["A_vectors_per_s"], 2)
    print(json.dumps(line))
PY
