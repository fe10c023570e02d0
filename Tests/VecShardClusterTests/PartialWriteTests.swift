import Foundation
import Testing
import VecShardRouting
import VecShardPrimitives
import VecShardSchema
import VecShardEngine
import VecShardStorage
@testable import VecShardCluster
import VecShardShard
import VecShardShardAPI
import VecShardTesting

/// A shard that refuses every write, as one whose replicas are down does.
private struct RefusingShard: ForwardingShardClient {
    let inner: any ShardClient
    func upsert(collection: String, points: [Point], version: UInt64?) async throws -> WriteResult {
        throw ShardCallError(.unavailable, code: "write_quorum_failed", "no replica of shard '\(name)' answered")
    }
    func delete(collection: String, ids: [String], version: UInt64?) async throws -> WriteResult {
        throw ShardCallError(.unavailable, code: "write_quorum_failed", "no replica of shard '\(name)' answered")
    }
}

@Suite struct PartialWriteTests {
    /// Three shards, s1 refuses writes: a batch spanning all three fails, and the error names the
    /// shards that applied their part (their points are there) and the one that did not.
    @Test func aWriteThatSomeShardsRefusedSaysWhichAppliedIt() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-partial-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var local: [String: LocalShard] = [:]
        for name in ["s0", "s1", "s2"] { local[name] = LocalShard(name: name, storage: try await Shard.open(directory: "\(root)/\(name)")) }
        defer { for s in local.values { Task { await s.storage.close() } } }
        var clients = local.mapValues { $0 as any ShardClient }
        clients["s1"] = RefusingShard(inner: local["s1"]!)
        let topology = Topology(version: 1, groups: [ShardGroup(name: "main", shards: ["s0", "s1", "s2"].map { ShardDescriptor(name: $0) })])
        let router = try ClusterRouter(table: try RoutingTable(topology), shards: clients)
        _ = try await router.createCollection(CollectionSchema(name: "c", dimension: 2, metric: .l2, index: IndexSpec(kind: .flat)))
        let points = (0..<30).map { Point(id: "p\($0)", vector: [Float($0), 1]) }
        do {
            _ = try await router.upsert(collection: "c", points: points)
            Issue.record("a write that s1 refused succeeded")
        } catch let error as ShardCallError {
            #expect(error.code == "write_quorum_failed")
            #expect(error.appliedShards == ["s0", "s2"])
            #expect(error.failedShards == ["s1"])
            #expect(error.message.contains("applied on shards s0, s2 and not on s1"), "\(error.message)")
            let held = try local["s0"]!.storage.collection("c").count + local["s2"]!.storage.collection("c").count
            #expect(held > 0 && held < 30)
            #expect(try local["s1"]!.storage.collection("c").count == 0)
        }
        do {
            _ = try await router.delete(collection: "c", ids: points.map(\.id))
            Issue.record("a delete that s1 refused succeeded")
        } catch let error as ShardCallError {
            #expect(error.appliedShards == ["s0", "s2"] && error.failedShards == ["s1"])
        }
    }
}
