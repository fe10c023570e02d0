"""Failure tests and figures of versioned replicas (docs/ARCHITECTURE.md, "Versioned points and
in-sync replicas"), on a local cluster of release binaries on 127.0.0.1.

  rolling   kill -9 and restart each replica of each shard in turn under writes and searches:
            acknowledged writes lost, writes refused, failed searches, deleted ids returned
  cycles    N random kill -9 / restart cycles with upserts and deletes; afterwards every replica
            of every shard must show the same points, version and checksum, and hold exactly the
            acknowledged history
  downtime  one shard of two replicas holding --points points; one replica down --down-seconds
            under --writes-per-second: time until it serves again, points transferred by the
            catch-up against the writes it missed, peak memory growth of the peer while it copies

usage: python3 bench/replica_chaos.py BIN MODE [--cycles 50] [--seed 1] [--points 1000000] ...
Prints one JSON object per mode (the figures) and exits non-zero if a check failed.
"""
import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import grpc
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_proto(work):
    gen = os.path.join(work, "gen")
    os.makedirs(gen, exist_ok=True)
    proto_root = os.path.join(ROOT, "proto")
    if protoc.main(["protoc", f"-I{proto_root}", f"--python_out={gen}", f"--grpc_python_out={gen}",
                    os.path.join(proto_root, "vecshard/v1/shard.proto")]) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, gen)
    from vecshard.v1 import shard_pb2, shard_pb2_grpc
    return shard_pb2, shard_pb2_grpc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {}
    except Exception as e:  # connection refused, timeout
        return 0, {"error": {"message": str(e)}}


class Cluster:
    """Shards of two replicas each (`--await-sync`) and a router, each a process with its data dir."""

    def __init__(self, binary, root, shards, router_args=(), shard_args=()):
        self.bin, self.root = binary, root
        self.shard_args = list(shard_args)
        self.ports = {f"{s}-{r}": free_port() for s in shards for r in (0, 1)}
        self.procs = {}
        for name in self.ports:
            self.start(name)
        self.topology = f"{root}/topology.yaml"
        with open(self.topology, "w") as f:
            f.write("version: 1\ngroups:\n  - name: main\n    shards:\n")
            for s in shards:
                f.write(f'      - {{name: {s}, replicas: ["127.0.0.1:{self.ports[s + "-0"]}", "127.0.0.1:{self.ports[s + "-1"]}"]}}\n')
        self.router_port = free_port()
        self.router_log = f"{root}/router.log"
        self.procs["router"] = subprocess.Popen(
            [binary, "serve", "--role", "router", "--topology", self.topology, "--host", "127.0.0.1", "--port", str(self.router_port),
             "--data-dir", f"{root}/router", "--health-check-interval-ms", "200", "--log-level", "info"] + list(router_args),
            stdout=open(self.router_log, "w"), stderr=subprocess.STDOUT)
        self.wait_ready(self.router_port)
        self.wait_all_serving(60)

    def start(self, name):
        log = open(f"{self.root}/{name}.log", "a")
        self.procs[name] = subprocess.Popen(
            [self.bin, "serve", "--role", "shard", "--shard-id-from-pod-name", name, "--host", "127.0.0.1", "--port", str(self.ports[name]),
             "--data-dir", f"{self.root}/{name}", "--await-sync", "--log-level", "warning"] + self.shard_args,
            stdout=log, stderr=subprocess.STDOUT)

    def kill(self, name):
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def wait_ready(self, port, seconds=30, path="/readyz"):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if call(port, "GET", path, timeout=2)[0] == 200:
                return
            time.sleep(0.05)
        sys.exit(f"FAILED: port {port} not ready")

    def replicas(self):
        status, body = call(self.router_port, "GET", "/admin/shards", timeout=5)
        return {s["name"]: s.get("replicas", []) for s in body.get("shards", [])} if status == 200 else {}

    def wait_all_serving(self, seconds, equal=False):
        """Until every replica is serving (and, with `equal`, replicas of a shard show the same
        version and checksum); returns the seconds it took, or None."""
        start = time.time()
        while time.time() - start < seconds:
            shards = self.replicas()
            # Serving per a health report (before the first one, the router has not heard yet).
            ok = bool(shards) and all(r.get("state") == "serving" and "version" in r for rs in shards.values() for r in rs)
            if ok and equal:
                ok = all(len({(r.get("version"), r.get("checksum")) for r in rs}) == 1 for rs in shards.values())
            if ok:
                return time.time() - start
            time.sleep(0.1)
        return None

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


