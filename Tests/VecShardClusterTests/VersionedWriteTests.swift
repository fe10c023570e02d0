import Foundation
import Synchronization
import Testing
import VecShardEngine
import VecShardSchema
import VecShardStorage
@testable import VecShardCluster
import VecShardShard
import VecShardShardAPI
import VecShardTesting

/// A replica that can be switched off (its calls fail as a dead process's do).
private final class Switchable: ForwardingShardClient, @unchecked Sendable {
    let inner: any ShardClient
    let down = Mutex(false)
    init(_ inner: any ShardClient) { self.inner = inner }
    private func check() throws { if down.withLock({ $0 }) { throw ShardCallError(.unavailable, code: "unavailable", "connection refused") } }
    func upsert(collection: String, points: [Point], version: UInt64?) async throws -> WriteResult {
        try check()
        return try await inner.upsert(collection: collection, points: points, version: version)
    }
    func delete(collection: String, ids: [String], version: UInt64?) async throws -> WriteResult {
        try check()
        return try await inner.delete(collection: collection, ids: ids, version: version)
    }
    func stats() async throws -> ShardStats {
        try check()
        return try await inner.stats()
    }
    func search(_ request: ShardSearch) async throws -> [[SearchHit]] {
        try check()
        return try await inner.search(request)
    }
}

/// The router's side of versioned replicas over two real in-process replicas: versions stamped
/// and re-stamped above a replica's, writes acknowledged by the in-sync set, a replica that
/// missed a write kept out of reads.
@Suite struct VersionedWriteTests {
    static let schema = CollectionSchema(name: "c", dimension: 2, metric: .l2, index: IndexSpec(kind: .flat))

    func replicas(_ root: String) async throws -> (LocalShard, LocalShard) {
        let a = LocalShard(name: "s", storage: try await Shard.open(directory: root + "/a"))
        let b = LocalShard(name: "s", storage: try await Shard.open(directory: root + "/b"))
        for r in [a, b] { _ = try await r.createCollection(Self.schema) }
        return (a, b)
    }

    @Test func aWriteBehindAnotherRoutersClockIsStampedAgainAboveIt() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-versions-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (a, b) = try await replicas(root)
        // Another router, its clock an hour ahead, wrote "x" to both replicas.
        let ahead = WriteVersion.wallClock() + WriteVersion.span(seconds: 3600)
        for r in [a, b] { _ = try await r.upsert(collection: "c", points: [Point(id: "x", vector: [1, 1])], version: ahead) }
        let shard = ReplicatedShard(name: "s", replicas: [("A", a), ("B", b)])
        let result = try await shard.upsert(collection: "c", points: [Point(id: "x", vector: [2, 2])])
        #expect(result.version > ahead, "the later write wins although this router's clock is behind")
        for r in [a, b] {
            #expect(try await r.get(collection: "c", ids: ["x"], includeVector: true).first?.vector == [2, 2])
            #expect(try r.storage.collection("c").version(of: "x")?.version == result.version)
        }
        // The next write of this router is stamped above what it saw.
        let next = try await shard.delete(collection: "c", ids: ["x"])
        #expect(next.version > result.version)
        await a.storage.close()
        await b.storage.close()
    }

    @Test func withOneInSyncReplicaWritesGoOnAndTheReplicaThatMissedThemGetsNoReads() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-versions-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (a, b) = try await replicas(root)
        let switchable = Switchable(b)
        let shard = ReplicatedShard(name: "s", replicas: [("A", a), ("B", switchable)])
        _ = try await shard.upsert(collection: "c", points: [Point(id: "p0", vector: [0, 0])])
        switchable.down.withLock { $0 = true }
        let written = try await shard.upsert(collection: "c", points: [Point(id: "p1", vector: [1, 1])])
        #expect(written.failedReplicas == ["B"], "acknowledged by A alone, B named")
        #expect(shard.replicaStates.map(\.state) == ["serving", "suspect"])
        #expect(shard.health.withLock { $0.replicas[1].needsSync && $0.replicas[1].missedAfter == written.version - 1 })
        #expect(shard.health.withLock { $0.readable() } == [0], "B missed an acknowledged write: no reads from it")
        _ = try await shard.delete(collection: "c", ids: ["p0"])
        #expect(shard.writeBlocker == nil)
        // With every replica required, the same write is refused before anything is written.
        let strict = ReplicatedShard(name: "s", replicas: [("A", a), ("B", switchable)], policy: .init(minInSyncReplicas: nil))
        await strict.checkHealth()
        #expect(strict.writeBlocker?.contains("--min-in-sync-replicas is 2") == true, "\(strict.writeBlocker ?? "")")
        await a.storage.close()
        await b.storage.close()
    }

    @Test func readsWaitForATokensVersionAndNeedTheReplicasTheirLevelAsksFor() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-versions-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (a, b) = try await replicas(root)
        let switchable = Switchable(b)
        let shard = ReplicatedShard(name: "s", replicas: [("A", a), ("B", switchable)])
        let written = try await shard.upsert(collection: "c", points: [Point(id: "p", vector: [1, 1])])
        let query = ShardSearch(collection: "c", queries: [ShardQuery(vector: [1, 1], k: 1)])
        // A token of this write: both replicas made it durable for this router.
        let hits = try await ReadRequirement.$current.withValue(ReadRequirement(minVersions: ["s": written.version])) {
            try await shard.search(query)
        }
        #expect(hits.first?.first?.id == "p")
        for level in [ReadConsistency.majority, .all] {
            let r = try await ReadRequirement.$current.withValue(ReadRequirement(consistency: level)) { try await shard.search(query) }
            #expect(r.first?.first?.id == "p")
        }
        // A version no replica has reached (another router's write still on its way): refused
        // at the deadline, naming the shard.
        let ahead = written.version + WriteVersion.span(seconds: 60)
        await #expect(throws: ShardCallError.self) {
            try await RequestDeadline.$current.withValue(ContinuousClock.now + .milliseconds(200)) {
                try await ReadRequirement.$current.withValue(ReadRequirement(minVersions: ["s": ahead])) { try await shard.search(query) }
            }
        }
        // One replica down: `all` cannot be met, `one` still can.
        switchable.down.withLock { $0 = true }
        await shard.checkHealth()
        do {
            _ = try await RequestDeadline.$current.withValue(ContinuousClock.now + .milliseconds(200)) {
                try await ReadRequirement.$current.withValue(ReadRequirement(consistency: .all)) { try await shard.search(query) }
            }
            Issue.record("a read at consistency all answered with a replica down")
        } catch let error as ShardCallError {
            #expect(error.code == "consistency_unavailable" && error.message.contains("shard 's'"), "\(error)")
        }
        #expect(try await shard.search(query).first?.first?.id == "p")
        await a.storage.close()
        await b.storage.close()
    }

    @Test func theHeldVersionIsReadAfterTheIDWhateverTheIDHolds() {
        let error = ShardCallError(.failedPrecondition, code: "stale_version",
                                   "collection 'c': point 'x holds version 5' holds version 777, the write offered 600; nothing was written (stamp above 777 and retry)")
        #expect(ReplicatedShard.heldVersion(in: error) == 777)
    }
}
