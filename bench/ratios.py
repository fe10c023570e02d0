#!/usr/bin/env python3
"""Ratio table of vecshard against its anchors from results JSON written by
index_vs_anchors.py: best single-query QPS at recall@10 targets, build time, and for
FLAT the effective scan bandwidth against membw.py's read bandwidth.

Example: python3 bench/ratios.py bench/results/gmm-1m-128-l2.json --membw bench/results/membw.json
"""

import argparse
import json
from pathlib import Path

PAIRS = [("vecshard-flat", "faiss-flat"), ("vecshard-hnsw", "hnswlib-hnsw"), ("vecshard-hnsw", "faiss-hnsw"),
         ("vecshard-ivf_flat", "faiss-ivf-flat"), ("vecshard-ivf_pq", "faiss-ivf-pq-refine")]
TARGETS = [0.90, 0.95, 0.99]


def best(points, target, filtered=False):
    ok = []
    for p in points:
        q = p.get("filtered") if filtered else p
        if q and q.get("recall") is not None and q["recall"] >= target:
            ok.append((q["qps_single"], p["setting"]))
    return max(ok, key=lambda t: t[0]) if ok else None


def fmt_setting(s):
    return ", ".join("exact" if k == "exact" else f"{k} {v}" for k, v in s.items() if k != "k_factor") or "exact"


def cell(ours, theirs):
    if ours is None and theirs is None:
        return "– / –"
    o = f"{ours[0]:,.0f} ({fmt_setting(ours[1])})" if ours else "–"
    t = f"{theirs[0]:,.0f} ({fmt_setting(theirs[1])})" if theirs else "–"
    ratio = f" = **{ours[0] / theirs[0]:.2f}×**" if ours and theirs else ""
    return f"{o} / {t}{ratio}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", type=Path, nargs="+")
    p.add_argument("--membw", type=Path, help="membw.py output measured in the same run")
    args = p.parse_args()
    membw = json.loads(args.membw.read_text()) if args.membw else None
    for path in args.results:
        r = json.loads(path.read_text())
        d = r["dataset"]
        systems = {s["name"]: s for s in r["systems"] if "error" not in s}
        print(f"### {d['path'].rstrip('/').split('/')[-1]}: {d['n']:,} x {d['dim']}, {d['metric']}\n")
        print("| vecshard vs anchor | build s (ratio) | " +
              " | ".join(f"1-query QPS @R10≥{t} ours / anchor" for t in TARGETS) + " | max R@10 ours / anchor |")
        print("|---|---|" + "---|" * len(TARGETS) + "---|")
        for ours_name, anchor_name in PAIRS:
            if ours_name not in systems or anchor_name not in systems:
                continue
            o, a = systems[ours_name], systems[anchor_name]
            build = f"{o['build_s']:.1f} / {a['build_s']:.1f} ({o['build_s'] / a['build_s']:.2f}×)"
            cells = [cell(best(o["points"], t), best(a["points"], t)) for t in TARGETS]
            mx = f"{max(p['recall'] for p in o['points']):.4f} / {max(p['recall'] for p in a['points']):.4f}"
            print(f"| {ours_name} vs {anchor_name} | {build} | " + " | ".join(cells) + f" | {mx} |")
        print()
        rows = []
        for ours_name, anchor_name in PAIRS:
            if ours_name not in systems or anchor_name not in systems:
                continue
            o, a = systems[ours_name], systems[anchor_name]
            if not any("filtered" in p for p in a["points"]):
                continue
            cells = [cell(best(o["points"], t, True), best(a["points"], t, True)) for t in TARGETS]
            rows.append(f"| {ours_name} vs {anchor_name} (filtered) | " + " | ".join(cells) + " |")
        if rows:
            print("| filtered queries | " + " | ".join(f"QPS @R10≥{t} ours / anchor" for t in TARGETS) + " |")
            print("|---|" + "---|" * len(TARGETS))
            print("\n".join(rows) + "\n")
        if membw and "vecshard-flat" in systems:
            flat = systems["vecshard-flat"]["points"][0]
            base_bytes = d["n"] * d["dim"] * 4
            gbs = base_bytes * flat["qps_single"] / 1e9
            print(f"FLAT scan: {base_bytes / 2**20:.0f} MiB per query at {flat['qps_single']:.1f} q/s = "
                  f"{gbs:.1f} GB/s = {100 * gbs / membw['read_gbs']:.0f}% of membw.py's read bandwidth "
                  f"({membw['read_gbs']:.1f} GB/s)" + (
                      f"; faiss-flat {base_bytes * systems['faiss-flat']['points'][0]['qps_single'] / 1e9:.1f} GB/s"
                      if "faiss-flat" in systems else "") + ".\n")


if __name__ == "__main__":
    main()
