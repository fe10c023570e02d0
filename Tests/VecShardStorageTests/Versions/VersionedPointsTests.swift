import Foundation
import Testing
import VecShardEngine
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

/// Versions on points and tombstones (docs/ARCHITECTURE.md, "Versioned points and in-sync
/// replicas"): last writer wins per id whatever the order of arrival, stale live writes are
/// refused, tombstones and versions survive seals, compaction and reopening, checksums agree
/// between collections with the same content, and changes are listed page by page.
@Suite("Versioned points")
struct VersionedPointsTests {
    /// Versions as the clock makes them (tombstones of versions far in the past would be
    /// dropped by retention): `b + n`.
    static let b = WriteVersion.wallClock()
    static let schema = CollectionSchema(name: "v", dimension: 4, metric: .l2, index: IndexSpec(kind: .flat))

    static func point(_ id: String, _ x: Float) -> Point { Point(id: id, vector: [x, 1, 2, 3], metadata: ["x": .double(Double(x))]) }

    static func open(_ dir: TemporaryDirectory, sealRows: Int = 1_000_000) async throws -> (Shard, ShardCollection) {
        let shard = try await Shard.open(directory: dir.path, options: smallOptions(sealRows: sealRows))
        if let c = try? shard.collection(schema.name) { return (shard, c) }
        return (shard, try await shard.createCollection(schema))
    }

    /// Every live point with its version, for comparisons.
    static func contents(_ c: ShardCollection) async throws -> [String: (Float, UInt64)] {
        var out: [String: (Float, UInt64)] = [:]
        var page = try c.changes(afterVersion: 0, limit: 7)
        while true {
            for (p, v) in zip(page.changes.points, page.changes.versions) { out[p.id] = (p.vector[0], v) }
            guard page.more else { break }
            page = try c.changes(afterVersion: page.next.version, afterID: page.next.id, limit: 7)
        }
        return out
    }

