import VecShardPrimitives

/// When to seal and compact, in plain words (defaults in the spirit of Milvus).
public struct SegmentThresholds: Sendable, Equatable {
    /// The growing segment is sealed once it holds this many rows...
    public var sealRows: Int
    /// ...or this many bytes (vectors, ids and metadata in memory).
    public var sealBytes: Int
    /// A sealed segment with at least this fraction of deleted rows is rewritten.
    public var compactDeadFraction: Double
    /// Neighbouring sealed segments with fewer live rows than this fraction of `sealRows`
    /// each are merged (while the result stays within `sealRows`).
    public var smallSegmentFraction: Double

    public init(sealRows: Int = 2_000_000, sealBytes: Int = 512 << 20, compactDeadFraction: Double = 0.2,
                smallSegmentFraction: Double = 0.5) {
        self.sealRows = sealRows
        self.sealBytes = sealBytes
        self.compactDeadFraction = compactDeadFraction
        self.smallSegmentFraction = smallSegmentFraction
    }
}

/// The segment lifecycle of one collection, without I/O: growing → sealing → sealed →
/// (compacted) → retired, the manifest versions that publish each step, and the WAL
/// checkpoints they allow. The collection feeds it events under its lock and performs
/// the returned actions (in order).
struct SegmentLifecycle: Sendable {
    struct SealedSummary: Equatable, Sendable {
        var id: UInt64
        var rows: Int
        var dead: Int
        var live: Int { rows - dead }
    }

    enum Action: Equatable, Sendable {
        /// Move the growing segment to the sealing list, start a new growing segment with
        /// `newGrowing`, rotate the WAL, and run `seal` for it in the background.
        case freeze(segment: UInt64, coversLSN: UInt64, newGrowing: UInt64)
        /// Write tombstone files for entries whose `tombstones` is `tombstoneFile(version)`,
        /// then the manifest; then report `manifestPublished`.
        case publish(Manifest)
        /// Delete WAL files whose records are all at or below this LSN.
        case checkpointWAL(through: UInt64)
        /// Rewrite these sealed segments (live rows only) as one new segment `into`.
        case compact(segments: [UInt64], into: UInt64)
        /// Remove the files of segments no manifest lists any more.
        case deleteSegmentFiles([UInt64])
    }

    let thresholds: SegmentThresholds
    private(set) var published: Manifest
    private(set) var growing: UInt64
    /// Frozen segments not yet published, oldest first, with the LSN each covers.
    private(set) var sealing: [(id: UInt64, coversLSN: UInt64)] = []
    private(set) var sealed: [SealedSummary]
    private(set) var compacting: Set<UInt64> = []
    /// Sealed segments whose tombstones changed since the last manifest.
    private var dirty: Set<UInt64> = []
    private var nextID: UInt64
    /// The checkpoint the next manifest may claim: the LSN covered by the newest sealed segment.
    private var sealedThrough: UInt64

    /// Starts from a published manifest (recovery) with the dead counts of its segments.
    init(thresholds: SegmentThresholds, manifest: Manifest, deadCounts: [UInt64: Int]) {
        self.thresholds = thresholds
        published = manifest
        sealed = manifest.segments.map { SealedSummary(id: $0.id, rows: $0.rows, dead: deadCounts[$0.id] ?? 0) }
        growing = manifest.nextSegmentID
        nextID = manifest.nextSegmentID + 1
        sealedThrough = manifest.checkpointLSN
    }

    static func tombstoneFile(version: UInt64) -> String { "tombstones-\(version).bin" }

    private mutating func allocateID() -> UInt64 {
        defer { nextID += 1 }
        return nextID
    }

    /// After rows were applied to the growing segment: freeze it once it crossed a threshold.
    mutating func growingChanged(rows: Int, bytes: Int, lsn: UInt64) -> [Action] {
        guard rows > 0, rows >= thresholds.sealRows || bytes >= thresholds.sealBytes else { return [] }
        return freeze(lsn: lsn)
    }

    /// Freezes the growing segment now (an explicit flush); `rows` 0 does nothing.
    mutating func forceFreeze(rows: Int, lsn: UInt64) -> [Action] {
        rows > 0 ? freeze(lsn: lsn) : []
    }

    private mutating func freeze(lsn: UInt64) -> [Action] {
        let frozen = growing
        growing = allocateID()
        sealing.append((frozen, lsn))
        return [.freeze(segment: frozen, coversLSN: lsn, newGrowing: growing)]
    }

