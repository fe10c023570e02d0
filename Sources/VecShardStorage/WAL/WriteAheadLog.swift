#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// O_DIRECT (Glibc does not export it without _GNU_SOURCE).
#if arch(arm64)
let directIOFlag: Int32 = 0o200000
#else
let directIOFlag: Int32 = 0o40000
#endif
import VecShardPrimitives

/// Where WAL files live and what their names mean: `wal-<first LSN, 20 digits>.log`.
enum WALFileName {
    static func make(firstLSN: UInt64) -> String {
        let digits = String(firstLSN)
        return "wal-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log"
    }

    static func parse(_ name: String) -> UInt64? {
        guard name.hasPrefix("wal-"), name.hasSuffix(".log") else { return nil }
        return UInt64(name.dropFirst(4).dropLast(4))
    }
}

/// Which WAL files a checkpoint makes obsolete, without I/O: a file can go once every
/// record it may hold has an LSN at or below the checkpoint, i.e. once the next file
/// starts at or below checkpoint + 1. The newest file always stays (appends go there).
enum WALCheckpointPlan {
    /// `files` are first LSNs in increasing order; returns the ones to delete.
    static func obsolete(files: [UInt64], checkpoint: UInt64) -> [UInt64] {
        guard files.count > 1 else { return [] }
        var out: [UInt64] = []
        for i in 0..<(files.count - 1) where files[i + 1] <= checkpoint + 1 { out.append(files[i]) }
        return out
    }
}

/// A collection's write-ahead log: append-only files of checksummed records in
/// `directory`, group commit (concurrent writers share one fsync; a writer is answered
/// only after the fsync of its record), rotation and checkpoint truncation.
///
/// Groups go through two serial queues, a pipeline of two stages:
///
/// - the log's queue writes and fsyncs groups, one after the other, and takes the next
///   group as soon as the previous one is durable;
/// - the apply queue, per group in LSN order: `applier.stage` (the expensive, invisible
///   part: appending rows past the visible ones) while the group is being written, then,
///   once the group is durable, `applier.publish` with the group's records and the staged
///   result, and only then answers the group's writers (with publish's per-record results,
///   e.g. rows deleted). If the write did not become durable, `applier.abandon` discards
///   the staged work instead and the writers get the error.
///
/// So a writer is answered only after the fsync of its record and after its write is
/// visible, groups are published in LSN order, and the write of group n+1 overlaps the
/// publish of group n (a durable group that is not yet published when the process dies
/// is replayed by recovery; its writers were never answered).
protocol WALApplier: AnyObject, Sendable {
    associatedtype Staged
    func stage(_ records: [WALRecord]) -> Staged
    func publish(_ records: [WALRecord], staged: Staged) -> [Int]
    func abandon(_ records: [WALRecord], staged: Staged)
}

final class WriteAheadLog: @unchecked Sendable {
    typealias Waiter = CheckedContinuation<(lsn: UInt64, applied: Int), Error>

    let directory: String
    /// A file is rotated once it is larger than this many bytes.
    let fileBytesLimit: Int
    private let queue: DispatchQueue
    private let state: Locked<GroupCommit<Waiter>>
    private let stageGroup: @Sendable ([WALRecord]) -> Any
    private let publishGroup: @Sendable ([WALRecord], Any) -> [Int]
    private let abandonGroup: @Sendable ([WALRecord], Any) -> Void
    /// Where groups are staged and published (see the type's comment); `perform` bodies
    /// run there too, between groups.
    private let applyQueue: DispatchQueue
    /// Files (first LSN) and the open tail file; touched on `queue` and under `files`.
    private let files: Locked<[UInt64]>
    private var fd: Int32 = -1
    private var path = ""
    private var size = 0
    /// O_DIRECT mode: writes go from `tail` (the bytes of the file's last, partial 4 KiB
    /// block, rewritten with each group) straight to the device, bypassing the page cache
    /// (on this class of VM buffered writes + fsync reach ~200 MB/s, direct ones ~1.2 GB/s).
    /// Files are preallocated with fallocate, `initialFileBytes` at creation and then in
    /// growing steps (up to about `fileBytesLimit`) as groups need room, so a new or idle
    /// log holds little disk; the zeros after the last record read as a clean end. Falls
    /// back to buffered writes where O_DIRECT is refused (tmpfs).
    private var direct = false
    /// Bytes of the open file that are allocated (its size after fallocate).
    private var allocated = 0
    let initialFileBytes: Int
    /// Whether the last group was refused because the disk is full (the log is read-only
    /// until a write finds room again; every write retries).
    let diskFull = Locked(false)
    private var tail: [UInt8] = []
    static let blockBytes = 4096
    /// Set by the apply queue (publish, `perform`), read by the log's queue.
    private let rotateRequested = Locked(false)
    /// Record bytes appended since the log was opened (not counting padding or
    /// preallocation), and the seconds spent writing and fsyncing them.
    let appendedBytes = Locked(0)
    let ioSeconds = Locked(0.0)
    /// Seconds the apply queue spent staging and publishing (not waiting for writes).
    let applySeconds = Locked(0.0)
    /// Test hook: when set, called before each group write with the bytes about to be
    /// written; a non-nil errno makes the write fail as if the OS returned it.
    var injectedWriteError: (@Sendable (Int) -> Int32?)?

