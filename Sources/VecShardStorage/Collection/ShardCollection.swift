#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import VecShardEngine
import VecShardPrimitives
import VecShardSchema

// Over 500 lines on purpose: the write path, the search path and the snapshot they share are
// one lock's invariants; maintenance and describing live in the +Maintenance/+Describe files.

/// One collection's data in one shard: a write-ahead log, a growing segment, sealing
/// segments and sealed segments (docs/ARCHITECTURE.md, "A write" and "A search").
///
/// Safe to use from many tasks at once. Writes go through the WAL's group commit and
/// are applied (made visible) in LSN order by the log's queue after their fsync; a write
/// returns once it is durable and visible. Searches, point reads and scans take a
/// snapshot of the segment list (segments, visible rows, tombstones) under a short lock
/// and do their work outside it: a snapshot never shows an id twice or misses a live one.
/// Sealing and compaction run on a background queue and swap segments atomically.
///
/// Directory layout: `collection.json` (schema), `MANIFEST`, `wal/wal-<first LSN>.log`,
/// `segments/seg-<id>/`.
public final class ShardCollection: WALApplier, @unchecked Sendable {
    public let schema: CollectionSchema
    public var name: String { schema.name }
    let directory: String
    let options: StorageOptions
    var walDirectory: String { directory + "/wal" }
    var segmentsDirectory: String { directory + "/segments" }
    var manifestPath: String { directory + "/MANIFEST" }

    struct State {
        var lifecycle: SegmentLifecycle
        var growing: GrowingSegment
        /// Rows of the growing segment visible to readers (appended rows beyond are not yet).
        var growingVisible = 0
        /// Frozen segments being sealed, oldest first (the lifecycle's `sealing`).
        var frozen: [GrowingSegment] = []
        /// In the lifecycle's order.
        var sealed: [SealedSegment] = []
        var dead: [UInt64: DeadRows] = [:]
        var idMap = IDMap()
        /// Deleted ids with the version of their delete (docs/ARCHITECTURE.md, "Tombstones").
        var deletions = Tombstones()
        /// The highest version of a tombstone dropped after its retention.
        var tombstoneFloor: UInt64 = 0
        /// The highest version applied, and the highest stamped or accepted for a live write
        /// (the collection's version clock; at least `maxVersion`).
        var maxVersion: UInt64 = 0
        var clock: UInt64 = 0
        /// Wrapping sum of `VersionChecksum.of(id, version)` over live points.
        var checksum: UInt64 = 0
        var lsn: UInt64 = 0
        var needsPublish = false
        var maintenanceError: String?
        /// Maintenance failures since the collection was opened, and rows quarantined by seals.
        var failedSeals = 0
        var failedCompactions = 0
        var failedPublishes = 0
        var quarantinedPoints = 0
        var closed = false
        /// When a paused writer last asked for another seal attempt (after a failed seal,
        /// nothing else would retry it while writes are paused).
        var sealRetryAsked: ContinuousClock.Instant?
    }

    /// Test hook: runs before each seal writes its files; a thrown error fails the seal.
    let sealHook = Locked<(@Sendable () throws -> Void)?>(nil)

    let state: Locked<State>
    var wal: WriteAheadLog!
    let maintenance = DispatchQueue(label: "vecshard.storage.maintenance")
    /// What recovery found when the collection was opened.
    public private(set) var recovery = WALRecoveryReport()

    init(schema: CollectionSchema, directory: String, options: StorageOptions, state: State) {
        self.schema = schema
        self.directory = directory
        self.options = options
        self.state = Locked(state)
    }

    /// Hands an event to `options.eventHandler` (the service logs it as a warning).
    func report(_ kind: StorageEvent.Kind, _ message: String) {
        options.eventHandler?(StorageEvent(kind: kind, collection: name, message: message))
    }

    // MARK: - Creating and opening

    /// Creates the files of a new, empty collection in `directory` (which must not exist
    /// yet; the shard renames a prepared directory into place).
    static func initializeFiles(schema: CollectionSchema, directory: String) throws {
        try FileIO.makeDirectory(directory)
        try FileIO.makeDirectory(directory + "/wal")
        try FileIO.makeDirectory(directory + "/segments")
        try FileIO.writeFile(directory + "/collection.json", encodeJSON(schema))
        try FileIO.writeFile(directory + "/MANIFEST", ManifestCodec.encode(Manifest()))
        try FileIO.fsyncDirectory(directory)
    }