class Load:
    """Writers on disjoint ids (each id has one writer, so its last acknowledged write is its
    true state) and searchers that check no answered id was deleted before the search began."""

    def __init__(self, port, collection, dim, writes_per_second, searches_per_second, ids_per_writer=400, batch=5, writers=4, seed=1):
        self.port, self.collection, self.dim = port, collection, dim
        self.batch, self.writers, self.ids = batch, writers, ids_per_writer
        self.write_interval = writers * batch / max(1, writes_per_second)
        self.search_interval = 1 / searches_per_second if searches_per_second else None
        self.lock = threading.Lock()
        self.acked = {}        # id -> (vector or None, ack time)
        self.started = {}      # id -> start time of its latest write
        self.uncertain = set() # ids whose latest write was not acknowledged
        self.refused = []      # (time, status, message)
        self.failed_searches = []
        self.deleted_returned = []
        self.writes_acked = 0
        self.searches = 0
        self.stop_flag = threading.Event()
        self.seed = seed
        self.threads = []

    def vector(self, rng):
        return [round(rng.uniform(-1, 1), 4) for _ in range(self.dim)]

    def writer(self, w):
        rng = random.Random(self.seed * 1000 + w)
        next_at = time.time()
        while not self.stop_flag.is_set():
            ids = [f"w{w}-{rng.randrange(self.ids)}" for _ in range(self.batch)]
            ids = list(dict.fromkeys(ids))
            delete = rng.random() < 0.2
            now = time.time()
            with self.lock:
                for i in ids:
                    self.started[i] = now
            if delete:
                status, body = call(self.port, "POST", f"/v1/collections/{self.collection}/points/delete", {"ids": ids})
                values = {i: None for i in ids}
            else:
                values = {i: self.vector(rng) for i in ids}
                status, body = call(self.port, "POST", f"/v1/collections/{self.collection}/points",
                                    {"points": [{"id": i, "vector": v} for i, v in values.items()]})
            done = time.time()
            with self.lock:
                if status == 200:
                    self.writes_acked += len(ids)
                    for i, v in values.items():
                        self.acked[i] = (v, done)
                        self.uncertain.discard(i)
                else:
                    self.refused.append((done, status, body.get("error", {}).get("message", "")[:200]))
                    self.uncertain.update(ids)
            next_at += self.write_interval
            time.sleep(max(0, next_at - time.time()))

    def searcher(self, t):
        rng = random.Random(self.seed * 7 + t)
        next_at = time.time()
        while not self.stop_flag.is_set():
            begin = time.time()
            status, body = call(self.port, "POST", f"/v1/collections/{self.collection}/search", {"vector": self.vector(rng), "k": 10})
            with self.lock:
                self.searches += 1
                if status != 200:
                    self.failed_searches.append((begin, status, body.get("error", {}).get("message", "")[:200]))
                else:
                    for hit in body.get("results", []):
                        state = self.acked.get(hit["id"])
                        # Deleted (acknowledged) before the search began, and not written since.
                        if state and state[0] is None and state[1] < begin and self.started.get(hit["id"], 0) <= state[1]:
                            self.deleted_returned.append((begin, hit["id"]))
            if self.search_interval:
                next_at += self.search_interval
                time.sleep(max(0, next_at - time.time()))

    def start(self):
        self.threads = [threading.Thread(target=self.writer, args=(w,), daemon=True) for w in range(self.writers)]
        if self.search_interval:
            self.threads += [threading.Thread(target=self.searcher, args=(t,), daemon=True) for t in range(2)]
            self.search_interval *= 2
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join()


def replica_contents(pb, stubs, port, collection):
    """Every point of a collection on one replica (Scan over gRPC) and its Stats entry."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        shard = stubs.ShardStub(channel)
        points = {}
        for batch in shard.Scan(pb.ScanRequest(collection=collection, batch_size=1000), timeout=60):
            for p in batch.points:
                points[p.id] = [round(x, 4) for x in p.vector]
        stats = shard.Stats(pb.StatsRequest(), timeout=10)
        info = next((c for c in stats.collections if c.name == collection), None)
        return points, (info.count, info.version, info.checksum) if info else None


def check_history(load, shards_contents):
    """Acknowledged writes against the replicas' contents: (lost, resurrected) lists."""
    lost, resurrected = [], []
    merged = {}
    for points in shards_contents:
        merged.update(points)
    for i, (v, _) in load.acked.items():
        if i in load.uncertain:
            continue
        if v is None and i in merged:
            resurrected.append(i)
        elif v is not None and merged.get(i) != [round(x, 4) for x in v]:
            lost.append(i)
    return lost, resurrected


