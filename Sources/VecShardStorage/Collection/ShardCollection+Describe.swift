import VecShardEngine
import VecShardSchema

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

    /// Counts, segments, memory and disk use, LSNs.
    public func describe() -> CollectionDescription {
        let (snap, checkpoint, error, frozenIDs) = state.withLock { s in
            (s.lsn, s.lifecycle.published.checkpointLSN, s.maintenanceError, Set(s.frozen.map(\.id)))
        }
        _ = snap
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
            maintenanceError: error, maintenance: maintenanceCounters, diskFull: wal?.diskFull.withLock { $0 } ?? false)
    }

    /// Maintenance failures and quarantined rows since the collection was opened.
    public var maintenanceCounters: MaintenanceCounters {
        state.withLock { s in
            MaintenanceCounters(failedSeals: s.failedSeals, failedCompactions: s.failedCompactions,
                                failedPublishes: s.failedPublishes, quarantinedPoints: s.quarantinedPoints)
        }
    }
}
