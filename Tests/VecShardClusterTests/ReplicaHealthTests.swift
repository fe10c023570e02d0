import Synchronization
import Testing
@testable import VecShardCluster
import VecShardSchema
import VecShardShardAPI

/// A replica as a router sees it: a state for health checks (nil: unreachable), and a record of
/// the syncs it was asked for.
private final class FakeReplica: ShardClient {
    let name = "a"
    let state: Mutex<String?>
    let syncs = Mutex<[ReplicaSync]>([])

    init(state: String?) { self.state = Mutex(state) }

    private func unused() -> ShardCallError { ShardCallError(.unimplemented, code: "unused", "not used by these tests") }
    func createCollection(_ schema: CollectionSchema) async throws -> CollectionInfo { throw unused() }
    func dropCollection(_ name: String) async throws -> Bool { throw unused() }
    func describeCollection(_ name: String) async throws -> CollectionInfo { throw unused() }
    func upsert(collection: String, points: [Point], version: UInt64?) async throws -> WriteResult { throw unused() }
    func delete(collection: String, ids: [String], version: UInt64?) async throws -> WriteResult { throw unused() }
    func get(collection: String, ids: [String], includeVector: Bool) async throws -> [Point] { throw unused() }
    func search(_ request: ShardSearch) async throws -> [[SearchHit]] { throw unused() }
    func scan(_ request: ShardScan, _ body: @Sendable ([Point]) async throws -> Void) async throws { throw unused() }
    func flush(_ collection: String) async throws { throw unused() }
    func compact(_ collection: String) async throws { throw unused() }

    func stats() async throws -> ShardStats {
        guard let current = state.withLock({ $0 }) else { throw ShardCallError(.unavailable, code: "unavailable", "connection refused") }
        var s = ShardStats(shardID: name)
        s.replicaState = ReplicaState(rawValue: current)!
        return s
    }

    func sync(_ request: ReplicaSync) async throws -> SyncOutcome {
        syncs.withLock { $0.append(request) }
        state.withLock { $0 = "serving" }
        return SyncOutcome(replicaState: .serving)
    }
}

@Suite struct ReplicaHealthTests {
    private func shard(_ a: FakeReplica, _ b: FakeReplica) -> ReplicatedShard {
        ReplicatedShard(name: "a", replicas: [("A", a), ("B", b)], policy: .init(minInSyncReplicas: nil))
    }

    /// Health checks start syncs in the background: wait for them.
    private func settle(_ shard: ReplicatedShard) async throws {
        for _ in 0..<200 where shard.health.withLock({ $0.replicas.contains { $0.syncing } }) {
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func aRestartedReplicaSyncsFromItsServingPeer() async throws {
        let a = FakeReplica(state: "serving"), b = FakeReplica(state: "awaiting_sync")
        let s = shard(a, b)
        await s.checkHealth()
        try await settle(s)
        #expect(b.syncs.withLock { $0 } == [ReplicaSync(peers: ["A"])])
        #expect(a.syncs.withLock { $0 }.isEmpty)
        #expect(s.replicaStates.map(\.state) == ["serving", "serving"])
    }

    @Test func aPeerThatMissedAWriteIsStillASourceWhenItIsTheOnlyOneServing() async throws {
        // A missed a write (needsSync) and B restarted: B copies from A rather than waiting for
        // ever; then A is synced from B.
        let a = FakeReplica(state: "serving"), b = FakeReplica(state: "awaiting_sync")
        let s = shard(a, b)
        s.health.withLock { $0.writeFinished(version: 1000, applied: [false, true], failed: [0: .unavailable]) } // A missed a write B applied
        await s.checkHealth()
        try await settle(s)
        #expect(b.syncs.withLock { $0 } == [ReplicaSync(peers: ["A"])])
        await s.checkHealth()
        try await settle(s)
        #expect(a.syncs.withLock { $0 } == [ReplicaSync(peers: ["B"], force: true, afterVersion: 999)])
        let stillNeedsSync = s.health.withLock { $0.replicas[0].needsSync }
        #expect(!stillNeedsSync)
    }

    @Test func whenAWholeShardRestartsAReplicaThatMissedNoWriteIsTheSource() async throws {
        let a = FakeReplica(state: "awaiting_sync"), b = FakeReplica(state: "awaiting_sync")
        let s = shard(a, b)
        s.health.withLock { $0.writeFinished(version: 1000, applied: [false, true], failed: [0: .unavailable]) } // A missed a write B applied
        await s.checkHealth()
        try await settle(s)
        #expect(b.syncs.withLock { $0 } == [ReplicaSync(peers: [])], "B is declared up to date as it is")
        #expect(a.syncs.withLock { $0 }.isEmpty)
        await s.checkHealth()
        try await settle(s)
        #expect(a.syncs.withLock { $0 } == [ReplicaSync(peers: ["B"], force: true, afterVersion: 999)])
    }

    @Test func anUnreachableReplicaIsSuspectedAndNotSynced() async throws {
        let a = FakeReplica(state: "serving")
        let s = ReplicatedShard(name: "a", replicas: [("A", a), ("B", FakeReplica(state: nil))], policy: .init(minInSyncReplicas: nil))
        await s.checkHealth()
        try await settle(s)
        #expect(s.replicaStates.map(\.state) == ["serving", "suspect"])
        #expect(s.writeBlocker != nil, "all in sync required, one replica down: writes are refused")
        let relaxed = ReplicatedShard(name: "a", replicas: [("A", a), ("B", FakeReplica(state: nil))])
        await relaxed.checkHealth()
        #expect(relaxed.writeBlocker == nil, "the default, one in-sync replica: writes go on")
    }
}
