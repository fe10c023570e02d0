import Foundation
import Testing
import VecShardEngine
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

/// What one search may gather (a byte budget shared by a request's queries) and when it stops
/// (its task is cancelled: the caller went away or its deadline passed).
@Suite("Search bounds: response budget and cancellation")
struct SearchBoundsTests {
    static let dim = 8

    func open(_ dir: TemporaryDirectory, sealRows: Int = 1_000_000) async throws -> (Shard, ShardCollection) {
        let shard = try await Shard.open(directory: dir.path, options: smallOptions(sealRows: sealRows, automatic: false))
        let c = try await shard.createCollection(CollectionSchema(name: "c", dimension: Self.dim, metric: .l2, index: IndexSpec(kind: .flat)))
        return (shard, c)
    }

    @Test func theBudgetIsChargedPerHitAndSharedAcrossQueries() async throws {
        let dir = TemporaryDirectory("budget")
        let (shard, c) = try await open(dir)
        defer { Task { await shard.close() } }
        var src = VectorSource(seed: 7, dimension: Self.dim)
        let blob = String(repeating: "z", count: 1_000)
        _ = try await c.upsert((0..<50).map { Point(id: "p\($0)", vector: src.vector(), metadata: ["blob": .string(blob)]) })
        let query = src.vector()
        // 10 hits of about 1,010 bytes each fit in 20,000 bytes; 30 do not.
        let budget = ResponseBudget(limit: 20_000)
        #expect(try c.search(query, parameters: SearchParameters(k: 10), budget: budget).count == 10)
        #expect(throws: StorageError.responseTooLarge(limit: 20_000)) {
            try c.search(query, parameters: SearchParameters(k: 10), budget: budget)
        }
        // Without metadata the hits are small: the same budget left is enough for many.
        let small = ResponseBudget(limit: 20_000)
        let hits = try c.search(query, parameters: SearchParameters(k: 30), includeMetadata: false, budget: small)
        #expect(hits.count == 30 && hits.allSatisfy { $0.metadata.isEmpty })
    }

    @Test func aCancelledSearchStopsAndThrows() async throws {
        let dir = TemporaryDirectory("cancel")
        let (shard, c) = try await open(dir, sealRows: 100)
        defer { Task { await shard.close() } }
        var src = VectorSource(seed: 9, dimension: Self.dim)
        _ = try await c.upsert((0..<300).map { Point(id: "p\($0)", vector: src.vector()) })
        let query = src.vector()
        let collection = c
        let task = Task { () -> Result<[SearchHit], any Error> in
            withUnsafeCurrentTask { $0?.cancel() }
            return Result { try collection.search(query, parameters: SearchParameters(k: 5)) }
        }
        let outcome = await task.value
        #expect(throws: StorageError.cancelled) { try outcome.get() }
        // Not cancelled: the same search answers.
        #expect(try c.search(query, parameters: SearchParameters(k: 5)).count == 5)
    }
}
