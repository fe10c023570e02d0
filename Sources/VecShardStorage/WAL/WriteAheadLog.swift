#if canImport(Glibc)
import Glibc
#endif
import Dispatch

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

/// What recovery found in the WAL files.
public struct WALRecoveryReport: Sendable, Equatable {
    /// Records read (including those at or below the checkpoint, which are skipped).
    public var recordsRead = 0
    /// Records applied (above the checkpoint).
    public var recordsReplayed = 0
    /// Bytes cut from damaged tails.
    public var bytesCut = 0
    /// One line per damaged tail: file, offset and reason.
    public var damage: [String] = []
    /// Largest LSN seen (0 if none).
    public var lastLSN: UInt64 = 0
}

/// A collection's write-ahead log: append-only files of checksummed records in
/// `directory`, group commit (concurrent writers share one fsync; a writer is answered
/// only after the fsync of its record), rotation and checkpoint truncation.
///
/// After a group is durable, `apply` runs on the log's queue with the group's records in
/// LSN order, before any writer of the group is answered; its per-record results
/// (e.g. rows deleted) are returned to the writers. Applying is therefore serialized.
final class WriteAheadLog: @unchecked Sendable {
    typealias Waiter = CheckedContinuation<(lsn: UInt64, applied: Int), Error>

    let directory: String
    /// A file is rotated once it is larger than this many bytes.
    let fileBytesLimit: Int
    private let queue: DispatchQueue
    private let state: Locked<GroupCommit<Waiter>>
    private let apply: @Sendable ([WALRecord]) -> [Int]
    /// Files (first LSN) and the open tail file; touched on `queue` and under `files`.
    private let files: Locked<[UInt64]>
    private var fd: Int32 = -1
    private var path = ""
    private var size = 0
    private var rotateRequested = false
    /// Test hook: when set, called before each group write with the bytes about to be
    /// written; a non-nil errno makes the write fail as if the OS returned it.
    var injectedWriteError: (@Sendable (Int) -> Int32?)?

