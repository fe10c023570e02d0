import Foundation
import Synchronization
import VecShardPrimitives
import VecShardRPC
import VecShardSchema
import VecShardShardAPI
import VecShardStorage

/// A shard replica that can be brought up to date from a peer replica of the same shard (the
/// `Sync` call), for `vecshard serve --role shard` (docs/ARCHITECTURE.md, "Catch-up by
/// difference").
///
/// States (`ReplicaSyncState`): `serving`, `awaitingSync` (started with `--await-sync`, or a
/// catch-up was pending when it stopped) and `syncing`. Outside `serving`, reads (search, get,
/// scan, describe) fail with UNAVAILABLE `replica_catching_up`, so a router fails over to a peer;
/// writes are taken in every state.
///
/// A catch-up pulls, per collection, the peer's changes after a version F, page by page
/// (`Changes`), and applies them last writer wins: a live write that arrives meanwhile has a
/// newer version than anything the pages carry for its id, so the order does not matter and no
/// id needs tracking. F is the lowest of the router's `afterVersion`, the one persisted in
/// `catchUpFile` (fsynced before the copy starts, removed when it succeeded, so a replica killed
/// during its catch-up starts again from there); when neither names one (the router restarted
/// too, or saw no write missed), its own highest version per collection minus `margin`. A peer that cannot list changes that far
/// back (`changes_compacted`: tombstones past their retention) is compared in full instead.
public final class RepairableShard: ShardClient {
    public let inner: LocalShard
    public var name: String { inner.name }
    /// Opens a client to a peer replica (host:port).
    private let connect: @Sendable (String) -> any ShardClient
    /// Where a pending catch-up point is kept (nil: not kept, for tests).
    private let catchUpFile: String?
    /// How far before its own highest version a restarted replica asks for changes.
    private let margin: Duration
    /// Items per page asked of the peer.
    private let pageSize: Int

    /// Each collection's highest version when this process opened it, before any write was
    /// taken: the margin is measured from these (live writes taken while awaiting a catch-up
    /// must not move the starting point past the writes missed while the replica was down).
    private let openVersions: [String: UInt64]

    private struct Tracking {
        var sync: ReplicaSyncState
        /// The copy in progress, which later Sync calls join if it starts low enough.
        var running: Task<SyncOutcome, any Error>?
        /// The version the running copy started after (nil: from its own versions minus the margin).
        var runningAfter: UInt64?
    }
    private let tracking: Mutex<Tracking>

    public init(_ inner: LocalShard, awaitSync: Bool, catchUpFile: String? = nil, margin: Duration = .seconds(30),
                pageSize: Int = 4096, connect: @escaping @Sendable (String) -> any ShardClient) {
        self.inner = inner
        self.connect = connect
        self.catchUpFile = catchUpFile
        self.margin = margin
        self.pageSize = pageSize
        var versions: [String: UInt64] = [:]
        for schema in inner.storage.listCollections() {
            if let c = try? inner.storage.collection(schema.name) { versions[schema.name] = c.versionState.version }
        }
        openVersions = versions
        let pending = catchUpFile.flatMap(CatchUpFile.read)
        tracking = Mutex(Tracking(sync: ReplicaSyncState(awaitingSync: awaitSync, pendingAfter: pending)))
    }

    public var replicaState: ReplicaState { tracking.withLock { $0.sync.state } }