    /// Opens the log for appending after recovery. With `reuse` (the newest file and its
    /// valid length, from `recover`), appends go on in that file while it is below
    /// `fileBytesLimit`; otherwise a new file starting at `nextLSN` is created. When that
    /// creation finds the disk full and `requireFile` is false, the log opens without a
    /// file: writes are refused with `diskFull` (reads are unaffected) and each write tries
    /// again to create it.
    init<A: WALApplier>(directory: String, existingFiles: [UInt64], nextLSN: UInt64, fileBytesLimit: Int,
                        initialFileBytes: Int = 1 << 20, reuse: (firstLSN: UInt64, validLength: Int)? = nil,
                        requireFile: Bool = true, applier: A) throws {
        self.directory = directory
        self.fileBytesLimit = fileBytesLimit
        self.initialFileBytes = max(Self.blockBytes, min(initialFileBytes, fileBytesLimit))
        self.queue = DispatchQueue(label: "vecshard.wal")
        self.applyQueue = DispatchQueue(label: "vecshard.wal.apply")
        self.state = Locked(GroupCommit(nextLSN: nextLSN))
        // Weak: the collection owns the log.
        stageGroup = { [weak applier] records in applier.map { $0.stage(records) as Any } ?? () }
        publishGroup = { [weak applier] records, staged in
            guard let applier, let staged = staged as? A.Staged else { return records.map { _ in 0 } }
            return applier.publish(records, staged: staged)
        }
        abandonGroup = { [weak applier] records, staged in
            guard let applier, let staged = staged as? A.Staged else { return }
            applier.abandon(records, staged: staged)
        }
        self.files = Locked(existingFiles)
        if let reuse, reuse.validLength >= WALFileHeader.bytes, reuse.validLength < fileBytesLimit,
           existingFiles.last == reuse.firstLSN {
            try reopenFile(firstLSN: reuse.firstLSN, validLength: reuse.validLength)
            return
        }
        do {
            try openFile(firstLSN: nextLSN)
        } catch StorageError.diskFull where !requireFile {
            diskFull.withLock { $0 = true }
        }
    }

    /// Opens an existing file to append after its valid prefix (its last partial block is
    /// read back for O_DIRECT rewrites). The bytes after the prefix are zeros or nothing
    /// (recovery cut or refused anything else), so no allocation is needed.
    private func reopenFile(firstLSN: UInt64, validLength: Int) throws {
        let p = directory + "/" + WALFileName.make(firstLSN: firstLSN)
        var newFD: Int32
        var newDirect = true
        do {
            newFD = try FileIO.open(p, O_WRONLY | directIOFlag)
        } catch StorageError.io(_, _, EINVAL) {
            newFD = try FileIO.open(p, O_WRONLY)
            newDirect = false
        }
        let blockStart = validLength / Self.blockBytes * Self.blockBytes
        var partial = [UInt8](repeating: 0, count: validLength - blockStart)
        do {
            let reader = try FileIO.open(p, O_RDONLY)
            defer { Glibc.close(reader) }
            let n = partial.withUnsafeMutableBytes { pread(reader, $0.baseAddress, $0.count, off_t(blockStart)) }
            guard n == partial.count else { throw ioError(p, "read") }
            if !newDirect { guard lseek(newFD, off_t(validLength), SEEK_SET) == off_t(validLength) else { throw ioError(p, "seek") } }
        } catch {
            Glibc.close(newFD)
            throw error
        }
        fd = newFD
        direct = newDirect
        path = p
        size = validLength
        allocated = FileIO.fileSize(p) ?? validLength
        tail = partial
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
        ioBuffer?.deallocate()
    }