    /// Opens a collection: reads the manifest, maps its sealed segments, removes files no
    /// manifest lists (interrupted seals and compactions), then replays the WAL records
    /// above the manifest's checkpoint (cutting a torn tail; damage elsewhere throws
    /// `walDamaged` unless `options.acceptWALDamage`). Appends go on in the newest WAL file.
    /// With `requireWritable` (a new collection) a full disk fails the open; otherwise the
    /// collection opens read-only until there is room (see `WriteAheadLog.init`). Blocking.
    static func open(directory: String, options: StorageOptions, requireWritable: Bool = false) throws -> ShardCollection {
        let schema = try decodeJSONFile(directory + "/collection.json", as: CollectionSchema.self)
        let manifest = try ManifestCodec.decode(try FileIO.read(directory + "/MANIFEST"), path: directory + "/MANIFEST")
        let segmentsDirectory = directory + "/segments"
        var sealed: [SealedSegment] = []
        var dead: [UInt64: DeadRows] = [:]
        for entry in manifest.segments {
            let dir = segmentsDirectory + "/" + SealedSegment.fileName(entry.id)
            let segment = try SealedSegment(directory: dir)
            guard segment.rows == entry.rows else {
                throw StorageError.corrupt(path: dir, reason: "\(segment.rows) rows, the manifest says \(entry.rows)")
            }
            if let file = entry.tombstones {
                dead[entry.id] = try DeadRows.decode(try FileIO.read(dir + "/" + file), path: dir + "/" + file)
            }
            sealed.append(segment)
        }
        // Remove what no manifest lists: unpublished segments and stale tombstone files.
        let listed = Dictionary(uniqueKeysWithValues: manifest.segments.map { (SealedSegment.fileName($0.id), $0) })
        for name in FileIO.list(segmentsDirectory) {
            guard let entry = listed[name] else {
                FileIO.removeTree(segmentsDirectory + "/" + name)
                continue
            }
            for file in FileIO.list(segmentsDirectory + "/" + name)
            where file.hasPrefix("tombstones-") && file != entry.tombstones {
                unlink(segmentsDirectory + "/" + name + "/" + file)
            }
        }
        let lifecycle = SegmentLifecycle(thresholds: options.thresholds, manifest: manifest,
                                         deadCounts: dead.mapValues(\.count))
        var state = State(lifecycle: lifecycle,
                          growing: try GrowingSegment(id: lifecycle.growing, dimension: schema.dimension, metric: schema.metric))
        state.sealed = sealed
        state.dead = dead
        state.lsn = manifest.checkpointLSN
        // The id map: the live row of every id, the newest version winning (a later segment on
        // a tie, defensively); then the tombstones, against the rows they may have outlived.
        for segment in sealed {
            let segmentDead = state.dead[segment.id] ?? DeadRows()
            for (row, id) in segment.ids.enumerated() where !segmentDead.contains(UInt32(row)) {
                let version = segment.versions[row]
                let here = RowLocation(segment: segment.id, row: UInt32(row))
                if let held = state.idMap.entry(id), held.version > version {
                    state.dead[segment.id, default: DeadRows()].insert(UInt32(row))
                    continue
                }
                if let old = state.idMap.updateValue(here, version: version, forKey: id) {
                    state.dead[old.location.segment, default: DeadRows()].insert(old.location.row)
                }
            }
        }
        if let file = manifest.deletions {
            let deletions = try DeletionTable.decode(try FileIO.read(directory + "/" + file), path: directory + "/" + file)
            for (id, version) in deletions where version > 0 {
                if let held = state.idMap.entry(id) {
                    if held.version > version { continue }
                    state.idMap.removeValue(forKey: id)
                    state.dead[held.location.segment, default: DeadRows()].insert(held.location.row)
                }
                state.deletions[id] = version
            }
        }
        for name in FileIO.list(directory) where name.hasPrefix("deletions-") && name != manifest.deletions {
            unlink(directory + "/" + name)
        }
        state.tombstoneFloor = manifest.tombstoneFloor ?? 0
        var checksum: UInt64 = 0, maxVersion = state.tombstoneFloor
        state.idMap.forEach { id, _, version in
            checksum &+= VersionChecksum.of(id, version)
            maxVersion = max(maxVersion, version)
        }
        for (_, version) in state.deletions.entries { maxVersion = max(maxVersion, version) }
        state.checksum = checksum
        state.maxVersion = maxVersion
        state.clock = maxVersion
        let collection = ShardCollection(schema: schema, directory: directory, options: options, state: state)
        // Replay as a two-stage pipeline: this thread reads and decodes records (checksums,
        // points) while `replayQueue` applies the previous ones, in LSN order (a serial
        // queue, records handed over in file order). At most `inFlight` decoded records wait.
        let replayQueue = DispatchQueue(label: "vecshard.storage.replay")
        let inFlight = DispatchSemaphore(value: 4)
        let recovered: WriteAheadLog.Recovered
        do {
            defer { replayQueue.sync {} }
            recovered = try WriteAheadLog.recover(directory: directory + "/wal", checkpoint: manifest.checkpointLSN,
                                                  acceptDataLoss: options.acceptWALDamage || options.acceptWALDamageCollections.contains(schema.name)) { record in
                inFlight.wait()
                let handoff = UncheckedSendable(record)
                replayQueue.async {
                    _ = collection.apply([handoff.value], replaying: true)
                    inFlight.signal()
                }
            }
        } catch let error as StorageError {
            if case .walDamaged = error { collection.report(.walDamageRefused, "\(error)") }
            throw error
        }
        let report = recovered.report
        collection.recovery = report
        for line in report.damage {
            collection.report(report.acceptedLoss != nil && line == report.damage.last ? .walDamageAccepted : .walTailCut, line)
        }
        let nextLSN = max(report.lastLSN, manifest.checkpointLSN) + 1
        collection.wal = try WriteAheadLog(directory: directory + "/wal", existingFiles: recovered.files, nextLSN: nextLSN,
                                           fileBytesLimit: options.walFileBytes, initialFileBytes: options.walInitialFileBytes,
                                           reuse: recovered.tail, requireFile: requireWritable, applier: collection)
        if collection.wal.diskFull.withLock({ $0 }) {
            collection.report(.diskFull, "no room for a write-ahead-log file: the collection is read-only (writes answer disk_full) until space is freed")
        }
        collection.state.withLock { $0.lsn = max($0.lsn, report.lastLSN) }
        if options.automaticMaintenance {
            collection.maintenance.async { collection.sealFrozen() }
            collection.scheduleCompaction(force: false)
        }
        return collection
    }

