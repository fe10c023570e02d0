"""Online rebalancing under load (docs/ARCHITECTURE.md, "Online rebalancing"), on a local cluster
of release binaries on 127.0.0.1, with a history checker.

  grow     a 3-shard group grows to 4 under --writes-per-second upserts/deletes and
           --searches-per-second exact searches (flat index): acknowledged writes lost, failed
           searches, inexact searches (checked against a numpy oracle of the acknowledged
           history), the share of points moved, search p99 before and during the move;
           then shrinks back to 3 (drain) with the same checks
  big      --points x 128 imported with `vecshard import` into 3 shards, then the group grows
           to 4 with no rate limit: the rebalance's time against the import's
  promote  a shard-key value with --tenant-points points moves to its own group while it is
           written to: lost writes, stale copies left in the old group; then back

usage: python3 bench/replica_chaos.py BIN MODE [--points 1000000] ...
Prints one JSON object per mode and exits non-zero if a check failed.
"""
import argparse
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from replica_chaos import Cluster as ReplicaCluster, call, free_port  # noqa: E402


class Cluster:
    """Shard processes (one replica each unless --replicas 2) and one router."""

    def __init__(self, binary, root, replicas=1, router_args=()):
        self.bin, self.root, self.replica_count = binary, root, replicas
        self.ports, self.procs = {}, {}
        self.router_args = list(router_args)
        self.router_port = free_port()

    def add_shard(self, name):
        for r in range(self.replica_count):
            pod = f"{name}-{r}"
            self.ports[pod] = free_port()
            args = [self.bin, "serve", "--role", "shard", "--shard-id", name, "--host", "127.0.0.1", "--port", str(self.ports[pod]),
                    "--data-dir", f"{self.root}/{pod}", "--log-level", "warning"] + (["--await-sync"] if self.replica_count > 1 else [])
            self.procs[pod] = subprocess.Popen(args, stdout=open(f"{self.root}/{pod}.log", "a"), stderr=subprocess.STDOUT)
        for r in range(self.replica_count):
            # A replica started with --await-sync is ready only once a router synced it.
            self.wait_ready(self.ports[f"{name}-{r}"], path="/healthz")

    def descriptor(self, name):
        return {"name": name, "replicas": [f"127.0.0.1:{self.ports[f'{name}-{r}']}" for r in range(self.replica_count)]}

    def topology(self, version, groups, collections=None):
        t = {"version": version, "groups": [{"name": g, "shards": [self.descriptor(s) for s in shards]} for g, shards in groups]}
        if collections:
            t["collections"] = collections
        return t

    def start_router(self, topology):
        path = f"{self.root}/topology.json"
        with open(path, "w") as f:
            json.dump(topology, f)
        self.procs["router"] = subprocess.Popen(
            [self.bin, "serve", "--role", "router", "--topology", path, "--host", "127.0.0.1", "--port", str(self.router_port),
             "--data-dir", f"{self.root}/router", "--log-level", "info"] + self.router_args,
            stdout=open(f"{self.root}/router.log", "a"), stderr=subprocess.STDOUT)
        self.wait_ready(self.router_port)
        if self.replica_count > 1 and self.wait_all_serving(60) is None:
            sys.exit("FAILED: the replicas did not all serve")

    wait_ready = ReplicaCluster.wait_ready
    wait_all_serving = ReplicaCluster.wait_all_serving
    replicas = ReplicaCluster.replicas
    stop = ReplicaCluster.stop

    def change(self, topology, if_match):
        import urllib.request
        import urllib.error
        req = urllib.request.Request(f"http://127.0.0.1:{self.router_port}/admin/topology", data=json.dumps(topology).encode(), method="PUT",
                                     headers={"content-type": "application/json", "if-match": f'"{if_match}"'})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def wait_rebalance(self, seconds=3600):
        start = time.time()
        while time.time() - start < seconds:
            status, body = call(self.router_port, "GET", "/admin/rebalance", timeout=5)
            if status == 200 and body.get("state") in ("done", "failed", "aborted"):
                return body, time.time() - start
            time.sleep(0.05)
        sys.exit("FAILED: the rebalance did not finish")