    /// Opens the log for appending after recovery: a new file starting at `nextLSN`.
    init(directory: String, existingFiles: [UInt64], nextLSN: UInt64, fileBytesLimit: Int,
         apply: @escaping @Sendable ([WALRecord]) -> [Int]) throws {
        self.directory = directory
        self.fileBytesLimit = fileBytesLimit
        self.queue = DispatchQueue(label: "vecshard.wal")
        self.state = Locked(GroupCommit(nextLSN: nextLSN))
        self.apply = apply
        self.files = Locked(existingFiles)
        try openFile(firstLSN: nextLSN)
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    private func openFile(firstLSN: UInt64) throws {
        let name = WALFileName.make(firstLSN: firstLSN)
        let newPath = directory + "/" + name
        let newFD = try FileIO.open(newPath, O_WRONLY | O_CREAT | O_TRUNC)
        do {
            try FileIO.writeAll(newFD, WALFileHeader.encode(firstLSN: firstLSN), path: newPath)
            try FileIO.fsync(newFD, path: newPath)
            try FileIO.fsyncDirectory(directory)
        } catch {
            Glibc.close(newFD)
            unlink(newPath)
            throw error
        }
        if fd >= 0 { Glibc.close(fd) }
        fd = newFD
        path = newPath
        size = WALFileHeader.bytes
        files.withLock { if !$0.contains(firstLSN) { $0.append(firstLSN) } }
    }

    /// Appends one operation and returns once it is durable and applied.
    func append(_ operation: WALOperation) async throws -> (lsn: UInt64, applied: Int) {
        let payload = WALRecordCodec.encodePayload(operation)
        let hash = XXHash64.hash(payload)
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

    /// The next append starts a new file (so the files before it can be checkpointed).
    /// Call on the log's queue: from `apply` or a `perform` body.
    func requestRotationIf(_ condition: Bool) {
        if condition { rotateRequested = true }
    }

    /// Runs body on the log's queue, between groups (so it sees no half-applied group).
    func perform(_ body: @escaping @Sendable () -> Void) async throws {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            queue.async {
                body()
                c.resume()
            }
        }
    }

    /// Runs on `queue`: writes groups until none is queued.
    private func flush(_ first: GroupCommit<Waiter>.Group) {
        var group: GroupCommit<Waiter>.Group? = first
        while let g = group {
            let outcome = write(g)
            var results: [Int] = []
            if case .durable = outcome {
                results = apply(g.entries.enumerated().map { WALRecord(lsn: g.firstLSN + UInt64($0.offset), operation: $0.element.operation) })
            }
            let after = state.withLock { $0.flushFinished(g, outcome) }
            for (i, waiter) in after.answered.enumerated() {
                if let error = after.error {
                    waiter.resume(throwing: error)
                } else {
                    waiter.resume(returning: (g.firstLSN + UInt64(i), results[i]))
                }
            }
            group = after.next
        }
    }

    private func write(_ group: GroupCommit<Waiter>.Group) -> GroupCommit<Waiter>.FlushOutcome {
        if rotateRequested || size > fileBytesLimit {
            do {
                try openFile(firstLSN: group.firstLSN)
                rotateRequested = false
            } catch let error as StorageError {
                return isRefusal(error) ? .refused(error) : .failed(error)
            } catch {
                return .failed(.unavailable("\(error)"))
            }
        }
        var buffer = [UInt8]()
        buffer.reserveCapacity(group.payloadBytes + group.entries.count * WALRecordCodec.headerBytes)
        for (i, e) in group.entries.enumerated() {
            buffer += WALRecordCodec.header(lsn: group.firstLSN + UInt64(i), payloadCount: e.payload.count, payloadHash: e.payloadHash)
            buffer += e.payload
        }
        let start = size
        do {
            if let code = injectedWriteError?(buffer.count) { throw ioError(path, "write", code) }
            try FileIO.writeAll(fd, buffer, path: path)
        } catch {
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
        size += buffer.count
        return .durable
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
        // Flushes run as blocks on the queue and none starts after close: wait for them.
        queue.sync {}
    }

    /// Reads every WAL file in `directory` in order, calls `replay` for each valid record
    /// with LSN > `checkpoint`, cuts damaged tails (so they are not read again) and
    /// deletes files whose header is unreadable. Returns the surviving files' first LSNs.
    static func recover(directory: String, checkpoint: UInt64,
                        replay: (WALRecord) throws -> Void) throws -> (files: [UInt64], report: WALRecoveryReport) {
        var report = WALRecoveryReport()
        var kept: [UInt64] = []
        let names = FileIO.list(directory).compactMap { name in WALFileName.parse(name).map { ($0, name) } }
            .sorted { $0.0 < $1.0 }
        for (first, name) in names {
            let p = directory + "/" + name
            let bytes = try FileIO.read(p)
            var validLength = 0
            var damage: String?
            try bytes.withUnsafeBytes { raw in
                var scanner = WALFileScanner(raw)
                loop: while true {
                    switch scanner.next() {
                    case let .record(record):
                        report.recordsRead += 1
                        report.lastLSN = max(report.lastLSN, record.lsn)
                        if record.lsn > checkpoint {
                            try replay(record)
                            report.recordsReplayed += 1
                        }
                    case let .end(length, why):
                        validLength = length
                        damage = why
                        break loop
                    }
                }
            }
            if validLength == 0 {
                // Torn file creation: no readable header, so no acknowledged record.
                if !bytes.isEmpty { report.damage.append("\(name): \(damage ?? "empty"); file removed") }
                unlink(p)
                continue
            }
            report.lastLSN = max(report.lastLSN, first > 0 ? first - 1 : 0)
            if let damage {
                report.damage.append("\(name): offset \(validLength): \(damage)")
                report.bytesCut += bytes.count - validLength
                guard truncate(p, off_t(validLength)) == 0 else { throw ioError(p, "truncate") }
                let fd = try FileIO.open(p, O_WRONLY)
                defer { Glibc.close(fd) }
                try FileIO.fsync(fd, path: p)
            }
            kept.append(first)
        }
        return (kept, report)
    }
}

/// Hands a value to a queue when the compiler cannot see that only one thread uses it.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