    /// Refuses new writes, waits for the running flush and background work, closes files.
    public func close() async {
        await runBlocking { self.closeNow() }
    }

    func closeNow() {
        state.withLock { $0.closed = true }
        wal?.close()
        maintenance.sync {}
    }

    // MARK: - Writes

    /// Inserts or replaces points (the same id again replaces; within a batch the last
    /// wins). Returns once the batch is durable in the WAL and visible to searches.
    /// Throws before writing anything if any point is invalid (naming it).
    ///
    /// `version`: the write's version, stamped by the router (docs/ARCHITECTURE.md,
    /// "Versioned points"); it must be above every version held for the batch's ids, or the
    /// write is refused with `staleVersion`. nil: the collection stamps one itself.
    @discardableResult
    public func upsert(_ points: [Point], version: UInt64? = nil) async throws -> WriteReceipt {
        try StorageError.checking { () throws(SchemaError) in try PointValidation.check(points: points, schema: schema) }
        guard !points.isEmpty else { return WriteReceipt(lsn: lsn, count: 0) }
        try await waitForSealing()
        let v = try stamp(version, ids: points.lazy.map(\.id))
        let (lsn, applied) = try await wal.append(.upsert(points, versions: [v]))
        return WriteReceipt(lsn: lsn, count: applied, version: v)
    }

    /// The version of a live write: `offered` if it is above what is held for every id (and
    /// then the clock moves up to it), else `staleVersion`; nil: the next of the clock.
    func stamp<S: Sequence<String>>(_ offered: UInt64?, ids: S) throws -> UInt64 {
        try state.withLock { s in
            guard let offered, offered != 0 else {
                s.clock = WriteVersion.next(after: max(s.clock, s.maxVersion), tag: 0)
                return s.clock
            }
            let checkDeletions = !s.deletions.isEmpty
            for id in ids {
                var held = s.idMap.version(of: id) ?? 0
                if checkDeletions, let t = s.deletions[id] { held = max(held, t) }
                if held >= offered { throw StorageError.staleVersion(collection: schema.name, id: id, offered: offered, held: held) }
            }
            s.clock = max(s.clock, offered)
            return offered
        }
    }

