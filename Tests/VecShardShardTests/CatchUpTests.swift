import Foundation
import Synchronization
import Testing
import VecShardEngine
import VecShardSchema
import VecShardShard
import VecShardShardAPI
import VecShardStorage
import VecShardTesting

/// A peer that fails its Changes call after `pagesBeforeFailure` pages (its process dies mid-copy)
/// and counts what it sent.
private final class FlakyPeer: ForwardingShardClient, @unchecked Sendable {
    let inner: any ShardClient
    let pagesBeforeFailure: Int?
    let pages = Mutex(0)
    let items = Mutex(0)
    init(_ inner: any ShardClient, pagesBeforeFailure: Int? = nil) {
        self.inner = inner
        self.pagesBeforeFailure = pagesBeforeFailure
    }
    func changes(_ request: ChangesQuery) async throws -> ChangesPageResult {
        let n = pages.withLock { p -> Int in
            p += 1
            return p
        }
        if let limit = pagesBeforeFailure, n > limit { throw ShardCallError(.unavailable, code: "unavailable", "connection reset") }
        let page = try await inner.changes(request)
        items.withLock { $0 += page.changes.count }
        return page
    }
}

/// Catch-up by difference between two real shards (docs/ARCHITECTURE.md, "Catch-up by
/// difference"): only what changed after the version is sent, deletes included, and a catch-up
/// interrupted by a failure (or a restart) resumes from the persisted point.
@Suite struct CatchUpTests {
    static let schema = CollectionSchema(name: "c", dimension: 2, metric: .l2, index: IndexSpec(kind: .flat))

