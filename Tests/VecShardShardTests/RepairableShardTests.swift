import Foundation
import Testing
import VecShardEngine
import VecShardSchema
import VecShardShard
import VecShardShardAPI
import VecShardStorage
import VecShardTesting

/// A peer for a sync: a real shard whose stats also list a collection it refuses.
private struct PeerWithRefusedCollection: ForwardingShardClient {
    let inner: any ShardClient
    let refused: String
    func stats() async throws -> ShardStats {
        var stats = try await inner.stats()
        stats.refusedCollections.append(RefusedCollection(name: refused, code: "data_loss", message: "the peer's log is damaged"))
        return stats
    }
}

@Suite struct RepairableShardTests {
    /// A replica syncing from a peer that refuses one of its collections (a damaged log there)
    /// keeps its own copy of it, and still copies the rest.
    @Test func aCollectionThePeerRefusesIsNotDroppedHere() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-repair-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let here = LocalShard(name: "a", storage: try await Shard.open(directory: root + "/here"))
        let there = LocalShard(name: "a", storage: try await Shard.open(directory: root + "/there"))
        let schema = { (name: String) in CollectionSchema(name: name, dimension: 2, metric: .l2, index: IndexSpec(kind: .flat)) }
        _ = try await here.createCollection(schema("kept"))
        _ = try await here.upsert(collection: "kept", points: [Point(id: "x", vector: [1, 2])])
        _ = try await there.createCollection(schema("copied"))
        _ = try await there.upsert(collection: "copied", points: [Point(id: "y", vector: [3, 4])])
        let peer = PeerWithRefusedCollection(inner: there, refused: "kept")
        let replica = RepairableShard(here, awaitSync: true, connect: { _ in peer })
        let outcome = try await replica.sync(ReplicaSync(peers: ["peer"]))
        #expect(outcome.replicaState == .serving && outcome.source == "peer")
        #expect(Set(here.storage.listCollections().map(\.name)) == ["kept", "copied"])
        #expect(try await here.get(collection: "kept", ids: ["x"], includeVector: true).map(\.vector) == [[1, 2]])
        #expect(try await here.get(collection: "copied", ids: ["y"], includeVector: true).map(\.vector) == [[3, 4]])
        await here.storage.close()
        await there.storage.close()
    }
}
