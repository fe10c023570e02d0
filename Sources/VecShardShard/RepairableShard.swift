import Synchronization
import VecShardPrimitives
import VecShardRPC
import VecShardSchema
import VecShardShardAPI
import VecShardStorage

/// A shard replica that can be brought up to date from a peer replica of the same shard (the
/// `Sync` call), for `vecshard serve --role shard`.
///
/// States: `serving` (answers everything), `awaitingSync` (started with `--await-sync` and not
/// synchronised yet) and `syncing`. Outside `serving`, reads (search, get, scan, describe) fail
/// with UNAVAILABLE `replica_catching_up`, so a router fails over to a peer; writes are taken in
/// every state. A sync compares every live point of every collection with the peer's (a Scan of
/// it): points that differ or are missing are copied, points the peer does not have are deleted.
///
/// Writes that arrive while the replica is not serving are newer than anything a scan of the peer
/// can show for their ids, so their ids are remembered ("dirty") and the sync leaves them alone.
/// The dirty check and the sync's own write of a batch happen under one gate, so a direct write
/// either lands after the copied value or makes the sync skip the id.
/// Remaining window (documented): a write that reached this replica before tracking began but
/// reaches the peer only after the peer was scanned; tracking starts at process start for
/// `--await-sync` and a settle delay precedes scans of a forced sync to close it in practice.
public final class RepairableShard: ShardClient {
    public let inner: LocalShard
    public var name: String { inner.name }
    /// Opens a client to a peer replica (host:port).
    private let connect: @Sendable (String) -> any ShardClient
    /// Before the scans of a forced sync: lets writes already in flight reach both replicas.
    private let settleDelay: Duration

    private struct Tracking {
        /// The decisions (states, dirty ids): `ReplicaSyncState`.
        var sync: ReplicaSyncState
        /// The copy in progress, which later Sync calls join.
        var running: Task<SyncOutcome, any Error>?
    }
    private let tracking: Mutex<Tracking>
    private let gate = AsyncGate()

    public init(_ inner: LocalShard, awaitSync: Bool, settleDelay: Duration = .milliseconds(500),
                connect: @escaping @Sendable (String) -> any ShardClient) {
        self.inner = inner
        self.connect = connect
        self.settleDelay = settleDelay
        tracking = Mutex(Tracking(sync: ReplicaSyncState(awaitingSync: awaitSync)))
    }

    public var replicaState: ReplicaState { tracking.withLock { $0.sync.state } }

    private func requireServing() throws {
        let state = replicaState
        guard state == .serving else {
            throw ShardCallError(.unavailable, .replicaCatchingUp,
                                 "replica of shard '\(name)' is \(state.rawValue): it takes writes but answers no reads until it is synchronised with a peer")
        }
    }

    /// Runs a write; while tracking, under the gate, marking its ids dirty only once it
    /// succeeded (a failed write must not make the sync skip those ids). Holding the gate across
    /// the write orders it against the sync's own writes: either the sync's copy lands first and
    /// this write overwrites it, or this write lands first and the sync sees the ids dirty.
    private func write<R: Sendable>(_ collection: String, _ ids: [String], _ body: () async throws -> R) async throws -> R {
        guard tracking.withLock({ $0.sync.isTracking }) else { return try await body() }
        return try await gate.run {
            let result = try await body()
            tracking.withLock { $0.sync.wrote(collection: collection, ids: ids) }
            return result
        }
    }

    // MARK: ShardClient

    public func createCollection(_ schema: CollectionSchema) async throws -> CollectionInfo {
        tracking.withLock { $0.sync.createdCollection(schema.name) }
        return try await inner.createCollection(schema)
    }

    public func dropCollection(_ name: String) async throws -> Bool { try await inner.dropCollection(name) }

    public func describeCollection(_ name: String) async throws -> CollectionInfo {
        try requireServing()
        return try await inner.describeCollection(name)
    }

    public func upsert(collection: String, points: [Point]) async throws -> WriteResult {
        try await write(collection, points.map(\.id)) { try await inner.upsert(collection: collection, points: points) }
    }

    public func delete(collection: String, ids: [String]) async throws -> WriteResult {
        try await write(collection, ids) { try await inner.delete(collection: collection, ids: ids) }
    }

    public func get(collection: String, ids: [String], includeVector: Bool) async throws -> [Point] {
        try requireServing()
        return try await inner.get(collection: collection, ids: ids, includeVector: includeVector)
    }

    public func search(_ request: ShardSearch) async throws -> [[SearchHit]] {
        try requireServing()
        return try await inner.search(request)
    }

    public func stats() async throws -> ShardStats {
        var stats = try await inner.stats()
        stats.replicaState = replicaState
        return stats
    }

    public func scan(_ request: ShardScan, _ body: @Sendable ([Point]) async throws -> Void) async throws {
        try requireServing()
        try await inner.scan(request, body)
    }

    public func flush(_ collection: String) async throws { try await inner.flush(collection) }
    public func compact(_ collection: String) async throws { try await inner.compact(collection) }

    // MARK: sync

    /// Cancels a sync in progress and waits until it has stopped writing (shutdown).
    public func stopSync() async {
        guard let running = tracking.withLock({ $0.running }) else { return }
        running.cancel()
        _ = try? await running.value
    }

    public func sync(_ request: ReplicaSync) async throws -> SyncOutcome {
        let task: Task<SyncOutcome, any Error>? = tracking.withLock { t in
            if let running = t.running { return running }
            guard case let .start(settle, wasServing) = t.sync.syncRequested(force: request.force) else { return nil }
            let running = Task { try await self.run(peers: request.peers, settle: settle, wasServing: wasServing) }
            t.running = running
            return running
        }
        guard let task else { return SyncOutcome(replicaState: .serving) }
        return try await task.value
    }

