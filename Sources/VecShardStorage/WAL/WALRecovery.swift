#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VecShardPrimitives

/// What recovery found in the WAL files.
public struct WALRecoveryReport: Sendable, Equatable {
    /// Records read (including those at or below the checkpoint, which are skipped).
    public var recordsRead = 0
    /// Records applied (above the checkpoint).
    public var recordsReplayed = 0
    /// Bytes cut from torn tails (and, after an accepted loss, set aside).
    public var bytesCut = 0
    /// One line per cut: file, offset and reason. A torn tail (the last, unacknowledged
    /// write of a crash) is cut without asking; anything else is `WALDamage`.
    public var damage: [String] = []
    /// Largest LSN seen (0 if none).
    public var lastLSN: UInt64 = 0
    /// Damage that was cut because the operator accepted the loss (`acceptDataLoss`).
    public var acceptedLoss: WALDamage?
}

/// Damage in a write-ahead log that is not a torn tail: valid records follow it (in its
/// file or in a later one), so cutting there would drop acknowledged writes. Recovery
/// refuses to open the collection until an operator accepts the loss; the files are kept.
public struct WALDamage: Sendable, Equatable, CustomStringConvertible {
    /// The damaged file.
    public var path: String
    /// Byte offset in that file where the valid prefix ends.
    public var offset: Int
    /// What is wrong there (checksum mismatch, bad magic, a corrupt file header, an LSN gap...).
    public var reason: String
    /// Valid records found after the damage (this file and later ones): they would be lost.
    public var recordsAfter: Int
    /// Their LSN range (nil if none was found, e.g. only an LSN gap).
    public var lsnsAfter: ClosedRange<UInt64>?
    /// Bytes of the damaged file after `offset` up to the end of its last valid record,
    /// plus the record bytes of later files.
    public var bytesAfter: Int
    /// Later WAL files that a cut here drops as well.
    public var laterFiles: [String]

    public var description: String {
        let lsns = lsnsAfter.map { " (LSN \($0.lowerBound)...\($0.upperBound))" } ?? ""
        let later = laterFiles.isEmpty ? "" : " and the later file(s) \(laterFiles.joined(separator: ", "))"
        return "write-ahead log \(path) is damaged at offset \(offset): \(reason); \(recordsAfter) valid record(s)\(lsns), "
            + "\(bytesAfter) bytes after it\(later) would be lost"
    }
}

/// Valid records found by scanning raw bytes (not a record sequence: any offset).
struct WALRecordsFound: Equatable {
    var count = 0
    var firstLSN: UInt64?
    var lastLSN: UInt64?
    /// From the scan's start to the end of the last record found (0 if none).
    var extent = 0
    /// Sum of the records' lengths.
    var recordBytes = 0

    mutating func add(_ other: WALRecordsFound) {
        count += other.count
        recordBytes += other.recordBytes
        if let f = other.firstLSN { firstLSN = min(firstLSN ?? f, f) }
        if let l = other.lastLSN { lastLSN = max(lastLSN ?? l, l) }
    }

    var lsns: ClosedRange<UInt64>? {
        guard let firstLSN, let lastLSN else { return nil }
        return min(firstLSN, lastLSN)...max(firstLSN, lastLSN)
    }

    /// Every whole record with a matching checksum at or after `from` (by its magic, at
    /// any byte offset), so a damaged record does not hide the ones behind it. Pure.
    static func scan(_ bytes: UnsafeRawBufferPointer, from: Int) -> WALRecordsFound {
        var found = WALRecordsFound()
        guard let base = bytes.baseAddress, from < bytes.count else { return found }
        let first = UInt8(truncatingIfNeeded: WALRecordCodec.magic)
        var at = from
        while at + WALRecordCodec.headerBytes <= bytes.count {
            guard let hit = memchr(base + at, Int32(first), bytes.count - at) else { break }
            let o = UnsafeRawPointer(hit) - base
            switch WALRecordCodec.decode(bytes, at: o, decodeAbove: .max) {
            case let .verified(lsn, length):
                found.count += 1
                found.firstLSN = found.firstLSN ?? lsn
                found.lastLSN = lsn
                found.recordBytes += length
                found.extent = o + length - from
                at = o + length
            default:
                at = o + 1
            }
        }
        return found
    }
}

/// The decision for the end of one file's valid prefix, without I/O (the recovery
/// shell scans, asks, then performs): a torn tail is cut, anything with valid records
/// behind it is damage.
enum WALTailDecision: Equatable {
    /// Nothing after the valid prefix but zeros (preallocated room): keep the file as is.
    case cleanEnd
    /// A torn or garbage tail with no valid record after it in this file or a later one:
    /// the last write of a crash, never acknowledged. Cut the file to its valid prefix
    /// (remove it when even its header is torn: an interrupted creation).
    case cutTornTail
    /// Valid records follow: acknowledged data would be lost.
    case damage(WALDamage)