def create(cluster, name, dim):
    status, body = call(cluster.router_port, "PUT", f"/v1/collections/{name}", {"dimension": dim, "metric": "l2", "index": {"type": "flat"}})
    if status != 200:
        sys.exit(f"FAILED: create {name}: {status} {body}")


def rolling(args, binary, root, pb, stubs):
    cluster = Cluster(binary, root, ["a", "b"], router_args=["--min-in-sync-replicas", args.min_in_sync])
    try:
        create(cluster, "chaos", 8)
        load = Load(cluster.router_port, "chaos", 8, args.writes_per_second, args.searches_per_second, seed=args.seed)
        load.start()
        time.sleep(2)
        serve_again = []
        for name in ["a-0", "a-1", "b-0", "b-1"]:
            cluster.kill(name)
            time.sleep(args.down_seconds)
            cluster.start(name)
            took = cluster.wait_all_serving(60)
            if took is None:
                sys.exit(f"FAILED: {name} did not serve again within 60 s: {cluster.replicas()}")
            serve_again.append(round(took, 2))
            time.sleep(1)
        load.finish()
        converged = cluster.wait_all_serving(60, equal=True)
        contents = []
        equal = True
        for s in ("a", "b"):
            (p0, st0), (p1, st1) = (replica_contents(pb, stubs, cluster.ports[f"{s}-{r}"], "chaos") for r in (0, 1))
            equal = equal and p0 == p1 and st0 == st1
            contents.append(p0)
        lost, resurrected = check_history(load, contents)
        result = {"mode": "rolling", "min_in_sync_replicas": args.min_in_sync, "down_seconds": args.down_seconds, "writes_acked": load.writes_acked,
                  "writes_refused": len(load.refused), "searches": load.searches, "failed_searches": len(load.failed_searches),
                  "deleted_ids_returned": len(load.deleted_returned), "acknowledged_writes_lost": len(lost),
                  "deletes_back": len(resurrected), "seconds_to_serve_again": serve_again,
                  "replicas_equal": equal, "converged_seconds": converged}
        print(json.dumps(result), flush=True)
        for what, items in (("refused writes", load.refused), ("failed searches", load.failed_searches),
                            ("deleted ids returned", load.deleted_returned), ("lost", lost), ("resurrected", resurrected)):
            if items:
                print(f"  {what}: {items[:5]}", file=sys.stderr)
        return not (load.refused or load.failed_searches or load.deleted_returned or lost or resurrected) and equal
    finally:
        cluster.stop()