    /// Tombstones of a sealed (or sealing) segment changed; may start a compaction.
    mutating func deadRowsChanged(segment: UInt64, dead: Int) -> [Action] {
        guard let i = sealed.firstIndex(where: { $0.id == segment }) else { return [] }
        sealed[i].dead = dead
        dirty.insert(segment)
        return planCompaction(force: false).map { [$0] } ?? []
    }

    /// The files of the oldest sealing segment are written: publish it.
    mutating func sealFinished(segment: UInt64, rows: Int, dead: Int) -> [Action] {
        precondition(sealing.first?.id == segment, "seals finish in freeze order")
        sealedThrough = max(sealedThrough, sealing.removeFirst().coversLSN)
        sealed.append(SealedSummary(id: segment, rows: rows, dead: dead))
        if dead > 0 { dirty.insert(segment) }
        return [.publish(draft())]
    }

    /// Writing a manifest failed: its tombstone files must be written again next time.
    mutating func publishFailed() {
        for s in sealed where s.dead > 0 { dirty.insert(s.id) }
    }

    /// A new manifest of the current state (to retry after a failed publish).
    mutating func redraft() -> Manifest { draft() }

    /// A seal failed (e.g. disk full): the segment stays frozen in memory, covered by the
    /// WAL; it is retried on the next freeze or flush.
    func sealFailed(segment: UInt64) -> [Action] { [] }

    private mutating func draft() -> Manifest {
        var m = published
        m.version += 1
        m.checkpointLSN = max(m.checkpointLSN, sealedThrough)
        m.nextSegmentID = nextID
        let previous = Dictionary(uniqueKeysWithValues: published.segments.map { ($0.id, $0.tombstones) })
        m.segments = sealed.map { s in
            let file: String? = dirty.contains(s.id) && s.dead > 0 ? Self.tombstoneFile(version: m.version)
                : (s.dead > 0 ? previous[s.id] ?? nil : nil)
            return Manifest.Entry(id: s.id, rows: s.rows, tombstones: file)
        }
        dirty.removeAll()
        return m
    }

    /// The manifest is durable: checkpoint the WAL, delete retired files, maybe compact.
    mutating func manifestPublished(_ m: Manifest) -> [Action] {
        let retired = Set(published.segments.map(\.id)).subtracting(m.segments.map(\.id))
        published = m
        var actions: [Action] = [.checkpointWAL(through: m.checkpointLSN)]
        if !retired.isEmpty { actions.append(.deleteSegmentFiles(retired.sorted())) }
        if let c = planCompaction(force: false) { actions.append(c) }
        return actions
    }

    /// A compaction wrote `into` (rows, of which `dead` were deleted meanwhile) to replace `replaced`.
    mutating func compactionFinished(replaced: [UInt64], into: UInt64, rows: Int, dead: Int) -> [Action] {
        compacting.subtract(replaced)
        guard let at = sealed.firstIndex(where: { replaced.contains($0.id) }) else { return [] }
        sealed.removeAll { replaced.contains($0.id) }
        if rows > 0 {
            sealed.insert(SealedSummary(id: into, rows: rows, dead: dead), at: at)
            if dead > 0 { dirty.insert(into) }
        }
        return [.publish(draft())]
    }

    mutating func compactionFailed(replaced: [UInt64]) {
        compacting.subtract(replaced)
    }

    /// Chooses the next compaction, if any, and marks its segments: the first sealed
    /// segment with enough deleted rows (any, when forced) or a run of neighbouring small
    /// segments whose live rows fit in one segment.
    mutating func planCompaction(force: Bool) -> Action? {
        guard compacting.isEmpty else { return nil }
        let small = force ? thresholds.sealRows : Int(Double(thresholds.sealRows) * thresholds.smallSegmentFraction)
        func wantsRewrite(_ s: SealedSummary) -> Bool {
            s.dead > 0 && (force || Double(s.dead) >= thresholds.compactDeadFraction * Double(s.rows))
        }
        var i = 0
        while i < sealed.count {
            var group = [sealed[i]]
            var live = sealed[i].live
            if sealed[i].live < small {
                var j = i + 1
                while j < sealed.count, sealed[j].live < small, live + sealed[j].live <= thresholds.sealRows {
                    group.append(sealed[j])
                    live += sealed[j].live
                    j += 1
                }
            }
            if group.count >= 2 || wantsRewrite(sealed[i]) {
                let ids = group.map(\.id)
                compacting.formUnion(ids)
                return .compact(segments: ids, into: allocateID())
            }
            i += 1
        }
        return nil
    }

    var sealedIDs: [UInt64] { sealed.map(\.id) }
}