class History:
    """The acknowledged history of integer ids: writers own disjoint ids (id % writers), so an
    id's last acknowledged write is its state; searches are checked against it, excluding the
    ids whose writes overlapped the search (either answer is right for those)."""

    def __init__(self, n, dim, metadata=None):
        self.n, self.dim = n, dim
        self.vectors = np.zeros((n, dim), dtype=np.float32)
        self.alive = np.zeros(n, dtype=bool)
        self.started = np.zeros(n)          # start of the latest write
        self.acked_at = np.zeros(n)         # acknowledgement of the latest acknowledged write
        self.uncertain = np.zeros(n, dtype=bool)  # latest write not acknowledged
        self.metadata = metadata or (lambda i: {})
        self.lock = threading.Lock()


def timed_searches(port, collection, dim, rate, seed, stop, out):
    """A process of its own (the checking searchers hold the GIL): searches at `rate` per
    second, sends back (start, seconds, status) of each."""
    rng = random.Random(seed)
    samples = []
    next_at = time.time()
    while not stop.is_set():
        q = [rng.uniform(-1, 1) for _ in range(dim)]
        t0 = time.time()
        status, _ = call(port, "POST", f"/v1/collections/{collection}/search", {"vector": q, "k": 10})
        samples.append((t0, time.time() - t0, status))
        next_at += 1 / rate
        time.sleep(max(0, next_at - time.time()))
    out.send(samples)


