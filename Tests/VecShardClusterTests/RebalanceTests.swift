import Foundation
import Synchronization
import Testing
import VecShardEngine
import VecShardRouting
import VecShardSchema
import VecShardStorage
@testable import VecShardCluster
import VecShardShard
import VecShardShardAPI

/// Online rebalancing over real in-process shards (docs/ARCHITECTURE.md, "Online rebalancing"):
/// grow, shrink, promote a shard-key value and back, abort, a router that stops mid-copy and a
/// new one that resumes, all under concurrent writes and exact searches; afterwards every
/// acknowledged write is on exactly its owner with its last value and no deleted id is back.
@Suite(.serialized) struct RebalanceTests {
    static let dimension = 4

    final class Cluster: @unchecked Sendable {
        let root: String
        var shards: [String: LocalShard] = [:]
        init(root: String) { self.root = root }

        func shard(_ name: String) async throws -> LocalShard {
            if let s = shards[name] { return s }
            let s = LocalShard(name: name, storage: try await Shard.open(directory: root + "/" + name))
            shards[name] = s
            return s
        }

        func clients(_ names: [String]) async throws -> [String: any ShardClient] {
            var out: [String: any ShardClient] = [:]
            for n in names { out[n] = try await shard(n) }
            return out
        }

        func close() async { for s in shards.values { await s.storage.close() } }
    }