    /// Applies changes copied from a peer replica (catch-up): each point and delete with its
    /// own version, last writer wins per id (what is held here at the same or a newer version
    /// stays). No stale check: these are older than live writes by nature. Durable and
    /// visible on return; returns the points and deletes that changed something here.
    @discardableResult
    public func apply(_ changes: VersionedChanges) async throws -> Int {
        precondition(changes.points.count == changes.versions.count && changes.deletedIDs.count == changes.deletedVersions.count)
        var applied = 0
        if !changes.points.isEmpty {
            try StorageError.checking { () throws(SchemaError) in try PointValidation.check(points: changes.points, schema: schema) }
            try await waitForSealing()
            applied += try await wal.append(.upsert(changes.points, versions: changes.versions)).applied
        }
        if !changes.deletedIDs.isEmpty {
            applied += try await wal.append(.delete(changes.deletedIDs, versions: changes.deletedVersions)).applied
        }
        return applied
    }

    /// Backpressure: waits while `options.maxSealingSegments` frozen segments wait for
    /// their seal, i.e. while writes outrun the background index builds (each frozen
    /// segment holds up to a seal threshold of memory). Polls: only a write that has to
    /// wait pays for it. Fails with `unavailable` after `options.sealWaitSeconds`.
    func waitForSealing() async throws {
        guard options.automaticMaintenance, options.maxSealingSegments > 0 else { return }
        var deadline: ContinuousClock.Instant?
        while true {
            let now = ContinuousClock.now
            let (waiting, error, retry) = state.withLock { s -> (Int, String?, Bool) in
                let waiting = s.closed ? 0 : s.frozen.count
                // A failed seal is retried only when asked: ask at most once a second (and
                // a few times within a wait).
                var retry = false
                let interval = Duration.seconds(min(1, options.sealWaitSeconds / 4))
                if waiting >= options.maxSealingSegments, s.maintenanceError != nil,
                   s.sealRetryAsked.map({ now - $0 >= interval }) ?? true {
                    s.sealRetryAsked = now
                    retry = true
                }
                return (waiting, s.maintenanceError, retry)
            }
            if waiting < options.maxSealingSegments { return }
            if retry { maintenance.async { self.sealFrozen() } }
            if deadline == nil { deadline = now + .seconds(options.sealWaitSeconds) }
            if now >= deadline! {
                throw StorageError.unavailable(
                    "collection '\(name)': writes are paused: \(waiting) segments are waiting to be sealed (index builds are "
                        + "behind the write rate\(error.map { "; last maintenance error: \($0)" } ?? "")); the write was not applied, retry later")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Deletes points by id (missing ids are ignored, but their tombstones are kept);
    /// durable and visible on return. `count` in the receipt is the number of points that
    /// existed. `version` as for `upsert`.
    @discardableResult
    public func delete(ids: [String], version: UInt64? = nil) async throws -> WriteReceipt {
        if ids.count > PointLimits.maxBatchPoints {
            throw StorageError.batchTooLarge(count: ids.count, limit: PointLimits.maxBatchPoints)
        }
        for id in ids { try StorageError.checking { () throws(SchemaError) in try PointValidation.check(id: id) } }
        guard !ids.isEmpty else { return WriteReceipt(lsn: lsn, count: 0) }
        let v = try stamp(version, ids: ids)
        let (lsn, applied) = try await wal.append(.delete(ids, versions: [v]))
        return WriteReceipt(lsn: lsn, count: applied, version: v)
    }

    /// What `stage` appended: the growing segment and, per record, the row of its first
    /// point there (nil for deletes). The rows are invisible until `publish`.
    struct StagedRows {
        var segment: GrowingSegment
        var firstRows: [UInt32?]
    }

    /// Appends the records' points to the growing segment past its visible rows (readers
    /// do not see them: no id maps to them and `growingVisible` does not cover them). Runs
    /// while the records are being written (WAL) or just before `publish` (recovery); the
    /// only writer of the growing segment, always between a publish and the next.
    func stage(_ records: [WALRecord]) -> StagedRows {
        let growing = state.withLock { $0.growing }
        var firstRows: [UInt32?] = []
        firstRows.reserveCapacity(records.count)
        for record in records {
            if case let .upsert(points, versions) = record.operation {
                let perRow = versions.count == 1 && points.count > 1 ? Array(repeating: versions[0], count: points.count) : versions
                firstRows.append(growing.append(points[...], versions: perRow))
            } else {
                firstRows.append(nil)
            }
        }
        return StagedRows(segment: growing, firstRows: firstRows)
    }

    /// Makes durable, staged records visible in LSN order (the WAL's queue, or recovery):
    /// the id map, tombstones of replaced or deleted rows, the visible row count, the LSN;
    /// then the lifecycle (a freeze is decided once per group, after its last record).
    /// Returns per record the points written or deleted.
    func publish(_ records: [WALRecord], staged: StagedRows, replaying: Bool) -> [Int] {
        var results: [Int] = []
        results.reserveCapacity(records.count)
        let actions = state.withLock { s -> [SegmentLifecycle.Action] in
            precondition(s.growing === staged.segment, "the growing segment changed between stage and publish")
            var touched = Set<UInt64>()
            var upserted = false
            let growingID = staged.segment.id
            for (k, record) in records.enumerated() {
                switch record.operation {
                case let .upsert(points, versions):
                    let first = staged.firstRows[k]!
                    // Last writer wins per id. A live write (one version for the batch, or
                    // none) replaces what holds the same version (a duplicate id in the batch);
                    // copied changes (a version per point) leave an equal version alone.
                    let copied = versions.count > 1
                    var applied = 0
                    for (i, p) in points.enumerated() {
                        let v = WALOperation.version(versions, i)
                        let location = RowLocation(segment: growingID, row: first + UInt32(i))
                        if v != 0 {
                            var held = s.idMap.version(of: p.id)
                            if !s.deletions.isEmpty, let t = s.deletions[p.id] {
                                held = max(held ?? 0, t)
                                if t < v { s.deletions.removeValue(forKey: p.id) }
                            }
                            if let held, held > v || (copied && held == v) {
                                s.dead[growingID, default: DeadRows()].insert(location.row)
                                continue
                            }
                        }
                        if let old = s.idMap.updateValue(location, version: v, forKey: p.id) {
                            s.dead[old.location.segment, default: DeadRows()].insert(old.location.row)
                            touched.insert(old.location.segment)
                            s.checksum &-= VersionChecksum.of(p.id, old.version)
                        }
                        s.checksum &+= VersionChecksum.of(p.id, v)
                        s.maxVersion = max(s.maxVersion, v)
                        applied += 1
                    }
                    s.growingVisible += points.count
                    upserted = true
                    results.append(applied)
                case let .delete(ids, versions):
                    var deleted = 0
                    for (i, id) in ids.enumerated() {
                        let v = WALOperation.version(versions, i)
                        if v != 0 {
                            // A delete removes a point of its version or older; its tombstone
                            // stays (the newest one), also for an id that is not here.
                            if let held = s.idMap.version(of: id), held > v { continue }
                            if s.deletions[id].map({ $0 < v }) ?? true { s.deletions[id] = v }
                            s.maxVersion = max(s.maxVersion, v)
                        }
                        if let old = s.idMap.removeValue(forKey: id) {
                            s.dead[old.location.segment, default: DeadRows()].insert(old.location.row)
                            touched.insert(old.location.segment)
                            s.checksum &-= VersionChecksum.of(id, old.version)
                            deleted += 1
                        }
                    }
                    results.append(deleted)
                }
                s.lsn = record.lsn
            }
            var out = deadChanged(&s, touched)
            if upserted, let last = records.last {
                out += s.lifecycle.growingChanged(rows: s.growingVisible, bytes: staged.segment.bytes, lsn: last.lsn)
            }
            return perform(freezes: out, in: &s)
        }
        if !replaying { wal?.requestRotationIf(actions.contains { if case .freeze = $0 { return true }; return false }) }
        performBackground(actions)
        return results
    }

    /// The write of staged records did not become durable: their rows stay invisible for
    /// good (marked dead, skipped by `growingVisible`, never in the id map), so the next
    /// group stages after them and nothing of the refused write can be read.
    func abandon(_ records: [WALRecord], staged: StagedRows) {
        state.withLock { s in
            guard s.growing === staged.segment else { return }
            let end = staged.segment.count
            guard end > s.growingVisible else { return }
            for row in s.growingVisible..<end { s.dead[staged.segment.id, default: DeadRows()].insert(UInt32(row)) }
            s.growingVisible = end
        }
    }

    /// Stages and publishes records at once (recovery replay).
    func apply(_ records: [WALRecord], replaying: Bool) -> [Int] {
        publish(records, staged: stage(records), replaying: replaying)
    }

    func deadChanged(_ s: inout State, _ touched: Set<UInt64>) -> [SegmentLifecycle.Action] {
        var out: [SegmentLifecycle.Action] = []
        for segment in touched { out += s.lifecycle.deadRowsChanged(segment: segment, dead: s.dead[segment]?.count ?? 0) }
        return out
    }

    /// Performs freeze actions in place (under the state lock) and returns the others.
    func perform(freezes actions: [SegmentLifecycle.Action], in s: inout State) -> [SegmentLifecycle.Action] {
        var rest: [SegmentLifecycle.Action] = []
        for action in actions {
            guard case let .freeze(_, _, newGrowing) = action else {
                rest.append(action)
                continue
            }
            s.frozen.append(s.growing)
            // FLAT creation cannot fail for a validated schema.
            s.growing = try! GrowingSegment(id: newGrowing, dimension: schema.dimension, metric: schema.metric)
            s.growingVisible = 0
            rest.append(action)
        }
        return rest
    }

    /// Dispatches lifecycle actions to the maintenance queue.
    func performBackground(_ actions: [SegmentLifecycle.Action]) {
        for action in actions {
            switch action {
            case .freeze:
                if options.automaticMaintenance { maintenance.async { self.sealFrozen() } }
            case let .compact(segments, into):
                if options.automaticMaintenance {
                    maintenance.async { self.compact(segments, into: into) }
                } else {
                    state.withLock { $0.lifecycle.compactionFailed(replaced: segments) }
                }
            case .publish, .checkpointWAL, .deleteSegmentFiles:
                maintenance.async { self.performNow([action]) }
            }
        }
    }

    // MARK: - Reads

    /// A consistent view: every segment with its visible rows and tombstones.
    struct Snapshot {
        struct View {
            var segment: any Segment
            var rows: Int
            var dead: DeadRows
        }
        var views: [View]
        var lsn: UInt64
    }

    func snapshot() -> Snapshot { state.withLock { snapshot(in: $0) } }

    /// The snapshot of a state (call with the state lock held).
    func snapshot(in s: State) -> Snapshot {
        var views: [Snapshot.View] = s.sealed.map {
            Snapshot.View(segment: $0, rows: $0.rows, dead: s.dead[$0.id] ?? DeadRows())
        }
        for f in s.frozen {
            views.append(Snapshot.View(segment: f, rows: f.count, dead: s.dead[f.id] ?? DeadRows()))
        }
        views.append(Snapshot.View(segment: s.growing, rows: s.growingVisible, dead: s.dead[s.growing.id] ?? DeadRows()))
        return Snapshot(views: views, lsn: s.lsn)
    }

    /// The k nearest live points to `query` that match `filter`, best first (higher score
    /// is closer). `parameters` carries k and the index knobs (its `filter` is ignored:
    /// storage builds allow lists from `filter`). Never returns an id twice.
    ///
    /// The hits are charged to `budget` as they are gathered (`SearchHit.byteCount`); one that
    /// does not fit fails the search with `responseTooLarge` before more metadata is read.
    /// Without `includeMetadata` the hits carry none (and none is read). A cancelled task
    /// (caller gone, deadline passed) stops the search between segments and inside the scans,
    /// and it throws `cancelled`.
    public func search(_ query: [Float], parameters: SearchParameters, filter: MetadataFilter = [:],
                       includeVectors: Bool = false, includeMetadata: Bool = true,
                       budget: ResponseBudget? = nil) throws -> [SearchHit] {
        try StorageError.checking { () throws(SchemaError) in
            try PointValidation.check(vector: query, schema: schema, pointID: nil)
            try PointValidation.check(filter: filter)
            try SearchLimits.check(k: parameters.k)
        }
        let snap = snapshot()
        var found: [(score: Float, id: String, view: Int, row: UInt32)] = []
        for (v, view) in snap.views.enumerated() where view.rows > 0 {
            try Self.checkInterruption()
            let candidates = view.segment.candidates(matching: filter, below: view.rows)
            if let candidates, candidates.isEmpty { continue }
            var p = parameters
            p.filter = view.dead.allowList(rows: view.rows, candidates: candidates)
            if let f = p.filter, f.count == 0 { continue }
            let neighbors: [Neighbor]
            do {
                neighbors = try view.segment.search(query, parameters: p, visibleRows: view.rows)
            } catch {
                throw StorageError.from(error, collection: name, dimension: schema.dimension)
            }
            for n in neighbors { found.append((n.score, view.segment.pointID(at: n.id), v, n.id)) }
        }
        try Self.checkInterruption()
        found.sort { ScoreOrder.precedes($0.score, $0.id, $1.score, $1.id) }
        var seen = Set<String>()
        var hits: [SearchHit] = []
        for f in found where hits.count < parameters.k && seen.insert(f.id).inserted {
            let segment = snap.views[f.view].segment
            let hit = SearchHit(id: f.id, score: f.score, metadata: includeMetadata ? segment.metadata(at: f.row) : [:],
                                vector: includeVectors ? segment.vector(at: f.row) : nil)
            if let budget, !budget.take(hit.byteCount) { throw StorageError.responseTooLarge(limit: budget.limit) }
            hits.append(hit)
        }
        return hits
    }

    /// A search stops when its task is cancelled (`cancelled`) or its deadline passed
    /// (`deadlineExceeded`; `SearchDeadline`); the engine's loops stop at the same checks.
    static func checkInterruption() throws {
        if Task.isCancelled { throw StorageError.cancelled }
        if SearchDeadline.passed { throw StorageError.deadlineExceeded }
    }

    /// The point with this id, or nil.
    public func get(_ id: String) -> Point? { getVersioned(id)?.point }

    /// The point with this id and its version, or nil.
    public func getVersioned(_ id: String) -> (point: Point, version: UInt64)? {
        let found = state.withLock { s -> (any Segment, UInt32, UInt64)? in
            guard let entry = s.idMap.entry(id) else { return nil }
            return segment(entry.location.segment, in: s).map { ($0, entry.location.row, entry.version) }
        }
        guard let (segment, row, version) = found else { return nil }
        return (Point(id: id, vector: segment.vector(at: row), metadata: segment.metadata(at: row)), version)
    }

    /// The version held for `id`: its point's, or its tombstone's (then `deleted`); nil when
    /// neither exists.
    public func version(of id: String) -> (version: UInt64, deleted: Bool)? {
        state.withLock { s in
            if let v = s.idMap.version(of: id) { return (v, false) }
            return s.deletions[id].map { ($0, true) }
        }
    }

    /// The highest version applied, and the checksum of the live (id, version) pairs.
    public var versionState: (version: UInt64, checksum: UInt64) { state.withLock { ($0.maxVersion, $0.checksum) } }

    func segment(_ id: UInt64, in s: State) -> (any Segment)? {
        if s.growing.id == id { return s.growing }
        if let f = s.frozen.first(where: { $0.id == id }) { return f }
        return s.sealed.first { $0.id == id }
    }

    /// Live points (distinct ids).
    public var count: Int { state.withLock { $0.idMap.count } }

    /// LSN of the last applied write.
    public var lsn: UInt64 { state.withLock { $0.lsn } }

    func publish(_ records: [WALRecord], staged: StagedRows) -> [Int] {
        publish(records, staged: staged, replaying: false)
    }

    /// Test hook: makes WAL writes fail with `errno` (nil to stop).
    func injectWALWriteError(_ code: Int32?) {
        if let code {
            wal.injectedWriteError = { @Sendable _ in code }
        } else {
            wal.injectedWriteError = nil
        }
    }
}

/// Runs blocking work on a thread outside the cooperative pool and awaits it.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}

func runBlocking(_ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            body()
            continuation.resume()
        }
    }
}
