"""Checks vecshard's hand-written protobuf codec against Python's protobuf.

usage: protobuf_interop.py generate PROTO_ROOT WORKDIR SEED COUNT
       protobuf_interop.py verify PROTO_ROOT WORKDIR

generate:
1. Compiles proto/vecshard/v1/shard.proto with grpcio-tools into WORKDIR/gen.
2. Every WORKDIR/swift/<name>.<Message>.bin (written by the Swift codec) is parsed as that message
   and written back, serialized by Python, to WORKDIR/swift-via-python/<same name>.
3. Writes COUNT random messages of each type to WORKDIR/python/<n>.<Message>.bin for the Swift
   side to decode and re-encode into WORKDIR/python-via-swift/.
verify: every WORKDIR/python-via-swift/<name> must parse to a message equal to python/<name>.
Exits non-zero, naming the file, on any failure.
"""
import os
import random
import struct
import sys

from grpc_tools import protoc


def compile_proto(proto_root, gen):
    os.makedirs(gen, exist_ok=True)
    rc = protoc.main(["protoc", f"-I{proto_root}", f"--python_out={gen}", os.path.join(proto_root, "vecshard/v1/shard.proto")])
    if rc != 0:
        sys.exit(f"protoc failed with {rc}")
    sys.path.insert(0, gen)
    from vecshard.v1 import shard_pb2
    return shard_pb2


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def rand_string(r, max_len=12):
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_-é雪🙂"
    return "".join(r.choice(alphabet) for _ in range(r.randint(0, max_len)))


def rand_key(r):
    return "".join(r.choice("abcdefghij_") for _ in range(r.randint(0, 6)))


def rand_value(pb, r):
    v = pb.Value()
    kind = r.randint(0, 3)
    if kind == 0:
        v.string_value = rand_string(r)
    elif kind == 1:
        v.int_value = r.choice([0, 1, -1, 2**63 - 1, -(2**63), r.randint(-10**12, 10**12)])
    elif kind == 2:
        v.double_value = r.choice([0.0, -0.0, 1.5, -2.25e300, r.uniform(-1e6, 1e6)])
    else:
        v.bool_value = r.random() < 0.5
    return v


def rand_floats(r, n):
    return [f32(r.choice([0.0, -0.0, 1.0, r.uniform(-100, 100), 3.4e38, 1e-38])) for _ in range(n)]


def fill_point(pb, p, r):
    p.id = rand_string(r, 20)
    p.vector.extend(rand_floats(r, r.randint(0, 40)))
    for _ in range(r.randint(0, 4)):
        p.metadata[rand_key(r)].CopyFrom(rand_value(pb, r))