    private func openFile(firstLSN: UInt64) throws {
        let name = WALFileName.make(firstLSN: firstLSN)
        let newPath = directory + "/" + name
        var newFD: Int32
        var newDirect = true
        do {
            newFD = try FileIO.open(newPath, O_WRONLY | O_CREAT | O_TRUNC | directIOFlag)
        } catch StorageError.io(_, _, EINVAL) {
            newFD = try FileIO.open(newPath, O_WRONLY | O_CREAT | O_TRUNC)
            newDirect = false
        }
        var newAllocated = 0
        do {
            let header = WALFileHeader.encode(firstLSN: firstLSN)
            if newDirect {
                let rc = FileIO.allocate(newFD, from: 0, bytes: initialFileBytes, path: newPath)
                if rc != 0 && isDiskFull(rc) { throw ioError(newPath, "fallocate", rc) }
                newAllocated = rc == 0 ? initialFileBytes : 0
                if let code = DiskFaults.check(newPath) { throw ioError(newPath, "write", code) }
                try Self.writeBlocks(newFD, header, at: 0, path: newPath)
            } else {
                try FileIO.writeAll(newFD, header, path: newPath)
            }
            try FileIO.fsync(newFD, path: newPath)
            try FileIO.fsyncDirectory(directory)
            tail = header
        } catch {
            Glibc.close(newFD)
            unlink(newPath)
            throw error
        }
        if fd >= 0 { Glibc.close(fd) }
        fd = newFD
        direct = newDirect
        path = newPath
        size = WALFileHeader.bytes
        allocated = max(newAllocated, Self.blockBytes)
        files.withLock { if !$0.contains(firstLSN) { $0.append(firstLSN) } }
    }

    /// Appends one operation and returns once it is durable and applied.
    func append(_ operation: WALOperation) async throws -> (lsn: UInt64, applied: Int) {
        let payload = WALRecordCodec.encodePayload(operation, reusing: PayloadBuffers.shared.take())
        let hash = XXH64.hash(payload)
        return try await withCheckedThrowingContinuation { (waiter: Waiter) in
            let action = state.withLock {
                $0.submit(.init(payload: payload, payloadHash: hash, operation: operation, waiter: waiter))
            }
            switch action {
            case .wait: break
            case let .reject(error): waiter.resume(throwing: error)
            case let .flush(group):
                let handoff = UncheckedSendable(group)
                queue.async { self.flush(handoff.value) }
            }
        }
    }

    /// The next group written starts a new file (so the files before it can be
    /// checkpointed). Groups already being written stay in the current file: their records
    /// have LSNs above anything published so far, so a checkpoint never drops them.
    func requestRotationIf(_ condition: Bool) {
        if condition { rotateRequested.withLock { $0 = true } }
    }

