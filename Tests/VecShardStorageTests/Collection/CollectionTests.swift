import Foundation
import Testing
import VecShardEngine
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

@Suite("Collections: writes, reads, filters, sealing, compaction, restart")
struct CollectionTests {
    static let dim = 16

    func makePoints(_ n: Int, seed: UInt64, prefix: String = "p") -> [Point] {
        var src = VectorSource(seed: seed, dimension: Self.dim)
        let cats = ["books", "music", "films", "games"]
        var out: [Point] = []
        for i in 0..<n {
            var m: Metadata = [:]
            m["category"] = .string(cats[i % 4])
            m["year"] = .int(Int64(2000 + i % 7))
            m["rare"] = .bool(i % 50 == 0)
            m["price"] = .double(Double(i) / 4)
            out.append(Point(id: "\(prefix)\(i)", vector: src.vector(), metadata: m))
        }
        return out
    }

    func open(_ dir: TemporaryDirectory, sealRows: Int = 1_000_000, automatic: Bool = false,
              spec: IndexSpec = IndexSpec(kind: .flat), metric: DistanceMetric = .l2) async throws -> (Shard, ShardCollection) {
        let shard = try await Shard.open(directory: dir.path, options: smallOptions(sealRows: sealRows, automatic: automatic))
        if let c = try? shard.collection("c") { return (shard, c) }
        let c = try await shard.createCollection(CollectionSchema(name: "c", dimension: Self.dim, metric: metric, index: spec))
        return (shard, c)
    }

    /// Checks search == FLAT oracle over `live` for a few queries and filters.
    func checkAgainstOracle(_ c: ShardCollection, _ live: [String: Point], metric: DistanceMetric = .l2,
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        var src = VectorSource(seed: 999, dimension: Self.dim)
        let filters: [(MetadataFilter, (Metadata) -> Bool)] = [
            ([:], { _ in true }),
            (["category": .equals(.string("books"))], { $0["category"] == .string("books") }),
            (["year": .oneOf([.int(2001), .int(2003)])], { $0["year"] == .int(2001) || $0["year"] == .int(2003) }),
            (["rare": .equals(.bool(true))], { $0["rare"] == .bool(true) }),
            (["category": .oneOf([.string("music"), .string("games")]), "year": .equals(.int(2002))],
             { ($0["category"] == .string("music") || $0["category"] == .string("games")) && $0["year"] == .int(2002) }),
            // The filter is a tree: nested ANDs, and an AND of nothing (every point).
            (.all([.all([.field("category", .equals(.string("books")))]), .field("year", .oneOf([.int(2001), .int(2002)]))]),
             { $0["category"] == .string("books") && ($0["year"] == .int(2001) || $0["year"] == .int(2002)) }),
            (.all([.all([])]), { _ in true }),
        ]
        for q in 0..<4 {
            let query = src.vector()
            for (filter, predicate) in filters {
                let hits = try c.search(query, parameters: SearchParameters(k: 10), filter: filter)
                let expected = try oracleSearch(live, query: query, k: 10, metric: metric, dimension: Self.dim, filter: predicate)
                #expect(sameResults(hits, expected), "query \(q) filter \(filter): \(hits.map(\.id)) vs \(expected.map(\.id))",
                        sourceLocation: sourceLocation)
                #expect(Set(hits.map(\.id)).count == hits.count, sourceLocation: sourceLocation)
                for h in hits { #expect(h.metadata == live[h.id]?.metadata, sourceLocation: sourceLocation) }
            }
        }
    }

