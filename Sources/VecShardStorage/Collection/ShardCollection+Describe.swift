import VecShardEngine
import VecShardSchema

/// A page of a collection's changes (`ShardCollection.changes`).
public struct ChangesPage: Sendable {
    public var changes = VersionedChanges()
    /// More changes follow; ask again from `next`.
    public var more = false
    public var next: (version: UInt64, id: String) = (0, "")
    /// The collection's tombstone floor (tombstones up to it were dropped).
    public var tombstoneFloor: UInt64 = 0
}

extension ShardCollection {
    /// Calls `body` with batches of at most `batchSize` live points from one snapshot (in
    /// segment order), optionally only those whose id passes `idPredicate` (e.g. "its
    /// placement hash now maps to another shard"). Points written after the call began
    /// may or may not be included; none is included twice.
    public func forEachLivePoint(batchSize: Int = 1000, where idPredicate: (@Sendable (String) -> Bool)? = nil,
                                 _ body: ([Point]) async throws -> Void) async throws {
        let snap = snapshot()
        var batch: [Point] = []
        batch.reserveCapacity(max(1, batchSize))
        for view in snap.views {
            for row in 0..<UInt32(view.rows) where !view.dead.contains(row) {
                let id = view.segment.pointID(at: row)
                if let idPredicate, !idPredicate(id) { continue }
                batch.append(Point(id: id, vector: view.segment.vector(at: row), metadata: view.segment.metadata(at: row)))
                if batch.count >= max(1, batchSize) {
                    try await body(batch)
                    batch.removeAll(keepingCapacity: true)
                }
            }
        }
        if !batch.isEmpty { try await body(batch) }
    }

    /// One page of the changes after a position (catch-up by difference): the live points
    /// and the tombstones whose (version, id) is above (`afterVersion`, `afterID`) (a first page
    /// has `afterID` "" and so starts at version `afterVersion` itself: to get the changes after
    /// version F, ask from F + 1), ids
    /// compared by their UTF-8 bytes, the `limit` lowest of them in that order, from one
    /// snapshot. Asking again from `next` while `more` lists every change exactly once, also
    /// while writes go on (a point written meanwhile has a higher version than the position,
    /// so a later page has it). Memory: one page; time: one pass over the rows' versions.
    /// Throws `changesCompacted` when tombstones above `afterVersion` may have been dropped,
    /// unless `ignoringFloor` (a full comparison, which lists every live point from 0).
    /// With `idPredicate`, only ids it admits (a rebalancing copy: those another shard now owns).
    public func changes(afterVersion: UInt64, afterID: String = "", limit: Int = 1000, ignoringFloor: Bool = false,
                        where idPredicate: ((String) -> Bool)? = nil,
                        wherePoint pointPredicate: ((String, [String: MetadataValue]) -> Bool)? = nil) throws -> ChangesPage {
        let (snap, tombstones, floor) = state.withLock { s -> (Snapshot, [(String, UInt64)], UInt64) in
            (snapshot(in: s), s.deletions.entries(from: afterVersion), s.tombstoneFloor)
        }
        // Tombstones up to the floor were dropped: a page that could hold one (its position is at
        // or below the floor) cannot be complete.
        if floor > 0 && floor >= afterVersion && !ignoringFloor { throw StorageError.changesCompacted(collection: name, after: afterVersion, floor: floor) }
        let limit = max(1, limit)
        // Candidates as (version, id, where): view index and row, or -1 for a tombstone.
        typealias Candidate = (version: UInt64, id: String, view: Int, row: UInt32)
        func precedes(_ a: (UInt64, String), _ b: (UInt64, String)) -> Bool {
            a.0 != b.0 ? a.0 < b.0 : a.1.utf8.lexicographicallyPrecedes(b.1.utf8)
        }
        var best: [Candidate] = []
        var threshold: (UInt64, String)?
        var truncated = false
        func consider(_ c: Candidate) {
            if let idPredicate, !idPredicate(c.id) { return }
            if let threshold, !precedes((c.version, c.id), threshold) {
                truncated = true
                return
            }
            best.append(c)
            if best.count >= 2 * limit {
                best.sort { precedes(($0.version, $0.id), ($1.version, $1.id)) }
                best.removeLast(best.count - limit)
                threshold = (best[limit - 1].version, best[limit - 1].id)
                truncated = true
            }
        }
        let cursor = (afterVersion, afterID)
        for (v, view) in snap.views.enumerated() {
            if Task.isCancelled { throw StorageError.cancelled }
            if let growing = view.segment as? GrowingSegment {
                let (ids, versions) = growing.idsAndVersions(below: view.rows)
                for row in 0..<view.rows where versions[row] >= afterVersion && !view.dead.contains(UInt32(row)) {
                    if versions[row] == afterVersion && !precedes(cursor, (versions[row], ids[row])) { continue }
                    if let pointPredicate, !pointPredicate(ids[row], growing.metadata(at: UInt32(row))) { continue }
                    consider((versions[row], ids[row], v, UInt32(row)))
                }
            } else {
                for row in 0..<UInt32(view.rows) {
                    let version = view.segment.version(at: row)
                    guard version >= afterVersion, !view.dead.contains(row) else { continue }
                    let id = view.segment.pointID(at: row)
                    if version == afterVersion && !precedes(cursor, (version, id)) { continue }
                    if let pointPredicate, !pointPredicate(id, view.segment.metadata(at: row)) { continue }
                    consider((version, id, v, row))
                }
            }
        }
        // A predicate on points (metadata) cannot judge a delete: it picks live points only.
        if pointPredicate == nil {
            for (id, version) in tombstones where precedes(cursor, (version, id)) { consider((version, id, -1, 0)) }
        }
        best.sort { precedes(($0.version, $0.id), ($1.version, $1.id)) }
        if best.count > limit {
            best.removeLast(best.count - limit)
            truncated = true
        }
        var page = ChangesPage()
        page.tombstoneFloor = floor
        for c in best {
            if c.view < 0 {
                page.changes.deletedIDs.append(c.id)
                page.changes.deletedVersions.append(c.version)
            } else {
                let segment = snap.views[c.view].segment
                page.changes.points.append(Point(id: c.id, vector: segment.vector(at: c.row), metadata: segment.metadata(at: c.row)))
                page.changes.versions.append(c.version)
            }
        }
        page.more = truncated
        if let last = best.last { page.next = (last.version, last.id) } else { page.next = cursor }
        return page
    }