    /// Runs body on the apply queue, between groups (so it sees no half-applied group).
    func perform(_ body: @escaping @Sendable () -> Void) async throws {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            applyQueue.async {
                body()
                c.resume()
            }
        }
    }

    /// What the log's queue tells the apply queue about a group once its write ended.
    private struct WriteResult {
        var outcome: GroupCommit<Waiter>.FlushOutcome
        var after: GroupCommit<Waiter>.AfterFlush
    }

    /// Runs on `queue`: writes groups until none is queued. Each group's staging, publish
    /// and answers are handed to the apply queue before its write starts (see the type's
    /// comment).
    private func flush(_ first: GroupCommit<Waiter>.Group) {
        var group: GroupCommit<Waiter>.Group? = first
        while var g = group {
            group = nil // `g` is the payloads' only owner, so their buffers can be recycled below
            let records = g.entries.enumerated().map { WALRecord(lsn: g.firstLSN + UInt64($0.offset), operation: $0.element.operation) }
            let written = DispatchSemaphore(value: 0)
            let result = Locked<WriteResult?>(nil)
            let handoff = UncheckedSendable(records)
            let firstLSN = g.firstLSN
            applyQueue.async { self.apply(handoff.value, firstLSN: firstLSN, written: written, result: result) }
            let started = ContinuousClock.now
            let outcome = write(g)
            let spent = (ContinuousClock.now - started) / .seconds(1)
            ioSeconds.withLock { $0 += spent }
            // LSNs of a refused group are given back here, before the next group is taken.
            let after = state.withLock { $0.flushFinished(g, outcome) }
            result.withLock { $0 = WriteResult(outcome: outcome, after: after) }
            written.signal()
            group = after.next
            // The payloads are in the file now (or refused): their buffers serve later writers.
            for i in g.entries.indices {
                var payload: [UInt8] = []
                swap(&payload, &g.entries[i].payload)
                PayloadBuffers.shared.give(payload)
            }
        }
    }

    /// Runs on `applyQueue`: stages the group while it is written, waits for the write,
    /// publishes (or abandons) it, then answers its writers (and, after a permanent
    /// failure, the writers that were queued behind it).
    private func apply(_ records: [WALRecord], firstLSN: UInt64, written: DispatchSemaphore,
                       result: Locked<WriteResult?>) {
        let stageStarted = ContinuousClock.now
        let staged = stageGroup(records)
        var busy = ContinuousClock.now - stageStarted
        written.wait()
        guard let r = result.withLock({ $0 }) else { preconditionFailure("a group's write ended without a result") }
        var results: [Int] = []
        let publishStarted = ContinuousClock.now
        if case .durable = r.outcome {
            results = publishGroup(records, staged)
        } else {
            abandonGroup(records, staged)
        }
        busy += ContinuousClock.now - publishStarted
        applySeconds.withLock { $0 += busy / .seconds(1) }
        for (i, waiter) in r.after.answered.enumerated() {
            if let error = r.after.error {
                waiter.resume(throwing: error)
            } else {
                waiter.resume(returning: (firstLSN + UInt64(i), results[i]))
            }
        }
    }

    private func write(_ group: GroupCommit<Waiter>.Group) -> GroupCommit<Waiter>.FlushOutcome {
        // Taken and cleared at once: a request made during this write applies to the next.
        let rotate = rotateRequested.withLock { requested -> Bool in
            defer { requested = false }
            return requested
        }
        if fd < 0 || rotate || size > fileBytesLimit {
            do {
                try openFile(firstLSN: group.firstLSN)
            } catch {
                if rotate { rotateRequested.withLock { $0 = true } } // still wanted: try again next group
                if let error = error as? StorageError {
                    if isRefusal(error) { diskFull.withLock { $0 = true } }
                    // Without a file (opened on a full disk), nothing can be written yet: refuse.
                    return isRefusal(error) || fd < 0 ? .refused(error) : .failed(error)
                }
                return .failed(.unavailable("\(error)"))
            }
        }
        // Frame the group straight into one block-aligned buffer (after the file's partial
        // last block in O_DIRECT mode): one copy of each payload, no intermediate arrays.
        let recordBytes = group.payloadBytes + group.entries.count * WALRecordCodec.headerBytes
        let lead = direct ? tail.count : 0
        let total = lead + recordBytes
        let padded = direct ? (total + Self.blockBytes - 1) / Self.blockBytes * Self.blockBytes : total
        ensureIOBuffer(padded)
        let out = ioBuffer!
        if lead > 0 { tail.withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: lead) } }
        var at = lead
        for (i, e) in group.entries.enumerated() {
            WALRecordCodec.writeHeader(into: out + at, lsn: group.firstLSN + UInt64(i), payloadCount: e.payload.count,
                                       payloadHash: e.payloadHash)
            at += WALRecordCodec.headerBytes
            e.payload.withUnsafeBytes { if $0.count > 0 { (out + at).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            at += e.payload.count
        }
        if padded > total { (out + total).initializeMemory(as: UInt8.self, repeating: 0, count: padded - total) }
        let start = size
        do {
            if let code = injectedWriteError?(recordBytes) ?? DiskFaults.check(path) { throw ioError(path, "write", code) }
            if direct {
                try grow(toCover: size - tail.count + padded)
                try Self.pwriteAll(fd, UnsafeRawBufferPointer(start: out, count: padded), at: size - tail.count, path: path)
                let keep = (size + recordBytes) % Self.blockBytes
                tail = Array(UnsafeRawBufferPointer(start: out + (total - keep), count: keep))
            } else {
                try FileIO.writeAll(fd, UnsafeRawBufferPointer(start: out, count: total), path: path)
            }
        } catch {
            if let e = error as? StorageError, isRefusal(e) { diskFull.withLock { $0 = true } }
            if direct {
                // Drop whatever part of the group reached the file (and the preallocation
                // after it): no record of a refused group may survive.
                if ftruncate(fd, off_t(start)) == 0 {
                    allocated = min(allocated, start)
                    return .refused(error as? StorageError ?? .unavailable("\(error)"))
                }
            }
            // Cut the partial write so later records do not follow garbage.
            let storageError = error as? StorageError ?? .unavailable("\(error)")
            if ftruncate(fd, off_t(start)) == 0, lseek(fd, off_t(start), SEEK_SET) == off_t(start) {
                return .refused(storageError)
            }
            return .failed(.unavailable("write-ahead log \(path) could not be cut back after \(storageError); writes are refused until restart"))
        }
        guard fdatasync(fd) == 0 else {
            let e = errno
            return .failed(.unavailable("fsync of write-ahead log \(path) failed (errno \(e)); writes are refused until restart"))
        }
        size += recordBytes
        appendedBytes.withLock { $0 += recordBytes }
        diskFull.withLock { $0 = false }
        return .durable
    }

    /// Lazy growth (O_DIRECT files): makes the file's allocation cover `end` bytes, in
    /// steps that double up to 16 MiB (never beyond what `fileBytesLimit` and the group
    /// need). A full disk refuses the group before anything of it is written.
    private func grow(toCover end: Int) throws {
        guard end > allocated else { return }
        let step = min(max(allocated, 1 << 20), 16 << 20)
        var target = max(end, min(allocated + step, max(fileBytesLimit, end)))
        target = (target + Self.blockBytes - 1) / Self.blockBytes * Self.blockBytes
        let rc = FileIO.allocate(fd, from: allocated, bytes: target - allocated, path: path)
        if rc != 0 && isDiskFull(rc) { throw ioError(path, "fallocate", rc) }
        // Without fallocate support the write extends the file itself.
        allocated = rc == 0 ? target : max(allocated, end)
    }

    /// The group-framing buffer, block-aligned, reused from group to group (grown as needed).
    private var ioBuffer: UnsafeMutableRawPointer?
    private var ioBufferBytes = 0

    private func ensureIOBuffer(_ bytes: Int) {
        guard bytes > ioBufferBytes || ioBuffer == nil else { return }
        ioBuffer?.deallocate()
        let capacity = max(bytes + bytes / 2, 1 << 20) / Self.blockBytes * Self.blockBytes + Self.blockBytes
        ioBuffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: Self.blockBytes)
        ioBufferBytes = capacity
    }

    /// pwrite of all of `bytes` at `offset`, retrying short writes and EINTR.
    static func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError(path, "write")
            }
            done += n
        }
    }

    /// Writes `bytes` at `offset` (a multiple of the block size) with O_DIRECT: through a
    /// block-aligned buffer, zero-padded to whole blocks.
    static func writeBlocks(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws {
        let padded = (bytes.count + blockBytes - 1) / blockBytes * blockBytes
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(padded, blockBytes), alignment: blockBytes)
        defer { buffer.deallocate() }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        (buffer + bytes.count).initializeMemory(as: UInt8.self, repeating: 0, count: padded - bytes.count)
        var done = 0
        while done < padded {
            let n = pwrite(fd, buffer + done, padded - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError(path, "write")
            }
            done += n
        }
    }

    private func isRefusal(_ error: StorageError) -> Bool {
        if case .diskFull = error { return true }
        return false
    }

    /// Deletes the files whose records all have LSN ≤ `checkpoint` (their content is in
    /// sealed segments named by a durable manifest). Returns the bytes freed.
    @discardableResult
    func checkpoint(through lsn: UInt64) -> Int {
        let doomed = files.withLock { list -> [UInt64] in
            let d = WALCheckpointPlan.obsolete(files: list, checkpoint: lsn)
            list.removeAll { d.contains($0) }
            return d
        }
        var freed = 0
        for first in doomed {
            let p = directory + "/" + WALFileName.make(firstLSN: first)
            freed += FileIO.fileSize(p) ?? 0
            unlink(p)
        }
        if !doomed.isEmpty { try? FileIO.fsyncDirectory(directory) }
        return freed
    }

    /// Bytes of WAL files on disk.
    var diskBytes: Int {
        files.withLock { $0 }.reduce(0) { $0 + (FileIO.fileSize(directory + "/" + WALFileName.make(firstLSN: $1)) ?? 0) }
    }

    /// Refuses new writes and waits (blocking) until the running flush, if any, is done.
    func close() {
        _ = state.withLock { $0.close() }
        // Flushes run as blocks on the queue and none starts after close: wait for them,
        // then for the publish of the last group.
        queue.sync {}
        applyQueue.sync {}
    }
}