    final class Box<T>: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: T
        init(_ v: T) { stored = v }
        var value: T {
            get { lock.withLock { stored } }
            set { lock.withLock { stored = newValue } }
        }
        func update(_ f: (inout T) -> Void) { lock.withLock { f(&stored) } }
    }

    /// What the test acknowledged: id → last vector (nil: deleted).
    final class Oracle: @unchecked Sendable {
        let lock = NSLock()
        var points: [String: [Float]?] = [:]
        var metadata: [String: Metadata] = [:]
        func set(_ id: String, _ v: [Float]?, _ m: Metadata = [:]) { lock.withLock { points[id] = v; metadata[id] = m } }
        var snapshot: [String: [Float]?] { lock.withLock { points } }
        /// The write round (a vector's second component) acknowledged last per id.
        var rounds: [String: Float] { lock.withLock { points.compactMapValues { $0?[1] } } }
    }

    static func topology(_ version: UInt64, _ groups: [(String, [String])], collections: [String: CollectionRouting] = [:]) -> Topology {
        Topology(version: version, groups: groups.map { ShardGroup(name: $0.0, shards: $0.1.map { ShardDescriptor(name: $0) }) },
                 collections: collections)
    }

    static func vector(_ i: Int, _ round: Int) -> [Float] { [Float(i), Float(round), Float(i % 7), 1] }

    func root() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-rebalance-\(UUID().uuidString)").path
    }

    /// Writes (upserts and deletes) and exact searches while `body` runs; every search must
    /// succeed and return distinct ids.
    func underLoad(_ router: ClusterRouter, oracle: Oracle, ids: Int, tenant: (@Sendable (Int) -> String)? = nil,
                   _ body: () async throws -> Void) async throws {
        let stop = Box(false)
        let failures = Box<[String]>([])
        let writer = Task {
            var round = 1
            while !stop.value {
                let i = Int.random(in: 0..<ids)
                do {
                    if i % 11 == 0 {
                        _ = try await router.delete(collection: "c", ids: ["p\(i)"])
                        oracle.set("p\(i)", nil)
                    } else {
                        let m: Metadata = tenant.map { ["tenant": .string($0(i))] } ?? [:]
                        let v = Self.vector(i, round)
                        _ = try await router.upsert(collection: "c", points: [Point(id: "p\(i)", vector: v, metadata: m)])
                        oracle.set("p\(i)", v, m)
                    }
                } catch {
                    failures.update { $0.append("write: \(error)") }
                }
                round += 1
                try? await Task.sleep(for: .microseconds(200))
            }
        }
        let searcher = Task {
            while !stop.value {
                do {
                    var q = ShardQuery(vector: [Float.random(in: 0..<Float(ids)), 3, 2, 1], k: 10)
                    q.includeVector = true
                    let before = oracle.rounds
                    let out = try await router.search(collection: "c", queries: [q])
                    let hits = out.results[0]
                    // No stale copy: a hit is at least as new as what was acknowledged before the search.
                    for hit in hits where (hit.vector?[1] ?? 0) < (before[hit.id] ?? 0) {
                        failures.update { $0.append("stale copy of \(hit.id): round \(hit.vector?[1] ?? -1) < \(before[hit.id]!)") }
                    }
                    if Set(hits.map(\.id)).count != hits.count { failures.update { $0.append("duplicate ids in \(hits.map(\.id))") } }
                    if hits.count != 10 { failures.update { $0.append("\(hits.count) hits") } }
                } catch {
                    failures.update { $0.append("search: \(error)") }
                }
                try? await Task.sleep(for: .microseconds(500))
            }
        }
        try await body()
        stop.value = true
        await writer.value
        await searcher.value
        let seen = failures.value
        #expect(seen.isEmpty, "\(seen.prefix(5))")
    }

    /// Every acknowledged point is on exactly its owner under `table` with its last vector;
    /// deleted ids are nowhere; the other shards of `all` hold no copy.
    func check(_ cluster: Cluster, _ table: RoutingTable, oracle: Oracle, all: [String]) async throws {
        var placed: [String: [String]] = [:]
        for name in all {
            guard let shard = cluster.shards[name], let collection = try? shard.storage.collection("c") else { continue }
            try await collection.forEachLivePoint { points in for p in points { placed[p.id, default: []].append(name) } }
        }
        var wrong = 0, lost = 0, deletedBack = 0, duplicated = 0, stale = 0
        for (id, vector) in oracle.snapshot {
            let holders = placed[id] ?? []
            guard let vector else {
                if !holders.isEmpty { deletedBack += 1 }
                continue
            }
            let value = oracle.metadata[id]?["tenant"]?.shardKeyText
            let owner = table.target(collection: "c", id: id, shardKeyValue: value).shard
            if holders.isEmpty {
                lost += 1
                var holders2: [String] = []
                for name in all {
                    if let c = try? cluster.shards[name]?.storage.collection("c"), let v = c.version(of: id) { holders2.append("\(name): \(v)") }
                }
                print("LOST \(id) \(vector) tenant \(value ?? "-") owner \(owner) versions \(holders2)")
                continue
            }
            if holders.count > 1 { duplicated += 1 }
            if !holders.contains(owner) { wrong += 1; continue }
            let got = try await cluster.shards[owner]!.get(collection: "c", ids: [id], includeVector: true).first?.vector
            if got != vector { stale += 1 }
        }
        #expect(lost == 0 && deletedBack == 0 && duplicated == 0 && wrong == 0 && stale == 0,
                "lost \(lost), deleted back \(deletedBack), in two places \(duplicated), on a wrong shard \(wrong), stale \(stale)")
    }

    func seed(_ router: ClusterRouter, oracle: Oracle, count: Int, tenant: (@Sendable (Int) -> String)? = nil) async throws {
        let schema = CollectionSchema(name: "c", dimension: Self.dimension, metric: .l2, index: IndexSpec(kind: .flat))
        _ = try await router.createCollection(schema)
        var batch: [Point] = []
        for i in 0..<count {
            let m: Metadata = tenant.map { ["tenant": .string($0(i))] } ?? [:]
            batch.append(Point(id: "p\(i)", vector: Self.vector(i, 0), metadata: m))
            oracle.set("p\(i)", Self.vector(i, 0), m)
            if batch.count == 500 {
                _ = try await router.upsert(collection: "c", points: batch)
                batch = []
            }
        }
        if !batch.isEmpty { _ = try await router.upsert(collection: "c", points: batch) }
    }

    @Test func growingAGroupMovesOnlyTheNewShardsPointsUnderLoad() async throws {
        let root = root(), cluster = Cluster(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let before = Self.topology(1, [("main", ["s0", "s1", "s2"])])
        let router = try ClusterRouter(table: try RoutingTable(before), shards: try await cluster.clients(["s0", "s1", "s2", "s3"]),
                                       rebalanceStore: MemoryRebalanceStore(), rebalancePointsPerSecond: 1000)
        let oracle = Oracle()
        try await seed(router, oracle: oracle, count: 2000)
        let after = Self.topology(2, [("main", ["s0", "s1", "s2", "s3"])])
        try await underLoad(router, oracle: oracle, ids: 2000) {
            let change = try await router.replaceTopology(after, expectedVersion: 1) { _ in Issue.record("no new client"); throw CancellationError() }
            #expect(change.rebalance?.phase == .copying)
            // One at a time.
            await #expect(throws: ShardCallError.self) {
                try await router.replaceTopology(Self.topology(3, [("main", ["s0", "s1"])]), expectedVersion: nil) { _ in throw CancellationError() }
            }
            #expect(router.table.topology.version == 1, "reads use the old layout until the flip")
            await router.waitForRebalance()
        }
        let status = try #require(router.rebalanceStatus?.record)
        #expect(status.phase == .done)
        #expect(router.table.topology == after)
        // Only the points the new shard owns moved: about a quarter (never more than 1/4 + 5% here).
        let live = oracle.snapshot.values.filter { $0 != nil }.count
        #expect(status.movedPoints > 0 && Double(status.movedPoints) <= Double(live + 200) * 0.30, "\(status.movedPoints) of \(live)")
        try await check(cluster, router.table, oracle: oracle, all: ["s0", "s1", "s2", "s3"])
        await cluster.close()
    }

    @Test func removingAShardDrainsItAndDropsItsCollections() async throws {
        let root = root(), cluster = Cluster(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let before = Self.topology(4, [("main", ["s0", "s1", "s2", "s3"])])
        let router = try ClusterRouter(table: try RoutingTable(before), shards: try await cluster.clients(["s0", "s1", "s2", "s3"]),
                                       rebalanceStore: MemoryRebalanceStore(), rebalancePointsPerSecond: 8000)
        let oracle = Oracle()
        try await seed(router, oracle: oracle, count: 1500)
        let after = Self.topology(5, [("main", ["s0", "s1", "s2"])])
        try await underLoad(router, oracle: oracle, ids: 1500) {
            _ = try await router.replaceTopology(after, expectedVersion: 4) { _ in throw CancellationError() }
            await router.waitForRebalance()
        }
        #expect(router.rebalanceStatus?.record.phase == .done)
        #expect(router.table.topology == after)
        #expect(cluster.shards["s3"]!.storage.listCollections().isEmpty, "the removed shard dropped its copy")
        try await check(cluster, router.table, oracle: oracle, all: ["s0", "s1", "s2", "s3"])
        await cluster.close()
    }

    @Test func aTenantMovesToItsOwnGroupAndBackWithoutLosingAWrite() async throws {
        let root = root(), cluster = Cluster(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tenant: @Sendable (Int) -> String = { $0 % 3 == 0 ? "big" : "t\($0 % 5)" }
        let routing = CollectionRouting(shardKey: "tenant", defaultGroup: "main")
        let v1 = Self.topology(1, [("main", ["m0", "m1"]), ("solo", ["b0"])], collections: ["c": routing])
        let router = try ClusterRouter(table: try RoutingTable(v1), shards: try await cluster.clients(["m0", "m1", "b0"]),
                                       rebalanceStore: MemoryRebalanceStore(), rebalancePointsPerSecond: 8000)
        let oracle = Oracle()
        try await seed(router, oracle: oracle, count: 1200, tenant: tenant)
        var promoted = routing
        promoted.groups = ["big": "solo"]
        let v2 = Self.topology(2, [("main", ["m0", "m1"]), ("solo", ["b0"])], collections: ["c": promoted])
        try await underLoad(router, oracle: oracle, ids: 1200, tenant: tenant) {
            _ = try await router.replaceTopology(v2, expectedVersion: 1) { _ in throw CancellationError() }
            await router.waitForRebalance()
        }
        #expect(router.rebalanceStatus?.record.phase == .done)
        try await check(cluster, router.table, oracle: oracle, all: ["m0", "m1", "b0"])
        // No stale copy of the tenant is left in the old group.
        for name in ["m0", "m1"] {
            var left = 0
            try await cluster.shards[name]!.storage.collection("c").forEachLivePoint { ps in left += ps.filter { $0.metadata["tenant"] == .string("big") }.count }
            #expect(left == 0, "\(name) still holds \(left) points of the promoted tenant")
        }
        // And back: the old group holds tombstones of these ids from the clean-up, newer than
        // the points' own versions; the copy must still win over them.
        let v3 = Self.topology(3, [("main", ["m0", "m1"]), ("solo", ["b0"])], collections: ["c": routing])
        try await underLoad(router, oracle: oracle, ids: 1200, tenant: tenant) {
            _ = try await router.replaceTopology(v3, expectedVersion: 2) { _ in throw CancellationError() }
            await router.waitForRebalance()
        }
        #expect(router.rebalanceStatus?.record.phase == .done)
        try await check(cluster, router.table, oracle: oracle, all: ["m0", "m1", "b0"])
        #expect(try cluster.shards["b0"]!.storage.collection("c").count == 0)
        await cluster.close()
    }

    /// A shard that changes group (and so is a target under one name, a source under another):
    /// the clean-up judges each point by the kept layout, never by group names.
    @Test func aShardMovingToAnotherGroupKeepsWhatItOwnsThere() async throws {
        let root = root(), cluster = Cluster(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tenant: @Sendable (Int) -> String = { $0 % 4 == 0 ? "x" : "y" }
        let routing = CollectionRouting(shardKey: "tenant", groups: ["x": "g2"], defaultGroup: "g1")
        let v1 = Self.topology(1, [("g1", ["a", "b"]), ("g2", ["c"])], collections: ["c": routing])
        let router = try ClusterRouter(table: try RoutingTable(v1), shards: try await cluster.clients(["a", "b", "c"]),
                                       rebalanceStore: MemoryRebalanceStore(), rebalancePointsPerSecond: 8000)
        let oracle = Oracle()
        try await seed(router, oracle: oracle, count: 1200, tenant: tenant)
        let v2 = Self.topology(2, [("g1", ["a"]), ("g2", ["c", "b"])], collections: ["c": routing])
        try await underLoad(router, oracle: oracle, ids: 1200, tenant: tenant) {
            _ = try await router.replaceTopology(v2, expectedVersion: 1) { d in cluster.shards[d.name]! } // same shard, another group
            await router.waitForRebalance()
        }
        #expect(router.rebalanceStatus?.record.phase == .done)
        try await check(cluster, router.table, oracle: oracle, all: ["a", "b", "c"])
        #expect(try cluster.shards["b"]!.storage.collection("c").count > 0, "b owns part of g2 now")
        await cluster.close()
    }

    /// A collection the topology does not list lives in the first group: a new group put first
    /// moves it (and is not applied at once as if nothing moved).
    @Test func aGroupInsertedFirstMovesTheUnlistedCollections() async throws {
        let root = root(), cluster = Cluster(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let v1 = Self.topology(1, [("main", ["s0", "s1"])])
        let router = try ClusterRouter(table: try RoutingTable(v1), shards: try await cluster.clients(["s0", "s1", "n0"]),
                                       rebalanceStore: MemoryRebalanceStore(), rebalancePointsPerSecond: 8000)
        let oracle = Oracle()
        try await seed(router, oracle: oracle, count: 800)
        let v2 = Self.topology(2, [("new", ["n0"]), ("main", ["s0", "s1"])])
        try await underLoad(router, oracle: oracle, ids: 800) {
            let change = try await router.replaceTopology(v2, expectedVersion: 1) { _ in throw CancellationError() }
            #expect(change.rebalance != nil)
            await router.waitForRebalance()
        }
        #expect(router.rebalanceStatus?.record.phase == .done)
        try await check(cluster, router.table, oracle: oracle, all: ["s0", "s1", "n0"])
        await cluster.close()
    }

    @Test func anAbortReturnsToTheOldLayoutWithEveryWrite() async throws {
        let root = root(), cluster = Cluster(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let before = Self.topology(1, [("main", ["s0", "s1"])])
        let router = try ClusterRouter(table: try RoutingTable(before), shards: try await cluster.clients(["s0", "s1", "s2"]),
                                       rebalanceStore: MemoryRebalanceStore(), rebalancePointsPerSecond: 1500)
        let oracle = Oracle()
        try await seed(router, oracle: oracle, count: 2000)
        try await underLoad(router, oracle: oracle, ids: 2000) {
            _ = try await router.replaceTopology(Self.topology(2, [("main", ["s0", "s1", "s2"])]), expectedVersion: 1) { _ in throw CancellationError() }
            try await Task.sleep(for: .milliseconds(150))
            #expect(try router.abortRebalance().phase == .aborting, "saved at once: a restart goes on aborting")
            await router.waitForRebalance()
        }
        #expect(router.rebalanceStatus?.record.phase == .aborted)
        #expect(router.table.topology == before)
        #expect(throws: ShardCallError.self) { try router.abortRebalance() }
        #expect(cluster.shards["s2"]!.storage.listCollections().isEmpty, "the new shard's copies are gone")
        try await check(cluster, router.table, oracle: oracle, all: ["s0", "s1", "s2"])
        await cluster.close()
    }

    @Test func aRouterStoppedMidCopyIsResumedByTheNextOne() async throws {
        let root = root(), cluster = Cluster(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try FileRebalanceStore(directory: root + "/router")
        let before = Self.topology(1, [("main", ["s0", "s1", "s2"])])
        let after = Self.topology(2, [("main", ["s0", "s1", "s2", "s3"])])
        let first = try ClusterRouter(table: try RoutingTable(before), shards: try await cluster.clients(["s0", "s1", "s2", "s3"]),
                                      rebalanceStore: store, rebalancePointsPerSecond: 1500)
        let oracle = Oracle()
        try await seed(first, oracle: oracle, count: 2000)
        try await underLoad(first, oracle: oracle, ids: 2000) {
            _ = try await first.replaceTopology(after, expectedVersion: 1) { _ in throw CancellationError() }
            try await Task.sleep(for: .milliseconds(120))
            await first.stopRebalance() // the process dies: nothing more than what the store holds survives
        }
        let saved = try store.load()
        let record = try #require(saved.rebalance)
        #expect(record.phase == .copying)
        // The next router starts from the store, like `vecshard serve --role router` does.
        let second = try ClusterRouter(table: try RoutingTable(record.from), shards: try await cluster.clients(["s0", "s1", "s2", "s3"]),
                                       rebalanceStore: store, rebalancePointsPerSecond: 0)
        try await underLoad(second, oracle: oracle, ids: 2000) {
            await second.resumeRebalance(record)
            await second.waitForRebalance()
        }
        #expect(second.rebalanceStatus?.record.phase == .done)
        #expect(try store.load().topology == after, "the flipped layout is saved for the next start")
        try await check(cluster, second.table, oracle: oracle, all: ["s0", "s1", "s2", "s3"])
        await cluster.close()
    }

    @Test func badChangesAreRefusedAndChangeNothing() async throws {
        let root = root(), cluster = Cluster(root: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let before = Self.topology(1, [("main", ["s0", "s1"])])
        let router = try ClusterRouter(table: try RoutingTable(before), shards: try await cluster.clients(["s0", "s1"]),
                                       rebalanceStore: MemoryRebalanceStore())
        let oracle = Oracle()
        try await seed(router, oracle: oracle, count: 100)
        func refused(_ t: Topology, _ ifMatch: UInt64?) async -> ShardCallError? {
            do {
                _ = try await router.replaceTopology(t, expectedVersion: ifMatch) { _ in throw CancellationError() }
                return nil
            } catch { return error as? ShardCallError }
        }
        let duplicate = await refused(Self.topology(2, [("main", ["s0", "s0"])]), 1)
        #expect(duplicate?.kind == .invalidArgument && duplicate?.message.contains("'s0' appears twice") == true)
        let unknown = await refused(Self.topology(2, [("main", ["s0", "s1"])], collections: ["c": CollectionRouting(shardKey: "k", defaultGroup: "nope")]), 1)
        #expect(unknown?.kind == .invalidArgument && unknown?.message.contains("unknown shard group 'nope'") == true)
        let stale = await refused(Self.topology(2, [("main", ["s0"])]), 7)
        #expect(stale?.kind == .failedPrecondition)
        #expect(router.table.topology == before && router.rebalanceStatus == nil)
        // A shard that still holds points of the collection from an earlier layout is not added.
        let leftover = try await cluster.shard("s9")
        _ = try await leftover.createCollection(CollectionSchema(name: "c", dimension: Self.dimension, metric: .l2, index: IndexSpec(kind: .flat)))
        _ = try await leftover.upsert(collection: "c", points: [Point(id: "old", vector: [1, 2, 3, 4])], version: nil)
        await #expect {
            _ = try await router.replaceTopology(Self.topology(2, [("main", ["s0", "s1", "s9"])]), expectedVersion: 1) { _ in leftover }
        } throws: { ($0 as? ShardCallError)?.code == "shard_not_empty" }
        #expect(router.table.topology == before)
        await cluster.close()
    }
}