def cycles(args, binary, root, pb, stubs):
    cluster = Cluster(binary, root, ["a", "b"])
    rng = random.Random(args.seed)
    try:
        create(cluster, "chaos", 8)
        load = Load(cluster.router_port, "chaos", 8, args.writes_per_second, 0, seed=args.seed)
        load.start()
        for cycle in range(args.cycles):
            name = f"{rng.choice('ab')}-{rng.randrange(2)}"
            peer = name[:-1] + str(1 - int(name[-1]))
            # Keep one serving replica per shard (killing the last in-sync one stops that shard's writes, by design).
            for _ in range(300):
                states = {r["address"]: r["state"] for r in cluster.replicas().get(name[0], [])}
                if states.get(f"127.0.0.1:{cluster.ports[peer]}") == "serving":
                    break
                time.sleep(0.1)
            time.sleep(rng.uniform(0, 0.8))
            cluster.kill(name)
            time.sleep(rng.uniform(0.1, 1.5))
            cluster.start(name)
        load.finish()
        converged = cluster.wait_all_serving(120, equal=True)
        contents, per_replica = [], {}
        for s in ("a", "b"):
            for r in (0, 1):
                per_replica[f"{s}-{r}"] = replica_contents(pb, stubs, cluster.ports[f"{s}-{r}"], "chaos")
            contents.append(per_replica[f"{s}-0"][0])
        equal = all(per_replica[f"{s}-0"] == per_replica[f"{s}-1"] for s in ("a", "b"))
        lost, resurrected = check_history(load, contents)
        result = {"mode": "cycles", "cycles": args.cycles, "writes_acked": load.writes_acked, "writes_refused": len(load.refused),
                  "acknowledged_writes_lost": len(lost), "deletes_back": len(resurrected), "converged_seconds": converged,
                  "replicas_equal": equal,
                  "replicas": {k: {"points": v[1][0], "version": str(v[1][1]), "checksum": f"{v[1][2]:016x}"} for k, v in per_replica.items() if v[1]}}
        print(json.dumps(result), flush=True)
        if lost or resurrected:
            print(f"  lost: {lost[:5]} resurrected: {resurrected[:5]}", file=sys.stderr)
        return equal and not lost and not resurrected and converged is not None
    finally:
        cluster.stop()


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def downtime(args, binary, root, pb, stubs):
    cluster = Cluster(binary, root, ["a"])
    try:
        dim = 128
        create(cluster, "big", dim)
        import numpy as np
        gen = np.random.default_rng(args.seed)
        loaded = 0
        t0 = time.time()
        while loaded < args.points:
            n = min(1000, args.points - loaded)
            vectors = np.round(gen.uniform(-1, 1, size=(n, dim)), 3).tolist()
            pts = [{"id": f"base{loaded + i}", "vector": v} for i, v in enumerate(vectors)]
            status, body = call(cluster.router_port, "POST", "/v1/collections/big/points", {"points": pts}, timeout=120)
            if status != 200:
                sys.exit(f"FAILED: load: {status} {body}")
            loaded += n
        load_seconds = time.time() - t0
        load = Load(cluster.router_port, "big", dim, args.writes_per_second, 0, ids_per_writer=args.points, batch=10, writers=4, seed=args.seed)
        load.start()
        time.sleep(2)
        cluster.kill("a-1")
        before_down = load.writes_acked
        time.sleep(args.down_seconds)
        missed = load.writes_acked - before_down
        peer = cluster.procs["a-0"].pid
        baseline = rss_kib(peer)
        peak = baseline
        restarted = time.time()
        cluster.start("a-1")
        serving = None
        while time.time() - restarted < 300:
            peak = max(peak, rss_kib(peer))
            states = [r.get("state") for r in cluster.replicas().get("a", [])]
            if states and all(s == "serving" for s in states):
                serving = time.time() - restarted
                break
            time.sleep(0.05)
        load.finish()
        transferred = None
        for line in open(cluster.router_log):
            if f"127.0.0.1:{cluster.ports['a-1']} of shard 'a' is up to date" in line and " received" in line:
                transferred = int(line.split(" received")[0].split()[-1])
        result = {"mode": "downtime", "points": args.points, "load_seconds": round(load_seconds, 1), "down_seconds": args.down_seconds,
                  "writes_per_second": args.writes_per_second, "writes_missed": missed, "transferred": transferred,
                  "transferred_per_missed": round(transferred / missed, 2) if transferred and missed else None,
                  "seconds_to_serve_again": round(serving, 2) if serving else None,
                  "peer_rss_growth_mib": round((peak - baseline) / 1024, 1), "writes_refused": len(load.refused)}
        print(json.dumps(result), flush=True)
        return serving is not None and not load.refused
    finally:
        cluster.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("mode", choices=["rolling", "cycles", "downtime", "all"])
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--writes-per-second", type=int, default=200)
    ap.add_argument("--searches-per-second", type=int, default=50)
    ap.add_argument("--down-seconds", type=float, default=5)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--min-in-sync", default="1", help="the router's --min-in-sync-replicas (rolling; 'all' shows the old behaviour)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vecshard-chaos-")
    pb, stubs = load_proto(work)
    ok = True
    try:
        for mode, run in (("rolling", rolling), ("cycles", cycles), ("downtime", downtime)):
            if args.mode in (mode, "all"):
                root = os.path.join(work, mode)
                os.makedirs(root)
                ok = run(args, args.binary, root, pb, stubs) and ok
    finally:
        subprocess.run(["rm", "-rf", work])
    if not ok:
        sys.exit("FAILED: see the figures above")
    print("replica chaos: passed")


if __name__ == "__main__":
    main()