    /// - Parameters:
    ///   - damage: why the scanner stopped (nil: it met zeros or the end).
    ///   - after: valid records after the prefix in this file; `later`: in each later file.
    static func decide(path: String, validLength: Int, damage: String?,
                       after: WALRecordsFound, later: [(name: String, found: WALRecordsFound)]) -> WALTailDecision {
        let laterRecords = later.reduce(0) { $0 + $1.found.count }
        if after.count == 0 {
            // Zeros after the last record: the file's room (preallocated, block padding, or
            // left behind by a rotation).
            if damage == nil && validLength > 0 { return .cleanEnd }
            if laterRecords == 0 { return .cutTornTail }
        }
        var total = after
        for l in later { total.add(l.found) }
        return .damage(WALDamage(
            path: path, offset: validLength, reason: damage ?? "zeros where a record should start",
            recordsAfter: total.count, lsnsAfter: total.lsns,
            bytesAfter: after.extent + later.reduce(0) { $0 + $1.found.recordBytes },
            laterFiles: later.filter { $0.found.count > 0 }.map(\.name)))
    }
}

extension WriteAheadLog {
    /// What `recover` leaves for the log to reopen.
    struct Recovered {
        /// Surviving files' first LSNs, in order.
        var files: [UInt64]
        var report: WALRecoveryReport
        /// The newest surviving file and the length of its valid prefix: appends go on there.
        var tail: (firstLSN: UInt64, validLength: Int)?
    }