    @Test func upsertReplaceDeleteGetCount() async throws {
        let dir = TemporaryDirectory()
        let (shard, c) = try await open(dir)
        let points = makePoints(50, seed: 1)
        let r = try await c.upsert(points)
        #expect(r.count == 50 && r.lsn == 1)
        #expect(c.count == 50)
        #expect(c.get("p3") == points[3])
        var replaced = points[3]
        replaced.vector = [Float](repeating: 0.5, count: Self.dim)
        replaced.metadata = ["category": .string("new")]
        try await c.upsert([replaced])
        #expect(c.get("p3") == replaced)
        #expect(c.count == 50)
        let d = try await c.delete(ids: ["p1", "p2", "missing"])
        #expect(d.count == 2)
        #expect(c.get("p1") == nil && c.count == 48)
        #expect(c.lsn == d.lsn && d.lsn == 3)
        // Duplicates inside one batch: the last wins.
        try await c.upsert([Point(id: "dup", vector: points[0].vector), Point(id: "dup", vector: points[1].vector)])
        #expect(c.get("dup")?.vector == points[1].vector && c.count == 49)
        let hits = try c.search(points[1].vector, parameters: SearchParameters(k: 3))
        #expect(hits.filter { $0.id == "dup" }.count == 1)
        await shard.close()
    }