    static func contents(_ shard: LocalShard) async throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        let collection = try shard.storage.collection("c")
        try await collection.forEachLivePoint { for p in $0 { out[p.id] = p.vector } }
        return out
    }

    @Test func aReplicaCatchesUpOnlyOnWhatItMissedAndResumesAfterAFailure() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-catchup-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let here = LocalShard(name: "a", storage: try await Shard.open(directory: root + "/here"))
        let there = LocalShard(name: "a", storage: try await Shard.open(directory: root + "/there"))
        for s in [here, there] { _ = try await s.createCollection(Self.schema) }
        // 1,000 points written to both (as a router writes to every replica), then 30 upserts and
        // 10 deletes that only the peer got while this replica was away.
        let base = WriteVersion.wallClock()
        let points = (0..<1000).map { Point(id: "p\($0)", vector: [Float($0), 1]) }
        for s in [here, there] { _ = try await s.upsert(collection: "c", points: points, version: base) }
        let missedAfter = base + 1
        for i in 0..<30 { _ = try await there.upsert(collection: "c", points: [Point(id: "n\(i)", vector: [0, Float(i)])], version: base + 10 + UInt64(i)) }
        _ = try await there.delete(collection: "c", ids: (0..<10).map { "p\($0)" }, version: base + 100)

        // A catch-up whose peer dies after one page: it fails, and the point is kept on disk.
        let file = root + "/CATCHUP"
        let flaky = FlakyPeer(there, pagesBeforeFailure: 1)
        let replica = RepairableShard(here, awaitSync: false, catchUpFile: file, pageSize: 8, connect: { _ in flaky })
        await #expect(throws: ShardCallError.self) { try await replica.sync(ReplicaSync(peers: ["peer"], force: true, afterVersion: missedAfter)) }
        #expect(FileManager.default.fileExists(atPath: file), "the catch-up point survives the failure")
        #expect(replica.replicaState == .awaitingSync, "a replica whose catch-up failed knows it lacks writes: no reads")
        #expect(try await replica.stats().catchUpPending)

        // "Restarted": a new RepairableShard over the same data starts awaiting from the file.
        let peer = FlakyPeer(there)
        let restarted = RepairableShard(here, awaitSync: false, catchUpFile: file, margin: .zero, pageSize: 8, connect: { _ in peer })
        #expect(restarted.replicaState == .awaitingSync)
        let outcome = try await restarted.sync(ReplicaSync(peers: ["peer"]))
        #expect(outcome.replicaState == .serving && outcome.mode == "changes")
        #expect(!FileManager.default.fileExists(atPath: file))
        #expect(peer.items.withLock { $0 } == 40, "only the 30 upserts and 10 deletes it missed travel, not the 1,000 points")
        #expect(try await Self.contents(here) == (try await Self.contents(there)))
        let (h, t) = (try here.storage.collection("c").versionState, try there.storage.collection("c").versionState)
        #expect(h == t, "same version and checksum")
        await here.storage.close()
        await there.storage.close()
    }

    @Test func withoutARouterPointARestartedReplicaGoesBackItsMargin() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-catchup-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let here = LocalShard(name: "a", storage: try await Shard.open(directory: root + "/here"))
        let there = LocalShard(name: "a", storage: try await Shard.open(directory: root + "/there"))
        for s in [here, there] { _ = try await s.createCollection(Self.schema) }
        let now = WriteVersion.wallClock()
        let old = now - WriteVersion.span(seconds: 3600)
        for s in [here, there] { _ = try await s.upsert(collection: "c", points: (0..<100).map { Point(id: "old\($0)", vector: [1, Float($0)]) }, version: old) }
        // Both got a write a second ago; the peer also one this replica missed just before it died.
        for s in [here, there] { _ = try await s.upsert(collection: "c", points: [Point(id: "recent", vector: [2, 2])], version: now - WriteVersion.span(seconds: 1)) }
        _ = try await there.upsert(collection: "c", points: [Point(id: "inflight", vector: [3, 3])], version: now - WriteVersion.span(seconds: 2))
        let peer = FlakyPeer(there)
        let replica = RepairableShard(here, awaitSync: true, margin: .seconds(30), connect: { _ in peer })
        let outcome = try await replica.sync(ReplicaSync(peers: ["peer"]))
        #expect(outcome.replicaState == .serving)
        #expect(try await here.get(collection: "c", ids: ["inflight"], includeVector: true).count == 1,
                "a write older than its newest one, within the margin, is caught up")
        #expect(peer.items.withLock { $0 } == 2, "the hour-old points are not sent again")
        await here.storage.close()
        await there.storage.close()
    }

    /// Two routers ask for a catch-up: one after version F_A while it runs, the other after a
    /// lower F_B (it saw an earlier write missed). The second does not just join the first: once
    /// it is done, the replica catches up again from F_B.
    @Test func aLowerCatchUpPointThanTheRunningOneCatchesUpAgain() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-catchup-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let here = LocalShard(name: "a", storage: try await Shard.open(directory: root + "/here"))
        let there = LocalShard(name: "a", storage: try await Shard.open(directory: root + "/there"))
        for s in [here, there] { _ = try await s.createCollection(Self.schema) }
        let base = WriteVersion.wallClock()
        _ = try await there.upsert(collection: "c", points: [Point(id: "early", vector: [1, 1])], version: base + 10)
        _ = try await there.upsert(collection: "c", points: [Point(id: "late", vector: [2, 2])], version: base + 20)
        let slow = SlowPeer(there)
        let replica = RepairableShard(here, awaitSync: false, connect: { _ in slow })
        let first = Task { try await replica.sync(ReplicaSync(peers: ["p"], force: true, afterVersion: base + 15)) }
        try await Task.sleep(for: .milliseconds(50))
        let second = try await replica.sync(ReplicaSync(peers: ["p"], force: true, afterVersion: base + 5))
        _ = try await first.value
        #expect(second.transferred == 2, "the second pass went back to its own point: \(second)")
        #expect(try await here.get(collection: "c", ids: ["early", "late"], includeVector: false).count == 2)
        await here.storage.close()
        await there.storage.close()
    }
}

/// A peer whose first Changes page takes 300 ms.
private final class SlowPeer: ForwardingShardClient, @unchecked Sendable {
    let inner: any ShardClient
    let calls = Mutex(0)
    init(_ inner: any ShardClient) { self.inner = inner }
    func changes(_ request: ChangesQuery) async throws -> ChangesPageResult {
        if calls.withLock({ c -> Int in c += 1; return c }) == 1 { try await Task.sleep(for: .milliseconds(300)) }
        return try await inner.changes(request)
    }
}
