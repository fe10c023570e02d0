import Testing
import VecShardEngine
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

@Suite("Searches during writes, sealing and compaction")
struct ConcurrentSearchTests {
    /// Writers keep replacing the same ids (so the live set's size is fixed) while the
    /// growing segment is sealed every 60 rows and compaction merges/rewrites segments;
    /// every search must see each id at most once and exactly `ids` results when k ≥ ids.
    @Test func snapshotsHaveNoDuplicatesAndNoMissingRows() async throws {
        let dir = TemporaryDirectory()
        let options = StorageOptions(thresholds: SegmentThresholds(sealRows: 60, compactDeadFraction: 0.2, smallSegmentFraction: 0.5),
                                     walFileBytes: 32 << 10, automaticMaintenance: true)
        let shard = try await Shard.open(directory: dir.path, options: options)
        let dim = 8
        let c = try await shard.createCollection(CollectionSchema(name: "c", dimension: dim, metric: .l2, index: IndexSpec(kind: .flat)))
        let ids = 150
        var src = VectorSource(seed: 1, dimension: dim)
        try await c.upsert((0..<ids).map { Point(id: "id\($0)", vector: src.vector(), metadata: ["g": .int(Int64($0 % 3))]) })

        try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                var src = VectorSource(seed: 2, dimension: dim)
                var rng = SplitMix64(seed: 9)
                for _ in 0..<60 {
                    let batch = (0..<10).map { _ -> Point in
                        let i = Int(rng.next() % UInt64(ids))
                        return Point(id: "id\(i)", vector: src.vector(), metadata: ["g": .int(Int64(i % 3))])
                    }
                    try await c.upsert(batch)
                }
                return 0
            }
            for reader in 0..<2 {
                group.addTask {
                    var src = VectorSource(seed: UInt64(100 + reader), dimension: dim)
                    var searches = 0
                    for _ in 0..<60 {
                        let hits = try c.search(src.vector(), parameters: SearchParameters(k: 1000))
                        #expect(hits.count == ids, "missing or extra rows: \(hits.count)")
                        #expect(Set(hits.map(\.id)).count == hits.count, "duplicate ids")
                        let filtered = try c.search(src.vector(), parameters: SearchParameters(k: 1000), filter: ["g": .equals(.int(1))])
                        #expect(filtered.count == ids / 3)
                        searches += 2
                        await Task.yield()
                    }
                    return searches
                }
            }
            try await group.waitForAll()
        }
        try await c.flush()
        try await c.compact()
        let d = c.describe()
        #expect(d.pointCount == ids)
        #expect(try c.search([Float](repeating: 0, count: dim), parameters: SearchParameters(k: 1000)).count == ids)
        await shard.close()
    }
}