    private func requireServing() throws {
        let state = replicaState
        guard state == .serving else {
            throw ShardCallError(.unavailable, .replicaCatchingUp,
                                 "replica of shard '\(name)' is \(state.rawValue): it takes writes but answers no reads until it has caught up with a peer")
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

    public func upsert(collection: String, points: [Point], version: UInt64?) async throws -> WriteResult {
        try await inner.upsert(collection: collection, points: points, version: version)
    }

    public func delete(collection: String, ids: [String], version: UInt64?) async throws -> WriteResult {
        try await inner.delete(collection: collection, ids: ids, version: version)
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
        (stats.replicaState, stats.catchUpPending) = tracking.withLock { ($0.sync.state, $0.sync.pendingAfter != nil) }
        return stats
    }

    public func scan(_ request: ShardScan, _ body: @Sendable ([Point]) async throws -> Void) async throws {
        try requireServing()
        try await inner.scan(request, body)
    }

    /// Changes are listed in every state: a peer catching up may ask a replica that is itself
    /// catching up only when the router found no serving one (the union of writes wins).
    public func changes(_ request: ChangesQuery) async throws -> ChangesPageResult { try await inner.changes(request) }
    public func apply(collection: String, changes: VersionedChanges) async throws -> WriteResult {
        try await inner.apply(collection: collection, changes: changes)
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

    private enum Join {
        case none
        case join(Task<SyncOutcome, any Error>)
        /// A copy is running from a higher version than this request names: let it finish, then
        /// catch up again from the lower one (another router saw an earlier write missed).
        case after(Task<SyncOutcome, any Error>)
    }

    public func sync(_ request: ReplicaSync) async throws -> SyncOutcome {
        while true {
            let step: Join = try tracking.withLock { t in
                if let running = t.running {
                    if let asked = request.afterVersion, !(t.runningAfter.map { $0 <= asked } ?? false) { return .after(running) }
                    return .join(running)
                }
                guard case let .start(after, margin, wasServing, persist) = t.sync.syncRequested(force: request.force, afterVersion: request.afterVersion)
                else { return .none }
                if persist, let catchUpFile, let after {
                    do { try CatchUpFile.write(after, to: catchUpFile) } catch {
                        t.sync.syncFinished(succeeded: false, wasServing: wasServing)
                        throw ShardCallError(.unavailable, .syncFailed, "replica of shard '\(name)' cannot record its catch-up point: \(error)")
                    }
                }
                let running = Task { try await self.run(peers: request.peers, after: after, margin: margin, wasServing: wasServing) }
                t.running = running
                t.runningAfter = margin ? nil : after
                return .join(running)
            }
            switch step {
            case .none: return SyncOutcome(replicaState: .serving)
            case let .join(task): return try await task.value
            case let .after(task):
                _ = try? await task.value
                try Task.checkCancellation()
            }
        }
    }

    private func run(peers: [String], after: UInt64?, margin: Bool, wasServing: Bool) async throws -> SyncOutcome {
        do {
            var response = SyncOutcome(replicaState: .syncing)
            var failures: [String] = []
            if !peers.isEmpty {
                var done = false
                for address in peers where !done {
                    do {
                        response = try await catchUp(from: connect(address), after: after, margin: margin)
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
            if let catchUpFile { CatchUpFile.remove(catchUpFile) }
            tracking.withLock { t in
                t.sync.syncFinished(succeeded: true, wasServing: wasServing)
                t.running = nil
                t.runningAfter = nil
            }
            response.replicaState = .serving
            return response
        } catch {
            // A failed catch-up keeps its point (CATCHUP): the replica waits for the next one
            // without serving reads (it knows it lacks writes), except a serving replica that
            // was asked without a point, which serves as it was.
            tracking.withLock { t in
                t.sync.syncFinished(succeeded: false, wasServing: wasServing)
                t.running = nil
                t.runningAfter = nil
            }
            throw storageShardError(error)
        }
    }

    /// Brings every collection here up to `peer`'s: by difference after F, or in full where the
    /// peer cannot list changes that far back.
    private func catchUp(from peer: any ShardClient, after: UInt64?, margin: Bool) async throws -> SyncOutcome {
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
        // Where each collection starts: after F, and with the margin also after its version at
        // open minus the margin (a collection created since starts from the beginning). The
        // lowest is made durable first, so a replica killed during this copy starts as low again.
        let marginSpan = WriteVersion.span(seconds: Double(self.margin.components.seconds))
        var starts: [String: UInt64] = [:]
        for info in peerCollections {
            var from = after ?? UInt64.max
            if margin {
                let own = openVersions[info.name] ?? 0
                from = min(from, own > marginSpan ? own - marginSpan : 0)
            }
            starts[info.name] = from
        }
        if let catchUpFile, let lowest = starts.values.min(), lowest < (after ?? UInt64.max) {
            try CatchUpFile.write(lowest, to: catchUpFile)
        }
        var modes = Set<String>()
        for info in peerCollections {
            if (try? storage.collection(info.name)) == nil {
                _ = try await inner.createCollection(info.schema)
            }
            let collection = try storage.collection(info.name)
            do {
                try await copyChanges(of: collection, from: peer, after: starts[info.name]!, into: &response)
                modes.insert("changes")
            } catch let error as ShardCallError where error.code == "changes_compacted" {
                try await copyAll(of: collection, from: peer, into: &response)
                modes.insert("full")
            } catch let error as ShardCallError where error.kind == .unimplemented {
                throw ShardCallError(.unavailable, .syncFailed, "peer cannot list changes (an older build?): \(error.message); upgrade it, or catch up from another peer")
            }
            response.collections += 1
        }
        response.mode = modes.contains("full") ? "full" : "changes"
        return response
    }

    /// Pages through the peer's changes after version `after` (so from `after` + 1) and applies them.
    private func copyChanges(of collection: ShardCollection, from peer: any ShardClient, after: UInt64,
                             into response: inout SyncOutcome) async throws {
        var query = ChangesQuery(collection: collection.name, afterVersion: after == .max ? after : after + 1,
                                 limit: after == 0 ? max(pageSize, 10_000) : pageSize)
        while true {
            try Task.checkCancellation()
            let page = try await peer.changes(query)
            response.transferred += UInt64(page.changes.count)
            if !page.changes.isEmpty {
                let applied = try await applying { try await collection.apply(page.changes) }
                response.copied += UInt64(applied)
            }
            guard page.more else { return }
            (query.afterVersion, query.afterID) = (page.nextVersion, page.nextID)
        }
    }

    /// The fallback when changes cannot be listed after F: every live point of the peer (with
    /// versions, last writer wins), then the points here that the peer does not have and that
    /// are not newer than its tombstone floor (the peer deleted them and has forgotten the
    /// tombstone) are deleted. Holds the peer's ids in memory.
    private func copyAll(of collection: ShardCollection, from peer: any ShardClient, into response: inout SyncOutcome) async throws {
        var query = ChangesQuery(collection: collection.name, afterVersion: 0, limit: max(pageSize, 10_000), ignoringFloor: true)
        var peerIDs = Set<String>()
        var floor: UInt64 = 0
        while true {
            try Task.checkCancellation()
            let page = try await peer.changes(query)
            floor = page.tombstoneFloor
            response.transferred += UInt64(page.changes.count)
            for p in page.changes.points { peerIDs.insert(p.id) }
            if !page.changes.isEmpty {
                response.copied += UInt64(try await applying { try await collection.apply(page.changes) })
            }
            guard page.more else { break }
            (query.afterVersion, query.afterID) = (page.nextVersion, page.nextID)
        }
        var extra = VersionedChanges()
        var local = try collection.changes(afterVersion: 0, limit: max(pageSize, 10_000), ignoringFloor: true)
        while true {
            for (p, v) in zip(local.changes.points, local.changes.versions) where !peerIDs.contains(p.id) && v <= floor {
                extra.deletedIDs.append(p.id)
                extra.deletedVersions.append(v)
            }
            guard local.more else { break }
            local = try collection.changes(afterVersion: local.next.version, afterID: local.next.id, limit: max(pageSize, 10_000), ignoringFloor: true)
        }
        for start in stride(from: 0, to: extra.deletedIDs.count, by: 1000) {
            let end = min(extra.deletedIDs.count, start + 1000)
            let chunk = VersionedChanges(deletedIDs: Array(extra.deletedIDs[start..<end]), deletedVersions: Array(extra.deletedVersions[start..<end]))
            response.deleted += UInt64(try await applying { try await collection.apply(chunk) })
        }
    }

    private func applying<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch { throw storageShardError(error) }
    }
}

/// `<data-dir>/CATCHUP`: the version after which this replica must catch up, as decimal text,
/// written to a temporary file, fsynced and renamed into place.
enum CatchUpFile {
    static func read(_ path: String) -> UInt64? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func write(_ version: UInt64, to path: String) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ShardCallError(.internalError, .syncFailed, "cannot create \(tmp) (errno \(errno))") }
        let bytes = Array("\(version)\n".utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(tmp, path) == 0 else {
            throw ShardCallError(.internalError, .syncFailed, "cannot write \(path) (errno \(errno))")
        }
        let dir = open((path as NSString).deletingLastPathComponent, O_RDONLY)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
    }

    static func remove(_ path: String) { unlink(path) }
}