    private func run(peers: [String], settle: Bool, wasServing: Bool) async throws -> SyncOutcome {
        do {
            if settle { try await Task.sleep(for: settleDelay) }
            var response = SyncOutcome(replicaState: .syncing)
            var failures: [String] = []
            if !peers.isEmpty {
                var done = false
                for address in peers where !done {
                    do {
                        response = try await copy(from: connect(address))
                        response.source = address
                        done = true
                    } catch {
                        failures.append("\(address): \(storageShardError(error).message)")
                    }
                }
                guard done else {
                    throw ShardCallError(.unavailable, .syncFailed,
                                         "no peer of shard '\(name)' could be copied: \(failures.joined(separator: "; "))")
                }
            }
            tracking.withLock { t in
                t.sync.syncFinished(succeeded: true, wasServing: wasServing)
                t.running = nil
            }
            response.replicaState = .serving
            return response
        } catch {
            // A forced sync of a serving replica that failed (its peer went away) serves again
            // as it was rather than leaving the shard with one reader less; the router still
            // knows it missed writes and asks again. Otherwise back to waiting, still tracking.
            tracking.withLock { t in
                t.sync.syncFinished(succeeded: false, wasServing: wasServing)
                t.running = nil
            }
            throw storageShardError(error)
        }
    }

    /// Makes every collection here equal to `peer`'s, leaving dirty ids alone.
    private func copy(from peer: any ShardClient) async throws -> SyncOutcome {
        var response = SyncOutcome(replicaState: .syncing)
        let peerStats = try await peer.stats()
        let peerCollections = peerStats.collections
        let storage = inner.storage
        // A collection the peer lists as refused (its log is damaged there, or this build cannot
        // read its schema) still exists on the peer: it is neither dropped here nor copied, so a
        // replica never loses its healthy copy to a peer's damaged one.
        let peerNames = Set(peerCollections.map(\.name)).union(peerStats.refusedCollections.map(\.name))
        // Collections the peer no longer has (dropped while this replica was away).
        for schema in storage.listCollections() where !peerNames.contains(schema.name) {
            let createdHere = tracking.withLock { $0.sync.created.contains(schema.name) }
            if !createdHere { _ = try await inner.dropCollection(schema.name) }
        }
        for info in peerCollections {
            if (try? storage.collection(info.name)) == nil {
                _ = try await inner.createCollection(info.schema)
            }
            let collection = try storage.collection(info.name)
            // What is here now: id → digest of (vector, metadata).
            var here: [String: UInt64] = [:]
            try await collection.forEachLivePoint(batchSize: 4096) { points in
                for p in points { here[p.id] = PointDigest.of(vector: p.vector, metadata: p.metadata) }
            }
            let name = info.name, local = here
            let copied = Atomic<UInt64>(0)
            let seen = Mutex(Set<String>())
            try await peer.scan(ShardScan(collection: name, batchSize: 1000)) { batch in
                try Task.checkCancellation()
                var differing: [Point] = []
                for point in batch where local[point.id] != PointDigest.of(vector: point.vector, metadata: point.metadata) {
                    differing.append(point)
                }
                seen.withLock { s in for p in batch { s.insert(p.id) } }
                guard !differing.isEmpty else { return }
                try await self.gate.run {
                    let dirty = self.tracking.withLock { $0.sync.dirtyIDs(in: name) }
                    let clean = differing.filter { !dirty.contains($0.id) }
                    if !clean.isEmpty { _ = try await collection.upsert(clean) }
                    copied.wrappingAdd(UInt64(clean.count), ordering: .relaxed)
                }
            }
            let peerIDs = seen.withLock { $0 }
            let extra = here.keys.filter { !peerIDs.contains($0) }
            var deleted = 0
            for start in stride(from: 0, to: extra.count, by: 1000) {
                try Task.checkCancellation()
                let chunk = Array(extra[start..<min(extra.count, start + 1000)])
                try await gate.run {
                    let dirty = self.tracking.withLock { $0.sync.dirtyIDs(in: name) }
                    let clean = chunk.filter { !dirty.contains($0) }
                    if !clean.isEmpty { _ = try await collection.delete(ids: clean) }
                    deleted += clean.count
                }
            }
            response.copied += copied.load(ordering: .relaxed)
            response.deleted += UInt64(deleted)
            response.collections += 1
        }
        return response
    }
}

/// A 64-bit digest of a point's content (vector bits and metadata, keys in sorted order), equal on
/// every replica holding the same point.
enum PointDigest {
    static func of(vector: [Float], metadata: Metadata) -> UInt64 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(vector.count * 4 + 32 * metadata.count)
        for v in vector { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        for key in metadata.keys.sorted() {
            bytes.append(0xFF)
            bytes.append(contentsOf: key.utf8)
            bytes.append(0)
            switch metadata[key]! {
            case .string(let s): bytes.append(1); bytes.append(contentsOf: s.utf8); bytes.append(0)
            case .int(let i): bytes.append(2); withUnsafeBytes(of: i.littleEndian) { bytes.append(contentsOf: $0) }
            case .double(let d): bytes.append(3); withUnsafeBytes(of: d.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            case .bool(let b): bytes.append(4); bytes.append(b ? 1 : 0)
            }
        }
        return XXH64.hash(bytes)
    }
}

/// Mutual exclusion for async code: `run` bodies execute one at a time, in arrival order.
final class AsyncGate: Sendable {
    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func run<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { s -> Bool in
                if !s.busy {
                    s.busy = true
                    return true
                }
                s.waiters.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.busy = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
