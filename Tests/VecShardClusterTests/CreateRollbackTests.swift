import Foundation
import Testing
import VecShardEngine
import VecShardRouting
import VecShardPrimitives
import VecShardSchema
import VecShardStorage
@testable import VecShardCluster
import VecShardShard
import VecShardShardAPI

/// A collection create that fails on one shard (a full disk, the collection limit) is undone
/// on the shards this call created it on, and never touches a collection that was already
/// there: no half-created name is left to be listed, answer 404 and then 500.
@Suite struct CreateRollbackTests {
    @Test func aCreateThatFailsOnOneShardLeavesNothingOnTheOthers() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-rollback-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var limited = StorageOptions()
        limited.maxCollections = 1
        let s0 = LocalShard(name: "s0", storage: try await Shard.open(directory: root + "/s0"))
        let s1 = LocalShard(name: "s1", storage: try await Shard.open(directory: root + "/s1", options: limited))
        let topology = Topology(version: 1, groups: [ShardGroup(name: "default", shards: [ShardDescriptor(name: "s0"), ShardDescriptor(name: "s1")])])
        let router = try ClusterRouter(table: try RoutingTable(topology), shards: ["s0": s0, "s1": s1])
        func create(_ name: String) async throws -> CollectionInfo {
            try await router.createCollection(CollectionSchema(name: name, dimension: 2, metric: .l2, index: IndexSpec(kind: .flat)))
        }
        _ = try await create("first") // s1 is now at its limit
        do {
            _ = try await create("second")
            Issue.record("created past s1's limit")
        } catch let e as ShardCallError {
            #expect(e.code == "limit_exceeded", "\(e)")
        }
        #expect(s0.storage.listCollections().map(\.name) == ["first"], "undone on s0")
        #expect(try await router.listCollections().map(\.name) == ["first"])
        // Creating `first` again (idempotent) while s1 refuses nothing keeps it everywhere.
        _ = try await create("first")
        // A failure never drops a collection that existed before the call.
        _ = try await s0.storage.createCollection(CollectionSchema(name: "third", dimension: 2, metric: .l2))
        await #expect(throws: ShardCallError.self) { _ = try await create("third") }
        #expect(s0.storage.listCollections().map(\.name) == ["first", "third"])
        await s0.storage.close()
        await s1.storage.close()
    }
}
