#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import VecShardEngine
import VecShardSchema

extension ShardCollection {
    // MARK: - Maintenance (runs on the maintenance queue)

    /// Seals frozen segments, oldest first; stops at the first failure (retried later).
    /// A row the index cannot take (a vector `VectorCheck` refuses, e.g. one logged before
    /// validation used the engine's arithmetic) is quarantined instead of failing the seal
    /// for good: it becomes a deleted row (its id no longer resolves), its vector is
    /// replaced by a harmless unit vector in the written segment, the collection's
    /// `quarantinedPoints` counts it and an event is reported. The rest of the segment seals.
    func sealFrozen() {
        while true {
            let next = state.withLock { s -> GrowingSegment? in s.closed ? nil : s.frozen.first }
            guard let frozen = next else { return }
            let sealed: SealedSegment
            do {
                try sealHook.withLock { $0 }?()
                var contents = frozen.frozenContents()
                quarantine(&contents, segment: frozen.id)
                sealed = try SegmentWriter.write(id: frozen.id, contents: contents, dimension: schema.dimension,
                                                 metric: schema.metric, spec: schema.index, into: segmentsDirectory)
            } catch {
                let message = "sealing segment \(frozen.id): \(error)"
                state.withLock {
                    $0.maintenanceError = message
                    $0.failedSeals += 1
                }
                report(.maintenanceFailed, message + "; the segment stays in memory, covered by the write-ahead log, and is retried")
                return
            }
            let actions = state.withLock { s -> [SegmentLifecycle.Action] in
                s.frozen.removeFirst()
                s.sealed.append(sealed)
                return s.lifecycle.sealFinished(segment: sealed.id, rows: sealed.rows, dead: s.dead[sealed.id]?.count ?? 0)
            }
            performNow(actions)
        }
    }

    /// Quarantines the rows of `contents` that the index would refuse (see `sealFrozen`).
    func quarantine(_ contents: inout SegmentContents, segment: UInt64) {
        let dimension = schema.dimension, metric = schema.metric
        var bad: [(row: Int, problem: VectorCheck.Problem)] = []
        contents.vectors.withUnsafeBufferPointer { all in
            for row in 0..<contents.ids.count {
                let v = UnsafeBufferPointer(rebasing: all[(row * dimension)..<((row + 1) * dimension)])
                if let problem = VectorCheck.problem(v, metric: metric) { bad.append((row, problem)) }
            }
        }
        guard !bad.isEmpty else { return }
        for (row, _) in bad {
            for c in 0..<dimension { contents.vectors[row * dimension + c] = c == 0 ? 1 : 0 }
        }
        let live = state.withLock { s -> [Bool] in
            bad.map { b in
                let location = RowLocation(segment: segment, row: UInt32(b.row))
                // A retried seal meets the same rows again: count and report each once.
                guard s.idMap[contents.ids[b.row]] == location else { return false }
                s.dead[segment, default: DeadRows()].insert(UInt32(b.row))
                s.quarantinedPoints += 1
                if let old = s.idMap.removeValue(forKey: contents.ids[b.row]) {
                    s.checksum &-= VersionChecksum.of(contents.ids[b.row], old.version)
                }
                return true
            }
        }
        for (k, b) in bad.enumerated() where live[k] {
            report(.pointQuarantined, "point '\(contents.ids[b.row])' (segment \(segment), row \(b.row)) cannot be indexed: "
                   + "\(b.problem); it is quarantined (dropped from the collection) so the rest of the segment seals")
        }
    }

    /// Performs actions on the maintenance queue.
    func performNow(_ actions: [SegmentLifecycle.Action]) {
        for action in actions {
            switch action {
            case let .publish(manifest):
                publish(manifest)
            case let .checkpointWAL(lsn):
                wal?.checkpoint(through: lsn)
            case let .deleteSegmentFiles(ids):
                for id in ids { FileIO.removeTree(segmentsDirectory + "/" + SealedSegment.fileName(id)) }
                try? FileIO.fsyncDirectory(segmentsDirectory)
            case let .compact(segments, into):
                compact(segments, into: into)
            case .freeze:
                sealFrozen()
            }
        }
    }

