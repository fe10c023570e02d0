#!/usr/bin/env python3
"""Runs vecshard's engine indexes and their anchor libraries on the same dataset,
interleaved (anchor, then vecshard, pair after pair), and writes one results JSON in
the schema of ../shared/bench/README.md so that ../shared/bench/report.py tables and
plots both.

This VM's speed drifts up to 2x over minutes, so only figures measured side by side
in one run are compared; --rounds 2 repeats every pair in the opposite order.

Example (from the repository root, after `swift build -c release`):
  python3 bench/index_vs_anchors.py /tmp/vecshard-data/gmm-1m-128-l2 \\
      --vecshard .build/release/vecshard --pairs hnsw,ivf_flat --filtered \\
      --out bench/results/gmm-1m-128-l2.json
Then: python3 ../shared/bench/report.py bench/results/gmm-1m-128-l2.json --plot bench/results
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_BENCH = (REPO / ".." / "shared" / "bench").resolve()

HNSW_EF = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]     # as anchors.py
IVF_NPROBE = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256]

# vecshard index -> the anchor it is compared with.
ANCHOR_OF = {"flat": "faiss-flat", "hnsw": "hnswlib-hnsw", "ivf_flat": "faiss-ivf-flat",
             "ivf_pq": "faiss-ivf-pq-refine", "hnsw-faiss": "faiss-hnsw"}


def bench_args(index, meta):
    """bench-index arguments that build the same configuration as the anchor."""
    n, dim = meta["n"], meta["dim"]
    nlist = int(round(4 * math.sqrt(n) / 100) * 100) or 100    # anchors.py's nlist
    nprobe = ",".join(str(p) for p in IVF_NPROBE if p <= nlist)
    if index == "flat":
        return ["--index", "flat"]
    if index == "hnsw":
        return ["--index", "hnsw", "--m", "16", "--ef-construction", "200",
                "--sweep", "ef=" + ",".join(map(str, HNSW_EF))]
    if index == "ivf_flat":
        return ["--index", "ivf_flat", "--nlist", str(nlist), "--train-points", "64", "--sweep", "nprobe=" + nprobe]
    if index == "ivf_pq":
        return ["--index", "ivf_pq", "--nlist", str(nlist), "--pq-m", str(dim // 8), "--refine", "10",
                "--train-points", "64", "--sweep", "nprobe=" + nprobe]
    raise SystemExit(f"unknown index {index}")


def run_anchor(dataset, name, args, workdir):
    out = Path(workdir) / f"anchor-{name}-{time.time_ns()}.json"
    cmd = [sys.executable, str(SHARED_BENCH / "anchors.py"), str(dataset), "--only", name, "--out", str(out),
           "--repeats", str(args.repeats)]
    if args.queries:
        cmd += ["--queries", str(args.queries)]
    if args.filtered:
        cmd += ["--filtered"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def run_vecshard(dataset, index, meta, args):
    cmd = [args.vecshard, "bench-index", "--data", str(dataset), "--repeats", str(args.repeats)]
    cmd += bench_args(index, meta)
    if args.queries:
        cmd += ["--queries", str(args.queries)]
    if args.filtered:
        cmd += ["--filtered"]
    if args.reload:
        cmd += ["--reload"]
    print("$", " ".join(cmd), flush=True)
    lines = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as p:
        for line in p.stdout:
            print("  " + line.rstrip(), flush=True)
            if line.startswith("{"):
                lines.append(json.loads(line))
    if p.returncode:
        return {"name": f"vecshard-{index}", "library": "vecshard", "error": f"exit code {p.returncode}"}
    return to_system(index, lines)


def to_system(index, lines):
    """bench-index JSON lines -> one system entry of the results schema."""
    first = lines[0]
    points = []
    for l in lines:
        point = {"setting": l["params"] or {"exact": True}, "recall": l["recall_at_10"], "qps_single": l["qps"],
                 "lat_p50_ms": l["p50_ms"], "lat_p99_ms": l["p99_ms"], "cpu_per_wall_single": None}
        if "filtered" in l:
            f = l["filtered"]
            point["filtered"] = {"recall": f["recall_at_10"], "qps_single": f["qps"],
                                 "lat_p50_ms": f["p50_ms"], "lat_p99_ms": f["p99_ms"]}
        points.append(point)
    return {"name": f"vecshard-{index}", "library": "vecshard", "config": {"index": index, **first["build"]},
            "build_s": first["build_s"], "build_threads": first["build_threads"], "index_bytes": first["index_bytes"],
            "rss_delta_bytes": first["resident_bytes"], "queries": first["queries"], "points": points}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path)
    p.add_argument("--vecshard", default=str(REPO / ".build" / "release" / "vecshard"),
                   help="the vecshard executable (default .build/release/vecshard)")
    p.add_argument("--pairs", default="flat,hnsw,ivf_flat,ivf_pq",
                   help="vecshard indexes to run, each beside its anchor: " + ", ".join(ANCHOR_OF))
    p.add_argument("--queries", type=int)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=1, help="repeat every pair; even rounds run vecshard first")
    p.add_argument("--filtered", action="store_true")
    p.add_argument("--reload", action="store_true", help="vecshard searches the index loaded back from disk")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    meta = json.loads((args.dataset / "meta.json").read_text())
    results, started = None, time.time()
    systems = []
    with tempfile.TemporaryDirectory() as work:
        for rnd in range(args.rounds):
            for index in args.pairs.split(","):
                anchor_name = ANCHOR_OF[index]
                ours = "hnsw" if index == "hnsw-faiss" else index
                steps = ["anchor", "vecshard"] if rnd % 2 == 0 else ["vecshard", "anchor"]
                for step in steps:
                    if step == "anchor":
                        r = run_anchor(args.dataset, anchor_name, args, work)
                        results = results or r
                        for s in r["systems"]:
                            s["round"] = rnd
                            systems.append(s)
                    else:
                        s = run_vecshard(args.dataset, ours, meta, args)
                        s["round"] = rnd
                        systems.append(s)
                # Written after every pair: a cut-off run keeps what it measured.
                if results:
                    results["systems"] = systems
                    results["wall_s"] = time.time() - started
                    results["versions"]["vecshard"] = "engine @ " + subprocess.run(
                        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                        text=True).stdout.strip()
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(results, indent=1) + "\n")
    if args.rounds > 1:  # names must be unique for report.py
        for s in systems:
            s["name"] = f"{s['name']} r{s['round'] + 1}"
        results["systems"] = systems
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