    /// Reads every WAL file in `directory` in order and calls `replay` for each valid
    /// record with LSN > `checkpoint`. A torn tail (no valid record after it, in its file
    /// or a later one) is cut; a file whose header is torn and that holds no record is
    /// removed (an interrupted creation). Any other damage throws `walDamaged` naming the
    /// file, the offset and what a cut would lose, and changes no file, unless
    /// `acceptDataLoss`: then the damaged file and every later one are renamed aside
    /// (`<name>.damaged-<unix seconds>`, never deleted), the damaged file's valid prefix is
    /// written back under its name, and the loss is in `report.acceptedLoss`. Records
    /// after the damage are never replayed (that would resurrect what a lost record deleted).
    static func recover(directory: String, checkpoint: UInt64, acceptDataLoss: Bool = false,
                        replay: (WALRecord) throws -> Void) throws -> Recovered {
        var report = WALRecoveryReport()
        var kept: [UInt64] = []
        var tail: (firstLSN: UInt64, validLength: Int)?
        try restorePrefixes(directory: directory)
        let names = FileIO.list(directory).compactMap { name in WALFileName.parse(name).map { ($0, name) } }
            .sorted { $0.0 < $1.0 }
        /// The LSN the next file must start at or below (contiguity across files).
        var expectedNext: UInt64?
        for (index, (first, name)) in names.enumerated() {
            let p = directory + "/" + name
            if FileIO.fileSize(p) == 0 {
                unlink(p) // created, nothing written yet: no record can be in it
                continue
            }
            // Mapped, not read: preallocated files are mostly zeros the kernel need not read.
            let mapping = try mapFile(p)
            let bytes = mapping.bytes
            var validLength = 0
            var damage: String?
            var lastInFile: UInt64?
            let headerFirst = WALFileHeader.decode(bytes)
            // An LSN gap between files: the records of the gap (above the checkpoint) are gone.
            if let headerFirst, let expected = expectedNext, headerFirst > max(expected, checkpoint + 1) {
                let later = names[index...].map { n in (name: n.1, found: (try? mapFile(directory + "/" + n.1)).map { WALRecordsFound.scan($0.bytes, from: 0) } ?? WALRecordsFound()) }
                var total = WALRecordsFound()
                for l in later { total.add(l.found) }
                let gap = WALDamage(path: p, offset: 0, reason: "the file starts at LSN \(headerFirst) but the previous one ends before LSN \(expected): records \(expected)...\(headerFirst - 1) are missing",
                                    recordsAfter: total.count, lsnsAfter: total.lsns, bytesAfter: total.recordBytes,
                                    laterFiles: later.dropFirst().filter { $0.found.count > 0 }.map(\.name))
                guard acceptDataLoss else { throw StorageError.walDamaged(gap) }
                try setAside(directory: directory, names: names[index...].map(\.1), report: &report)
                report.acceptedLoss = gap
                report.damage.append(gap.description + "; accepted, set aside")
                break
            }
            try { (raw: UnsafeRawBufferPointer) in
                var scanner = WALFileScanner(raw, skipThrough: checkpoint)
                loop: while true {
                    switch scanner.next() {
                    case let .skipped(lsn):
                        // At or below the checkpoint: checked, not decoded, not replayed.
                        report.recordsRead += 1
                        report.lastLSN = max(report.lastLSN, lsn)
                        lastInFile = lsn
                    case let .record(record):
                        report.recordsRead += 1
                        report.lastLSN = max(report.lastLSN, record.lsn)
                        lastInFile = record.lsn
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
            }(bytes)
            var decision = WALTailDecision.cleanEnd
            if validLength < bytes.count {
                let after = WALRecordsFound.scan(bytes, from: validLength)
                var later: [(name: String, found: WALRecordsFound)] = []
                if after.count > 0 || damage != nil || validLength == 0 {
                    for (_, laterName) in names[(index + 1)...] {
                        let m = try mapFile(directory + "/" + laterName)
                        later.append((laterName, WALRecordsFound.scan(m.bytes, from: 0)))
                    }
                }
                decision = WALTailDecision.decide(path: p, validLength: validLength,
                                                  damage: validLength == 0 ? (damage ?? "missing or corrupt file header") : damage,
                                                  after: after, later: later)
            }
            switch decision {
            case .cleanEnd:
                break
            case .cutTornTail:
                if validLength == 0 {
                    // Torn file creation: no readable header and no record anywhere after.
                    if !bytes.isEmpty { report.damage.append("\(name): \(damage ?? "missing or corrupt file header"); no record in it, file removed") }
                    unlink(p)
                    continue
                }
                if let damage {
                    report.damage.append("\(name): offset \(validLength): \(damage); torn tail cut")
                    report.bytesCut += bytes.count - validLength
                    guard truncate(p, off_t(validLength)) == 0 else { throw ioError(p, "truncate") }
                    let fd = try FileIO.open(p, O_WRONLY)
                    defer { Glibc.close(fd) }
                    try FileIO.fsync(fd, path: p)
                }
            case let .damage(found):
                guard acceptDataLoss else { throw StorageError.walDamaged(found) }
                // Keep everything: the damaged file and the later ones go aside; the valid
                // prefix (if its header is intact) is written back under the file's name.
                // The prefix is written (and fsynced) under a temporary name first: a full disk
                // fails here with nothing renamed yet, and a crash after the renames below leaves
                // `<name>.prefix` that the next recovery puts back (`restorePrefixes`).
                let prefixPath = p + Self.prefixSuffix
                if validLength > 0 {
                    try FileIO.writeFile(prefixPath, UnsafeRawBufferPointer(rebasing: bytes[0..<validLength]))
                }
                try setAside(directory: directory, names: names[index...].map(\.1), report: &report)
                if validLength > 0 {
                    guard Glibc.rename(prefixPath, p) == 0 else { throw ioError(p, "rename") }
                    try FileIO.fsyncDirectory(directory)
                    kept.append(first)
                    tail = (first, validLength)
                }
                report.acceptedLoss = found
                report.damage.append(found.description + "; accepted, set aside")
                return Recovered(files: kept, report: report, tail: tail)
            }
            report.lastLSN = max(report.lastLSN, first > 0 ? first - 1 : 0)
            expectedNext = lastInFile.map { $0 + 1 } ?? headerFirst ?? expectedNext
            kept.append(first)
            tail = (first, validLength)
        }
        return Recovered(files: kept, report: report, tail: tail)
    }

    /// Suffix of the valid prefix of a damaged file while an accepted loss puts it in place.
    static let prefixSuffix = ".prefix"

    /// An accepted loss that crashed between setting the damaged file aside and renaming its
    /// prefix into place left `<name>.prefix` and no `<name>`: put the prefix back. A prefix
    /// whose file is still there was never needed (the crash came before the renames): drop it.
    private static func restorePrefixes(directory: String) throws {
        for name in FileIO.list(directory) where name.hasSuffix(prefixSuffix) {
            let original = String(name.dropLast(prefixSuffix.count))
            guard WALFileName.parse(original) != nil else { continue }
            let from = directory + "/" + name, to = directory + "/" + original
            if FileIO.exists(to) {
                unlink(from)
            } else {
                guard Glibc.rename(from, to) == 0 else { throw ioError(to, "rename") }
                try FileIO.fsyncDirectory(directory)
            }
        }
    }

    /// Renames WAL files aside (`<name>.damaged-<unix seconds>`): no longer read, never deleted.
    private static func setAside(directory: String, names: [String], report: inout WALRecoveryReport) throws {
        let stamp = String(Int(Date().timeIntervalSince1970))
        for name in names {
            let from = directory + "/" + name
            report.bytesCut += FileIO.fileSize(from) ?? 0
            // Never over an earlier set-aside copy (a second accepted loss within a second).
            var to = from + ".damaged-" + stamp
            var n = 1
            while FileIO.exists(to) {
                to = from + ".damaged-" + stamp + "-" + String(n)
                n += 1
            }
            try FileIO.rename(from, to)
        }
        try FileIO.fsyncDirectory(directory)
    }
}