    /// Writes the tombstone files the manifest names, then the manifest; on success the
    /// WAL is checkpointed and retired files removed.
    func publish(_ manifest: Manifest) {
        var manifest = manifest
        let file = SegmentLifecycle.tombstoneFile(version: manifest.version)
        // Tombstones past their retention are dropped here (the floor records the newest one
        // dropped); the rest are written with the manifest, so the WAL records that made them
        // can be checkpointed away.
        let retention = WriteVersion.span(seconds: options.tombstoneRetentionSeconds)
        let (captures, deletions, floor) = state.withLock { s in
            let now = WriteVersion.wallClock()
            if now > retention {
                s.tombstoneFloor = max(s.tombstoneFloor, s.deletions.drop(olderThan: now - retention))
            }
            return (manifest.segments.filter { $0.tombstones == file }.map { ($0.id, s.dead[$0.id] ?? DeadRows()) },
                    s.deletions, s.tombstoneFloor)
        }
        manifest.tombstoneFloor = floor > 0 ? floor : nil
        manifest.deletions = deletions.isEmpty ? nil : DeletionTable.fileName(manifestVersion: manifest.version)
        do {
            for (id, dead) in captures {
                let dir = segmentsDirectory + "/" + SealedSegment.fileName(id)
                try FileIO.writeFile(dir + "/" + file, dead.encoded())
                try FileIO.fsyncDirectory(dir)
            }
            if let name = manifest.deletions {
                try FileIO.writeFile(directory + "/" + name, DeletionTable.encode(deletions))
                try FileIO.fsyncDirectory(directory)
            }
            try FileIO.replaceAtomically(manifestPath, ManifestCodec.encode(manifest))
        } catch {
            state.withLock {
                $0.maintenanceError = "publishing manifest \(manifest.version): \(error)"
                $0.failedPublishes += 1
                $0.needsPublish = true
                $0.lifecycle.publishFailed()
            }
            report(.maintenanceFailed, "publishing manifest \(manifest.version): \(error); retried at the next seal or flush")
            return
        }
        let actions = state.withLock { s -> [SegmentLifecycle.Action] in
            s.needsPublish = false
            return s.lifecycle.manifestPublished(manifest)
        }
        for (id, _) in captures {
            let dir = segmentsDirectory + "/" + SealedSegment.fileName(id)
            for name in FileIO.list(dir) where name.hasPrefix("tombstones-") && name != file { unlink(dir + "/" + name) }
        }
        for name in FileIO.list(directory) where name.hasPrefix("deletions-") && name != manifest.deletions {
            unlink(directory + "/" + name)
        }
        if options.automaticMaintenance {
            performNow(actions)
        } else {
            performNow(actions.filter { if case .compact = $0 { return false }; return true })
            let dropped = actions.compactMap { a -> [UInt64]? in if case let .compact(s, _) = a { return s }; return nil }
            state.withLock { s in for d in dropped { s.lifecycle.compactionFailed(replaced: d) } }
        }
    }