class Load:
    """Writers (threads), searchers checked against the history (threads, `check_rate` a
    second) and timed searchers (processes, `searches_per_second` in all)."""

    def __init__(self, port, collection, history, writes_per_second, searches_per_second, check_rate=20, writers=6, batch=20, seed=1):
        self.port, self.collection, self.h = port, collection, history
        self.writers, self.batch = writers, batch
        self.write_interval = writers * batch / max(1, writes_per_second)
        self.search_interval = 1 / check_rate if check_rate else None
        self.check_every = 1
        self.searches_per_second = searches_per_second
        self.timers = []
        self.stop_flag = threading.Event()
        self.seed = seed
        self.lock = threading.Lock()
        self.writes_acked = self.writes_refused = 0
        self.searches = self.failed_searches = self.checked = self.inexact = 0
        self.latencies = []  # (time, seconds)
        self.examples = []
        self.threads = []

    def writer(self, w):
        rng = random.Random(self.seed * 1000 + w)
        h = self.h
        next_at = time.time()
        mine = np.arange(w, h.n, self.writers)
        while not self.stop_flag.is_set():
            ids = sorted(set(int(x) for x in rng.sample(list(mine[:4000]) if len(mine) > 4000 else list(mine), self.batch)))
            delete = rng.random() < 0.1
            now = time.time()
            with h.lock:
                h.started[ids] = now
            if delete:
                status, body = call(self.port, "POST", f"/v1/collections/{self.collection}/points/delete", {"ids": [f"p{i}" for i in ids]})
            else:
                vecs = np.array([[rng.uniform(-1, 1) for _ in range(h.dim)] for _ in ids], dtype=np.float32)
                status, body = call(self.port, "POST", f"/v1/collections/{self.collection}/points",
                                    {"points": [{"id": f"p{i}", "vector": v.tolist(), "metadata": h.metadata(i)} for i, v in zip(ids, vecs)]})
            done = time.time()
            with h.lock:
                if status == 200:
                    h.acked_at[ids] = done
                    h.uncertain[ids] = False
                    if delete:
                        h.alive[ids] = False
                    else:
                        h.alive[ids] = True
                        h.vectors[ids] = vecs
                else:
                    h.uncertain[ids] = True
            with self.lock:
                if status == 200:
                    self.writes_acked += len(ids)
                else:
                    self.writes_refused += 1
                    if len(self.examples) < 5:
                        self.examples.append(f"write {status}: {str(body)[:200]}")
            next_at += self.write_interval
            time.sleep(max(0, next_at - time.time()))

    def searcher(self, t):
        rng = random.Random(self.seed * 7 + t)
        h = self.h
        next_at = time.time()
        count = 0
        while not self.stop_flag.is_set():
            q = np.array([rng.uniform(-1, 1) for _ in range(h.dim)], dtype=np.float32)
            t0 = time.time()
            status, body = call(self.port, "POST", f"/v1/collections/{self.collection}/search", {"vector": q.tolist(), "k": 10})
            t1 = time.time()
            count += 1
            with self.lock:
                self.searches += 1
                self.latencies.append((t0, t1 - t0))
                if status != 200:
                    self.failed_searches += 1
                    if len(self.examples) < 5:
                        self.examples.append(f"search {status}: {str(body)[:200]}")
            if status == 200 and count % self.check_every == 0:
                got = [int(hit["id"][1:]) for hit in body.get("results", body.get("hits", []))]
                with h.lock:
                    unsure = (h.started >= t0) | (h.acked_at >= t0) | h.uncertain | (h.started > h.acked_at)
                    stable = h.alive & ~unsure
                    idx = np.nonzero(stable)[0]
                    d = ((h.vectors[idx] - q) ** 2).sum(axis=1)
                    n_unsure = int((unsure & (h.alive | True)).sum())
                order = idx[np.argsort(d, kind="stable")]
                expected = set(order[:10].tolist())
                allowed = set(order[:10 + n_unsure].tolist())
                got_unsure = [g for g in got if unsure[g]]
                got_stable = [g for g in got if not unsure[g]]
                missing = len(expected - set(got))
                ok = missing <= len(got_unsure) and all(g in allowed for g in got_stable) and len(got) == 10
                with self.lock:
                    self.checked += 1
                    if not ok:
                        self.inexact += 1
                        if len(self.examples) < 5:
                            self.examples.append(f"inexact: got {got}, expected {sorted(expected)}, unsure {got_unsure}")
            if self.search_interval:
                next_at += self.search_interval
                time.sleep(max(0, next_at - time.time()))

    def start(self, searchers=1, timed=2):
        self.stop_event = multiprocessing.Event()
        for t in range(timed if self.searches_per_second else 0):
            parent, child = multiprocessing.Pipe()
            proc = multiprocessing.Process(target=timed_searches, args=(self.port, self.collection, self.h.dim,
                                                                        self.searches_per_second / timed, self.seed + t, self.stop_event, child))
            proc.start()
            self.timers.append((proc, parent))
        for w in range(self.writers):
            self.threads.append(threading.Thread(target=self.writer, args=(w,), daemon=True))
        for t in range(searchers):
            self.threads.append(threading.Thread(target=self.searcher, args=(t,), daemon=True))
        if self.search_interval:
            self.search_interval *= searchers
        for th in self.threads:
            th.start()

    def finish(self):
        self.stop_flag.set()
        self.stop_event.set()
        for th in self.threads:
            th.join()
        self.timed = []
        for proc, pipe in self.timers:
            self.timed += pipe.recv()
            proc.join()
        self.searches += len(self.timed)
        self.failed_searches += sum(1 for _, _, status in self.timed if status != 200)

    def rate(self, start, end):
        return round(sum(1 for t, _, _ in self.timed if start <= t < end) / max(1e-9, end - start), 1)

    def p99(self, start, end):
        xs = sorted(s for t, s, _ in self.timed if start <= t < end)
        return round(xs[int(len(xs) * 0.99) - 1] * 1000, 2) if len(xs) >= 20 else None


def final_check(port, collection, h, sample=4000, seed=3):
    """Every id in a sample (and the count): present with its last acknowledged value, or absent
    if deleted; the shards' counts add up to the collection's (each point once)."""
    rng = random.Random(seed)
    ids = rng.sample(range(h.n), min(sample, h.n))
    lost = stale = back = 0
    for i in ids:
        if h.uncertain[i]:
            continue
        status, body = call(port, "GET", f"/v1/collections/{collection}/points/p{i}")
        if h.alive[i]:
            if status != 200:
                lost += 1
            elif not np.allclose(np.array(body["vector"], dtype=np.float32), h.vectors[i], atol=1e-6):
                stale += 1
        elif status == 200:
            back += 1
    _, info = call(port, "GET", f"/v1/collections/{collection}")
    _, shards = call(port, "GET", "/admin/shards")
    per_shard = {s["name"]: s["points"] for s in shards.get("shards", [])}
    alive = int(h.alive.sum())
    unsure = int(h.uncertain.sum())
    return {"sampled": len(ids), "lost": lost, "stale": stale, "deleted_returned": back,
            "count": info.get("count"), "expected_count": alive, "uncertain_ids": unsure,
            "shard_points_sum": sum(per_shard.values()), "shard_points": per_shard}


