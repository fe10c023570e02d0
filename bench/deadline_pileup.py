"""Searches whose deadline passed must not hold up a live one (the fan-out issue's figure):
11 searches with a 1 ms deadline (`x-request-timeout-ms: 1`) and one live search sent together,
against a standalone release server holding POINTS x 128 FLAT points (each search scans them
all). Reports the live search's latency over ROUNDS rounds, beside the same search alone.

usage: python3 bench/deadline_pileup.py BIN [--points 200000] [--rounds 10] [--expired 11]
"""
import argparse
import json
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import numpy as np


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, headers=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {}
    except OSError:  # not listening yet, reset
        return 0, {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--expired", type=int, default=11)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vecshard-pileup-")
    port = free_port()
    server = subprocess.Popen([args.binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", work + "/data",
                               "--shards", "1", "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if call(port, "GET", "/readyz", timeout=2)[0] == 200:
                break
            time.sleep(0.05)
        dim = 128
        call(port, "PUT", "/v1/collections/p", {"dimension": dim, "metric": "l2", "index": {"type": "flat"}})
        rng = np.random.default_rng(1)
        for start in range(0, args.points, 2000):
            v = np.round(rng.uniform(-1, 1, size=(min(2000, args.points - start), dim)), 3).tolist()
            status, _ = call(port, "POST", "/v1/collections/p/points", {"points": [{"id": f"x{start + i}", "vector": x} for i, x in enumerate(v)]})
            assert status == 200
        query = {"vector": rng.uniform(-1, 1, size=dim).round(3).tolist(), "k": 10}
        for _ in range(3):
            call(port, "POST", "/v1/collections/p/search", query)
        alone = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            assert call(port, "POST", "/v1/collections/p/search", query)[0] == 200
            alone.append((time.perf_counter() - t) * 1000)
        live, expired_status = [], []
        for _ in range(args.rounds):
            threads = []
            for _ in range(args.expired):
                th = threading.Thread(target=lambda: expired_status.append(
                    call(port, "POST", "/v1/collections/p/search", query, headers={"x-request-timeout-ms": "1"})[0]))
                th.start()
                threads.append(th)
            t = time.perf_counter()
            status, _ = call(port, "POST", "/v1/collections/p/search", query)
            live.append((time.perf_counter() - t) * 1000)
            assert status == 200
            for th in threads:
                th.join()
            time.sleep(0.2)
        print(json.dumps({"points": args.points, "expired_searches": args.expired, "rounds": args.rounds,
                          "alone_ms_median": round(statistics.median(alone), 1),
                          "live_ms_median": round(statistics.median(live), 1), "live_ms_max": round(max(live), 1),
                          "expired_statuses": sorted(set(expired_status))}))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