    /// Rewrites `segments` (their live rows) as segment `into` and swaps it in.
    func compact(_ segments: [UInt64], into: UInt64) {
        let (sources, deadAtStart, closed) = state.withLock { s in
            (s.sealed.filter { segments.contains($0.id) }, s.dead, s.closed)
        }
        guard !closed, sources.count == segments.count else {
            state.withLock { $0.lifecycle.compactionFailed(replaced: segments) }
            return
        }
        var contents = SegmentContents(ids: [], versions: [], vectors: [], metadata: [], postings: MetadataPostings())
        var origin: [RowLocation] = []
        // Rows the index cannot take (a segment sealed before the vector check refused
        // them) are left out, like a seal's quarantine, rather than failing every compaction.
        var quarantined: [(id: String, from: RowLocation, problem: VectorCheck.Problem)] = []
        for source in sources {
            let dead = deadAtStart[source.id] ?? DeadRows()
            for row in 0..<UInt32(source.rows) where !dead.contains(row) {
                let vector = source.vector(at: row)
                if let problem = VectorCheck.problem(vector, metric: schema.metric) {
                    quarantined.append((source.pointID(at: row), RowLocation(segment: source.id, row: row), problem))
                    continue
                }
                contents.postings.add(row: UInt32(contents.ids.count), source.metadata(at: row))
                contents.ids.append(source.pointID(at: row))
                contents.versions.append(source.version(at: row))
                contents.vectors += vector
                contents.metadata.append(source.metadata(at: row))
                origin.append(RowLocation(segment: source.id, row: row))
            }
        }
        var merged: SealedSegment?
        if !contents.ids.isEmpty {
            do {
                merged = try SegmentWriter.write(id: into, contents: contents, dimension: schema.dimension,
                                                 metric: schema.metric, spec: schema.index, into: segmentsDirectory)
            } catch {
                let message = "compacting segments \(segments) into \(into): \(error)"
                state.withLock {
                    $0.maintenanceError = message
                    $0.failedCompactions += 1
                    $0.lifecycle.compactionFailed(replaced: segments)
                }
                report(.maintenanceFailed, message)
                return
            }
        }
        var dropped: [String] = []
        let actions = state.withLock { s -> [SegmentLifecycle.Action] in
            for q in quarantined where s.idMap[q.id] == q.from {
                if let old = s.idMap.removeValue(forKey: q.id) { s.checksum &-= VersionChecksum.of(q.id, old.version) }
                s.quarantinedPoints += 1
                dropped.append(q.id)
            }
            var newDead = DeadRows()
            for (j, from) in origin.enumerated() {
                let id = contents.ids[j]
                if s.idMap[id] == from {
                    s.idMap.relocate(id, to: RowLocation(segment: into, row: UInt32(j)))
                } else {
                    newDead.insert(UInt32(j))
                }
            }
            let at = s.sealed.firstIndex { segments.contains($0.id) }!
            s.sealed.removeAll { segments.contains($0.id) }
            if let merged { s.sealed.insert(merged, at: at) }
            for id in segments { s.dead[id] = nil }
            if newDead.count > 0 { s.dead[into] = newDead }
            return s.lifecycle.compactionFinished(replaced: segments, into: into, rows: origin.count, dead: newDead.count)
        }
        for q in quarantined where dropped.contains(q.id) {
            report(.pointQuarantined, "point '\(q.id)' (segment \(q.from.segment), row \(q.from.row)) cannot be indexed: \(q.problem); "
                   + "it is quarantined (dropped from the collection) so the compaction into segment \(into) goes through")
        }
        performNow(actions)
    }

    func scheduleCompaction(force: Bool) {
        let action = state.withLock { $0.lifecycle.planCompaction(force: force) }
        if let action { performBackground([action]) }
    }

    /// Seals the growing segment now (even if small) and waits until every frozen segment
    /// is sealed and published. Throws the background error if a seal failed.
    public func flush() async throws {
        try await wal.perform {
            let actions = self.state.withLock { s -> [SegmentLifecycle.Action] in
                self.perform(freezes: s.lifecycle.forceFreeze(rows: s.growingVisible, lsn: s.lsn), in: &s)
            }
            self.wal.requestRotationIf(!actions.isEmpty)
        }
        try await runBlocking {
            self.maintenance.sync {
                self.sealFrozen()
                let retry = self.state.withLock { s -> Manifest? in
                    s.needsPublish ? s.lifecycle.redraft() : nil
                }
                if let retry { self.publish(retry) }
            }
            if let error = self.state.withLock({ s in s.frozen.isEmpty && !s.needsPublish ? nil : s.maintenanceError }) {
                throw StorageError.unavailable("flush did not complete: \(error)")
            }
        }
    }

    /// Runs compactions until none is due: with `force`, every sealed segment with a
    /// deleted row is rewritten and small neighbours merged. Waits for them.
    public func compact(force: Bool = true) async throws {
        try await runBlocking {
            try self.maintenance.sync {
                while let action = self.state.withLock({ $0.lifecycle.planCompaction(force: force) }) {
                    guard case let .compact(segments, into) = action else { break }
                    self.compact(segments, into: into)
                    if let error = self.state.withLock({ $0.lifecycle.compacting.isEmpty ? nil : $0.maintenanceError }) {
                        throw StorageError.unavailable("compaction did not complete: \(error)")
                    }
                    if self.state.withLock({ $0.sealed.contains { segments.contains($0.id) } }) {
                        throw StorageError.unavailable("compaction did not complete: \(self.state.withLock { $0.maintenanceError ?? "" })")
                    }
                }
            }
        }
    }

    /// Waits until the background queue is idle (seals and compactions queued so far).
    public func waitForMaintenance() async {
        await runBlocking { self.maintenance.sync {} }
    }
}
