"""Release-build smoke test: the optimized binary, end to end, on 127.0.0.1.

The unit and integration tests run debug builds; optimizer-only faults (seen once: task groups
with generic results) only show here. Checks exact answers in standalone mode and in a
replicated cluster, through a replica kill, and clean exits on SIGTERM.

usage: python3 scripts/smoke.py path/to/vecshard
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BIN = sys.argv[1]
PROCS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, data):
    port = free_port()
    log = open(data + ".log", "w")
    p = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data, "--log-level", "warning"] + args,
                         stdout=log, stderr=subprocess.STDOUT)
    PROCS.append(p)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
            return p, port
        except Exception:
            if p.poll() is not None:
                sys.exit(f"FAILED: {args} exited early: {open(data + '.log').read()}")
            time.sleep(0.05)
    sys.exit(f"FAILED: {args} did not become ready")


def call(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def expect(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}", flush=True)


def exercise(port, label, rounds=30):
    rng = random.Random(7)
    dim = 8
    vectors = [[rng.uniform(-1, 1) for _ in range(dim)] for _ in range(500)]
    for index in ("flat", "hnsw"):
        name = f"smoke_{index}"
        s, _ = call(port, "PUT", f"/v1/collections/{name}", {"dimension": dim, "metric": "l2", "index": {"type": index}})
        expect(s == 200, f"{label}: create {index} collection")
        s, r = call(port, "POST", f"/v1/collections/{name}/points",
                    {"points": [{"id": f"p{i}", "vector": v, "metadata": {"even": i % 2 == 0}} for i, v in enumerate(vectors)]})
        expect(s == 200 and r.get("upserted") == 500, f"{label}: upsert 500 points ({index})")
        for q in range(rounds):
            i = rng.randrange(500)
            s, r = call(port, "POST", f"/v1/collections/{name}/search", {"vector": vectors[i], "k": 5})
            if s != 200 or not r["results"] or r["results"][0]["id"] != f"p{i}":
                sys.exit(f"FAILED: {label}: search {q} for p{i} ({index}) answered {s} {r}")
        print(f"ok: {label}: {rounds} searches find their own point first ({index})", flush=True)
        s, r = call(port, "POST", f"/v1/collections/{name}/search", {"vector": vectors[3], "k": 3, "filter": {"even": False}})
        expect(s == 200 and r["results"][0]["id"] == "p3", f"{label}: filtered search ({index})")
        s, r = call(port, "POST", f"/v1/collections/{name}/search/batch", {"queries": [{"vector": vectors[j], "k": 1} for j in range(10)]})
        expect(s == 200 and [x[0]["id"] for x in r["results"]] == [f"p{j}" for j in range(10)], f"{label}: batch search ({index})")
        s, r = call(port, "GET", f"/v1/collections/{name}/points/p42")
        expect(s == 200 and r["id"] == "p42", f"{label}: get ({index})")
        s, r = call(port, "POST", f"/v1/collections/{name}/points/delete", {"ids": ["p42"]})
        expect(s == 200 and r["deleted"] == 1, f"{label}: delete ({index})")


def stop(p, label):
    p.send_signal(signal.SIGTERM)
    try:
        code = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        sys.exit(f"FAILED: {label} did not stop on SIGTERM")
    expect(code == 0, f"{label} exits 0 on SIGTERM")


def main():
    root = tempfile.mkdtemp(prefix="vecshard-smoke-")
    try:
        p, port = start([], f"{root}/standalone")
        exercise(port, "standalone")
        stop(p, "standalone")

        shards = {}
        for shard in ("a", "b"):
            for replica in (0, 1):
                proc, sp = start(["--role", "shard", "--shard-id-from-pod-name", f"{shard}-{replica}"], f"{root}/{shard}-{replica}")
                shards[(shard, replica)] = (proc, sp)
        topology = f"{root}/topology.yaml"
        with open(topology, "w") as f:
            f.write("version: 1\ngroups:\n  - name: main\n    shards:\n")
            for shard in ("a", "b"):
                f.write(f'      - {{name: {shard}, replicas: ["127.0.0.1:{shards[(shard, 0)][1]}", "127.0.0.1:{shards[(shard, 1)][1]}"]}}\n')
        router, rport = start(["--role", "router", "--topology", topology], f"{root}/router")
        exercise(rport, "cluster")
        shards[("a", 0)][0].send_signal(signal.SIGKILL)
        shards[("a", 0)][0].wait()
        rng = random.Random(1)
        for q in range(20):
            s, r = call(rport, "POST", "/v1/collections/smoke_flat/search", {"vector": [rng.uniform(-1, 1) for _ in range(8)], "k": 3})
            if s != 200 or r["shards"]["answered"] != 2:
                sys.exit(f"FAILED: search {q} after a replica kill answered {s} {r}")
        print("ok: cluster: 20 searches after SIGKILL of one replica all answered by both shards", flush=True)
        stop(router, "router")
        for key, (proc, _) in shards.items():
            if key != ("a", 0):
                stop(proc, f"shard {key[0]} replica {key[1]}")
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
        subprocess.run(["rm", "-rf", root])
    print("smoke: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