def rand_message(pb, name, r):
    m = getattr(pb, name)()
    if name == "Point":
        fill_point(pb, m, r)
    elif name == "UpsertRequest":
        m.collection = rand_string(r)
        for _ in range(r.randint(0, 5)):
            fill_point(pb, m.points.add(), r)
    elif name == "SearchRequest":
        m.collection = rand_string(r)
        for _ in range(r.randint(0, 4)):
            q = m.queries.add()
            q.vector.extend(rand_floats(r, r.randint(0, 30)))
            if r.random() < 0.6:
                for _ in range(r.randint(0, 3)):
                    lst = q.filter.must[rand_key(r)]
                    for _ in range(r.randint(0, 3)):
                        lst.values.add().CopyFrom(rand_value(pb, r))
            if r.random() < 0.7:
                q.params.k = r.randint(0, 10000)
                q.params.nprobe = r.choice([0, r.randint(1, 4096)])
                q.params.ef = r.choice([0, r.randint(1, 512)])
                q.params.refine = r.choice([0, 10])
                q.params.exact = r.random() < 0.3
            q.include_vector = r.random() < 0.5
            q.include_metadata = r.random() < 0.5
    elif name == "SearchResponse":
        for _ in range(r.randint(0, 4)):
            res = m.results.add()
            for _ in range(r.randint(0, 6)):
                h = res.hits.add()
                h.id = rand_string(r)
                h.score = f32(r.choice([0.0, -0.0, r.uniform(-1e4, 1)]))
                for _ in range(r.randint(0, 2)):
                    h.metadata[rand_key(r)].CopyFrom(rand_value(pb, r))
                h.vector.extend(rand_floats(r, r.choice([0, 0, 8])))
    elif name == "CollectionInfo":
        m.name = rand_string(r)
        m.dimension = r.randint(0, 4096)
        m.metric = r.choice(["", "cosine", "l2", "ip"])
        if r.random() < 0.5:
            m.index.type = r.choice(["flat", "hnsw", "ivf_pq"])
            m.index.nlist = r.choice([0, 4000])
            m.index.pq_m = r.choice([0, 16, 96])
            m.index.m = r.choice([0, 16])
            m.index.ef_construction = r.choice([0, 200])
        m.shard_key = r.choice(["", "category", "tenant"])
        m.count = r.choice([0, r.randint(1, 2**64 - 1)])
        m.segments = r.randint(0, 100)
        m.memory_bytes = r.randint(0, 2**40)
        m.disk_bytes = r.randint(0, 2**40)
        m.lsn = r.randint(0, 2**64 - 1)
        m.index_state = r.choice(["", "ready", "building"])
    elif name == "CreateCollectionRequest":
        m.name = rand_string(r)
        m.dimension = r.randint(0, 4096)
        m.metric = r.choice(["cosine", "l2", "ip"])
        if r.random() < 0.5:
            m.index.type = "hnsw"
            m.index.m = 16
        m.shard_key = r.choice(["", "category"])
    elif name in ("DeleteRequest", "GetRequest"):
        m.collection = rand_string(r)
        m.ids.extend(rand_string(r) for _ in range(r.randint(0, 6)))
        if name == "GetRequest":
            m.include_vector = r.random() < 0.5
    elif name == "ScanRequest":
        m.collection = rand_string(r)
        m.batch_size = r.choice([0, 1000])
        if r.random() < 0.5:
            m.selector.shards.extend(rand_string(r) for _ in range(r.randint(0, 4)))
            m.selector.owner = rand_string(r)
            m.selector.exclude = r.random() < 0.5
            if r.random() < 0.5:
                for _ in range(r.randint(1, 3)):
                    g = m.selector.routing.groups.add()
                    g.name = rand_string(r)
                    g.shards.extend(rand_string(r) for _ in range(r.randint(1, 3)))
                m.selector.routing.shard_key = r.choice(["", "tenant"])
                for _ in range(r.randint(0, 3)):
                    v = m.selector.routing.value_groups.add()
                    v.value, v.group = rand_string(r), rand_string(r)
                m.selector.routing.default_group = rand_string(r)
        m.ids_only = r.random() < 0.5
    elif name == "StatsResponse":
        m.shard_id = rand_string(r)
        for _ in range(r.randint(0, 3)):
            m.collections.add().name = rand_string(r)
        m.memory_bytes = r.randint(0, 2**40)
        m.replica_state = r.choice(["", "serving", "awaiting_sync"])
        m.routers_seen.extend(rand_string(r) for _ in range(r.randint(0, 3)))
    elif name == "SyncRequest":
        m.peers.extend(rand_string(r) for _ in range(r.randint(0, 3)))
        m.force = r.random() < 0.5
    elif name == "SyncResponse":
        m.replica_state = r.choice(["", "serving", "syncing"])
        m.source = rand_string(r)
        m.copied = r.randint(0, 2**64 - 1)
        m.deleted = r.randint(0, 1000)
        m.collections = r.randint(0, 8)
    elif name == "WriteResponse":
        m.lsn = r.randint(0, 2**64 - 1)
        m.applied = r.randint(0, 2**32 - 1)
    else:
        raise SystemExit(f"no generator for {name}")
    return m


MESSAGES = ["Point", "UpsertRequest", "SearchRequest", "SearchResponse", "CollectionInfo",
            "CreateCollectionRequest", "DeleteRequest", "GetRequest", "ScanRequest", "StatsResponse", "WriteResponse",
            "SyncRequest", "SyncResponse"]


def verify(pb, work):
    py_dir, back_dir = os.path.join(work, "python"), os.path.join(work, "python-via-swift")
    failures = []
    for name in sorted(os.listdir(py_dir)):
        message_type = name.split(".")[-2]
        original, echoed = getattr(pb, message_type)(), getattr(pb, message_type)()
        original.ParseFromString(open(os.path.join(py_dir, name), "rb").read())
        try:
            echoed.ParseFromString(open(os.path.join(back_dir, name), "rb").read())
        except Exception as e:  # noqa: BLE001
            failures.append(f"{name}: python cannot parse what swift re-encoded: {e}")
            continue
        if original != echoed:
            failures.append(f"{name}: swift changed the message:\n{original}\n---\n{echoed}")
    if failures:
        sys.exit("\n".join(failures[:5]) + f"\n({len(failures)} failures)")


def main():
    mode, proto_root, work = sys.argv[1], sys.argv[2], sys.argv[3]
    sys.path.insert(0, os.path.join(work, "gen"))
    if mode == "verify":
        from vecshard.v1 import shard_pb2
        verify(shard_pb2, work)
        return
    seed, count = int(sys.argv[4]), int(sys.argv[5])
    pb = compile_proto(proto_root, os.path.join(work, "gen"))
    swift_dir, back_dir, py_dir = (os.path.join(work, d) for d in ("swift", "swift-via-python", "python"))
    os.makedirs(back_dir, exist_ok=True)
    os.makedirs(py_dir, exist_ok=True)
    for name in sorted(os.listdir(swift_dir)) if os.path.isdir(swift_dir) else []:
        message_type = name.split(".")[-2]
        m = getattr(pb, message_type)()
        data = open(os.path.join(swift_dir, name), "rb").read()
        try:
            m.ParseFromString(data)
        except Exception as e:  # noqa: BLE001 - report which file failed
            sys.exit(f"python could not parse {name}: {e}")
        open(os.path.join(back_dir, name), "wb").write(m.SerializeToString())
    r = random.Random(seed)
    for i in range(count):
        for message_type in MESSAGES:
            m = rand_message(pb, message_type, r)
            open(os.path.join(py_dir, f"{i}.{message_type}.bin"), "wb").write(m.SerializeToString())


if __name__ == "__main__":
    main()