    @Test("a live write older than what an id holds is refused and changes nothing; self-stamped versions only grow")
    func staleWritesAreRefused() async throws {
        let dir = TemporaryDirectory("versions-stale")
        let (shard, c) = try await Self.open(dir)
        let r1 = try await c.upsert([Self.point("a", 1)], version: 1000)
        #expect(r1.version == 1000)
        await #expect(throws: StorageError.staleVersion(collection: "v", id: "a", offered: 900, held: 1000)) {
            try await c.upsert([Self.point("b", 2), Self.point("a", 9)], version: 900)
        }
        await #expect(throws: StorageError.staleVersion(collection: "v", id: "a", offered: 1000, held: 1000)) {
            try await c.delete(ids: ["a"], version: 1000)
        }
        #expect(c.count == 1 && c.get("b") == nil && c.get("a")?.vector[0] == 1, "a refused batch writes nothing")
        try await c.delete(ids: ["a"], version: 1100)
        await #expect(throws: StorageError.self) { try await c.upsert([Self.point("a", 3)], version: 1050) }
        #expect(c.version(of: "a")! == (1100, true), "the tombstone keeps the delete's version")
        let own = try await c.upsert([Self.point("c", 4)])
        let own2 = try await c.delete(ids: ["zz"])
        #expect(own.version > 1100 && own2.version > own.version)
        #expect(WriteVersion.micros(own.version) > 1_700_000_000_000_000, "self-stamped versions follow the wall clock")
        await shard.close()
    }

    @Test("copied changes apply last-writer-wins in any order: replicas fed the same writes shuffled agree in content, version and checksum")
    func orderIndependent() async throws {
        // A history of writes on few ids: upserts and deletes with distinct versions.
        var rng = SplitMix64(seed: 7)
        var writes: [(id: String, version: UInt64, value: Float?)] = []
        for i in 0..<400 {
            let id = "p\(rng.next() % 40)"
            writes.append((id, Self.b + UInt64(10 + i), rng.next() % 4 == 0 ? nil : Float(i)))
        }
        var results: [([String: (Float, UInt64)], UInt64, UInt64)] = []
        for order in 0..<3 {
            let dir = TemporaryDirectory("versions-order-\(order)")
            let (shard, c) = try await Self.open(dir, sealRows: 50)
            var shuffled = writes
            var r = SplitMix64(seed: UInt64(order))
            if order > 0 { for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, Int(r.next() % UInt64(i + 1))) } }
            for chunk in stride(from: 0, to: shuffled.count, by: 25).map({ Array(shuffled[$0..<min(shuffled.count, $0 + 25)]) }) {
                var changes = VersionedChanges()
                for w in chunk {
                    if let value = w.value {
                        changes.points.append(Self.point(w.id, value))
                        changes.versions.append(w.version)
                    } else {
                        changes.deletedIDs.append(w.id)
                        changes.deletedVersions.append(w.version)
                    }
                }
                try await c.apply(changes)
                if order == 2 { try await c.flush() }
            }
            // Applying everything again changes nothing (idempotent).
            let before = c.versionState
            var again = VersionedChanges()
            for w in writes where w.value != nil {
                again.points.append(Self.point(w.id, w.value!))
                again.versions.append(w.version)
            }
            #expect(try await c.apply(again) == 0)
            #expect(c.versionState == before)
            if order == 1 { try await c.flush(); try await c.compact(force: true) }
            results.append((try await Self.contents(c), c.versionState.version, c.versionState.checksum))
            await shard.close()
        }
        // The expected final state: per id, its newest write.
        var expected: [String: (Float, UInt64)] = [:]
        var newest: [String: (UInt64, Float?)] = [:]
        for w in writes where (newest[w.id]?.0 ?? 0) < w.version { newest[w.id] = (w.version, w.value) }
        for (id, (version, value)) in newest { if let value { expected[id] = (value, version) } }
        for (contents, version, checksum) in results {
            #expect(contents.mapValues { "\($0.0)@\($0.1)" } == expected.mapValues { "\($0.0)@\($0.1)" })
            #expect(version == Self.b + 409 && checksum == results[0].2)
        }
    }

    @Test("versions and tombstones survive seals, compaction and reopening (a delete never comes back)")
    func durable() async throws {
        let dir = TemporaryDirectory("versions-durable")
        var (shard, c) = try await Self.open(dir, sealRows: 20)
        for i in 0..<60 { try await c.upsert([Self.point("p\(i)", Float(i))], version: Self.b + UInt64(100 + i)) }
        try await c.delete(ids: (0..<30).map { "p\($0)" }, version: Self.b + 500)
        try await c.flush()
        try await c.compact(force: true)
        let state = c.versionState
        await shard.close()
        (shard, c) = try await Self.open(dir, sealRows: 20)
        #expect(c.count == 30 && c.versionState == state)
        #expect(c.version(of: "p3")! == (Self.b + 500, true) && c.version(of: "p40")! == (Self.b + 140, false))
        // A late copy of an old version of a deleted point stays out, also after reopening.
        #expect(try await c.apply(VersionedChanges(points: [Self.point("p3", 3)], versions: [Self.b + 103])) == 0)
        await shard.close()
        (shard, c) = try await Self.open(dir, sealRows: 20)
        #expect(c.get("p3") == nil && c.versionState == state)
        // Replayed from the WAL only (no flush): the same.
        try await c.delete(ids: ["p40"], version: Self.b + 600)
        try await c.upsert([Self.point("p3", 33)], version: Self.b + 601)
        let after = c.versionState
        await shard.close()
        (shard, c) = try await Self.open(dir, sealRows: 20)
        #expect(c.versionState == after && c.get("p40") == nil && c.get("p3")?.vector[0] == 33)
        await shard.close()
    }

    @Test("changes after a version come page by page, each once, in (version, id) order, tombstones included")
    func pagedChanges() async throws {
        let dir = TemporaryDirectory("versions-pages")
        let (shard, c) = try await Self.open(dir, sealRows: 30)
        try await c.upsert((0..<50).map { Self.point("a\($0)", Float($0)) }, version: Self.b + 10)  // one version, 50 ids
        for i in 0..<40 { try await c.upsert([Self.point("b\(i)", Float(i))], version: Self.b + UInt64(20 + i)) }
        try await c.delete(ids: ["a1", "a2", "nothere"], version: Self.b + 70)
        try await c.flush()
        var seen: [String] = [], order: [(UInt64, String)] = []
        var page = try c.changes(afterVersion: Self.b + 15, limit: 6)
        var pages = 1
        while true {
            for (p, v) in zip(page.changes.points, page.changes.versions) { seen.append(p.id); order.append((v, p.id)) }
            for (id, v) in zip(page.changes.deletedIDs, page.changes.deletedVersions) { seen.append("-" + id); order.append((v, id)) }
            #expect(page.changes.count <= 6)
            guard page.more else { break }
            page = try c.changes(afterVersion: page.next.version, afterID: page.next.id, limit: 6)
            pages += 1
        }
        #expect(seen.count == 43 && Set(seen).count == 43, "40 points after version 15 and 3 tombstones, each once")
        #expect(Set(seen).contains("-nothere"), "a delete of an absent id still leaves its tombstone")
        #expect(zip(order, order.dropFirst()).allSatisfy { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1.utf8.lexicographicallyPrecedes($1.1.utf8)) })
        #expect(pages == 8)
        // From 0: the 48 live points and 3 tombstones, with the one-version batch split across pages by id.
        let all = try await Self.contents(c)
        #expect(all.count == 88 && all["a0"]!.1 == Self.b + 10)
        await shard.close()
    }

    @Test("tombstones past their retention are dropped at a manifest; changes from before the floor are refused")
    func retention() async throws {
        let dir = TemporaryDirectory("versions-retention")
        var options = smallOptions()
        options.tombstoneRetentionSeconds = 3600
        let shard = try await Shard.open(directory: dir.path, options: options)
        let c = try await shard.createCollection(Self.schema)
        let old = WriteVersion.wallClock() - WriteVersion.span(seconds: 7200)
        try await c.upsert([Self.point("a", 1), Self.point("b", 2)], version: old)
        try await c.delete(ids: ["a"], version: old + 1)
        try await c.delete(ids: ["b"])
        try await c.flush()
        #expect(c.describe().tombstones == 1 && c.describe().tombstoneFloor == old + 1)
        #expect(throws: StorageError.changesCompacted(collection: "v", after: old, floor: old + 1)) { try c.changes(afterVersion: old) }
        #expect(throws: StorageError.self, "a first page at the floor itself could miss a dropped tombstone") { try c.changes(afterVersion: old + 1) }
        #expect(try c.changes(afterVersion: old + 2).changes.deletedIDs == ["b"])
        await shard.close()
    }

    @Test("a collection written before versions (WAL kind 1/2, no versions.bin) opens with version 0 and takes versioned writes")
    func legacyData() async throws {
        let dir = TemporaryDirectory("versions-legacy")
        do {
            let (shard, c) = try await Self.open(dir, sealRows: 10)
            try await c.upsert((0..<25).map { Self.point("p\($0)", Float($0)) })
            try await c.flush()
            await shard.close()
        }
        // Make it look old: drop every versions.bin and rewrite the WAL with unversioned records.
        let segments = dir.path + "/collections/v/segments"
        for seg in (try? FileManager.default.contentsOfDirectory(atPath: segments)) ?? [] {
            try? FileManager.default.removeItem(atPath: segments + "/" + seg + "/versions.bin")
        }
        let (shard, c) = try await Self.open(dir, sealRows: 10)
        #expect(c.count == 25 && c.version(of: "p1")?.version == 0)
        try await c.upsert([Self.point("p1", 100)], version: 5)
        #expect(c.get("p1")?.vector[0] == 100 && c.versionState.version == 5)
        let record = WALRecordCodec.encode(WALRecord(lsn: 3, operation: .delete(["p2"])))
        guard case let .record(decoded, _) = record.withUnsafeBytes({ WALRecordCodec.decode($0, at: 0) }) else { Issue.record("decode"); return }
        #expect(decoded.operation == .delete(["p2"], versions: []))
        await shard.close()
    }

    @Test("tombstones compare ids by their bytes, as points do: precomposed and decomposed é are two ids")
    func tombstonesAreByteIDs() async throws {
        let dir = TemporaryDirectory("versions-bytes")
        let (shard, c) = try await Self.open(dir)
        let nfc = "caf\u{E9}", nfd = "cafe\u{301}"
        #expect(nfc == nfd, "Swift calls them equal")
        try await c.upsert([Self.point(nfc, 1), Self.point(nfd, 2)], version: Self.b + 10)
        #expect(c.count == 2)
        try await c.delete(ids: [nfc], version: Self.b + 100)
        try await c.upsert([Self.point(nfd, 3)], version: Self.b + 110)
        #expect(c.version(of: nfc)! == (Self.b + 100, true), "the tombstone of the precomposed id stays")
        #expect(c.version(of: nfd)! == (Self.b + 110, false))
        let page = try c.changes(afterVersion: Self.b + 50)
        #expect(page.changes.deletedIDs.map { Array($0.utf8) } == [Array(nfc.utf8)])
        #expect(page.changes.points.map { Array($0.id.utf8) } == [Array(nfd.utf8)])
        // A late copy of the decomposed id at an old version is still skipped; of the other, refused by its tombstone.
        #expect(try await c.apply(VersionedChanges(points: [Self.point(nfc, 9)], versions: [Self.b + 90])) == 0)
        await shard.close()
    }
}
