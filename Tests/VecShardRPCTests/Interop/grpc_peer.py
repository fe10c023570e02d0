"""A Python grpcio peer for vecshard's gRPC interoperability tests.

usage: grpc_peer.py client PROTO_ROOT WORKDIR PORT        call every method of the fake test service
       grpc_peer.py shard-client PROTO_ROOT WORKDIR PORT  call every method of a real `vecshard serve --role shard`
       grpc_peer.py server PROTO_ROOT WORKDIR             serve a fake shard service, print the port
       grpc_peer.py over-limit PROTO_ROOT WORKDIR PORT LIMIT  send a request over the server's body limit

Both sides use classes generated from proto/vecshard/v1/shard.proto by grpcio-tools at run time.
The client exits non-zero naming the first failed expectation.
"""
import os
import sys
import time
from concurrent import futures

import grpc
from grpc_tools import protoc


def load(proto_root, work):
    gen = os.path.join(work, "gen")
    os.makedirs(gen, exist_ok=True)
    rc = protoc.main(["protoc", f"-I{proto_root}", f"--python_out={gen}", f"--grpc_python_out={gen}",
                      os.path.join(proto_root, "vecshard/v1/shard.proto")])
    if rc != 0:
        sys.exit(f"protoc failed: {rc}")
    sys.path.insert(0, gen)
    from vecshard.v1 import shard_pb2, shard_pb2_grpc
    return shard_pb2, shard_pb2_grpc


def expect(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}", flush=True)


def run_client(pb, stubs, port):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    shard = stubs.ShardStub(channel)
    info = shard.CreateCollection(pb.CreateCollectionRequest(name="docs", dimension=4, metric="cosine",
                                                             index=pb.IndexSpec(type="hnsw", m=16)), timeout=5)
    expect(info.name == "docs" and info.dimension == 4 and info.index.m == 16, "CreateCollection echoes the collection")
    try:
        shard.DescribeCollection(pb.DescribeCollectionRequest(name="missing"), timeout=5)
        expect(False, "DescribeCollection of a missing collection fails")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.NOT_FOUND and "missing" in e.details(), f"NOT_FOUND names the collection ({e.details()})")
    points = [pb.Point(id=f"p{i}", vector=[float(i)] * 4, metadata={"n": pb.Value(int_value=i)}) for i in range(10)]
    write = shard.Upsert(pb.UpsertRequest(collection="docs", points=points), timeout=5)
    expect(write.applied == 10, "Upsert reports 10 points applied")
    deleted = shard.Delete(pb.DeleteRequest(collection="docs", ids=["p1", "p2"]), timeout=5)
    expect(deleted.applied == 2, "Delete reports 2 ids applied")
    got = shard.Get(pb.GetRequest(collection="docs", ids=["a", "b"], include_vector=True), timeout=5)
    expect([p.id for p in got.points] == ["a", "b"] and list(got.points[0].vector) == [1.0, 2.0], "Get returns the points asked for")
    queries = [pb.Query(vector=[0.5] * 4, params=pb.SearchParams(k=3), include_metadata=True),
               pb.Query(vector=[1.0] * 4, params=pb.SearchParams(k=2),
                        filter=pb.Filter(must={"category": pb.ValueList(values=[pb.Value(string_value="books")])}))]
    result = shard.Search(pb.SearchRequest(collection="docs", queries=queries), timeout=5)
    expect(len(result.results) == 2 and [len(r.hits) for r in result.results] == [3, 2], "Search answers a batch of queries")
    expect(result.results[1].hits[0].metadata["category"].string_value == "books", "the filter reached the server")
    stats = shard.Stats(pb.StatsRequest(), timeout=5)
    expect(stats.shard_id == "test-shard", "Stats names the shard")
    batches = list(shard.Scan(pb.ScanRequest(collection="docs", batch_size=4), timeout=5))
    expect([len(b.points) for b in batches] == [4, 4, 2], "Scan streams the points in batches")
    dropped = shard.DropCollection(pb.DropCollectionRequest(name="docs"), timeout=5)
    expect(dropped.dropped, "DropCollection")
    try:
        shard.Get(pb.GetRequest(collection="docs", ids=["slow"]), timeout=0.2)
        expect(False, "a call past its deadline fails")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, f"expired deadline: DEADLINE_EXCEEDED ({e.code()})")
    try:
        channel.unary_unary("/vecshard.v1.Shard/NoSuchMethod")(b"", timeout=5)
        expect(False, "an unknown method fails")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.UNIMPLEMENTED, f"unknown method: UNIMPLEMENTED ({e.details()})")
    try:
        channel.unary_unary("/vecshard.v1.Shard/Search")(b"\x0a\x05ab", timeout=5)
        expect(False, "a malformed request fails")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"malformed message: INVALID_ARGUMENT ({e.details()})")
    print("client done", flush=True)