    /// Counts, segments, memory and disk use, LSNs.
    public func describe() -> CollectionDescription {
        let (snap, checkpoint, error, frozenIDs) = state.withLock { s in
            (s.lsn, s.lifecycle.published.checkpointLSN, s.maintenanceError, Set(s.frozen.map(\.id)))
        }
        _ = snap
        let versions = state.withLock { s in (version: s.maxVersion, checksum: s.checksum, tombstones: s.deletions.count, floor: s.tombstoneFloor) }
        let views = snapshot()
        var segments: [SegmentDescription] = []
        for view in views.views {
            let sealed = view.segment as? SealedSegment
            let state: SegmentState = sealed != nil ? .sealed : (frozenIDs.contains(view.segment.id) ? .sealing : .growing)
            segments.append(SegmentDescription(
                id: view.segment.id, state: state, rows: view.rows, liveRows: view.rows - view.dead.count,
                indexKind: view.segment.index.kind, memoryBytes: view.segment.memoryBytes + view.dead.words.count * 8,
                diskBytes: sealed?.diskBytes ?? 0))
        }
        let walBytes = wal?.diskBytes ?? 0
        return CollectionDescription(
            schema: schema, pointCount: count, lsn: views.lsn, checkpointLSN: checkpoint, segments: segments,
            memoryBytes: segments.reduce(0) { $0 + $1.memoryBytes }, diskBytes: segments.reduce(walBytes) { $0 + $1.diskBytes },
            walBytes: walBytes, walBytesAppended: wal?.appendedBytes.withLock { $0 } ?? 0,
            walIOSeconds: wal?.ioSeconds.withLock { $0 } ?? 0, walApplySeconds: wal?.applySeconds.withLock { $0 } ?? 0,
            maintenanceError: error, maintenance: maintenanceCounters, diskFull: wal?.diskFull.withLock { $0 } ?? false,
            version: versions.version, checksum: versions.checksum, tombstones: versions.tombstones, tombstoneFloor: versions.floor)
    }

    /// Maintenance failures and quarantined rows since the collection was opened.
    public var maintenanceCounters: MaintenanceCounters {
        state.withLock { s in
            MaintenanceCounters(failedSeals: s.failedSeals, failedCompactions: s.failedCompactions,
                                failedPublishes: s.failedPublishes, quarantinedPoints: s.quarantinedPoints)
        }
    }
}