def seed_points(port, collection, h, count, batch=1000):
    rng = np.random.default_rng(5)
    for start in range(0, count, batch):
        ids = list(range(start, min(count, start + batch)))
        vecs = rng.uniform(-1, 1, (len(ids), h.dim)).astype(np.float32)
        status, body = call(port, "POST", f"/v1/collections/{collection}/points",
                            {"points": [{"id": f"p{i}", "vector": v.tolist(), "metadata": h.metadata(i)} for i, v in zip(ids, vecs)]}, timeout=120)
        if status != 200:
            sys.exit(f"FAILED: seeding: {status} {body}")
        h.vectors[ids] = vecs
        h.alive[ids] = True


def grow(args, binary, root):
    c = Cluster(binary, root, replicas=args.replicas, router_args=["--rebalance-points-per-second", str(args.rate)])
    failures = []
    try:
        for s in ("s0", "s1", "s2", "s3"):
            c.add_shard(s)
        c.start_router(c.topology(1, [("main", ["s0", "s1", "s2"])]))
        call(c.router_port, "PUT", "/v1/collections/c", {"dimension": args.dim, "metric": "l2", "index": {"type": "flat"}})
        h = History(args.points, args.dim)
        seed_points(c.router_port, "c", h, args.points)
        load = Load(c.router_port, "c", h, args.writes_per_second, args.searches_per_second, check_rate=args.check_rate)
        load.start()
        t_before = time.time()
        time.sleep(args.baseline_seconds)
        t_move = time.time()
        status, body = c.change(c.topology(2, [("main", ["s0", "s1", "s2", "s3"])]), 1)
        if status != 202:
            sys.exit(f"FAILED: grow answered {status} {body}")
        record, grow_seconds = c.wait_rebalance()
        t_grown = time.time()
        time.sleep(2)
        status, body = c.change(c.topology(3, [("main", ["s0", "s1", "s2"])]), 2)
        if status != 202:
            sys.exit(f"FAILED: shrink answered {status} {body}")
        shrink_record, shrink_seconds = c.wait_rebalance()
        t_shrunk = time.time()
        time.sleep(2)
        load.finish()
        check = final_check(c.router_port, "c", h)
        live_at_start = args.points
        moved_share = record["moved_points"] / max(1, record["total_points"])
        out = {"mode": "grow", "points": args.points, "dim": args.dim, "replicas": args.replicas, "rate_limit": args.rate,
               "target_writes_per_second": args.writes_per_second, "target_searches_per_second": args.searches_per_second,
               "grow": {"state": record["state"], "seconds": round(grow_seconds, 2), "moved_points": record["moved_points"],
                        "total_points": record["total_points"], "moved_share": round(moved_share, 4),
                        "p99_ms_before": load.p99(t_before, t_move), "p99_ms_during": load.p99(t_move, t_grown),
                        "searches_per_second_before": load.rate(t_before, t_move), "searches_per_second_during": load.rate(t_move, t_grown)},
               "shrink": {"state": shrink_record["state"], "seconds": round(shrink_seconds, 2), "moved_points": shrink_record["moved_points"],
                          "p99_ms_during": load.p99(t_grown + 2, t_shrunk)},
               "writes_per_second": round(load.writes_acked / max(1e-9, time.time() - t_before), 1),
               "writes_acked": load.writes_acked, "write_requests_refused": load.writes_refused,
               "searches": load.searches, "failed_searches": load.failed_searches,
               "searches_checked": load.checked, "inexact_searches": load.inexact, "final": check, "examples": load.examples}
        print(json.dumps(out), flush=True)
        if record["state"] != "done" or shrink_record["state"] != "done":
            failures.append("rebalance did not finish")
        if check["lost"] or check["stale"] or check["deleted_returned"]:
            failures.append("lost, stale or deleted-returned points")
        if check["shard_points_sum"] != check["count"]:
            failures.append("points in two places")
        if load.failed_searches or load.inexact or load.writes_refused:
            failures.append("failed or inexact searches, refused writes")
        if moved_share > 0.25 + 0.02:
            failures.append(f"moved {moved_share:.3f} of the points")
        _ = live_at_start
    finally:
        c.stop()
    return failures