def run_shard_client(pb, stubs, port):
    """Every method of a real shard, with real storage behind it."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    shard = stubs.ShardStub(channel)
    info = shard.CreateCollection(pb.CreateCollectionRequest(name="real", dimension=3, metric="l2", index=pb.IndexSpec(type="flat")), timeout=10)
    expect(info.name == "real" and info.dimension == 3 and info.index.type == "flat", "CreateCollection")
    points = [pb.Point(id=f"p{i}", vector=[float(i), 0.0, 1.0], metadata={"n": pb.Value(int_value=i), "even": pb.Value(bool_value=i % 2 == 0)})
              for i in range(25)]
    expect(shard.Upsert(pb.UpsertRequest(collection="real", points=points), timeout=10).applied == 25, "Upsert 25 points")
    expect(shard.DescribeCollection(pb.DescribeCollectionRequest(name="real"), timeout=10).count == 25, "DescribeCollection counts 25")
    got = shard.Get(pb.GetRequest(collection="real", ids=["p3", "missing"], include_vector=True), timeout=10)
    expect([p.id for p in got.points] == ["p3"] and list(got.points[0].vector) == [3.0, 0.0, 1.0]
           and got.points[0].metadata["n"].int_value == 3, "Get returns p3 with vector and metadata")
    q = [pb.Query(vector=[4.2, 0, 1], params=pb.SearchParams(k=3), include_metadata=True),
         pb.Query(vector=[4.2, 0, 1], params=pb.SearchParams(k=2), filter=pb.Filter(must={"even": pb.ValueList(values=[pb.Value(bool_value=True)])}))]
    res = shard.Search(pb.SearchRequest(collection="real", queries=q), timeout=10)
    expect([h.id for h in res.results[0].hits] == ["p4", "p5", "p3"], "Search: nearest first")
    expect([h.id for h in res.results[1].hits] == ["p4", "p6"], "Search with a filter")
    expect(abs(res.results[0].hits[0].score - (-0.04)) < 1e-5, "scores are negative squared L2")
    expect(shard.Delete(pb.DeleteRequest(collection="real", ids=["p4"]), timeout=10).applied == 1, "Delete")
    batches = list(shard.Scan(pb.ScanRequest(collection="real", batch_size=10), timeout=10))
    expect(sum(len(b.points) for b in batches) == 24 and len(batches) == 3, "Scan streams 24 points in 3 batches")
    owned = list(shard.Scan(pb.ScanRequest(collection="real", batch_size=100, selector=pb.PlacementSelector(shards=["x", "y"], owner="y")), timeout=10))
    n_owned = sum(len(b.points) for b in owned)
    expect(0 < n_owned < 24, f"Scan with a placement selector picks a subset ({n_owned})")
    stats = shard.Stats(pb.StatsRequest(), timeout=10)
    expect(stats.shard_id == "py" and stats.collections[0].count == 24, "Stats")
    shard.Maintain(pb.MaintainRequest(collection="real", operation=pb.MaintainRequest.FLUSH), timeout=30)
    expect(shard.DescribeCollection(pb.DescribeCollectionRequest(name="real"), timeout=10).count == 24, "Maintain(FLUSH) keeps every point")
    for call, code, what in [
        (lambda: shard.DescribeCollection(pb.DescribeCollectionRequest(name="nope"), timeout=10), grpc.StatusCode.NOT_FOUND, "unknown collection"),
        (lambda: shard.Upsert(pb.UpsertRequest(collection="real", points=[pb.Point(id="bad", vector=[1.0])]), timeout=10),
         grpc.StatusCode.INVALID_ARGUMENT, "wrong dimension"),
        (lambda: shard.CreateCollection(pb.CreateCollectionRequest(name="real", dimension=4, metric="l2"), timeout=10),
         grpc.StatusCode.ALREADY_EXISTS, "a clashing schema"),
    ]:  # server-side DEADLINE_EXCEEDED is covered by the `client` mode against a deliberately slow method
        try:
            call()
            expect(False, what)
        except grpc.RpcError as e:
            expect(e.code() == code, f"{what}: {e.code()} ({e.details()})")
    # Versions (the official runtime's view of the fields): a versioned write, a stale one, the
    # checksum in Stats, and the changes after a version page by page.
    base = stats.collections[0].version
    expect(base > 0, f"writes without a version were stamped by the shard ({base})")
    w = shard.Upsert(pb.UpsertRequest(collection="real", points=[pb.Point(id="v1", vector=[9.0, 0.0, 1.0])], version=base + 1000), timeout=10)
    expect(w.version == base + 1000 and w.applied == 1, "Upsert with a version answers it")
    try:
        shard.Upsert(pb.UpsertRequest(collection="real", points=[pb.Point(id="v1", vector=[8.0, 0.0, 1.0])], version=base + 999), timeout=10)
        expect(False, "a stale upsert is refused")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.FAILED_PRECONDITION and "stale_version" in e.details(), f"stale upsert: {e.code()} ({e.details()})")
    d = shard.Delete(pb.DeleteRequest(collection="real", ids=["p5", "never"], version=base + 2000), timeout=10)
    expect(d.version == base + 2000 and d.applied == 1, "Delete with a version")
    info = shard.Stats(pb.StatsRequest(), timeout=10).collections[0]
    expect(info.version == base + 2000 and info.tombstones >= 3 and info.checksum != 0, f"Stats: version, tombstones, checksum ({info.version}, {info.tombstones})")
    seen, page = [], shard.Changes(pb.ChangesRequest(collection="real", after_version=base + 1, limit=2), timeout=10)
    while True:
        expect(len(page.points) == len(page.versions) and len(page.deleted_ids) == len(page.deleted_versions), "a changes page pairs items with versions")
        seen += [(v, p.id) for p, v in zip(page.points, page.versions)] + [(v, "-" + i) for i, v in zip(page.deleted_ids, page.deleted_versions)]
        if not page.more:
            break
        page = shard.Changes(pb.ChangesRequest(collection="real", after_version=page.next_version, after_id=page.next_id, limit=2), timeout=10)
    expect(sorted(seen) == [(base + 1000, "v1"), (base + 2000, "-never"), (base + 2000, "-p5")], f"Changes after a version: {seen}")
    applied = shard.Apply(pb.ApplyRequest(collection="real", points=[pb.Point(id="c1", vector=[7.0, 0.0, 1.0]), pb.Point(id="v1", vector=[1.0, 1.0, 1.0])],
                                          versions=[base + 3000, base + 10], deleted_ids=["p6"], deleted_versions=[base + 3001]), timeout=10)
    expect(applied.applied == 2, f"Apply: a new point and a delete apply, an older copy of v1 does not ({applied.applied})")
    mine = shard.Changes(pb.ChangesRequest(collection="real", after_version=base + 3000, selector=pb.PlacementSelector(shards=["x", "y"], owner="x")), timeout=10)
    other = shard.Changes(pb.ChangesRequest(collection="real", after_version=base + 3000, selector=pb.PlacementSelector(shards=["x", "y"], owner="y")), timeout=10)
    expect(sorted([p.id for p in mine.points] + [p.id for p in other.points]) == ["c1"]
           and sorted(list(mine.deleted_ids) + list(other.deleted_ids)) == ["p6"], "Changes with a placement selector split the ids")
    expect(shard.DropCollection(pb.DropCollectionRequest(name="real"), timeout=10).dropped, "DropCollection")
    print("client done", flush=True)


def run_server(pb, stubs):
    class Shard(stubs.ShardServicer):
        def Search(self, request, context):
            results = []
            for q in request.queries:
                hits = [pb.ScoredPoint(id=f"{request.collection}-{j}", score=-float(j), vector=list(q.vector))
                        for j in range(q.params.k)]
                results.append(pb.QueryResult(hits=hits))
            return pb.SearchResponse(results=results)

        def Upsert(self, request, context):
            return pb.WriteResponse(lsn=42, applied=len(request.points))

        def DescribeCollection(self, request, context):
            context.abort(grpc.StatusCode.NOT_FOUND, f"collection '{request.name}' does not exist (ü)")

        def Scan(self, request, context):
            for b in range(3):
                yield pb.ScanResponse(points=[pb.Point(id=f"s{b}-{i}") for i in range(request.batch_size)])

        def Get(self, request, context):
            time.sleep(2)
            return pb.GetResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    stubs.add_ShardServicer_to_server(Shard(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)
    sys.stdin.read()  # runs until the test closes our stdin
    server.stop(0)


def run_over_limit(pb, stubs, port, limit):
    """A request body over the HTTP server's limit: RESOURCE_EXHAUSTED naming the limit, not UNKNOWN."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    shard = stubs.ShardStub(channel)
    points = [pb.Point(id=f"p{i}", vector=[1.0] * 64) for i in range(limit // 256 + 10)]
    try:
        shard.Upsert(pb.UpsertRequest(collection="docs", points=points), timeout=10)
        expect(False, "a request over the body limit fails")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"over the body limit: RESOURCE_EXHAUSTED ({e.code()}: {e.details()})")
        expect(str(limit) in e.details(), f"the message names the limit ({e.details()})")
    try:
        channel.unary_unary("/other.Service/Get")(b"", timeout=5)
        expect(False, "an unknown service fails")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.UNIMPLEMENTED, f"unknown service: UNIMPLEMENTED ({e.code()}: {e.details()})")
    write = shard.Upsert(pb.UpsertRequest(collection="docs", points=points[:10]), timeout=10)
    expect(write.applied == 10, "a request within the limit on the same channel succeeds")
    print("over-limit done", flush=True)


def main():
    mode, proto_root, work = sys.argv[1], sys.argv[2], sys.argv[3]
    pb, stubs = load(proto_root, work)
    if mode == "client":
        run_client(pb, stubs, int(sys.argv[4]))
    elif mode == "shard-client":
        run_shard_client(pb, stubs, int(sys.argv[4]))
    elif mode == "over-limit":
        run_over_limit(pb, stubs, int(sys.argv[4]), int(sys.argv[5]))
    else:
        run_server(pb, stubs)


if __name__ == "__main__":
    main()
