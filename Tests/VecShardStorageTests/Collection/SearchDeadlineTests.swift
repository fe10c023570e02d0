import Foundation
import Testing
import VecShardEngine
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives

/// A search whose deadline has passed stops at the next check (between segments, every 65,536
/// rows of a scan) with `deadlineExceeded`, instead of running to its end.
@Suite struct SearchDeadlineTests {
    @Test func aSearchPastItsDeadlineStops() async throws {
        let dir = TemporaryDirectory("deadline")
        let shard = try await Shard.open(directory: dir.path, options: smallOptions())
        let c = try await shard.createCollection(CollectionSchema(name: "d", dimension: 4, metric: .l2, index: IndexSpec(kind: .flat)))
        var source = VectorSource(seed: 3, dimension: 4)
        try await c.upsert((0..<2000).map { Point(id: "p\($0)", vector: source.vector()) })
        let query = source.vector()
        #expect(try c.search(query, parameters: SearchParameters(k: 3)).count == 3)
        #expect(throws: StorageError.deadlineExceeded) {
            try SearchDeadline.$current.withValue(ContinuousClock.now - .milliseconds(1)) {
                try c.search(query, parameters: SearchParameters(k: 3))
            }
        }
        #expect(StorageError.deadlineExceeded.kind == .deadlineExceeded && StorageError.deadlineExceeded.code == "deadline_exceeded")
        let later = try SearchDeadline.$current.withValue(ContinuousClock.now + .seconds(30)) { try c.search(query, parameters: SearchParameters(k: 3)) }
        #expect(later.count == 3, "a deadline not reached changes nothing")
        await shard.close()
    }
}