    @Test func searchEqualsFlatOracleThroughSealCompactionAndRestart() async throws {
        let dir = TemporaryDirectory()
        var (shard, c) = try await open(dir, sealRows: 120)
        var live: [String: Point] = [:]
        var rng = SplitMix64(seed: 5)
        for round in 0..<4 {
            let batch = makePoints(100, seed: UInt64(10 + round), prefix: "r\(round)-")
            try await c.upsert(batch)
            for p in batch { live[p.id] = p }
            // Replace some older points (some of them sealed by now) and delete some.
            let keys = live.keys.sorted()
            var replacements: [Point] = []
            for _ in 0..<15 {
                var p = live[keys[Int(rng.next() % UInt64(keys.count))]]!
                p.vector = VectorSource(seed: rng.next(), dimension: Self.dim).vectorOnce()
                replacements.append(p)
            }
            try await c.upsert(replacements)
            for p in replacements { live[p.id] = p }
            let doomed = (0..<10).map { _ in keys[Int(rng.next() % UInt64(keys.count))] }
            try await c.delete(ids: doomed)
            for id in doomed { live[id] = nil }
            try await c.flush()
        }
        #expect(c.count == live.count)
        let sealedBefore = c.describe().segments.filter { $0.state == .sealed }.count
        #expect(sealedBefore >= 4)
        try checkAgainstOracle(c, live)

        try await c.compact()
        let afterCompaction = c.describe()
        #expect(afterCompaction.segments.filter { $0.state == .sealed }.count <= sealedBefore)
        #expect(afterCompaction.segments.allSatisfy { $0.rows == $0.liveRows }, "compaction drops deleted rows")
        try checkAgainstOracle(c, live)

        // Restart: everything (sealed, compacted, tombstones, WAL tail) comes back.
        try await c.upsert(makePoints(7, seed: 77, prefix: "tail-"))
        for p in makePoints(7, seed: 77, prefix: "tail-") { live[p.id] = p }
        try await c.delete(ids: ["tail-3"])
        live["tail-3"] = nil
        let lsnBefore = c.lsn
        await shard.close()
        (shard, c) = try await open(dir, sealRows: 120)
        #expect(c.count == live.count)
        #expect(c.lsn == lsnBefore)
        for (id, p) in live { #expect(c.get(id) == p) }
        try checkAgainstOracle(c, live)
        await shard.close()
    }

    @Test func sealedIdUpsertedAgainHidesOldRowAcrossRestart() async throws {
        let dir = TemporaryDirectory()
        var (shard, c) = try await open(dir)
        let p = makePoints(20, seed: 2)
        try await c.upsert(p)
        try await c.flush()
        #expect(c.describe().segments.first?.state == .sealed)
        let newer = Point(id: "p4", vector: [Float](repeating: 3, count: Self.dim), metadata: ["v": .int(2)])
        try await c.upsert([newer])
        let hits = try c.search(p[4].vector, parameters: SearchParameters(k: 20))
        #expect(hits.filter { $0.id == "p4" }.count == 1)
        #expect(hits.first { $0.id == "p4" }?.metadata == ["v": .int(2)])
        await shard.close()
        (shard, c) = try await open(dir)
        #expect(c.get("p4") == newer && c.count == 20)
        try await c.flush() // the newer row sealed too: the old row must stay hidden
        await shard.close()
        (shard, c) = try await open(dir)
        #expect(c.get("p4") == newer && c.count == 20)
        let all = try c.search(p[4].vector, parameters: SearchParameters(k: 100))
        #expect(all.count == 20 && all.filter { $0.id == "p4" }.count == 1)
        await shard.close()
    }

    @Test func approximateIndexesAgreeWithOracleOnSmallData() async throws {
        for spec in [IndexSpec(kind: .hnsw, efSearch: 200), IndexSpec(kind: .ivfFlat, nlist: 4, nprobe: 4),
                     IndexSpec(kind: .ivfPQ, nlist: 2, nprobe: 2, pqM: 4, refine: 100)] {
            let dir = TemporaryDirectory()
            let (shard, c) = try await open(dir, spec: spec, metric: .cosine)
            let points = makePoints(300, seed: 8)
            try await c.upsert(points)
            try await c.flush()
            let seg = c.describe().segments.first { $0.state == .sealed }
            #expect(seg?.indexKind == spec.kind)
            let live = Dictionary(uniqueKeysWithValues: points.map { ($0.id, $0) })
            var src = VectorSource(seed: 4, dimension: Self.dim)
            var agree = 0
            for _ in 0..<10 {
                let q = src.vector()
                let hits = try c.search(q, parameters: SearchParameters(k: 5))
                let exp = try oracleSearch(live, query: q, k: 5, metric: .cosine, dimension: Self.dim)
                agree += Set(hits.map(\.id)).intersection(exp.map(\.id)).count
            }
            #expect(agree >= 45, "\(spec.kind): recall \(agree)/50")
            await shard.close()
        }
    }

    @Test func dropRemovesFilesAndName() async throws {
        let dir = TemporaryDirectory()
        let (shard, c) = try await open(dir)
        try await c.upsert(makePoints(10, seed: 1))
        try await c.flush()
        #expect(FileManager.default.fileExists(atPath: dir.path + "/collections/c/MANIFEST"))
        try await shard.dropCollection("c")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/collections/c"))
        #expect(shard.listCollections().isEmpty)
        #expect(throws: StorageError.collectionNotFound("c")) { try shard.collection("c") }
        await #expect(throws: StorageError.collectionNotFound("c")) { try await shard.dropCollection("c") }
        // The name can be used again, and starts empty.
        let again = try await shard.createCollection(CollectionSchema(name: "c", dimension: 4, metric: .ip, index: IndexSpec(kind: .flat)))
        #expect(again.count == 0)
        await shard.close()
    }

    @Test func badInputIsNamedAndChangesNothing() async throws {
        let dir = TemporaryDirectory()
        let (shard, c) = try await open(dir, metric: .cosine)
        let ok = makePoints(1, seed: 1)[0]
        await #expect(throws: StorageError.dimensionMismatch(collection: "c", got: 15, expected: 16, pointID: "x")) {
            try await c.upsert([ok, Point(id: "x", vector: [Float](repeating: 1, count: 15))])
        }
        var nan = ok.vector
        nan[5] = .nan
        await #expect(throws: StorageError.nonFiniteComponent(pointID: "n", component: 5)) {
            try await c.upsert([Point(id: "n", vector: nan)])
        }
        await #expect(throws: StorageError.zeroVector(pointID: "z")) {
            try await c.upsert([Point(id: "z", vector: [Float](repeating: 0, count: 16))])
        }
        await #expect(throws: StorageError.self) { try await c.upsert([Point(id: "", vector: ok.vector)]) }
        await #expect(throws: StorageError.self) {
            try await c.upsert([Point(id: String(repeating: "é", count: 129), vector: ok.vector)]) // 258 bytes
        }
        try await c.upsert([Point(id: String(repeating: "a", count: 256), vector: ok.vector)]) // exactly the limit
        await #expect(throws: StorageError.self) {
            try await c.upsert([Point(id: "m", vector: ok.vector, metadata: ["": .int(1)])])
        }
        #expect(c.count == 1, "only the valid point was written")
        #expect(throws: StorageError.invalidFilter("field 'price': 1.5 is a float; filters take strings, ints and bools")) {
            try c.search(ok.vector, parameters: SearchParameters(k: 1), filter: ["price": .equals(.double(1.5))])
        }
        #expect(throws: StorageError.self) { try c.search(ok.vector, parameters: SearchParameters(k: 0)) }
        #expect(throws: StorageError.dimensionMismatch(collection: "c", got: 3, expected: 16, pointID: nil)) {
            try c.search([1, 2, 3], parameters: SearchParameters(k: 1))
        }
        await #expect(throws: StorageError.collectionAlreadyExists("c")) {
            try await shard.createCollection(CollectionSchema(name: "c", dimension: 16, metric: .l2))
        }
        await #expect(throws: StorageError.self) {
            try await shard.createCollection(CollectionSchema(name: "../x", dimension: 16, metric: .l2))
        }
        await #expect(throws: StorageError.self) {
            try await shard.createCollection(CollectionSchema(name: "y", dimension: 0, metric: .l2))
        }
        #expect(StorageError.dimensionMismatch(collection: "x", got: 767, expected: 768, pointID: nil).description
                == "query: dimension 767, collection 'x' expects 768")
        #expect(StorageError.diskFull(path: "w").kind == .resourceExhausted)
        #expect(StorageError.collectionNotFound("x").code == "collection_not_found")
        await shard.close()
    }

    @Test func diskFullRefusesTheWriteKeepsAcknowledgedDataAndRecovers() async throws {
        let dir = TemporaryDirectory()
        var (shard, c) = try await open(dir)
        let points = makePoints(30, seed: 3)
        try await c.upsert(Array(points[0..<20]))
        c.injectWALWriteError(ENOSPC)
        await #expect(throws: StorageError.self) { try await c.upsert(Array(points[20..<30])) }
        do {
            try await c.upsert(Array(points[20..<30]))
        } catch let e as StorageError {
            #expect(e.kind == .resourceExhausted && e.code == "disk_full")
        }
        #expect(c.count == 20, "the refused write changed nothing")
        #expect(try c.search(points[0].vector, parameters: SearchParameters(k: 1)).first?.id == "p0", "still readable")
        // The refused points were staged into the growing segment while the write ran:
        // none of them may be found, by id or by search.
        for p in points[20..<30] {
            #expect(c.get(p.id) == nil)
            #expect(try c.search(p.vector, parameters: SearchParameters(k: 30)).allSatisfy { $0.id != p.id })
        }
        c.injectWALWriteError(nil)
        try await c.upsert(Array(points[20..<30]))
        #expect(c.count == 30)
        for p in points { #expect(c.get(p.id) == p) }
        #expect(try c.search(points[25].vector, parameters: SearchParameters(k: 1)).first?.id == "p25")
        await shard.close()
        (shard, c) = try await open(dir)
        #expect(c.count == 30)
        for p in points { #expect(c.get(p.id) == p) }
        await shard.close()
    }

    @Test func writesWaitWhileSealsAreBehindAndFailCleanlyWhenTheyDoNotCatchUp() async throws {
        let dir = TemporaryDirectory()
        var options = smallOptions(sealRows: 50, automatic: true)
        options.maxSealingSegments = 2
        options.sealWaitSeconds = 0.5
        let shard = try await Shard.open(directory: dir.path, options: options)
        let c = try await shard.createCollection(CollectionSchema(name: "c", dimension: Self.dim, metric: .l2, index: IndexSpec(kind: .flat)))
        struct SealRefused: Error {}
        c.sealHook.withLock { $0 = { throw SealRefused() } }
        let points = makePoints(150, seed: 8)
        // Two full segments freeze and cannot seal: the third write waits, then fails.
        try await c.upsert(Array(points[0..<50]))
        try await c.upsert(Array(points[50..<100]))
        let started = ContinuousClock.now
        do {
            try await c.upsert(Array(points[100..<150]))
            Issue.record("the write went through while two segments waited for their seal")
        } catch let e as StorageError {
            #expect(e.kind == .unavailable)
            #expect("\(e)".contains("writes are paused") && "\(e)".contains("SealRefused"), "\(e)")
        }
        #expect(ContinuousClock.now - started >= .milliseconds(500), "it waited before failing")
        #expect(c.count == 100, "the refused write changed nothing")
        // Once seals work again, a waiting writer gets them retried and goes through.
        c.sealHook.withLock { $0 = nil }
        try await c.upsert(Array(points[100..<150]))
        #expect(c.count == 150)
        await c.waitForMaintenance()
        #expect(c.describe().segments.filter { $0.state == .sealed }.count >= 2)
        for p in points { #expect(c.get(p.id) == p) }
        await shard.close()
    }

    @Test func walTailTornOrGarbageIsCutOnRecovery() async throws {
        let dir = TemporaryDirectory()
        var (shard, c) = try await open(dir)
        let points = makePoints(40, seed: 4)
        for i in 0..<4 { try await c.upsert(Array(points[(i * 10)..<(i * 10 + 10)])) }
        await shard.close()
        let walDir = dir.path + "/collections/c/wal"
        let file = walDir + "/" + FileIO.list(walDir).last { $0.hasPrefix("wal-") && (FileIO.fileSize(walDir + "/" + $0) ?? 0) > 32 }!
        let full = try FileIO.read(file)
        let validEnd = full.withUnsafeBytes { raw -> Int in
            var scanner = WALFileScanner(raw)
            while true { if case let .end(valid, _) = scanner.next() { return valid } }
        }
        // Cut the last record in half, then append garbage.
        let recordBytes = WALRecordCodec.encode(WALRecord(lsn: 4, operation: .upsert(Array(points[30..<40]), versions: [1]))).count
        var damaged = Array(full[0..<(validEnd - recordBytes / 2)])
        var rng = SplitMix64(seed: 1)
        damaged += (0..<777).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        try FileIO.writeFile(file, damaged)
        (shard, c) = try await open(dir)
        #expect(c.recovery.damage.count == 1)
        #expect(c.count == 30, "the three complete records survive; the torn fourth is cut")
        for p in points[0..<30] { #expect(c.get(p.id) == p) }
        #expect(FileIO.fileSize(file) == validEnd - recordBytes)
        // Writing after recovery works and survives another restart.
        try await c.upsert(Array(points[30..<40]))
        await shard.close()
        (shard, c) = try await open(dir)
        #expect(c.count == 40 && c.recovery.damage.isEmpty)
        await shard.close()
    }

    @Test func describeAndIterationForRebalancing() async throws {
        let dir = TemporaryDirectory()
        let (shard, c) = try await open(dir)
        try await c.upsert(makePoints(60, seed: 6))
        try await c.flush()
        try await c.upsert(makePoints(10, seed: 7, prefix: "g"))
        try await c.delete(ids: ["p0", "g0"])
        let d = c.describe()
        #expect(d.pointCount == 68 && d.lsn == 3)
        #expect(d.segments.map(\.state) == [.sealed, .growing])
        #expect(d.segments.map(\.liveRows) == [59, 9])
        #expect(d.diskBytes > 0 && d.memoryBytes > 0 && d.checkpointLSN == 1)
        var seen: [String] = []
        try await c.forEachLivePoint(batchSize: 7) { batch in
            #expect(batch.count <= 7)
            seen += batch.map(\.id)
        }
        #expect(seen.count == 68 && Set(seen).count == 68 && !seen.contains("p0"))
        var evens: [String] = []
        try await c.forEachLivePoint(batchSize: 100, where: { $0.hasSuffix("2") }) { evens += $0.map(\.id) }
        #expect(evens.sorted() == seen.filter { $0.hasSuffix("2") }.sorted())
        await shard.close()
    }
}

extension VectorSource {
    func vectorOnce() -> [Float] {
        var copy = self
        return copy.vector()
    }
}
