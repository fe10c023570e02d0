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

/// Two groups of in-process shards: `main` (s0, s1) and `books` (b0); collection `products` is
/// routed by its `category` field (books and comics → books, everything else → main).
func withTwoGroups<T>(_ body: (ClusterRouter, [String: LocalShard]) async throws -> T) async throws -> T {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-2tier-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: root) }
    var shards: [String: LocalShard] = [:]
    for name in ["s0", "s1", "b0"] {
        shards[name] = LocalShard(name: name, storage: try await Shard.open(directory: "\(root)/\(name)"))
    }
    let topology = Topology(version: 1, groups: [
        ShardGroup(name: "main", shards: [ShardDescriptor(name: "s0"), ShardDescriptor(name: "s1")]),
        ShardGroup(name: "books", shards: [ShardDescriptor(name: "b0")]),
    ], collections: ["products": CollectionRouting(shardKey: "category", groups: ["books": "books", "comics": "books"], defaultGroup: "main")])
    let router = try ClusterRouter(table: try RoutingTable(topology), shards: shards.mapValues { $0 as any ShardClient })
    _ = try await router.createCollection(CollectionSchema(name: "products", dimension: 2, metric: .l2,
                                                                  index: IndexSpec(kind: .flat), shardKey: "category"))
    let result: Result<T, any Error>
    do { result = .success(try await body(router, shards)) } catch { result = .failure(error) }
    for shard in shards.values { await shard.storage.close() }
    return try result.get()
}

private func point(_ id: String, _ x: Float, _ category: String) -> Point {
    Point(id: id, vector: [x, 0], metadata: ["category": .string(category)])
}

@Suite struct TwoTierPlacementTests {
    @Test func aFilterOnTheShardKeyReachesOnlyItsGroup() async throws {
        try await withTwoGroups { router, shards in
            let points = (0..<60).map { point("p\($0)", Float($0), ["books", "music", "garden"][$0 % 3]) }
            _ = try await router.upsert(collection: "products", points: points)
            #expect(try shards["b0"]!.storage.collection("products").count == 20)
            let before = router.shardRequestCounts
            let pinned = try await router.search(collection: "products", queries: [
                ShardQuery(vector: [0, 0], filter: ["category": .equals(.string("books"))], k: 5)])
            let after = router.shardRequestCounts
            #expect(after["b0"]! - before["b0"]! == 1)
            #expect(after["s0"]! == before["s0"]! && after["s1"]! == before["s1"]!)
            #expect(pinned.shardsAsked == 1)
            #expect(pinned.results[0].map(\.id) == ["p0", "p3", "p6", "p9", "p12"])
            // IN over values of both groups asks both; no filter asks every shard.
            let both = try await router.search(collection: "products", queries: [
                ShardQuery(vector: [0, 0], filter: ["category": .oneOf([.string("comics"), .string("music")])], k: 3)])
            #expect(both.shardsAsked == 3)
            #expect(both.results[0].map(\.id) == ["p1", "p4", "p7"])
            let all = try await router.search(collection: "products", queries: [ShardQuery(vector: [0, 0], k: 4)])
            #expect(all.shardsAsked == 3)
            #expect(all.results[0].map(\.id) == ["p0", "p1", "p2", "p3"])
        }
    }

    @Test func aPointWhoseShardKeyChangesMovesAndLeavesNoStaleCopy() async throws {
        try await withTwoGroups { router, shards in
            _ = try await router.upsert(collection: "products", points: [point("x", 1, "music")])
            let mainCopies = try ["s0", "s1"].map { try shards[$0]!.storage.collection("products").get("x") }.compactMap { $0 }
            #expect(mainCopies.count == 1)
            _ = try await router.upsert(collection: "products", points: [point("x", 2, "books")])
            for name in ["s0", "s1"] { #expect(try shards[name]!.storage.collection("products").get("x") == nil, "stale copy on \(name)") }
            #expect(try shards["b0"]!.storage.collection("products").get("x")?.vector == [2, 0])
            let got = try await router.get(collection: "products", id: "x")
            #expect(got?.vector == [2, 0] && got?.metadata["category"] == .string("books"))
            let oldGroup = try await router.search(collection: "products", queries: [
                ShardQuery(vector: [2, 0], filter: ["category": .equals(.string("music"))], k: 5)])
            #expect(oldGroup.results[0].isEmpty)
            let newGroup = try await router.search(collection: "products", queries: [
                ShardQuery(vector: [2, 0], filter: ["category": .equals(.string("books"))], k: 5)])
            #expect(newGroup.results[0].map(\.id) == ["x"])
            // A value with no group goes to the default group, and the books copy is removed.
            _ = try await router.upsert(collection: "products", points: [point("x", 3, "garden")])
            #expect(try shards["b0"]!.storage.collection("products").get("x") == nil)
            #expect(try await router.get(collection: "products", id: "x")?.vector == [3, 0])
            // Deleting finds it wherever it lives.
            #expect(try await router.delete(collection: "products", ids: ["x"]).applied == 1)
            #expect(try await router.get(collection: "products", id: "x") == nil)
        }
    }

    @Test func aBatchWithABadPointWritesNothingAnywhere() async throws {
        try await withTwoGroups { router, shards in
            let batch = [point("ok1", 1, "books"), point("ok2", 2, "music"), Point(id: "bad", vector: [1, .nan])]
            await #expect(throws: ShardCallError.self) { _ = try await router.upsert(collection: "products", points: batch) }
            for shard in shards.values {
                let count = try shard.storage.collection("products").count
                #expect(count == 0)
            }
        }
    }
}

@Suite struct TopKMergerTests {
    @Test func keepsTheBestKDeduplicatedInScoreThenIDOrder() {
        var merger = TopKMerger(k: 3)
        merger.add(contentsOf: [SearchHit(id: "a", score: 0.5), SearchHit(id: "b", score: 0.9)])
        merger.add(contentsOf: [SearchHit(id: "a", score: 0.95), SearchHit(id: "c", score: 0.1),
                                SearchHit(id: "d", score: 0.9), SearchHit(id: "e", score: 0.2)])
        #expect(merger.result().map(\.id) == ["a", "b", "d"])
        #expect(merger.result().map(\.score) == [0.95, 0.9, 0.9])
    }

    @Test func matchesSortingOnRandomInput() {
        var state: UInt64 = 99
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        for k in [1, 5, 50] {
            var merger = TopKMerger(k: k)
            var best: [String: Float] = [:]
            for _ in 0..<500 {
                let id = "i\(next() % 120)", score = Float(next() % 1000) / 10
                merger.add(SearchHit(id: id, score: score))
                best[id] = max(best[id] ?? -.infinity, score)
            }
            let expected = best.map { SearchHit(id: $0.key, score: $0.value) }.sorted(by: TopKMerger.better).prefix(k)
            #expect(merger.result() == Array(expected))
        }
    }
}