def write_fvecs(path, n, dim, seed=9):
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        for start in range(0, n, 100_000):
            m = min(100_000, n - start)
            x = rng.standard_normal((m, dim)).astype(np.float32)
            rows = np.empty((m, dim + 1), dtype=np.float32)
            rows[:, 0] = np.frombuffer(np.int32(dim).tobytes(), dtype=np.float32)[0]
            rows[:, 1:] = x
            f.write(rows.tobytes())


def big(args, binary, root):
    c = Cluster(binary, root, replicas=1, router_args=["--rebalance-points-per-second", "0"])
    failures = []
    try:
        for s in ("s0", "s1", "s2", "s3"):
            c.add_shard(s)
        c.start_router(c.topology(1, [("main", ["s0", "s1", "s2"])]))
        data = f"{root}/base.fvecs"
        write_fvecs(data, args.points, 128)
        url = f"http://127.0.0.1:{c.router_port}"
        # Import into a collection of its own (the same points), timed as a whole.
        call(c.router_port, "PUT", "/v1/collections/c", {"dimension": 128, "metric": "l2", "index": {"type": "flat"}})
        t0 = time.time()
        subprocess.run([binary, "import", "--url", url, "--collection", "c", data], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import_seconds = time.time() - t0
        call(c.router_port, "POST", "/admin/collections/c/flush")
        status, body = c.change(c.topology(2, [("main", ["s0", "s1", "s2", "s3"])]), 1)
        if status != 202:
            sys.exit(f"FAILED: grow answered {status} {body}")
        record, seconds = c.wait_rebalance()
        _, info = call(c.router_port, "GET", "/v1/collections/c")
        _, shards = call(c.router_port, "GET", "/admin/shards")
        per_shard = {s["name"]: s["points"] for s in shards.get("shards", [])}
        moved = record["moved_points"]
        out = {"mode": "big", "points": args.points, "dim": 128, "import_seconds": round(import_seconds, 2),
               "rebalance_seconds": round(seconds, 2), "moved_points": moved, "state": record["state"],
               "ratio_to_import_of_all": round(seconds / import_seconds, 3),
               "ratio_to_import_of_moved": round(seconds / (import_seconds * moved / args.points), 3),
               "count": info.get("count"), "shard_points": per_shard}
        print(json.dumps(out), flush=True)
        if record["state"] != "done" or info.get("count") != args.points or sum(per_shard.values()) != args.points:
            failures.append("rebalance did not finish with every point once")
    finally:
        c.stop()
    return failures


def promote(args, binary, root):
    c = Cluster(binary, root, replicas=1, router_args=["--rebalance-points-per-second", str(args.rate)])
    failures = []
    n = args.tenant_points * 2
    tenant = lambda i: {"tenant": "big" if i % 2 == 0 else f"t{i % 7}"}  # noqa: E731
    try:
        for s in ("m0", "m1", "b0"):
            c.add_shard(s)
        routing = {"shard_key": "tenant", "default_group": "main"}
        groups = [("main", ["m0", "m1"]), ("solo", ["b0"])]
        c.start_router(c.topology(1, groups, {"c": routing}))
        call(c.router_port, "PUT", "/v1/collections/c", {"dimension": args.dim, "metric": "l2", "index": {"type": "flat"}})
        h = History(n, args.dim, metadata=tenant)
        seed_points(c.router_port, "c", h, n)
        load = Load(c.router_port, "c", h, args.writes_per_second, args.searches_per_second, check_rate=args.check_rate)
        load.start()
        time.sleep(2)
        status, body = c.change(c.topology(2, groups, {"c": dict(routing, groups={"big": "solo"})}), 1)
        if status != 202:
            sys.exit(f"FAILED: promote answered {status} {body}")
        record, seconds = c.wait_rebalance()
        time.sleep(1)
        # And back: the old group holds the clean-up's tombstones of these ids.
        status, body = c.change(c.topology(3, groups, {"c": routing}), 2)
        if status != 202:
            sys.exit(f"FAILED: demote answered {status} {body}")
        back, back_seconds = c.wait_rebalance()
        time.sleep(1)
        load.finish()
        check = final_check(c.router_port, "c", h)
        _, shards = call(c.router_port, "GET", "/admin/shards")
        back_shards = {s["name"]: s["points"] for s in shards.get("shards", [])}
        status, body = c.change(c.topology(4, groups, {"c": dict(routing, groups={"big": "solo"})}), 3)
        record2, _ = c.wait_rebalance() if status == 202 else ({"state": f"answered {status}"}, 0)
        check2 = final_check(c.router_port, "c", h)
        _, shards = call(c.router_port, "GET", "/admin/shards")
        per_shard = {s["name"]: s["points"] for s in shards.get("shards", [])}
        # Stale copies in the old group: a search pinned to the tenant goes to its new group only,
        # so ask the old group's shards through a filter on another value... count directly:
        big_alive = int(h.alive[0::2].sum())
        out = {"mode": "promote", "tenant_points": args.tenant_points, "seconds": round(seconds, 2), "state": record["state"],
               "moved_points": record["moved_points"], "removed_from_old_group": record["removed_points"],
               "solo_group_points": per_shard.get("b0"), "tenant_alive": big_alive,
               "old_group_points": per_shard.get("m0", 0) + per_shard.get("m1", 0), "other_tenants_alive": int(h.alive[1::2].sum()),
               "writes_acked": load.writes_acked, "write_requests_refused": load.writes_refused,
               "failed_searches": load.failed_searches, "inexact_searches": load.inexact, "searches_checked": load.checked,
               "back": {"state": back["state"], "seconds": round(back_seconds, 2), "moved_points": back["moved_points"], "shard_points": back_shards},
               "final_after_back": check, "final_after_promoting_again": check2, "examples": load.examples}
        print(json.dumps(out), flush=True)
        unsure = int(h.uncertain.sum())
        if back["state"] != "done" or back_shards.get("b0", 0) != 0 or record2["state"] != "done" or check2["lost"] or check2["stale"]:
            failures.append("moving the tenant back (and again) lost points or left copies")
        if record["state"] != "done" or check["lost"] or check["stale"] or check["deleted_returned"]:
            failures.append("lost or stale points")
        if abs(per_shard.get("b0", 0) - big_alive) > unsure or abs(out["old_group_points"] - out["other_tenants_alive"]) > unsure:
            failures.append("a stale copy of the tenant is left in the old group (or one is missing)")
        if load.failed_searches or load.inexact or load.writes_refused:
            failures.append("failed or inexact searches, refused writes")
    finally:
        c.stop()
    return failures


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary")
    p.add_argument("mode", choices=["grow", "big", "promote"])
    p.add_argument("--points", type=int, default=60_000)
    p.add_argument("--tenant-points", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--rate", type=float, default=20_000, help="--rebalance-points-per-second of the router")
    p.add_argument("--writes-per-second", type=float, default=1000)
    p.add_argument("--searches-per-second", type=float, default=200, help="timed searches (separate processes)")
    p.add_argument("--check-rate", type=float, default=20, help="searches a second checked against the history")
    p.add_argument("--baseline-seconds", type=float, default=8)
    args = p.parse_args()
    root = tempfile.mkdtemp(prefix=f"vecshard-rebalance-{args.mode}-")
    failures = {"grow": grow, "big": big, "promote": promote}[args.mode](args, args.binary, root)
    if failures:
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        sys.exit(1)
    subprocess.run(["rm", "-rf", root])


if __name__ == "__main__":
    main()
